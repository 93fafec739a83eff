/* tool_common.c — output shared by cairn's command-line tools. */
#include "tool_common.h"

#include <inttypes.h>
#include <stdio.h>

#include "wal_records.h"

void cairn_tool_acct_add(uint64_t totals[2][4], int *complete, const uint64_t rank[2][4]) {
  for (int c = 0; c < 2; c++) {
    for (int k = 0; k < 4; k++)
      totals[c][k] += rank[c][k];
    *complete &= rank[c][0] == rank[c][1] + rank[c][2];
  }
}

void cairn_tool_put_escaped(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
}

void cairn_tool_print_param(const char *key, size_t klen, int type, int64_t i64, double f64,
                            const char *str, size_t slen) {
  printf("  param ");
  cairn_tool_put_escaped(key, klen);
  switch (type) {
  case CAIRN_PARAM_INT64:
    printf(" = %" PRId64 " (int64)\n", i64);
    break;
  case CAIRN_PARAM_DOUBLE:
    printf(" = %.17g (double)\n", f64);
    break;
  case CAIRN_PARAM_BOOL:
    printf(" = %s (bool)\n", i64 ? "true" : "false");
    break;
  default:
    printf(" = \"");
    cairn_tool_put_escaped(str, slen);
    printf("\" (string)\n");
  }
}

void cairn_tool_print_kv(const char *key, size_t klen, const char *val, size_t vlen,
                         const char *suffix) {
  printf("  run ");
  cairn_tool_put_escaped(key, klen);
  printf(" = \"");
  cairn_tool_put_escaped(val, vlen);
  printf("\"%s\n", suffix);
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
