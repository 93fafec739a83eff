/*
 * bench_merge.c — the lineage database at scale (bench/README.md).
 *
 *  1. Merge throughput: a synthetic run of R ranks × S steps × M metrics
 *     (default 64 × 100,000 × 16 = 102.4 M samples, per-rank detail on) is
 *     merged into a fresh database; samples/s for the merge itself (view →
 *     SQLite) and, beside it in the same run, for reading the same run back
 *     from its HDF5 file (what `cairn merge RUN_DIR` adds in front).
 *  2. Series query: a metric of 1,000,000 steps (8 ranks); the mean series
 *     over the whole range, one rank's series, and a 10,000-step window, each
 *     the median of 11 runs.
 *  3. Ancestors: a database of 100,000 artifacts (1,000 chains of 10
 *     executions, each reading the 10 outputs of the previous one plus a
 *     shared dataset); the ancestors of a final model through
 *     cairn_db_lineage, median of 101 queries.
 *
 * Environment: BENCH_RANKS, BENCH_STEPS, BENCH_METRICS, BENCH_SERIES_STEPS,
 * BENCH_ARTIFACTS (multiple of 100), BENCH_DIR (default /tmp), BENCH_SKIP_H5=1,
 * BENCH_KEEP=1 (keep the HDF5 run directory, to time `cairn merge` on it).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "db.h"
#include "util.h"
#include "db_lineage.h"
#include "h5/h5_writer.h"
#include "run_view.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long envl(const char *k, long d) {
  const char *v = getenv(k);
  return v && *v ? strtol(v, NULL, 10) : d;
}

static uint64_t mix(uint64_t x) { return cairn__mix64(x); }

static double unif(uint64_t a, uint64_t b, uint64_t c) {
  return (double)(mix(a * 0x9e3779b97f4a7c15ull ^ mix(b + 0x632be59bd9b4e019ull * c)) >> 11) *
         0x1.0p-53;
}

static void die(const char *what, const char *err) {
  fprintf(stderr, "bench_merge: %s: %s\n", what, err);
  exit(1);
}

/* A run of nranks × steps × nmetrics with per-rank detail. */
static void make_run(cairn_run_view *v, int nranks, int64_t steps, int nmetrics, uint8_t seed) {
  cairn__view_init(v);
  size_t n = (size_t)nranks;
  v->have_run_id = 1;
  memset(v->run_id, seed, 16);
  v->run_id[6] = 0x40 | (seed & 0x0f);
  v->run_id[8] = 0x80;
  snprintf(v->cairn_version, sizeof v->cairn_version, "%s", cairn_version());
  v->format_version = 2;
  v->created_ns = 1700000000000000000ull;
  v->nranks = (uint32_t)nranks;
  v->naggregators = (uint32_t)(nranks / 4 ? nranks / 4 : 1);
  v->detail = 1;
  v->source = CAIRN_VIEW_FROM_H5;
  v->ncols = n;
  v->col_rank = malloc(n * sizeof *v->col_rank);
  v->ranks = calloc(n, sizeof *v->ranks);
  v->acct = calloc(n * CAIRN_H5_NCHANNELS, sizeof *v->acct);
  v->acct_reported = calloc(n, 1);
  for (size_t c = 0; c < n; c++) {
    v->col_rank[c] = (int32_t)c;
    v->ranks[c].hostname = strdup("node");
    uint64_t rec = (uint64_t)steps * (uint64_t)nmetrics;
    v->acct[c * 2] = (cairn_view_acct){rec, rec, 0, 0};
    v->acct_reported[c] = 1;
  }
  v->nmetrics = (size_t)nmetrics;
  v->metrics = calloc((size_t)nmetrics, sizeof *v->metrics);
  for (int m = 0; m < nmetrics; m++) {
    cairn_view_metric *vm = &v->metrics[m];
    if (cairn__view_metric_alloc(vm, (size_t)steps, n, 1) != CAIRN_OK)
      die("make_run", "out of memory");
    char name[32];
    snprintf(name, sizeof name, "metric_%02d", m);
    vm->name = strdup(name);
    vm->name_len = strlen(name);
    vm->nsteps = (size_t)steps;
    for (int64_t s = 0; s < steps; s++) {
      vm->step[s] = s;
      double base = 2.0 / (1.0 + (double)s * 1e-3) + m;
      for (size_t c = 0; c < n; c++) {
        vm->values[(size_t)s * n + c] = base + 0.05 * unif(c, (uint64_t)s, (uint64_t)m);
        vm->samples[(size_t)s * n + c] = 1;
      }
      cairn__view_stats_row(vm->values + (size_t)s * n, vm->samples + (size_t)s * n,
                            v->col_rank, n, &vm->count[s], &vm->sum[s], &vm->sumsq[s],
                            &vm->min[s], &vm->max[s], &vm->rank_min[s], &vm->rank_max[s]);
    }
  }
  v->nmarks = (size_t)steps;
  v->mark_step = malloc((size_t)steps * sizeof *v->mark_step);
  v->mark_time = malloc((size_t)steps * n * sizeof *v->mark_time);
  for (int64_t s = 0; s < steps; s++) {
    v->mark_step[s] = s;
    for (size_t c = 0; c < n; c++)
      v->mark_time[(size_t)s * n + c] = v->created_ns + (uint64_t)s * 100000000ull +
                                        (uint64_t)(unif(c, (uint64_t)s, 99) * 1e6);
  }
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_d);
  return t[n / 2];
}

