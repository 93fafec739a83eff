/*
 * tool_common.h — private to cairn's tools: output shared by the commands,
 * so that every tool prints the same things the same way.
 */
#ifndef CAIRN_TOOL_COMMON_H
#define CAIRN_TOOL_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Sums the accounting of one rank into totals[channel][logged, written,
 * dropped, rejected] and clears *complete unless logged = written +
 * dropped on both channels. */
void cairn_tool_acct_add(uint64_t totals[2][4], int *complete, const uint64_t rank[2][4]);

/* Prints n bytes of a run's text (a name, a key, a value: the
 * application's bytes, not ours) with control characters escaped as \xNN,
 * so that no run can drive the terminal. */
void cairn_tool_put_escaped(const char *s, size_t n);

/* Prints "  param <key> = <value> (<type>)" for a typed param (type as in
 * CAIRN_PARAM_*), key and string value escaped. */
void cairn_tool_print_param(const char *key, size_t klen, int type, int64_t i64, double f64,
                            const char *str, size_t slen);

/* Prints "  run <key> = "<value>"<suffix>" for a run key/value, escaped. */
void cairn_tool_print_kv(const char *key, size_t klen, const char *val, size_t vlen,
                         const char *suffix);

/* Prints the "accounting (records, all ranks)" block. */
void cairn_tool_print_acct(const uint64_t totals[2][4], int complete);

#endif /* CAIRN_TOOL_COMMON_H */
