/*
 * mpi_check_meta.c — checks that a run directory written by an MPI program
 * holds run metadata from every rank, read the way the tools read a run
 * (cairn__run_open): the run id equals the directory name, the run says N
 * ranks and holds one column per rank 0..N-1 with its host and pid, the
 * accounting of every rank is complete, rank 0 recorded the job's metadata
 * (mpi.ranks = N, hosts, user, command line), and no key or value holds the
 * secret "s3cr3t" that run_meta_case.sh puts in an allowlisted variable. Used for programs that log nothing
 * themselves (LD_PRELOAD, Fortran) and by the install tests.
 *
 * usage: mpi_check_meta RUN_PARENT_DIR NRANKS [secret]
 *   secret  the job ran with MY_API_TOKEN=s3cr3t... allowlisted in
 *           metadata.env: it must be reported as refused
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_view.h"
#include "util.h"

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: mpi_check_meta RUN_PARENT NRANKS [secret]\n");
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
  cairn_run_view v;
  cairn__view_init(&v);
  int rc = cairn__run_open(run, &v, NULL);
  if (rc != CAIRN_OK) {
    fprintf(stderr, "cannot read %s: %s\n", run, cairn_strerror(rc));
    return 1;
  }
  char id[37];
  cairn__uuid_format(v.run_id, id);
  if (!v.have_run_id || strcmp(id, name) != 0) {
    fprintf(stderr, "run id %s does not match the directory %s\n", id, name);
    bad++;
  }
  if (v.nranks != (uint32_t)n || v.ncols != (size_t)n) {
    fprintf(stderr, "run says %u ranks and holds %zu; expected %d\n", v.nranks, v.ncols, n);
    bad++;
  }
  for (size_t c = 0; c < v.ncols; c++) {
    const cairn_view_acct *ctl = &v.acct[c * CAIRN_H5_NCHANNELS + 1];
    if (v.col_rank[c] != (int32_t)c || !v.ranks[c].hostname[0] || v.ranks[c].pid == 0) {
      fprintf(stderr, "column %zu: rank %d host '%s' pid %u\n", c, v.col_rank[c],
              v.ranks[c].hostname, v.ranks[c].pid);
      bad++;
    }
    if (ctl->logged != ctl->stored + ctl->dropped) {
      fprintf(stderr, "rank %d: control accounting incomplete\n", v.col_rank[c]);
      bad++;
    }
  }
  char want[32];
  snprintf(want, sizeof want, "%d", n);
  const char *keys[] = {"mpi.ranks", "hosts.count", "user", "cmdline", "mpi.library"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    const cairn_view_kv *kv = cairn__view_kv_last(&v, keys[i], 0);
    if (!kv) {
      fprintf(stderr, "run metadata lacks %s\n", keys[i]);
      bad++;
    } else if (i == 0 && strcmp(kv->value, want) != 0) {
      fprintf(stderr, "mpi.ranks is %s, expected %s\n", kv->value, want);
      bad++;
    }
  }
  const cairn_view_kv *refused = cairn__view_kv_last(&v, "env.refused", 0);
  if (argc == 4 && (!refused || !strstr(refused->value, "MY_API_TOKEN"))) {
    fprintf(stderr, "the allowlisted secret variable was not reported as refused\n");
    bad++;
  }
  for (size_t i = 0; i < v.nkv; i++)
    if (strstr(v.kv[i].key, "s3cr3t") || strstr(v.kv[i].value, "s3cr3t")) {
      fprintf(stderr, "a secret was recorded: %s\n", v.kv[i].key);
      bad++;
    }
  printf("run %s: metadata from %zu ranks (%s): %s\n", name, v.ncols,
         v.source & CAIRN_VIEW_FROM_H5 ? "HDF5 run file" : "write-ahead log",
         bad ? "FAILED" : "ok");
  cairn__view_free(&v);
  return bad ? 1 : 0;
}