static sqlite3 *fresh_db(const char *path) {
  char err[512], side[600];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
  sqlite3 *db;
  if (cairn_db_open(path, 1, &db, err, sizeof err))
    die("open", err);
  return db;
}

static void bench_merge(const char *dir) {
  int R = (int)envl("BENCH_RANKS", 64), M = (int)envl("BENCH_METRICS", 16);
  int64_t S = envl("BENCH_STEPS", 100000);
  char path[512], err[512];
  cairn_run_view v;
  double t0 = now_s();
  make_run(&v, R, S, M, 0x11);
  double samples = (double)R * (double)S * M;
  printf("merge: synthetic run %d ranks x %" PRId64 " steps x %d metrics = %.1f M samples "
         "(built in %.1f s)\n",
         R, S, M, samples / 1e6, now_s() - t0);
  snprintf(path, sizeof path, "%s/bench_merge.db", dir);
  sqlite3 *db = fresh_db(path);
  cairn_db_merge_stats st;
  memset(&st, 0, sizeof st);
  t0 = now_s();
  if (cairn_db_merge_view(db, &v, "bench", NULL, NULL, &st, err, sizeof err))
    die("merge", err);
  double tm = now_s() - t0;
  cairn_db_close(db);
  struct stat sb;
  stat(path, &sb);
  printf("  merge (view -> database): %.2f s, %.1f M samples/s; database %.1f MB "
         "(%.2f bytes/sample)\n",
         tm, samples / tm / 1e6, (double)sb.st_size / 1e6, (double)sb.st_size / samples);
  if (envl("BENCH_SKIP_H5", 0)) {
    cairn__view_free(&v);
    return;
  }
  /* The same run as an HDF5 run directory, read back the way `cairn merge
   * RUN_DIR` reads it. */
  char rdir[512], h5[600];
  snprintf(rdir, sizeof rdir, "%s/bench_merge_run", dir);
  mkdir(rdir, 0755);
  snprintf(h5, sizeof h5, "%s/run-g000000.h5", rdir);
  t0 = now_s();
  if (cairn__h5_write(&v, h5, NULL, err, sizeof err))
    die("h5 write", err);
  double tw = now_s() - t0;
  cairn__view_free(&v);
  cairn_run_report rep;
  memset(&rep, 0, sizeof rep);
  t0 = now_s();
  if (cairn__run_open(rdir, &v, &rep))
    die("h5 read", rdir);
  double tr = now_s() - t0;
  printf("  read run directory (HDF5 -> view): %.2f s, %.1f M samples/s (written in %.1f s)\n",
         tr, samples / tr / 1e6, tw);
  cairn__view_free(&v);
  /* What `cairn merge RUN_DIR` does: reading, compressing and inserting
   * overlapped (cairn_db_merge_dir), into a fresh database. */
  sqlite3 *db2 = fresh_db(path);
  memset(&st, 0, sizeof st);
  t0 = now_s();
  if (cairn_db_merge_dir(db2, rdir, NULL, &st, err, sizeof err))
    die("merge dir", err);
  double td = now_s() - t0;
  cairn_db_close(db2);
  printf("  merge of the run directory (read, compress, insert overlapped): %.2f s, %.1f M "
         "samples/s; read then merge in sequence would take %.2f s (%.2fx)\n",
         td, samples / td / 1e6, tr + tm, (tr + tm) / td);
  unlink(path);
  if (envl("BENCH_KEEP", 0)) { /* for timing the real command on it */
    printf("  run directory kept: %s\n", rdir);
    return;
  }
  unlink(h5);
  rmdir(rdir);
}

