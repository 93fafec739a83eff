/*
 * cmd_merge.c — `cairn merge RUN_DIR|DB... [--db PATH]`: folds finished or
 * crashed runs, or another cairn database, into the lineage database. Each
 * run is one transaction (all of it or nothing); a run already merged is
 * left alone; concurrent merges into one database take turns.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cli.h"
#include "util.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: cairn merge RUN_DIR|DATABASE... [--db PATH] [--quiet] [--salvage]\n"
          "  Folds runs into the lineage database (default ./cairn.db, or $CAIRN_DB).\n"
          "  RUN_DIR   a run directory: its HDF5 files, or the write-ahead log of a job\n"
          "            that did not finish (recovered; the summary counts it)\n"
          "  DATABASE  another cairn database: its runs and lineage are copied (sharing\n"
          "            lineage between sites or users)\n"
          "  --db PATH the database to merge into (created if missing)\n"
          "  --quiet   no progress, only the summary\n"
          "  --salvage merge what could be read from a run whose HDF5 files are\n"
          "            damaged (refused by default; the damage is counted)\n"
          "  Each run is merged in one transaction: a merge that is killed leaves the\n"
          "  database as it was. Merging a run again changes nothing.\n"
          "Exit status: 0 every input merged, 1 some input could not be merged (the\n"
          "others were), 2 usage error or the database cannot be opened.\n");
}

typedef struct {
  int tty, quiet;
  const char *input;
  size_t index, count;
  int last_pct;
  double t_last;
} progress_ctx;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_progress(void *ctx, const char *what, uint64_t done, uint64_t total) {
  progress_ctx *p = ctx;
  if (p->quiet || !total)
    return;
  int pct = (int)(100.0 * (double)done / (double)total);
  if (p->tty) {
    double t = now_s();
    if (done != total && t - p->t_last < 0.1)
      return;
    p->t_last = t;
    int w = 30, fill = pct * w / 100;
    fprintf(stderr, "\r[%zu/%zu] [", p->index, p->count);
    for (int i = 0; i < w; i++)
      fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %3d%% %s %" PRIu64 "/%" PRIu64 "   ", pct, what, done, total);
    fflush(stderr);
  } else if (pct / 25 != p->last_pct / 25 || done == total) {
    /* Plain lines when not a terminal: a few per input, never \r. */
    if (pct != p->last_pct)
      fprintf(stderr, "cairn merge: %s: %s %" PRIu64 "/%" PRIu64 " (%d%%)\n", p->input, what,
              done, total, pct);
  }
  p->last_pct = pct;
}

static void on_report(void *ctx, const char *msg) {
  progress_ctx *p = ctx;
  if (p->tty && !p->quiet)
    fputc('\n', stderr);
  fprintf(stderr, "cairn merge: %s\n", msg);
}

static int is_sqlite_file(const char *path) {
  struct stat sb;
  if (stat(path, &sb) || !S_ISREG(sb.st_mode))
    return 0;
  FILE *f = fopen(path, "rb");
  char magic[16] = {0};
  if (!f)
    return 0;
  size_t n = fread(magic, 1, sizeof magic, f);
  fclose(f);
  return n == sizeof magic && !memcmp(magic, "SQLite format 3", 16);
}

int cairn_cmd_merge(int argc, char **argv) {
  const char *dbopt = NULL;
  int quiet = 0, salvage = 0;
  const char **inputs = calloc((size_t)argc, sizeof *inputs);
  size_t ninputs = 0;
  if (!inputs) {
    fprintf(stderr, "cairn merge: out of memory\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      free(inputs);
      return 0;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--db", &dbopt)) {
      if (!dbopt) {
        fprintf(stderr, "cairn merge: --db needs a path\n");
        free(inputs);
        return 2;
      }
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      quiet = 1;
    } else if (!strcmp(argv[i], "--salvage")) {
      salvage = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "cairn merge: unknown option '%s' (see `cairn merge --help`)\n", argv[i]);
      free(inputs);
      return 2;
    } else {
      inputs[ninputs++] = argv[i];
    }
  }
  if (!ninputs) {
    fprintf(stderr, "cairn merge: no run directory given (see `cairn merge --help`)\n");
    free(inputs);
    return 2;
  }
  const char *path = cairn_cli_db_path(dbopt);
  sqlite3 *db = NULL;
  char err[1024];
  int rc = cairn_db_open(path, 1, &db, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn merge: %s\n", err);
    free(inputs);
    return 2;
  }
  progress_ctx pc = {isatty(2), quiet, NULL, 0, ninputs, -1, 0};
  cairn_db_merge_opts o = {on_progress, &pc, on_report, salvage};
  cairn_db_merge_stats st;
  memset(&st, 0, sizeof st);
  size_t failed = 0;
  double t0 = now_s();
  for (size_t i = 0; i < ninputs; i++) {
    pc.input = inputs[i];
    pc.index = i + 1;
    pc.last_pct = -1;
    uint64_t before = st.runs_added + st.runs_unchanged;
    if (is_sqlite_file(inputs[i]))
      rc = cairn_db_merge_db(db, inputs[i], &o, &st, err, sizeof err);
    else
      rc = cairn_db_merge_dir(db, inputs[i], &o, &st, err, sizeof err);
    if (pc.tty && !quiet)
      fputc('\n', stderr);
    if (rc) {
      fprintf(stderr, "cairn merge: %s\n", err);
      failed++;
    } else if (!quiet && st.runs_added + st.runs_unchanged == before + 1 &&
               st.runs_unchanged > 0 && st.runs_added == 0) {
      fprintf(stderr, "cairn merge: %s: already merged, unchanged\n", inputs[i]);
    }
  }
  double dt = now_s() - t0;
  printf("merged into %s: %" PRIu64 " run%s added, %" PRIu64 " unchanged, %zu failed\n", path,
         st.runs_added, st.runs_added == 1 ? "" : "s", st.runs_unchanged, failed);
  printf("  steps %" PRIu64 ", samples %" PRIu64 ", artifacts %" PRIu64 ", executions %" PRIu64
         "\n",
         st.steps, st.samples, st.artifacts, st.executions);
  printf("  recovered ranks (from write-ahead logs) %" PRIu64 ", dropped records %" PRIu64
         ", damage reports %" PRIu64 "\n",
         st.recovered_ranks, st.dropped, st.damaged);
  printf("  %.2f s", dt);
  if (dt > 0 && st.samples)
    printf(", %.3g samples/s", (double)st.samples / dt);
  printf("\n");
  cairn_db_close(db);
  free(inputs);
  return failed ? 1 : 0;
}
