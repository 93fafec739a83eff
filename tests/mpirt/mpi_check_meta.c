/*
 * mpi_check_meta.c — checks that a run directory written by an MPI program
 * holds run metadata from every rank: one RUN record per rank 0..N-1, each
 * saying N ranks and the same run id as the directory name, and complete
 * accounting. Used for programs that log nothing themselves (LD_PRELOAD,
 * Fortran).
 *
 * usage: mpi_check_meta RUN_PARENT_DIR NRANKS
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_reader.h"
#include "util.h"

#define MAXR 256

typedef struct {
  uint32_t rank;
  int runs[MAXR];
  uint32_t nranks[MAXR];
  char ids[MAXR][37];
  cairn_rec_counters ctl[MAXR];
} meta;

static int on_source(void *c, uint32_t r) {
  meta *m = c;
  m->rank = r < MAXR ? r : MAXR - 1;
  return 0;
}
static int on_run(void *c, const cairn_rec_run *r) {
  meta *m = c;
  m->runs[m->rank]++;
  m->nranks[m->rank] = r->nranks;
  cairn__uuid_format(r->run_id, m->ids[m->rank]);
  return 0;
}
static int on_counters(void *c, const cairn_rec_counters *k) {
  meta *m = c;
  if (k->channel == 1)
    m->ctl[m->rank] = *k;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mpi_check_meta RUN_PARENT NRANKS\n");
    return 2;
  }
  int n = atoi(argv[2]), bad = 0;
  DIR *d = opendir(argv[1]);
  struct dirent *e;
  char run[4096] = "", name[256] = "";
  int nruns = 0;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') {
      snprintf(run, sizeof run, "%s/%s", argv[1], e->d_name);
      snprintf(name, sizeof name, "%s", e->d_name);
      nruns++;
    }
  if (d)
    closedir(d);
  if (nruns != 1) {
    fprintf(stderr, "expected exactly one run directory in %s, found %d\n", argv[1], nruns);
    return 1;
  }
  static meta m;
  cairn_rec_visitor v = {.ctx = &m, .run = on_run, .counters = on_counters,
                         .source = on_source};
  if (cairn__run_read_wal(run, &v, NULL, NULL, NULL) != CAIRN_OK) {
    fprintf(stderr, "cannot read %s\n", run);
    return 1;
  }
  for (int r = 0; r < n; r++) {
    if (m.runs[r] != 1 || m.nranks[r] != (uint32_t)n || strcmp(m.ids[r], name) != 0) {
      fprintf(stderr, "rank %d: %d RUN records, nranks %u, id %s (dir %s)\n", r, m.runs[r],
              m.nranks[r], m.ids[r], name);
      bad++;
    }
    if (m.ctl[r].logged != m.ctl[r].written) {
      fprintf(stderr, "rank %d: control accounting incomplete\n", r);
      bad++;
    }
  }
  printf("run %s: metadata from %d ranks: %s\n", name, n, bad ? "FAILED" : "ok");
  return bad ? 1 : 0;
}
