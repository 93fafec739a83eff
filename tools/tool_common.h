/*
 * tool_common.h — private to cairn's tools: output shared by the commands,
 * so that every tool prints the same things the same way.
 */
#ifndef CAIRN_TOOL_COMMON_H
#define CAIRN_TOOL_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* Sums the accounting of one rank into totals[channel][logged, written,
 * dropped, rejected] and clears *complete unless logged = written +
 * dropped on both channels. */
void cairn_tool_acct_add(uint64_t totals[2][4], int *complete, const uint64_t rank[2][4]);

/* Prints n bytes of a run's text (a name, a key, a value: the
 * application's bytes, not ours) with control characters escaped as \xNN,
 * so that no run can drive the terminal. */
void cairn_tool_put_escaped(const char *s, size_t n);
/* The same to any stream. */
void cairn_tool_fput_escaped(FILE *f, const char *s, size_t n);
/* The same for a NUL-terminated string (NULL prints nothing). */
void cairn_tool_fput_text(FILE *f, const char *s);

/* Parses the arguments of the dumps, RUN_DIR [--series METRIC] [--ranks]
 * (--ranks only when ranks is not NULL; *series and *ranks are left as
 * they are unless given). Returns -1 with *dir set, else the exit code
 * after printing the usage (to stdout for -h/--help, else to stderr). */
int cairn_tool_dump_args(int argc, char **argv, void (*usage)(FILE *), const char **dir,
                         const char **series, int *ranks);

/* Prints "  param <key> = <value> (<type>)" for a typed param (type as in
 * CAIRN_PARAM_*), key and string value escaped. */
void cairn_tool_print_param(const char *key, size_t klen, int type, int64_t i64, double f64,
                            const char *str, size_t slen);

/* Prints "  run <key> = "<value>"<suffix>" for a run key/value, escaped. */
void cairn_tool_print_kv(const char *key, size_t klen, const char *val, size_t vlen,
                         const char *suffix);

/* Prints an artifact (role 1 INPUT, 2 OUTPUT, 0 unknown) on two or three
 * lines: kind, role, rank and uri; hash (or "(not hashed)") and size;
 * properties if any. The run's strings are escaped. */
void cairn_tool_print_artifact(uint64_t id, unsigned kind, int role, int32_t rank, uint64_t size,
                               const char *uri, size_t ulen, const char *hash, size_t hlen,
                               const char *props, size_t plen);

/* Prints an execution: rank, type and name; command line and properties
 * if any, escaped. */
void cairn_tool_print_execution(uint64_t id, int32_t rank, const char *type, size_t tlen,
                                const char *name, size_t nlen, const char *command, size_t clen,
                                const char *props, size_t plen);

/* At most this many artifacts and executions are listed by the dumps (the
 * rest are counted): a 10,000-artifact run stays readable. */
#define CAIRN_TOOL_LINEAGE_SHOWN 20

/* Prints the "accounting (records, all ranks)" block. */
void cairn_tool_print_acct(const uint64_t totals[2][4], int complete);

#endif /* CAIRN_TOOL_COMMON_H */
