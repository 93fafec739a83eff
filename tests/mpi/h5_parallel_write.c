/*
 * h5_parallel_write.c — MPI test program (no Criterion): 4 processes each
 * hold the synthetic run's ranks p and p+4 (round-robin, so a process's
 * columns are not contiguous in the file) and write DIR/run-g000000.h5
 * with the parallel writer, both ways it can (every metric gathered to
 * process 0, which writes alone; and collective MPI-IO, forced with
 * cairn__h5_gather_bytes = 0, to DIR/collective/run-g000000.h5); process 0
 * also writes the whole run with the serial writer to
 * DIR/serial/run-g000000.h5, reads all three back and compares them field
 * by field (creation time aside). Then the MPI finalize step:
 * each process logs its ranks into its own WAL segments (as an aggregator
 * does, one SOURCE section per block), cairn__h5_finalize_group converts
 * them into one file and removes the segments, and process 0 checks that
 * file against the data. In between, processes whose shapes differ in
 * step values alone (shifted_steps). Exit status 0 when everything
 * matches.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "cairn.h"
#include "h5/h5_writer.h"
#include "h5_testdata.h"
#include "run_view.h"
#include "wal.h"
#include "wal_records.h"

#define WORLD 8

/* Logs view v (this process's ranks) as aggregator `writer` would. */
static int write_wal(const cairn_run_view *v, const char *dir, uint32_t writer) {
  cairn_wal_options o = {.dir = dir, .rank = writer, .compression_level = 1,
                         .segment_bytes = 1 << 20};
  memcpy(o.run_id, v->run_id, 16);
  cairn_wal_writer *w;
  char err[512];
  if (cairn__wal_open(&w, &o, err, sizeof err) != CAIRN_OK) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  cairn_buf b = {0};
  int rc = 0;
  for (size_t c = 0; c < v->ncols; c++) {
    cairn__rec_put_source(&b, (uint32_t)v->col_rank[c]);
    cairn_rec_run run = {.rank = (uint32_t)v->col_rank[c], .nranks = v->nranks,
                         .pid = v->ranks[c].pid, .start_ns = v->ranks[c].start_ns,
                         .hostname = v->ranks[c].hostname,
                         .hostname_len = strlen(v->ranks[c].hostname),
                         .version = v->cairn_version, .version_len = strlen(v->cairn_version)};
    memcpy(run.run_id, v->run_id, 16);
    cairn__rec_put_run(&b, &run);
    /* ids in reverse name order: ids are per process, names decide */
    uint32_t ids[TD_NMETRICS];
    const char *names[TD_NMETRICS];
    for (size_t m = 0; m < v->nmetrics; m++) {
      ids[m] = (uint32_t)(v->nmetrics - 1 - m);
      names[m] = v->metrics[m].name;
    }
    cairn__rec_put_names(&b, v->nmetrics, ids, names);
    for (size_t m = 0; m < v->nmetrics; m++) {
      const cairn_view_metric *vm = &v->metrics[m];
      for (size_t i = 0; i < vm->nsteps; i++) {
        uint32_t k = vm->samples[i * v->ncols + c];
        double x = vm->values[i * v->ncols + c];
        if (!k)
          continue;
        /* k is 1 or 4: sum / k gives x back exactly */
        cairn_metric_agg a = {vm->step[i], ids[m], k, x * k, x, x};
        cairn__rec_put_metrics(&b, 1, &a);
      }
    }
    for (size_t i = 0; i < v->nmarks; i++) {
      uint64_t t = v->mark_time[i * v->ncols + c];
      cairn_rec_step st = {v->mark_step[i], t, 0};
      if (t)
        cairn__rec_put_steps(&b, 1, &st);
    }
    size_t off = cairn__rec_open(&b, CAIRN_SEC_PARAMS);
    uint32_t np = 0;
    for (size_t i = 0; i < v->nparams; i++) {
      const cairn_view_param *p = &v->params[i];
      if (p->rank != v->col_rank[c])
        continue;
      cairn_rec_param rp = {p->type, p->key, strlen(p->key), p->i64, p->f64, p->str,
                            strlen(p->str)};
      cairn__rec_add_param(&b, &rp);
      np++;
    }
    cairn__rec_close(&b, off, np);
    off = cairn__rec_open(&b, CAIRN_SEC_KV);
    uint32_t nk = 0;
    for (size_t i = 0; i < v->nkv; i++)
      if (v->kv[i].rank == v->col_rank[c]) {
        cairn__rec_add_kv(&b, v->kv[i].key, strlen(v->kv[i].key), v->kv[i].value,
                          strlen(v->kv[i].value));
        nk++;
      }
    cairn__rec_close(&b, off, nk);
    cairn_rec_counters ctr[2];
    for (int ch = 0; ch < 2; ch++) {
      const cairn_view_acct *a = &v->acct[c * 2 + (size_t)ch];
      ctr[ch] = (cairn_rec_counters){(uint32_t)ch, a->logged, a->stored, a->dropped, a->rejected};
    }
    cairn__rec_put_counters(&b, 2, ctr);
    if (b.failed || cairn__wal_append(w, 1, b.data, b.len) != CAIRN_OK)
      rc = -1;
    cairn__buf_reset(&b);
  }
  cairn__buf_free(&b);
  cairn__wal_close(w);
  return rc;
}

