/*
 * mpi_check_run.c — checks a multi-rank run directory written by
 * mpi_log_app, read the way every tool reads a run (cairn__run_open: the
 * HDF5 run files, or the write-ahead logs of a job that did not finish):
 *   - per rank and step: "loss" has 2 samples with the exact mean,
 *     "rank_id" equals the rank, "side" (second thread) has every step;
 *   - per step: the statistics across ranks (count, sum, sum of squares,
 *     min, max, rank of min and max) equal a recomputation from the per-rank
 *     values;
 *   - per rank: the param, and exact accounting (logged = stored + dropped,
 *     stored = the samples found);
 *   - the number of files: HDF5 files (clean end) or aggregator logs.
 *
 * usage: mpi_check_run RUN_PARENT_DIR NRANKS STEPS FILES [side]
 *                      [durable=FILE] [term] [wal]
 *   FILES         expected run-g*.h5 files (or, with `wal`, aggregator logs)
 *   durable=FILE  the job was killed: FILE holds "rank R durable S" lines;
 *                 steps up to S must be complete for rank R, later ones may
 *                 be missing or partial, accounting may be open
 *   term          the job got SIGTERM: steps after the last one logged are
 *                 absent, but the accounting must be complete
 *   lineage       the job logged mpi_log_app's lineage load: 125 executions
 *                 and 1250 artifacts per rank, every one present and linked
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_view.h"

static int bad;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    bad++;                                                                     \
  } while (0)

static const cairn_view_metric *metric(const cairn_run_view *v, const char *name) {
  long i = cairn__view_metric_find(v, name, strlen(name));
  return i < 0 ? NULL : &v->metrics[i];
}

/* Samples and mean of rank column c at step s, or 0 samples. */
static uint32_t cell(const cairn_run_view *v, const cairn_view_metric *m, int64_t s, size_t c,
                     double *mean) {
  long i = m ? cairn__view_step_find(m, s) : -1;
  if (i < 0 || !m->values)
    return 0;
  *mean = m->values[(size_t)i * v->ncols + c];
  return m->samples[(size_t)i * v->ncols + c];
}

/* The statistics of every step, recomputed from the per-rank values. */
static void check_stats(const cairn_run_view *v, const cairn_view_metric *m) {
  for (size_t i = 0; i < m->nsteps; i++) {
    uint32_t count = 0;
    double sum = 0, sumsq = 0, mn = NAN, mx = NAN;
    int32_t rmin = -1, rmax = -1;
    for (size_t c = 0; c < v->ncols; c++) {
      if (!m->samples[i * v->ncols + c])
        continue;
      double x = m->values[i * v->ncols + c];
      count++;
      sum += x;
      sumsq += x * x;
      if (isnan(mn) || x < mn) {
        mn = x;
        rmin = v->col_rank[c];
      }
      if (isnan(mx) || x > mx) {
        mx = x;
        rmax = v->col_rank[c];
      }
    }
    if (count != m->count[i] || fabs(sum - m->sum[i]) > 1e-9 * (1 + fabs(sum)) ||
        fabs(sumsq - m->sumsq[i]) > 1e-9 * (1 + fabs(sumsq)) || mn != m->min[i] ||
        mx != m->max[i] || rmin != m->rank_min[i] || rmax != m->rank_max[i]) {
      FAIL("%s step %lld: stored stats (n %u sum %g sumsq %g min %g@%d max %g@%d) != "
           "recomputed (n %u sum %g sumsq %g min %g@%d max %g@%d)",
           m->name, (long long)m->step[i], m->count[i], m->sum[i], m->sumsq[i], m->min[i],
           m->rank_min[i], m->max[i], m->rank_max[i], count, sum, sumsq, mn, rmin, mx, rmax);
      return;
    }
  }
}