static void bench_series(const char *dir) {
  int64_t S = envl("BENCH_SERIES_STEPS", 1000000);
  char path[512], err[512];
  cairn_run_view v;
  make_run(&v, 8, S, 1, 0x22);
  snprintf(path, sizeof path, "%s/bench_series.db", dir);
  sqlite3 *db = fresh_db(path);
  cairn_db_merge_stats st;
  memset(&st, 0, sizeof st);
  if (cairn_db_merge_view(db, &v, "bench", NULL, NULL, &st, err, sizeof err))
    die("merge", err);
  cairn__view_free(&v);
  cairn_db_close(db);
  if (cairn_db_open(path, 0, &db, err, sizeof err)) /* cold handle, warm page cache */
    die("open", err);
  int64_t mid = 1;
  double t[11];
  const struct {
    const char *what;
    int64_t lo, hi;
    int rank;
    unsigned fields;
  } q[] = {
      {"mean, all steps", INT64_MIN, INT64_MAX, -1,
       (1u << CAIRN_DB_F_COUNT) | (1u << CAIRN_DB_F_SUM)},
      {"mean+min+max, all steps", INT64_MIN, INT64_MAX, -1,
       (1u << CAIRN_DB_F_COUNT) | (1u << CAIRN_DB_F_SUM) | (1u << CAIRN_DB_F_MIN) |
           (1u << CAIRN_DB_F_MAX)},
      {"one rank, all steps", INT64_MIN, INT64_MAX, 3, 0},
      {"mean, 10,000-step window", S / 2, S / 2 + 9999, -1,
       (1u << CAIRN_DB_F_COUNT) | (1u << CAIRN_DB_F_SUM)},
  };
  printf("series query: one metric of %" PRId64 " steps, 8 ranks (median of 11)\n", S);
  for (size_t k = 0; k < sizeof q / sizeof *q; k++) {
    size_t n = 0;
    double check = 0;
    for (int i = 0; i < 11; i++) {
      cairn_db_series s;
      double t0 = now_s();
      if (cairn_db_series_load(db, mid, q[k].lo, q[k].hi, q[k].rank, q[k].fields, &s, err,
                               sizeof err))
        die("series", err);
      /* Use the values, as a caller would. */
      double acc = 0;
      for (size_t j = 0; j < s.n; j++)
        acc += q[k].rank < 0 ? s.sum[j] / s.count[j] : s.values[j];
      t[i] = now_s() - t0;
      n = s.n;
      check = acc;
      cairn_db_series_free(&s);
    }
    printf("  %-26s %8zu points in %7.2f ms (checksum %.6g)\n", q[k].what, n,
           median(t, 11) * 1e3, check);
  }
  cairn_db_close(db);
  unlink(path);
}