/* Same metric names and step counts on every process, different steps:
 * each process keeps only the metrics all of them hold (td_names[0] and
 * [2]) and moves its last step of td_names[2] (39) to 1000 + its rank.
 * The shapes then differ in step values alone, which the processes must
 * notice (their hashes of it differ) and merge: the file's td_names[2]
 * has steps 0..38 and 1000..1003, and at step 1000 + p only process p's
 * ranks (p, p + 4) have a value, the one they logged at step 39. Both
 * ways of writing. Returns 0 when process 0 read that back. */
static int shifted_steps(const char *dir, int me) {
  char path[2][4200], err[1024] = "";
  snprintf(path[0], sizeof path[0], "%s/shifted", dir);
  snprintf(path[1], sizeof path[1], "%s/shifted-collective", dir);
  if (me == 0) {
    mkdir(path[0], 0700);
    mkdir(path[1], 0700);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  for (int way = 0; way < 2; way++)
    strcat(path[way], "/run-g000000.h5");
  int32_t mine[2] = {me, me + 4};
  cairn_run_view v;
  td_view(&v, mine, 2, WORLD);
  size_t k = 0;
  for (size_t i = 0; i < v.nmetrics; i++) {
    if (strcmp(v.metrics[i].name, td_names[0]) && strcmp(v.metrics[i].name, td_names[2])) {
      cairn__view_metric_free(&v.metrics[i]);
      continue;
    }
    v.metrics[k++] = v.metrics[i];
  }
  v.nmetrics = k;
  int fail = k != 2;
  cairn_view_metric *loss = &v.metrics[1];
  if (!fail && (strcmp(loss->name, td_names[2]) || loss->step[loss->nsteps - 1] != TD_STEPS - 1))
    fail = 1;
  if (!fail)
    loss->step[loss->nsteps - 1] = 1000 + me;
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  o.created_ns = 3;
  for (int way = 0; way < 2 && !fail; way++) {
    cairn__h5_gather_bytes = way == 0 ? CAIRN_H5_STREAM_BYTES : 0;
    int rc = cairn__h5_write_parallel(MPI_COMM_WORLD, &v, path[way], &o, err, sizeof err);
    if (rc != CAIRN_OK) {
      fprintf(stderr, "process %d: shifted steps, parallel write: %s (%s)\n", me, err,
              cairn_err_name(rc));
      fail = 1;
    }
  }
  cairn__h5_gather_bytes = CAIRN_H5_STREAM_BYTES;
  cairn__view_free(&v);
  MPI_Allreduce(MPI_IN_PLACE, &fail, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  for (int way = 0; way < 2 && me == 0 && !fail; way++) {
    cairn_run_view a;
    cairn_run_report rep = {0};
    if (cairn__view_from_h5(path[way], &a, &rep) != CAIRN_OK) {
      fprintf(stderr, "shifted steps: cannot read %s back\n", path[way]);
      fail = 1;
      break;
    }
    const cairn_view_metric *acc = a.nmetrics == 2 ? &a.metrics[0] : NULL;
    const cairn_view_metric *m = a.nmetrics == 2 ? &a.metrics[1] : NULL;
    if (!m || strcmp(m->name, td_names[2]) || m->nsteps != TD_STEPS - 1 + 4 ||
        acc->nsteps != TD_STEPS || a.ncols != WORLD) {
      fprintf(stderr, "shifted steps (%s): %zu metrics, %zu steps, %zu columns; expected 2, "
              "%d, %d\n", path[way], a.nmetrics, m ? m->nsteps : 0, a.ncols,
              TD_STEPS - 1 + 4, WORLD);
      fail = 1;
    }
    for (size_t i = 0; !fail && i < m->nsteps; i++) {
      int64_t want = i < TD_STEPS - 1 ? (int64_t)i : 1000 + (int64_t)(i - (TD_STEPS - 1));
      double sum = 0;
      uint32_t count = 0;
      for (size_t c = 0; c < a.ncols && !fail; c++) {
        int r = a.col_rank[c];
        double x;
        uint32_t n;
        int has = want < 1000 ? td_sample(2, want, r, &x, &n)
                              : (r % 4 == want - 1000 && td_sample(2, TD_STEPS - 1, r, &x, &n));
        if (m->step[i] != want || (m->samples[i * a.ncols + c] != 0) != has ||
            (has && (m->samples[i * a.ncols + c] != n || m->values[i * a.ncols + c] != x))) {
          fprintf(stderr, "shifted steps (%s): row %zu (step %lld, expected %lld), rank %d: "
                  "value %g with %u samples\n", path[way], i, (long long)m->step[i],
                  (long long)want, r, m->values[i * a.ncols + c],
                  m->samples[i * a.ncols + c]);
          fail = 1;
        }
        if (has) {
          sum += x;
          count++;
        }
      }
      if (!fail && (m->count[i] != count || m->sum[i] != sum)) {
        fprintf(stderr, "shifted steps (%s): step %lld count %u sum %g, expected %u and %g\n",
                path[way], (long long)want, m->count[i], m->sum[i], count, sum);
        fail = 1;
      }
    }
    cairn__view_free(&a);
  }
  MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (me == 0 && !fail)
    printf("shifted steps: the processes' different steps were merged, both ways\n");
  return fail;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int me, P, fail = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  if (argc != 2 || P != 4) {
    if (me == 0)
      fprintf(stderr, "usage: mpirun -np 4 h5_parallel_write DIR\n");
    MPI_Finalize();
    return 2;
  }
  char path[4096], cpath[4200], cdir[4096], spath[4200], sdir[4096], err[1024] = "";
  snprintf(path, sizeof path, "%s/run-g000000.h5", argv[1]);
  snprintf(cdir, sizeof cdir, "%s/collective", argv[1]);
  snprintf(cpath, sizeof cpath, "%s/run-g000000.h5", cdir);
  snprintf(sdir, sizeof sdir, "%s/serial", argv[1]);
  snprintf(spath, sizeof spath, "%s/run-g000000.h5", sdir);
  if (me == 0) {
    mkdir(argv[1], 0700);
    mkdir(cdir, 0700);
    mkdir(sdir, 0700);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  int32_t mine[2] = {me, me + 4};
  cairn_run_view v;
  td_view(&v, mine, 2, WORLD);
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  o.created_ns = 1;
  o.naggregators = 4;
  /* gathered to process 0 (the data is far below cairn__h5_gather_bytes),
   * then collective MPI-IO */
  double t[2];
  const char *paths[2] = {path, cpath};
  for (int way = 0; way < 2; way++) {
    cairn__h5_gather_bytes = way == 0 ? CAIRN_H5_STREAM_BYTES : 0;
    double t0 = MPI_Wtime();
    int rc = cairn__h5_write_parallel(MPI_COMM_WORLD, &v, paths[way], &o, err, sizeof err);
    t[way] = MPI_Wtime() - t0;
    if (rc != CAIRN_OK) {
      fprintf(stderr, "process %d: parallel write (%s) failed: %s (%s)\n", me,
              way ? "collective" : "gathered", err, cairn_err_name(rc));
      fail = 1;
    }
  }
  /* A directory that does not exist: both ways fail on every process with
   * the same code and a message that names the file, and nothing hangs. */
  char bad[4200];
  snprintf(bad, sizeof bad, "%s/no-such-dir/run-g000000.h5", argv[1]);
  for (int way = 0; way < 2; way++) {
    cairn__h5_gather_bytes = way == 0 ? CAIRN_H5_STREAM_BYTES : 0;
    char berr[1024] = "";
    int rc = cairn__h5_write_parallel(MPI_COMM_WORLD, &v, bad, &o, berr, sizeof berr);
    if (rc != CAIRN_EIO || !strstr(berr, "no-such-dir")) {
      fprintf(stderr, "process %d: writing under a missing directory (%s) gave %s: '%s'\n", me,
              way ? "collective" : "gathered", cairn_err_name(rc), berr);
      fail = 1;
    }
  }
  cairn__h5_gather_bytes = CAIRN_H5_STREAM_BYTES;
  cairn__view_free(&v);
  if (shifted_steps(argv[1], me))
    fail = 1;

  if (me == 0 && !fail) {
    int32_t all[WORLD];
    for (int r = 0; r < WORLD; r++)
      all[r] = r;
    cairn_run_view w, b;
    td_view(&w, all, WORLD, WORLD);
    o.created_ns = 2;
    if (cairn__h5_write(&w, spath, &o, err, sizeof err) != CAIRN_OK) {
      fprintf(stderr, "serial write failed: %s\n", err);
      fail = 1;
    }
    cairn_run_report rep = {0};
    int rb = fail ? CAIRN_EIO : cairn__view_from_h5(spath, &b, &rep);
    if (!fail && rb != CAIRN_OK) {
      fprintf(stderr, "reading back the serial file failed: %s\n", cairn_err_name(rb));
      fail = 1;
    }
    /* each parallel file against the serial one and against the data */
    for (int way = 0; way < 2 && !fail; way++) {
      const char *what = way ? "collective" : "gathered";
      cairn_run_view a;
      int ra = cairn__view_from_h5(paths[way], &a, &rep);
      char why[512];
      if (ra != CAIRN_OK) {
        fprintf(stderr, "reading back the %s file failed: %s\n", what, cairn_err_name(ra));
        fail = 1;
        break;
      }
      if (td_compare(&a, &b, why, sizeof why) != 0) {
        fprintf(stderr, "%s parallel and serial files differ: %s\n", what, why);
        fail = 1;
      } else if (td_compare(&w, &a, why, sizeof why) != 0 || a.naggregators != 4 ||
                 b.naggregators != 4 || a.nranks != WORLD) {
        fprintf(stderr, "%s parallel file differs from the data: %s\n", what, why);
        fail = 1;
      }
      cairn__view_free(&a);
    }
    if (!fail)
      printf("parallel files (gathered %.3f s, collective %.3f s) equal the serial file (%d "
             "ranks in 4 processes)\n",
             t[0], t[1], WORLD);
    cairn__view_free(&w);
    if (rb == CAIRN_OK)
      cairn__view_free(&b);
  }
  MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD);

  /* The MPI finalize step of one group of 4 aggregators. */
  char fdir[4200];
  snprintf(fdir, sizeof fdir, "%s/finalize", argv[1]);
  if (me == 0) {
    mkdir(fdir, 0700);
    /* a failed earlier run may have left segments (never overwritten) */
    cairn_run_file *old;
    size_t nold;
    if (cairn__run_list_files(fdir, &old, &nold, NULL, err, sizeof err) == CAIRN_OK) {
      for (size_t i = 0; i < nold; i++)
        unlink(old[i].path);
      cairn__run_files_free(old, nold);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  td_view(&v, mine, 2, WORLD);
  if (!fail && write_wal(&v, fdir, (uint32_t)me) != 0)
    fail = 1;
  cairn__view_free(&v);
  MPI_Allreduce(MPI_IN_PLACE, &fail, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (!fail) {
    int rc = cairn__h5_finalize_group(MPI_COMM_WORLD, fdir, (uint32_t)me, 0, 4, NULL, 0, err,
                                       sizeof err);
    if (rc != CAIRN_OK) {
      fprintf(stderr, "process %d: finalize_group: %s (%s)\n", me, err, cairn_err_name(rc));
      fail = 1;
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &fail, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (me == 0 && !fail) {
    int32_t all[WORLD];
    for (int r = 0; r < WORLD; r++)
      all[r] = r;
    cairn_run_view w, got;
    td_view(&w, all, WORLD, WORLD);
    /* the log carries no lineage yet */
    cairn_run_view none;
    cairn__view_init(&none);
    for (size_t i = 0; i < w.nartifacts; i++) {
      free(w.artifacts[i].uri);
      free(w.artifacts[i].hash);
      free(w.artifacts[i].properties);
    }
    for (size_t i = 0; i < w.nexecutions; i++) {
      free(w.executions[i].name);
      free(w.executions[i].properties);
      free(w.executions[i].type);
      free(w.executions[i].command);
    }
    for (size_t i = 0; i < w.ncontexts; i++) {
      free(w.contexts[i].name);
      free(w.contexts[i].pipeline);
      free(w.contexts[i].properties);
    }
    w.nartifacts = w.nexecutions = w.nevents = w.ncontexts = 0;
    cairn_run_file *files;
    size_t n;
    cairn_run_state st;
    cairn_run_report rep = {0};
    char why[512];
    if (cairn__run_list_files(fdir, &files, &n, &st, err, sizeof err) != CAIRN_OK ||
        st != CAIRN_RUN_H5 || n != 1) {
      fprintf(stderr, "finalize_group left %zu files (state %d), expected one run file\n", n,
              (int)st);
      fail = 1;
    } else {
      cairn__run_files_free(files, n);
      if (cairn__run_open(fdir, &got, &rep) != CAIRN_OK) {
        fprintf(stderr, "cannot open the finalized run\n");
        fail = 1;
      } else {
        if (td_compare(&w, &got, why, sizeof why) != 0) {
          fprintf(stderr, "finalized run differs from the data: %s\n", why);
          fail = 1;
        } else {
          printf("finalize_group: 4 aggregators' logs of %d ranks became one run file\n",
                 WORLD);
        }
        cairn__view_free(&got);
      }
    }
    cairn__view_free(&w);
  }
  MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return fail;
}
