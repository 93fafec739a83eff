/* cmd_metrics.c — `cairn metrics RUN` (in progress). */
#include <stdio.h>

#include "cli.h"

int cairn_cmd_metrics(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "cairn metrics: not yet\n");
  return 2;
}
