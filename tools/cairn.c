/*
 * cairn.c — the `cairn` command: one entry point for cairn's tools. This
 * release has `version` and `dump`; the lineage database (`merge`) and the
 * questions about runs (`runs`, `show`, `metrics`, `lineage`, `diff`,
 * `verify`, `search`, `report`, `export`) join it as they are built.
 *
 * Exit codes: 0 success, 1 the command found a problem (damaged run ...),
 * 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cairn.h"

int cairn_tool_dump(int argc, char **argv);

static void usage(FILE *f) {
  fprintf(f, "usage: cairn COMMAND [ARGS]\n"
             "commands:\n"
             "  dump RUN_DIR [--series METRIC [--ranks]]   print a run (HDF5 files or the\n"
             "                                             write-ahead log of a job that\n"
             "                                             did not finish)\n"
             "  version                                    print cairn's version\n"
             "options:\n"
             "  --version   same as `cairn version`\n"
             "  -h, --help  this help; `cairn COMMAND --help` for a command's\n");
}

int main(int argc, char **argv) {
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
  if (!strcmp(cmd, "dump"))
    return cairn_tool_dump(argc - 1, argv + 1);
  fprintf(stderr, "cairn: unknown command '%s' (try `cairn --help`)\n", cmd);
  return 2;
}
