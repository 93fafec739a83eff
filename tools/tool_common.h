/*
 * tool_common.h — private to cairn's tools: output shared by the commands,
 * so that every tool prints the same things the same way.
 */
#ifndef CAIRN_TOOL_COMMON_H
#define CAIRN_TOOL_COMMON_H

#include <stdint.h>

/* Sums the accounting of one rank into totals[channel][logged, written,
 * dropped, rejected] and clears *complete unless logged = written +
 * dropped on both channels. */
void cairn_tool_acct_add(uint64_t totals[2][4], int *complete, const uint64_t rank[2][4]);

/* Prints the "accounting (records, all ranks)" block. */
void cairn_tool_print_acct(const uint64_t totals[2][4], int complete);

#endif /* CAIRN_TOOL_COMMON_H */