static void bench_ancestors(const char *dir) {
  long NA = envl("BENCH_ARTIFACTS", 100000);
  long chains = NA / 100; /* 10 executions × 10 outputs per chain */
  char path[512], err[512];
  cairn_run_view v;
  cairn__view_init(&v);
  v.have_run_id = 1;
  memset(v.run_id, 0x33, 16);
  v.run_id[6] = 0x43;
  v.run_id[8] = 0x80;
  v.nranks = 1;
  v.ncols = 1;
  v.col_rank = calloc(1, sizeof *v.col_rank);
  v.ranks = calloc(1, sizeof *v.ranks);
  v.ranks[0].hostname = strdup("node");
  v.acct = calloc(CAIRN_H5_NCHANNELS, sizeof *v.acct);
  v.acct_reported = calloc(1, 1);
  cairn_h5_context_row ctx = {1, (char *)"train", (char *)"bench", (char *)""};
  cairn__view_add_context(&v, &ctx);
  char uri[128], hash[128];
  uint64_t id = 2;
  /* One shared dataset read by every first execution. */
  uint64_t shared = id++;
  cairn_h5_artifact_row a;
  memset(&a, 0, sizeof a);
  a.id = shared;
  a.kind = CAIRN_H5_ARTIFACT_DATASET;
  a.uri = (char *)"/data/shared.bin";
  a.hash = (char *)"cairn-merkle-sha256-v1:"
                   "0000000000000000000000000000000000000000000000000000000000000000";
  a.properties = (char *)"";
  cairn__view_add_artifact(&v, &a);
  uint64_t last_model = 0;
  for (long c = 0; c < chains; c++) {
    uint64_t prev[10] = {0};
    for (int d = 0; d < 10; d++) {
      cairn_h5_execution_row e;
      memset(&e, 0, sizeof e);
      e.id = id++;
      e.context_id = 1;
      e.start_ns = e.end_ns = 1700000000000000000ull;
      e.name = (char *)"step";
      e.properties = e.type = e.command = (char *)"";
      cairn__view_add_execution(&v, &e);
      for (int k = 0; k < (d ? 10 : 1); k++) {
        cairn_h5_event_row ev = {e.id, d ? prev[k] : shared, CAIRN_H5_EVENT_INPUT, 0, 0};
        cairn__view_add_event(&v, &ev);
      }
      for (int k = 0; k < 10; k++) {
        memset(&a, 0, sizeof a);
        a.id = id++;
        a.kind = d == 9 ? CAIRN_H5_ARTIFACT_MODEL : CAIRN_H5_ARTIFACT_DATASET;
        snprintf(uri, sizeof uri, "/chain%ld/depth%d/out%d", c, d, k);
        snprintf(hash, sizeof hash, "cairn-merkle-sha256-v1:%064" PRIx64, a.id);
        a.uri = uri;
        a.hash = hash;
        a.properties = (char *)"";
        cairn__view_add_artifact(&v, &a);
        cairn_h5_event_row ev = {e.id, a.id, CAIRN_H5_EVENT_OUTPUT, 0, 0};
        cairn__view_add_event(&v, &ev);
        prev[k] = a.id;
      }
    }
    last_model = prev[0];
  }
  snprintf(path, sizeof path, "%s/bench_lineage.db", dir);
  sqlite3 *db = fresh_db(path);
  cairn_db_merge_stats st;
  memset(&st, 0, sizeof st);
  double t0 = now_s();
  if (cairn_db_merge_view(db, &v, "bench", NULL, NULL, &st, err, sizeof err))
    die("merge", err);
  printf("ancestors: %zu artifacts, %zu executions, %zu events merged in %.2f s\n",
         v.nartifacts, v.nexecutions, v.nevents, now_s() - t0);
  cairn__view_free(&v);
  /* The MLMD id of the last chain's final model. */
  sqlite3_stmt *q;
  int64_t aid = 0;
  sqlite3_prepare_v2(db, "SELECT artifact_id FROM cairn_artifact WHERE lineage_id=?", -1, &q,
                     NULL);
  sqlite3_bind_int64(q, 1, (int64_t)last_model);
  if (sqlite3_step(q) == SQLITE_ROW)
    aid = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  double t[101];
  size_t nodes = 0;
  for (int i = 0; i < 101; i++) {
    cairn_db_lineage_graph g;
    cairn_db_lineage_start s;
    memset(&s, 0, sizeof s);
    s.kind = CAIRN_DB_START_ARTIFACT_ID;
    s.id = aid;
    t0 = now_s();
    if (cairn_db_lineage(db, &s, CAIRN_DB_LINEAGE_UP, -1, &g, err, sizeof err))
      die("lineage", err);
    t[i] = now_s() - t0;
    nodes = g.nnodes;
    cairn_db_lineage_free(&g);
  }
  printf("  ancestors of a final model: %zu nodes in %.3f ms (median of 101)\n", nodes,
         median(t, 101) * 1e3);
  cairn_db_close(db);
  unlink(path);
}

int main(int argc, char **argv) {
  const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp";
  const char *only = argc > 1 ? argv[1] : "all";
  if (!strcmp(only, "all") || !strcmp(only, "merge"))
    bench_merge(dir);
  if (!strcmp(only, "all") || !strcmp(only, "series"))
    bench_series(dir);
  if (!strcmp(only, "all") || !strcmp(only, "ancestors"))
    bench_ancestors(dir);
  return 0;
}
