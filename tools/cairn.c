/*
 * cairn.c — the `cairn` command: one entry point for cairn's tools.
 *
 *   cairn merge RUN_DIR|DB... [--db PATH]   fold runs into the lineage database
 *   cairn runs | show | metrics | lineage | diff | verify | search | report |
 *         export                            questions about merged runs
 *   cairn dump RUN_DIR                      print a run directory as is
 *
 * Every command has --help, prints errors on stderr and exits 0 on success,
 * 1 when it found a problem (a missing run, damage, a mismatch), 2 on a
 * usage error.
 */
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cairn.h"
#include "cli.h"

static const cairn_cli_command commands[] = {
    {"merge", cairn_cmd_merge, "RUN_DIR|DB... [--db PATH]",
     "fold runs (or another database) into the lineage database"},
    {"runs", cairn_cmd_runs, "[--pipeline NAME] [KEY=VALUE ...] [--json|--csv]",
     "list runs, newest first, filtered by pipeline, param or metadata"},
    {"show", cairn_cmd_show, "RUN [--json]",
     "a run: metadata, params, stages, executions, artifacts, accounting, metrics"},
    {"metrics", cairn_cmd_metrics, "RUN [--name N [--stat S] [--rank R]] [--json|--csv]",
     "a run's metrics, or one metric's series per step"},
    {"diff", cairn_cmd_diff, "RUN_A RUN_B [--json]",
     "what differs: params, metadata, final metrics, artifacts"},
    {"search", cairn_cmd_search, "KEY=VALUE|KEY~TEXT... [--json]",
     "runs, artifacts, executions and contexts by their properties"},
    {"report", cairn_cmd_report, "RUN -o FILE.html [--metrics N1,N2] [--max-points N]",
     "one self-contained HTML report: summary, metric curves, step times, lineage"},
    {"lineage", cairn_cmd_lineage, "ARTIFACT_OR_RUN [--up|--down] [--depth N] [--dot|--json]",
     "the lineage DAG of an artifact or a run, across runs"},
    {"verify", cairn_cmd_verify, "PATH_OR_HASH [--json]",
     "re-hash a file and say whether it is the logged artifact"},
    {"export", cairn_cmd_export, "RUN --format cmf-json [-o FILE]",
     "a run's lineage as the Common Metadata Framework exports it"},
    {"dump", cairn_tool_dump, "RUN_DIR [--series METRIC [--ranks]]",
     "print a run directory (HDF5 files or write-ahead log)"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: cairn COMMAND [ARGS]\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-8s %s\n           %s\n", commands[i].name, commands[i].args,
            commands[i].what);
  fprintf(f, "  version  print cairn's version\n"
             "options:\n"
             "  --version   same as `cairn version`\n"
             "  -h, --help  this help; `cairn COMMAND --help` for a command's\n"
             "The database is ./cairn.db unless --db PATH or CAIRN_DB is given.\n"
             "Exit status: 0 success, 1 a problem found (missing run, damage,\n"
             "mismatch), 2 usage error.\n");
}

int main(int argc, char **argv) {
#ifdef __GLIBC__
  /* A batch tool that reads runs of 10^8 samples: keep freed memory for
   * reuse instead of returning it to the kernel after every HDF5 chunk and
   * series blob (each return costs page faults on the next allocation);
   * measured, 20 % of the time to read a large run. */
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("cairn %s\n", cairn_version());
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(cmd, commands[i].name))
      return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "cairn: unknown command '%s' (try `cairn --help`)\n", cmd);
  return 2;
}
