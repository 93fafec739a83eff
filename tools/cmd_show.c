/* cmd_show.c — `cairn show RUN` and `cairn diff RUN_A RUN_B` (in progress). */
#include <stdio.h>

#include "cli.h"

int cairn_cmd_show(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "cairn show: not yet\n");
  return 2;
}

int cairn_cmd_diff(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "cairn diff: not yet\n");
  return 2;
}
