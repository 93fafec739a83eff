/* tool_common.c — output shared by cairn's command-line tools. */
#include "tool_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "wal_records.h"

void cairn_tool_acct_add(uint64_t totals[2][4], int *complete, const uint64_t rank[2][4]) {
  for (int c = 0; c < 2; c++) {
    for (int k = 0; k < 4; k++)
      totals[c][k] += rank[c][k];
    *complete &= rank[c][0] == rank[c][1] + rank[c][2];
  }
}

int cairn_tool_dump_args(int argc, char **argv, void (*usage)(FILE *), const char **dir,
                         const char **series, int *ranks) {
  *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--series") && i + 1 < argc) {
      *series = argv[++i];
    } else if (ranks && !strcmp(argv[i], "--ranks")) {
      *ranks = 1;
    } else if (argv[i][0] == '-' || *dir) {
      usage(stderr);
      return 2;
    } else {
      *dir = argv[i];
    }
  }
  if (!*dir) {
    usage(stderr);
    return 2;
  }
  return -1;
}

void cairn_tool_fput_escaped(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f)
      fprintf(f, "\\x%02x", c);
    else
      putc(c, f);
  }
}

void cairn_tool_put_escaped(const char *s, size_t n) {
  cairn_tool_fput_escaped(stdout, s, n);
}

void cairn_tool_fput_text(FILE *f, const char *s) {
  if (s)
    cairn_tool_fput_escaped(f, s, strlen(s));
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

/* ---- lineage ------------------------------------------------------------- */

static const char *kind_name(unsigned kind) {
  static const char *const names[] = {"other",   "dataset",      "model",      "dataslice",
                                      "metrics", "step-metrics", "environment"};
  return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

void cairn_tool_print_artifact(uint64_t id, unsigned kind, int role, int32_t rank, uint64_t size,
                               const char *uri, size_t ulen, const char *hash, size_t hlen,
                               const char *props, size_t plen) {
  printf("  artifact %" PRIu64 " %s %s (rank %" PRId32 ") ", id, kind_name(kind),
         role == 1 ? "INPUT" : role == 2 ? "OUTPUT" : "-", rank);
  cairn_tool_put_escaped(uri, ulen);
  printf("\n    %s", hlen ? "" : "(not hashed)");
  cairn_tool_put_escaped(hash, hlen);
  if (size)
    printf("  %" PRIu64 " bytes", size);
  if (plen) {
    printf("\n    properties ");
    cairn_tool_put_escaped(props, plen);
  }
  printf("\n");
}

void cairn_tool_print_execution(uint64_t id, int32_t rank, const char *type, size_t tlen,
                                const char *name, size_t nlen, const char *command, size_t clen,
                                const char *props, size_t plen) {
  printf("  execution %" PRIu64 " (rank %" PRId32 ") type ", id, rank);
  cairn_tool_put_escaped(type, tlen);
  printf(" name ");
  cairn_tool_put_escaped(name, nlen);
  if (clen) {
    printf("\n    command ");
    cairn_tool_put_escaped(command, clen);
  }
  if (plen) {
    printf("\n    properties ");
    cairn_tool_put_escaped(props, plen);
  }
  printf("\n");
}