static void report(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "reader: %s\n", msg);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: mpi_check_run RUN_PARENT NRANKS STEPS FILES [side] "
                    "[durable=FILE] [term] [wal]\n");
    return 2;
  }
  int n = atoi(argv[2]), steps = atoi(argv[3]), files = atoi(argv[4]);
  int side = 0, term = 0, wal = 0, lineage = 0;
  const char *durable_file = NULL;
  for (int i = 5; i < argc; i++) {
    if (!strcmp(argv[i], "side"))
      side = 1;
    else if (!strcmp(argv[i], "term"))
      term = 1;
    else if (!strcmp(argv[i], "wal"))
      wal = 1;
    else if (!strcmp(argv[i], "lineage"))
      lineage = 1;
    else if (!strncmp(argv[i], "durable=", 8))
      durable_file = argv[i] + 8;
  }
  int *durable = malloc((size_t)n * sizeof *durable);
  for (int r = 0; r < n; r++)
    durable[r] = -1;
  if (durable_file) {
    FILE *f = fopen(durable_file, "r");
    int r, st;
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (sscanf(line, "rank %d durable %d", &r, &st) == 2 && r >= 0 && r < n &&
          st > durable[r])
        durable[r] = st;
    if (f)
      fclose(f);
  }

  /* The parent holds exactly one run directory. */
  DIR *d = opendir(argv[1]);
  struct dirent *e;
  char run[4096] = "";
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.')
      snprintf(run, sizeof run, "%s/%s", argv[1], e->d_name);
  if (d)
    closedir(d);
  if (!run[0]) {
    fprintf(stderr, "no run directory in %s\n", argv[1]);
    return 1;
  }

  cairn_run_file *rf;
  size_t nrf;
  cairn_run_state state;
  char err[512];
  if (cairn__run_list_files(run, &rf, &nrf, &state, err, sizeof err) != CAIRN_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int h5 = 0, logs = 0;
  for (size_t i = 0; i < nrf; i++) {
    h5 += rf[i].kind == CAIRN_FILE_H5;
    logs += rf[i].kind == CAIRN_FILE_WAL && rf[i].seq == 0;
  }
  cairn__run_files_free(rf, nrf);
  if (wal ? logs != files : (h5 != files || logs != 0))
    FAIL("expected %d %s, found %d HDF5 files and %d aggregator logs", files,
         wal ? "aggregator logs" : "HDF5 files and no log", h5, logs);

  cairn_run_view v;
  cairn__view_init(&v);
  cairn_run_report rep;
  memset(&rep, 0, sizeof rep);
  rep.fn = report;
  int rc = cairn__run_open(run, &v, &rep);
  if (rc != CAIRN_OK) {
    fprintf(stderr, "open %s: %s\n", run, cairn_strerror(rc));
    return 1;
  }
  if (v.nranks != (uint32_t)n || v.ncols != (size_t)n)
    FAIL("run says %u ranks, holds %zu columns; expected %d", v.nranks, v.ncols, n);
  const cairn_view_metric *loss = metric(&v, "loss"), *rid = metric(&v, "rank_id"),
                          *sd = metric(&v, "side");
  if (!loss || !rid)
    FAIL("metrics loss/rank_id missing");
  if (loss && !loss->values)
    FAIL("per-rank values missing (detail is on by default)");
  if (bad) {
    cairn__view_free(&v);
    return 1;
  }

  uint64_t tl = 0, ts = 0, td = 0;
  for (size_t c = 0; c < v.ncols; c++) {
    int r = v.col_rank[c];
    int last = durable_file ? durable[r] : steps - 1;
    double x;
    if (term)
      for (last = steps - 1; last >= 0 && cell(&v, loss, last, c, &x) == 0; last--)
        ;
    if (durable_file && durable[r] < 0)
      FAIL("rank %d: never reported a durable step", r);
    const cairn_view_acct *a = &v.acct[c * CAIRN_H5_NCHANNELS];
    for (int s = 0; s < steps; s++) {
      double mean = 0, want = r + s / 1000.0 + 0.5;
      uint32_t k = cell(&v, loss, s, c, &mean);
      if (s > last) {
        /* After the kill point: absent, or a prefix of the step's samples. */
        double one = r + s / 1000.0;
        if (k > 2 || (k == 2 && fabs(mean - want) > 1e-9) ||
            (k == 1 && fabs(mean - one) > 1e-9 && fabs(mean - one - 1.0) > 1e-9)) {
          FAIL("rank %d step %d (after the kill point): %u samples, mean %.12g", r, s, k,
               mean);
          break;
        }
        continue;
      }
      if (a->dropped == 0 && (k != 2 || fabs(mean - want) > 1e-9)) {
        FAIL("rank %d step %d: loss has %u samples, mean %.12g; want 2 and %.12g", r, s, k,
             mean, want);
        break;
      }
      if (cell(&v, rid, s, c, &mean) && mean != r) {
        FAIL("rank %d step %d: rank_id %g", r, s, mean);
        break;
      }
      if (side && !durable_file && !term && (!sd || cell(&v, sd, s, c, &mean) != 1)) {
        FAIL("rank %d step %d: no sample from the second thread", r, s);
        break;
      }
    }
    const cairn_view_param *p = cairn__view_param_last(&v, "world_rank", r);
    if (!p || p->i64 != r)
      FAIL("rank %d: param world_rank missing or wrong", r);
    uint64_t samples = 0;
    for (size_t m = 0; m < v.nmetrics; m++)
      if (v.metrics[m].samples)
        for (size_t i = 0; i < v.metrics[m].nsteps; i++)
          samples += v.metrics[m].samples[i * v.ncols + c];
    if (!durable_file && (a->logged != a->stored + a->dropped || a->stored != samples))
      FAIL("rank %d: accounting logged %llu stored %llu dropped %llu; %llu samples found", r,
           (unsigned long long)a->logged, (unsigned long long)a->stored,
           (unsigned long long)a->dropped, (unsigned long long)samples);
    tl += a->logged;
    ts += a->stored;
    td += a->dropped;
  }
  for (size_t m = 0; m < v.nmetrics; m++)
    if (v.metrics[m].values)
      check_stats(&v, &v.metrics[m]);
  /* Every rank logged two artifacts: its executable (hashed) and a URI. */
  if (!durable_file && !term) {
    int hashed = 0, uris = 0;
    for (size_t i = 0; i < v.nartifacts; i++) {
      hashed += strncmp(v.artifacts[i].hash, "cairn-merkle-sha256-v1:", 23) == 0;
      uris += v.artifacts[i].hash[0] == '\0';
    }
    int want_hashed = n * (lineage ? 126 : 1), want_uris = n * (lineage ? 1126 : 1);
    if (hashed != want_hashed || uris != want_uris)
      FAIL("artifacts: %d hashed and %d URIs, expected %d and %d", hashed, uris, want_hashed,
           want_uris);
  }
  if (lineage) {
    /* Every execution ended, in the stage of its rank; every artifact of an
     * execution is its event with the role it was logged with. */
    size_t ended = 0;
    for (size_t i = 0; i < v.nexecutions; i++) {
      const cairn_h5_execution_row *x = &v.executions[i];
      ended += x->end_ns >= x->start_ns && x->start_ns > 0 &&
               (x->context_id >> 32) == (uint64_t)x->rank;
    }
    if (v.nexecutions != (size_t)n * 125 || ended != v.nexecutions || v.ncontexts != (size_t)n)
      FAIL("lineage: %zu executions (%zu ended properly), %zu stages; want %d, all, %d",
           v.nexecutions, ended, v.ncontexts, n * 125, n);
    size_t linked = 0, in = 0, out = 0;
    for (size_t i = 0; i < v.nevents; i++) {
      const cairn_h5_event_row *ev = &v.events[i];
      if (ev->execution_id == 0)
        continue; /* the two run-level artifacts of every rank */
      int found = 0;
      for (size_t k = 0; k < v.nexecutions && !found; k++)
        found = v.executions[k].id == ev->execution_id;
      linked += found;
      in += ev->type == CAIRN_H5_EVENT_INPUT;
      out += ev->type == CAIRN_H5_EVENT_OUTPUT;
    }
    if (linked != (size_t)n * 1250 || in != (size_t)n * 625 || out != (size_t)n * 625)
      FAIL("lineage: %zu events linked to an execution (%zu in, %zu out); want %d, %d, %d",
           linked, in, out, n * 1250, n * 625, n * 625);
    /* Types, command lines and properties came through the aggregators and
     * the parallel writer exactly as logged (mpi_log_app). */
    size_t typed = 0, plain = 0, with_props = 0;
    for (size_t i = 0; i < v.nexecutions; i++) {
      const cairn_h5_execution_row *x = &v.executions[i];
      int b = -1;
      if (sscanf(x->name, "batch-%d", &b) != 1)
        continue;
      char cmd[64], props[64];
      snprintf(cmd, sizeof cmd, "mpi_log_app --batch %d", b);
      snprintf(props, sizeof props, "{\"rank\": %d, \"batch\": %d}", x->rank, b);
      if (b % 2)
        typed += !strcmp(x->type, "batch") && !strcmp(x->command, cmd) &&
                 !strcmp(x->properties, props);
      else
        plain += !strcmp(x->type, x->name) && strstr(x->command, "mpi_log_app") &&
                 !x->properties[0];
    }
    for (size_t i = 0; i < v.nartifacts; i++) {
      const cairn_h5_artifact_row *a = &v.artifacts[i];
      int r = -1, b = -1, k = -1;
      if (sscanf(a->uri, "s3://bucket/rank%d/exec%d/item%d", &r, &b, &k) != 3)
        continue;
      char props[64];
      snprintf(props, sizeof props, "{\"rank\": %d, \"batch\": %d}", r, b);
      with_props += k == 1 ? !strcmp(a->properties, props) && r == a->rank : !a->properties[0];
    }
    if (typed != (size_t)n * 62 || plain != (size_t)n * 63 || with_props != (size_t)n * 1125)
      FAIL("lineage: %zu typed executions, %zu plain, %zu artifacts with the right properties; "
           "want %d, %d, %d",
           typed, plain, with_props, n * 62, n * 63, n * 1125);
  }
  printf("run %s: %zu ranks, %d HDF5 files, %d logs; logged %llu = stored %llu + dropped "
         "%llu; %s\n",
         run, v.ncols, h5, logs, (unsigned long long)tl, (unsigned long long)ts,
         (unsigned long long)td, bad ? "FAILED" : "ok");
  cairn__view_free(&v);
  free(durable);
  return bad ? 1 : 0;
}
