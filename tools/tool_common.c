/* tool_common.c — output shared by cairn's command-line tools. */
#include "tool_common.h"

#include <inttypes.h>
#include <stdio.h>

void cairn_tool_acct_add(uint64_t totals[2][4], int *complete, const uint64_t rank[2][4]) {
  for (int c = 0; c < 2; c++) {
    for (int k = 0; k < 4; k++)
      totals[c][k] += rank[c][k];
    *complete &= rank[c][0] == rank[c][1] + rank[c][2];
  }
}

void cairn_tool_print_acct(const uint64_t t[2][4], int complete) {
  static const char *ch[] = {"metrics", "control"};
  printf("accounting (records, all ranks):\n");
  for (int c = 0; c < 2; c++)
    printf("  %-8s logged %" PRIu64 "  written %" PRIu64 "  dropped %" PRIu64
           "  rejected %" PRIu64 "\n",
           ch[c], t[c][0], t[c][1], t[c][2], t[c][3]);
  printf("  %s\n", complete ? "complete: logged = written + dropped on every rank"
                            : "incomplete: the run did not finish cleanly on every rank "
                              "(everything up to the last intact block is shown)");
}
