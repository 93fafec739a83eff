/*
 * test_h5_roundtrip.c — the HDF5 run file (format v2) and the run view:
 * write → read round trips of every part with exact values, the WAL view's
 * merging of partial aggregates, the standalone finalize step, run
 * directories in every state, and the crash shapes (WAL only, torn WAL
 * tail, truncated / foreign / future HDF5 files, leftover temporaries).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "cairn.h"
#include "h5/h5_finalize.h"
#include "h5/h5_writer.h"
#include "h5_testdata.h"
#include "test_tmpdir.h"
#include "run_view.h"
#include "util.h"
#include "wal.h"
#include "wal_records.h"

typedef struct {
  char msgs[16][1024];
  int n;
} msgs;

static void collect(void *ctx, const char *m) {
  msgs *s = ctx;
  if (s->n < 16)
    snprintf(s->msgs[s->n++], sizeof s->msgs[0], "%s", m);
}

static int has_msg(const msgs *s, const char *needle) {
  for (int i = 0; i < s->n; i++)
    if (strstr(s->msgs[i], needle))
      return 1;
  return 0;
}

/* A private directory for this test (each test runs in its own process),
 * removed when the process exits. */
static char *tempdir(void) {
  char *d = tt_tempdir("cairn-h5");
  cr_assert_not_null(d);
  return d;
}

static void all_ranks(int32_t *r, int n) {
  for (int i = 0; i < n; i++)
    r[i] = i;
}

/* The synthetic world of W ranks in *w, written to path with options o
 * (NULL: the defaults). */
static void write_world_view(const char *path, int W, const cairn_h5_write_opts *o,
                             cairn_run_view *w) {
  int32_t ranks[16];
  all_ranks(ranks, W);
  td_view(w, ranks, (size_t)W, W);
  char err[1024] = "";
  int rc = cairn__h5_write(w, path, o, err, sizeof err);
  cr_assert_eq(rc, CAIRN_OK, "write: %s", err);
}

static void write_world(const char *path, int W, const cairn_h5_write_opts *o) {
  cairn_run_view v;
  write_world_view(path, W, o, &v);
  cairn__view_free(&v);
}

/* ---------------------------------------------------------------------- */
/* Hand-made WAL segments                                                  */
/* ---------------------------------------------------------------------- */

typedef struct {
  cairn_wal_writer *w;
  cairn_buf b;
} walw;

static void wal_start(walw *x, const char *dir, uint32_t writer_rank) {
  cairn_wal_options o = {.dir = dir, .rank = writer_rank, .compression_level = 1,
                         .sync_policy = 0, .segment_bytes = 1 << 20};
  for (int i = 0; i < 16; i++)
    o.run_id[i] = (uint8_t)(0x10 + i * 7);
  char err[512];
  memset(&x->b, 0, sizeof x->b);
  cr_assert_eq(cairn__wal_open(&x->w, &o, err, sizeof err), CAIRN_OK, "%s", err);
}

static void wal_block(walw *x) {
  cr_assert(!x->b.failed);
  cr_assert_eq(cairn__wal_append(x->w, 1, x->b.data, x->b.len), CAIRN_OK);
  cairn__buf_reset(&x->b);
}

static void wal_end(walw *x) {
  cairn__wal_close(x->w);
  cairn__buf_free(&x->b);
}

static void put_run(cairn_buf *b, uint32_t rank, uint32_t nranks) {
  cairn_rec_run r = {.rank = rank, .nranks = nranks, .pid = 77, .start_ns = 5,
                     .hostname = "hostA", .hostname_len = 5, .version = "0.1.0",
                     .version_len = 5};
  for (int i = 0; i < 16; i++)
    r.run_id[i] = (uint8_t)(0x10 + i * 7);
  cairn__rec_put_run(b, &r);
}

/* Aggregator rank 0 serving ranks 0 and 1; "loss" step 3 of rank 0 arrives
 * in two blocks; ids differ between ranks (names are per process). */
static void make_wal(const char *dir) {
  walw x;
  wal_start(&x, dir, 0);
  const char *n0[] = {"loss", "acc"};
  uint32_t id0[] = {0, 1};
  cairn__rec_put_source(&x.b, 0);
  put_run(&x.b, 0, 2);
  cairn__rec_put_names(&x.b, 2, id0, n0);
  cairn_metric_agg a0[] = {{3, 0, 2, 3.0, 1.0, 2.0}, {3, 1, 1, 0.5, 0.5, 0.5},
                           {4, 0, 1, 7.0, 7.0, 7.0}};
  cairn__rec_put_metrics(&x.b, 3, a0);
  cairn_rec_step s0[] = {{3, 300, 0}, {4, 450, 0}, {3, 290, 1}};
  cairn__rec_put_steps(&x.b, 3, s0);
  size_t off = cairn__rec_open(&x.b, CAIRN_SEC_PARAMS);
  cairn_rec_param p = {CAIRN_PARAM_DOUBLE, "lr", 2, 0, 0.1, NULL, 0};
  cairn__rec_add_param(&x.b, &p);
  p.f64 = 0.2;
  cairn__rec_add_param(&x.b, &p);
  cairn__rec_close(&x.b, off, 2);
  cairn_rec_counters c0[] = {{0, 3, 2, 0, 0}, {1, 2, 2, 0, 0}};
  cairn__rec_put_counters(&x.b, 2, c0);
  wal_block(&x);

  /* rank 1: its own ids ("acc" is 0 here) */
  const char *n1[] = {"acc", "loss"};
  uint32_t id1[] = {0, 1};
  cairn__rec_put_source(&x.b, 1);
  put_run(&x.b, 1, 2);
  cairn__rec_put_names(&x.b, 2, id1, n1);
  cairn_metric_agg a1[] = {{3, 1, 1, 0.25, 0.25, 0.25}, {3, 0, 1, -1.0, -1.0, -1.0}};
  cairn__rec_put_metrics(&x.b, 2, a1);
  off = cairn__rec_open(&x.b, CAIRN_SEC_PARAMS);
  p.f64 = 0.3;
  cairn__rec_add_param(&x.b, &p);
  cairn__rec_close(&x.b, off, 1);
  cairn_rec_counters c1[] = {{0, 2, 2, 0, 0}, {1, 1, 1, 0, 0}};
  cairn__rec_put_counters(&x.b, 2, c1);
  wal_block(&x);

  /* rank 0 again: the late part of step 3, and final counters */
  cairn__rec_put_source(&x.b, 0);
  cairn_metric_agg a2[] = {{3, 0, 1, 6.0, 6.0, 6.0}};
  cairn__rec_put_metrics(&x.b, 1, a2);
  off = cairn__rec_open(&x.b, CAIRN_SEC_KV);
  cairn__rec_add_kv(&x.b, "dataset", 7, "mnist", 5);
  cairn__rec_close(&x.b, off, 1);
  cairn_rec_counters c2[] = {{0, 4, 4, 0, 0}, {1, 3, 3, 0, 0}};
  cairn__rec_put_counters(&x.b, 2, c2);
  wal_block(&x);
  wal_end(&x);
}

Test(h5_view, wal_view_combines_partial_aggregates_across_blocks_and_ranks) {
  char *dir = tempdir();
  make_wal(dir);
  cairn_run_view v;
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__view_from_wal(dir, &v, &rep, NULL, NULL), CAIRN_OK);
  cr_assert_eq(v.ncols, 2);
  cr_assert_eq(v.nmetrics, 2);
  cr_assert_str_eq(v.metrics[0].name, "acc");
  cr_assert_str_eq(v.metrics[1].name, "loss");
  const cairn_view_metric *loss = &v.metrics[1];
  cr_assert_eq(loss->nsteps, 2);
  /* step 3, rank 0: (3 + 6) / (2 + 1) = 3; rank 1: 0.25 */
  cr_assert_eq(loss->values[0], 3.0);
  cr_assert_eq(loss->samples[0], 3);
  cr_assert_eq(loss->values[1], 0.25);
  cr_assert_eq(loss->count[0], 2);
  cr_assert_eq(loss->sum[0], 3.25);
  cr_assert_eq(loss->sumsq[0], 9.0625);
  cr_assert_eq(loss->min[0], 0.25);
  cr_assert_eq(loss->rank_min[0], 1);
  cr_assert_eq(loss->max[0], 3.0);
  cr_assert_eq(loss->rank_max[0], 0);
  /* step 4: rank 1 missing */
  cr_assert_eq(loss->values[2], 7.0);
  cr_assert(isnan(loss->values[3]));
  cr_assert_eq(loss->samples[3], 0);
  cr_assert_eq(loss->missing, 1);
  const cairn_view_metric *acc = &v.metrics[0];
  cr_assert_eq(acc->values[0], 0.5);
  cr_assert_eq(acc->values[1], -1.0);
  /* markers: earliest of rank 0's two markers of step 3 */
  cr_assert_eq(v.nmarks, 2);
  cr_assert_eq(v.mark_time[0], 290);
  cr_assert_eq(v.mark_time[1], 0);
  cr_assert_eq(v.mark_time[2], 450);
  cr_assert(fabs(cairn__view_step_seconds(&v, 0, 0) - 160e-9) < 1e-15);
  cr_assert(isnan(cairn__view_step_seconds(&v, 0, 1)));
  /* params: all kept, in rank order; last wins */
  cr_assert_eq(v.nparams, 3);
  cr_assert_eq(v.params[0].f64, 0.1);
  cr_assert_eq(v.params[2].rank, 1);
  cr_assert_eq(cairn__view_param_last(&v, "lr", 0)->f64, 0.2);
  cr_assert_eq(cairn__view_param_last(&v, "lr", -1)->f64, 0.3);
  cr_assert_str_eq(cairn__view_kv_last(&v, "dataset", -1)->value, "mnist");
  /* counters: the last of each rank */
  cr_assert_eq(v.acct[0].logged, 4);
  cr_assert_eq(v.acct[1].stored, 3);
  cr_assert_eq(v.acct[2].logged, 2);
  cr_assert_str_eq(v.ranks[1].hostname, "hostA");
  cr_assert_eq(v.naggregators, 1);
  cr_assert_eq(rep.wal.blocks, 3);
  cr_assert_eq(m.n, 0, "unexpected report: %s", m.msgs[0]);
  cairn__view_free(&v);
}

Test(h5_file, round_trip_of_every_part_is_exact) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  cairn_run_view w, r;
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  o.group = 0;
  o.created_ns = 42;
  write_world_view(path, 5, &o, &w);
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__view_from_h5(path, &r, &rep), CAIRN_OK, "%s", m.msgs[0]);
  cr_assert_eq(m.n, 0, "%s", m.msgs[0]);
  char why[256];
  cr_assert_eq(td_compare(&w, &r, why, sizeof why), 0, "%s", why);
  cr_assert_eq(r.format_version, CAIRN_H5_FORMAT_VERSION);
  cr_assert_eq(r.created_ns, 42);
  cr_assert_eq(r.detail, 1);
  cr_assert_eq(r.group, 0);
  cr_assert_str_eq(r.cairn_version, "0.1.0");
  cr_assert_eq(cairn__view_metric_find(&r, "grad norm\x01\xfe", 11), 1);
  cr_assert_eq(cairn__view_step_find(&r.metrics[1], 1004), r.metrics[1].nsteps - 1);
  cr_assert_eq(cairn__view_param_last(&r, "lr", 0)->f64, 3e-4);
  cr_assert_eq(cairn__view_param_last(&r, "batch", 3)->i64, 35);
  cr_assert_eq(r.nartifacts, 3);
  cr_assert_eq(r.ncontexts, 1);
  /* float32-exact values are stored as float32, the others as float64 */
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d0 = H5Dopen2(f, "/metrics/0/values", H5P_DEFAULT);
  hid_t d2 = H5Dopen2(f, "/metrics/2/values", H5P_DEFAULT);
  hid_t t0 = H5Dget_type(d0), t2 = H5Dget_type(d2);
  cr_assert_eq(H5Tget_size(t0), 4);
  cr_assert_eq(H5Tget_size(t2), 8);
  hid_t pl = H5Dget_create_plist(d2);
  cr_assert_eq(H5Pget_nfilters(pl), 2);
  unsigned flags, cd[4];
  size_t ncd = 4;
  cr_assert_eq(H5Pget_filter2(pl, 1, &flags, &ncd, cd, 0, NULL, NULL), 32015);
  H5Pclose(pl);
  H5Tclose(t0);
  H5Tclose(t2);
  H5Dclose(d0);
  H5Dclose(d2);
  H5Fclose(f);
  /* no temporary left behind */
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s/.run-g000000.h5.tmp", dir);
  cr_assert_neq(access(tmp, F_OK), 0);
  cairn__view_free(&w);
  cairn__view_free(&r);
}

/* A run of many metrics and few steps (per-layer statistics of a large
 * model, say) is mostly HDF5 metadata: what each dataset costs decides
 * the file's size. The chunk indexes are small and dataset headers have
 * no room for attributes, so such a file takes well under 1 KB a dataset
 * (HDF5's defaults: about 2.5 KB, 19 of 25 MB of a 10,000-dataset file
 * being chunk index nodes). Read back exactly. */
Test(h5_file, many_small_metrics_cost_little_metadata) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  int32_t ranks[4];
  all_ranks(ranks, 4);
  cairn_run_view w, r;
  td_view(&w, ranks, 4, 4);
  /* 400 metrics: copies of td_view's four under names m000..m399 */
  enum { NM = 400 };
  cairn_view_metric *ms = calloc(NM, sizeof *ms);
  cr_assert_not_null(ms);
  for (size_t i = 0; i < NM; i++) {
    const cairn_view_metric *src = &w.metrics[i % w.nmetrics];
    cairn_view_metric *m = &ms[i];
    cr_assert_eq(cairn__view_metric_alloc(m, src->nsteps, w.ncols, 1), CAIRN_OK);
    char name[16];
    snprintf(name, sizeof name, "m%03zu", i);
    m->name = strdup(name);
    m->name_len = strlen(name);
    size_t n = src->nsteps, cells = n * w.ncols;
    memcpy(m->step, src->step, n * sizeof *m->step);
    memcpy(m->count, src->count, n * sizeof *m->count);
    memcpy(m->sum, src->sum, n * sizeof *m->sum);
    memcpy(m->sumsq, src->sumsq, n * sizeof *m->sumsq);
    memcpy(m->min, src->min, n * sizeof *m->min);
    memcpy(m->max, src->max, n * sizeof *m->max);
    memcpy(m->rank_min, src->rank_min, n * sizeof *m->rank_min);
    memcpy(m->rank_max, src->rank_max, n * sizeof *m->rank_max);
    memcpy(m->values, src->values, cells * sizeof *m->values);
    memcpy(m->samples, src->samples, cells * sizeof *m->samples);
    m->missing = src->missing;
  }
  for (size_t i = 0; i < w.nmetrics; i++)
    cairn__view_metric_free(&w.metrics[i]);
  free(w.metrics);
  w.metrics = ms;
  w.nmetrics = NM;
  char err[1024];
  cr_assert_eq(cairn__h5_write(&w, path, NULL, err, sizeof err), CAIRN_OK, "%s", err);
  cairn_run_report rep = {0};
  cr_assert_eq(cairn__view_from_h5(path, &r, &rep), CAIRN_OK);
  char why[256];
  cr_assert_eq(td_compare(&w, &r, why, sizeof why), 0, "%s", why);

  /* what the HDF5 library itself reports of the file */
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  hid_t fcpl = H5Fget_create_plist(f);
  unsigned ik = 0;
  cr_assert_geq(H5Pget_istore_k(fcpl, &ik), 0);
  cr_assert_lt(ik, 32, "chunk index of HDF5's default size (K %u)", ik);
  H5Pclose(fcpl);
  H5G_info_t gi;
  cr_assert_geq(H5Gget_info_by_name(f, "/metrics/7", &gi, H5P_DEFAULT), 0);
  cr_assert_eq(gi.nlinks, 10);
  hsize_t fsize = 0;
  cr_assert_geq(H5Fget_filesize(f, &fsize), 0);
  H5Fclose(f);
  size_t datasets = NM * 10;
  cr_assert_lt(fsize, datasets * 1000, "%llu bytes for %zu datasets",
               (unsigned long long)fsize, datasets);
  cairn__view_free(&w);
  cairn__view_free(&r);
}

/* Files up to cairn__h5_read_in_memory are read into memory whole, larger
 * ones in place: both give the data back exactly. (The damaged-file tests
 * below read in memory, the default for their small files.) */
Test(h5_file, read_in_memory_and_in_place_agree) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  cairn_run_view w, a, b;
  write_world_view(path, 5, NULL, &w);
  cr_assert_eq(cairn__h5_read_in_memory, CAIRN_H5_READ_IN_MEMORY);
  cairn_run_report ra = {0}, rb = {0};
  cr_assert_eq(cairn__view_from_h5(path, &a, &ra), CAIRN_OK);
  cairn__h5_read_in_memory = 0;
  cr_assert_eq(cairn__view_from_h5(path, &b, &rb), CAIRN_OK);
  cairn__h5_read_in_memory = CAIRN_H5_READ_IN_MEMORY;
  char why[256];
  cr_assert_eq(td_compare(&w, &a, why, sizeof why), 0, "in memory: %s", why);
  cr_assert_eq(td_compare(&w, &b, why, sizeof why), 0, "in place: %s", why);
  cr_assert_eq(ra.lost_datasets + rb.lost_datasets, 0);
  cairn__view_free(&a);
  cairn__view_free(&b);
  cairn__view_free(&w);
}

Test(h5_file, detail_off_keeps_statistics_only) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  o.detail = 0;
  write_world(path, 3, &o);
  cairn_run_view r;
  cr_assert_eq(cairn__view_from_h5(path, &r, NULL), CAIRN_OK);
  cr_assert_eq(r.detail, 0);
  int32_t ranks[3] = {0, 1, 2};
  cairn_run_view w;
  td_view(&w, ranks, 3, 3);
  for (size_t k = 0; k < w.nmetrics; k++) {
    free(w.metrics[k].values);
    free(w.metrics[k].samples);
    w.metrics[k].values = NULL;
    w.metrics[k].samples = NULL;
  }
  char why[256];
  cr_assert_eq(td_compare(&w, &r, why, sizeof why), 0, "%s", why);
  cairn__view_free(&w);
  cairn__view_free(&r);
}

Test(h5_run, finalize_converts_the_wal_then_removes_it) {
  char *dir = tempdir();
  make_wal(dir);
  cairn_run_view fromwal, fromh5;
  cr_assert_eq(cairn__view_from_wal(dir, &fromwal, NULL, NULL, NULL), CAIRN_OK);
  cairn_run_file *files;
  size_t n;
  cairn_run_state st;
  char err[1024];
  cr_assert_eq(cairn__run_list_files(dir, &files, &n, &st, err, sizeof err), CAIRN_OK);
  cr_assert_eq(st, CAIRN_RUN_WAL_ONLY);
  cairn__run_files_free(files, n);

  cr_assert_eq(cairn__h5_finalize_run(dir, 0, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(cairn__run_list_files(dir, &files, &n, &st, err, sizeof err), CAIRN_OK);
  cr_assert_eq(st, CAIRN_RUN_H5);
  cr_assert_eq(n, 1);
  cr_assert_eq(files[0].kind, CAIRN_FILE_H5);
  cr_assert(strstr(files[0].path, "/run-g000000.h5"));
  cairn__run_files_free(files, n);

  cairn_run_report rep = {0};
  cr_assert_eq(cairn__run_open(dir, &fromh5, &rep), CAIRN_OK);
  cr_assert_eq(rep.h5_files, 1);
  cr_assert_eq(fromh5.source, CAIRN_VIEW_FROM_H5);
  char why[256];
  cr_assert_eq(td_compare(&fromwal, &fromh5, why, sizeof why), 0, "%s", why);
  cr_assert_eq(fromh5.naggregators, 1);
  cr_assert_eq(cairn__h5_finalize_run(dir, 0, err, sizeof err), CAIRN_ENOTFOUND);
  cairn__view_free(&fromwal);
  cairn__view_free(&fromh5);
}

/* A log too large for the memory the conversion may use is not converted:
 * cairn_finalize says so and how to convert it, the log stays whole, and
 * a conversion with more memory later gives the complete run. */
Test(h5_run, finalize_over_the_conversion_memory_keeps_the_log) {
  char *dir = tempdir();
  setenv("CAIRN_RUN_DIR", dir, 1);
  setenv("CAIRN_MPI_ENABLED", "false", 1);
  setenv("CAIRN_WAL_CONVERT_MEMORY", "64K", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int ids[20];
  for (int k = 0; k < 20; k++) {
    char name[16];
    snprintf(name, sizeof name, "m%02d", k);
    ids[k] = cairn_metric_id(name);
  }
  /* 20 metrics x 2000 steps: about 1 MB of cells, far above 64 KiB */
  for (int64_t s = 0; s < 2000; s++) {
    cairn_step(s);
    for (int k = 0; k < 20; k++)
      cairn_metric(ids[k], (double)(s * 20 + k));
    if (s % 100 == 99)
      cairn_flush(); /* many blocks: the bound is checked between blocks */
  }
  int rc = cairn_finalize();
  unsetenv("CAIRN_WAL_CONVERT_MEMORY");
  cr_assert_eq(rc, CAIRN_EIO, "%s", cairn_strerror(rc));
  const char *msg = cairn_last_error();
  cr_assert(strstr(msg, "too large to convert") && strstr(msg, "wal.convert_memory") &&
                strstr(msg, "cairn merge"),
            "%s", msg);
  cairn_run_info info;
  cr_assert_eq(cairn_get_run_info(&info), CAIRN_OK);
  cairn_run_file *files;
  size_t n;
  cairn_run_state st;
  char err[1024] = "";
  cr_assert_eq(cairn__run_list_files(info.run_dir, &files, &n, &st, err, sizeof err), CAIRN_OK);
  cr_assert_eq(st, CAIRN_RUN_WAL_ONLY, "no run file, the log is kept");
  cairn__run_files_free(files, n);

  /* Stopped the same way when called directly, with what it held. */
  cr_assert_eq(cairn__h5_finalize_run(info.run_dir, 65536, err, sizeof err), CAIRN_ENOMEM);
  cr_assert(strstr(err, info.run_dir) && strstr(err, "MiB"), "%s", err);
  cr_assert_eq(cairn__h5_convert_memory(12345), 12345);
  /* The automatic bound: 80% of what this Linux machine reports available. */
  uint64_t avail = cairn__memory_available();
  cr_assert_gt(avail, 1u << 20, "MemAvailable or the cgroup headroom could not be read");
  uint64_t autob = cairn__h5_convert_memory(0);
  cr_assert(autob > avail / 2 && autob < avail, "auto %llu of %llu", (unsigned long long)autob,
            (unsigned long long)avail);

  /* With room: everything logged is there. */
  cr_assert_eq(cairn__h5_finalize_run(info.run_dir, 0, err, sizeof err), CAIRN_OK, "%s", err);
  cairn_run_view v;
  cairn_run_report rep = {0};
  cr_assert_eq(cairn__run_open(info.run_dir, &v, &rep), CAIRN_OK);
  cr_assert_eq(rep.h5_files, 1);
  cr_assert_eq(v.nmetrics, 20);
  for (int k = 0; k < 20; k++) {
    cr_assert_eq(v.metrics[k].nsteps, 2000);
    for (size_t i = 0; i < 2000; i += 397)
      cr_assert_eq(v.metrics[k].values[i], (double)(i * 20 + (size_t)k));
  }
  cr_assert_eq(v.acct[0].logged, 40000);
  cr_assert_eq(v.acct[0].stored, 40000);
  cairn__view_free(&v);
}

/* Resident memory (VmRSS, bytes) and its peak (VmHWM). */
static void rss_now(uint64_t *rss, uint64_t *hwm) {
  FILE *f = fopen("/proc/self/status", "r");
  cr_assert_not_null(f);
  char line[256];
  unsigned long long kb;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
      *rss = kb * 1024;
    if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
      *hwm = kb * 1024;
  }
  fclose(f);
}

/* The conversion at cairn_finalize frees what it used: the application is
 * not left holding the run's size in malloc's free lists afterwards. */
Test(h5_run, finalize_gives_the_conversion_memory_back) {
#if defined(__SANITIZE_ADDRESS__)
  cr_skip_test("AddressSanitizer keeps freed memory in its quarantine");
#endif
  char *dir = tempdir();
  setenv("CAIRN_RUN_DIR", dir, 1);
  setenv("CAIRN_MPI_ENABLED", "false", 1);
  uint64_t rss0 = 0, hwm0 = 0, rss1 = 0, hwm1 = 0;
  rss_now(&rss0, &hwm0);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  enum { M = 500, S = 8000 }; /* 4 M samples: about 100 MB of cells */
  int ids[M];
  for (int k = 0; k < M; k++) {
    char name[16];
    snprintf(name, sizeof name, "w%03d", k);
    ids[k] = cairn_metric_id(name);
  }
  for (int64_t s = 0; s < S; s++) {
    cairn_step(s);
    for (int k = 0; k < M; k++)
      cairn_metric(ids[k], (double)s + k);
    if (s % 500 == 499)
      cairn_flush();
  }
  cr_assert_eq(cairn_finalize(), CAIRN_OK, "%s", cairn_last_error());
  rss_now(&rss1, &hwm1);
  cr_assert_gt(hwm1, hwm0 + (64u << 20), "the conversion should have needed memory");
  cr_assert_lt(rss1, rss0 + (48u << 20), "after finalize %llu MB resident, %llu before, peak %llu",
               (unsigned long long)(rss1 >> 20), (unsigned long long)(rss0 >> 20),
               (unsigned long long)(hwm1 >> 20));
}

Test(h5_run, finalize_of_the_real_runtime_log) {
  char *dir = tempdir();
  setenv("CAIRN_RUN_DIR", dir, 1);
  setenv("CAIRN_MPI_ENABLED", "false", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int loss = cairn_metric_id("loss/train");
  cairn_param_double("lr", 0.01);
  for (int64_t s = 0; s < 50; s++) {
    cairn_step(s);
    cairn_metric(loss, 1.0 / (double)(s + 1));
    cairn_metric(loss, 3.0 / (double)(s + 1));
  }
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cairn_run_info info;
  cr_assert_eq(cairn_get_run_info(&info), CAIRN_OK);
  char err[1024] = "";
  int rc = cairn__h5_finalize_run(info.run_dir, 0, err, sizeof err);
  /* The lead's cairn_finalize may already convert the log itself. */
  cr_assert(rc == CAIRN_OK || rc == CAIRN_ENOTFOUND, "%s", err);
  cairn_run_view v;
  cairn_run_report rep = {0};
  cr_assert_eq(cairn__run_open(info.run_dir, &v, &rep), CAIRN_OK);
  cr_assert_eq(rep.h5_files, 1);
  long k = cairn__view_metric_find(&v, "loss/train", 10);
  cr_assert_geq(k, 0);
  cr_assert_eq(v.metrics[k].nsteps, 50);
  for (size_t i = 0; i < 50; i++) {
    cr_assert_eq(v.metrics[k].values[i], 2.0 / (double)(i + 1));
    cr_assert_eq(v.metrics[k].samples[i], 2);
  }
  cr_assert_eq(v.nmarks, 50);
  cr_assert_eq(cairn__view_param_last(&v, "lr", -1)->f64, 0.01);
  cr_assert_eq(v.acct[0].logged, v.acct[0].stored + v.acct[0].dropped);
  cr_assert_eq(v.acct[0].logged, 100);
  cairn__view_free(&v);
}

/* Cuts `bytes` off the end of a file. */
static void chop(const char *path, off_t bytes) {
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(truncate(path, st.st_size - bytes), 0);
}

static char *first_wal(const char *dir) {
  char **p;
  size_t n;
  char err[256];
  cr_assert_eq(cairn__run_list_wal(dir, &p, &n, err, sizeof err), CAIRN_OK);
  cr_assert_geq(n, 1);
  char *s = strdup(p[0]);
  cairn__run_free_paths(p, n);
  return s;
}

Test(h5_run, finalize_keeps_a_damaged_wal) {
  char *dir = tempdir();
  make_wal(dir);
  char *seg = first_wal(dir);
  chop(seg, 5); /* tear the last block */
  char err[1024];
  cr_assert_eq(cairn__h5_finalize_run(dir, 0, err, sizeof err), CAIRN_ECORRUPT);
  cr_assert(strstr(err, "torn tail"), "%s", err);
  cr_assert_eq(access(seg, F_OK), 0, "the damaged log must be kept");
  cairn_run_file *files;
  size_t n;
  cairn_run_state st;
  cr_assert_eq(cairn__run_list_files(dir, &files, &n, &st, err, sizeof err), CAIRN_OK);
  cr_assert_eq(st, CAIRN_RUN_BOTH);
  cairn__run_files_free(files, n);
  free(seg);
}

Test(h5_crash, wal_only_run_with_torn_tail_reads_back_its_intact_part) {
  char *dir = tempdir();
  make_wal(dir);
  char *seg = first_wal(dir);
  chop(seg, 5);
  cairn_run_view v;
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__run_open(dir, &v, &rep), CAIRN_OK);
  cr_assert_eq(rep.wal.torn_tails, 1);
  cr_assert_eq(rep.wal.blocks, 2);
  cr_assert(has_msg(&m, "torn tail"), "%s", m.msgs[0]);
  cr_assert(has_msg(&m, seg), "messages name the file");
  cr_assert_eq(v.source, CAIRN_VIEW_FROM_WAL);
  /* blocks 1 and 2 survive: step 3 of rank 0 without its late part */
  long k = cairn__view_metric_find(&v, "loss", 4);
  cr_assert_eq(v.metrics[k].values[0], 1.5);
  cr_assert_eq(v.metrics[k].values[1], 0.25);
  cr_assert_eq(v.acct[0].logged, 3, "counters of the last intact block");
  cairn__view_free(&v);
  free(seg);
}

Test(h5_crash, truncated_h5_names_the_file_and_keeps_the_intact_part) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  write_world(path, 4, NULL);
  chop(path, 64);
  cairn_run_view v;
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__view_from_h5(path, &v, &rep), CAIRN_ETRUNCATED);
  cr_assert(has_msg(&m, path));
  cr_assert(has_msg(&m, "truncated: the file has"), "%s", m.msgs[0]);
  /* tables and identity were written first and survive */
  cr_assert_eq(v.ncols, 4, "%s | %s | %s", m.msgs[0], m.msgs[1], m.msgs[2]);
  cr_assert_eq(v.nparams, 17);
  cr_assert_eq(v.nmarks, TD_STEPS);
  cr_assert_eq(v.format_version, CAIRN_H5_FORMAT_VERSION);
  cr_assert_geq(v.nmetrics, 1);
  cr_assert_eq(rep.h5_bad, 1);
  cairn__view_free(&v);

  /* Through cairn__run_open: what could be read is returned, and said. */
  msgs m2 = {0};
  cairn_run_report rep2 = {.fn = collect, .ctx = &m2};
  cr_assert_eq(cairn__run_open(dir, &v, &rep2), CAIRN_OK);
  cr_assert_eq(v.ncols, 4);
  cr_assert(has_msg(&m2, "truncated"));
  cairn__view_free(&v);
}

Test(h5_crash, foreign_and_future_files_are_named) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  FILE *f = fopen(path, "w");
  fputs("step,loss\n0,1.5\n", f);
  fclose(f);
  cairn_run_view v;
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__view_from_h5(path, &v, &rep), CAIRN_EFOREIGN);
  cr_assert(has_msg(&m, path) && has_msg(&m, "not an HDF5 file"), "%s", m.msgs[0]);
  cr_assert_eq(cairn__run_open(dir, &v, &rep), CAIRN_EFOREIGN);

  /* HDF5, but not cairn's */
  hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  m.n = 0;
  cr_assert_eq(cairn__view_from_h5(path, &v, &rep), CAIRN_EFOREIGN);
  cr_assert(has_msg(&m, "not a cairn run file"), "%s", m.msgs[0]);

  /* a later format version */
  write_world(path, 2, NULL);
  h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t a = H5Aopen(h, "cairn_format_version", H5P_DEFAULT);
  unsigned next = CAIRN_H5_FORMAT_VERSION + 1;
  H5Awrite(a, H5T_NATIVE_UINT, &next);
  H5Aclose(a);
  H5Fclose(h);
  m.n = 0;
  cr_assert_eq(cairn__view_from_h5(path, &v, &rep), CAIRN_EVERSION);
  cr_assert(has_msg(&m, "format version 3 is not supported"), "%s", m.msgs[0]);
}

Test(h5_crash, corrupt_chunk_loses_only_that_dataset) {
  char *dir = tempdir();
  char path[512];
  snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
  write_world(path, 4, NULL);
  /* Find the stored chunk of /metrics/2/values and flip bytes inside it. */
  hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(h, "/metrics/2/values", H5P_DEFAULT);
  hid_t sp = H5Dget_space(d);
  haddr_t addr;
  hsize_t size;
  hsize_t off[2] = {0, 0};
  unsigned mask;
  cr_assert_geq(H5Dget_chunk_info_by_coord(d, off, &mask, &addr, &size), 0);
  H5Sclose(sp);
  H5Dclose(d);
  H5Fclose(h);
  int fd = open(path, O_RDWR);
  char junk[16];
  memset(junk, 0x5a, sizeof junk);
  cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)(addr + size / 2)), (ssize_t)sizeof junk);
  close(fd);
  cairn_run_view v;
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__view_from_h5(path, &v, &rep), CAIRN_OK);
  cr_assert_eq(rep.lost_datasets, 1);
  cr_assert(has_msg(&m, "/metrics/2/values: cannot be read"), "%s", m.msgs[0]);
  /* statistics of the damaged metric survive; detail is dropped as a whole */
  int32_t ranks[4] = {0, 1, 2, 3};
  cairn_run_view w;
  td_view(&w, ranks, 4, 4);
  cr_assert_eq(v.metrics[2].sum[7], w.metrics[2].sum[7]);
  cr_assert_null(v.metrics[0].values);
  cairn__view_free(&v);
  cairn__view_free(&w);
}

Test(h5_run, leftover_temporary_is_ignored_and_reported) {
  char *dir = tempdir();
  make_wal(dir);
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s/.run-g000000.h5.tmp", dir);
  FILE *f = fopen(tmp, "w");
  fputs("half", f);
  fclose(f);
  cairn_run_file *files;
  size_t n;
  cairn_run_state st;
  char err[256];
  cr_assert_eq(cairn__run_list_files(dir, &files, &n, &st, err, sizeof err), CAIRN_OK);
  cr_assert_eq(st, CAIRN_RUN_WAL_ONLY);
  cr_assert_eq(n, 2);
  cr_assert_eq(files[0].kind, CAIRN_FILE_H5_TMP);
  cr_assert_eq(files[1].kind, CAIRN_FILE_WAL);
  cairn__run_files_free(files, n);
  cairn_run_view v;
  msgs m = {0};
  cairn_run_report rep = {.fn = collect, .ctx = &m};
  cr_assert_eq(cairn__run_open(dir, &v, &rep), CAIRN_OK);
  cr_assert_eq(rep.tmp_files, 1);
  cr_assert(has_msg(&m, tmp));
  cr_assert_eq(v.ncols, 2);
  cairn__view_free(&v);
}

Test(h5_run, group_files_and_an_unconverted_group_merge_into_one_view) {
  char *dir = tempdir();
  /* group 0 holds ranks 0-1 and group 1 ranks 3-4 as HDF5; rank 2's group
   * crashed and left only its WAL: here the hand-made log of ranks 0-1 is
   * used as "rank 2", so build it under another rank by source. */
  int32_t g0[] = {0, 1}, g1[] = {3, 4}, all[] = {0, 1, 3, 4};
  cairn_run_view a, b, whole, r;
  td_view(&a, g0, 2, 5);
  td_view(&b, g1, 2, 5);
  td_view(&whole, all, 4, 5);
  char p0[512], p1[512], err[512];
  snprintf(p0, sizeof p0, "%s/run-g000000.h5", dir);
  snprintf(p1, sizeof p1, "%s/run-g000001.h5", dir);
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  cr_assert_eq(cairn__h5_write(&a, p0, &o, err, sizeof err), CAIRN_OK);
  o.group = 1;
  cr_assert_eq(cairn__h5_write(&b, p1, &o, err, sizeof err), CAIRN_OK);
  walw x;
  wal_start(&x, dir, 2);
  const char *nm[] = {"zeta"};
  uint32_t id[] = {0};
  put_run(&x.b, 2, 5);
  cairn__rec_put_names(&x.b, 1, id, nm);
  cairn_metric_agg ag[] = {{0, 0, 1, 9.0, 9.0, 9.0}};
  cairn__rec_put_metrics(&x.b, 1, ag);
  wal_block(&x);
  wal_end(&x);
  cairn_run_report rep = {0};
  cr_assert_eq(cairn__run_open(dir, &r, &rep), CAIRN_OK);
  cr_assert_eq(rep.h5_files, 2);
  cr_assert_eq(rep.wal_ranks, 1);
  cr_assert_eq(r.source, CAIRN_VIEW_FROM_H5 | CAIRN_VIEW_FROM_WAL);
  cr_assert_eq(r.ncols, 5);
  cr_assert_eq(r.col_rank[2], 2);
  long z = cairn__view_metric_find(&r, "zeta", 4);
  cr_assert_geq(z, 0);
  cr_assert_eq(r.metrics[z].values[2], 9.0);
  cr_assert(isnan(r.metrics[z].values[0]));
  cr_assert_eq(r.metrics[z].missing, 4);
  /* Every other metric equals the one-file view of ranks 0,1,3,4 on the
   * columns those ranks hold (stats differ only by summation order, and
   * these sums are exact: compare counts, min/max and their ranks). */
  for (size_t k = 0; k < whole.nmetrics; k++) {
    long i = cairn__view_metric_find(&r, whole.metrics[k].name, whole.metrics[k].name_len);
    cr_assert_geq(i, 0);
    const cairn_view_metric *x1 = &whole.metrics[k], *y1 = &r.metrics[i];
    cr_assert_eq(x1->nsteps, y1->nsteps);
    for (size_t s = 0; s < x1->nsteps; s++) {
      cr_assert_eq(x1->count[s], y1->count[s], "%s step %lld: %u vs %u", x1->name, (long long)x1->step[s], x1->count[s], y1->count[s]);
      cr_assert(td_same_f64(x1->min[s], y1->min[s]));
      cr_assert_eq(x1->rank_max[s], y1->rank_max[s]);
      cr_assert(fabs(x1->sum[s] - y1->sum[s]) <= 1e-12 * fabs(x1->sum[s]) || td_same_f64(x1->sum[s], y1->sum[s]));
      for (size_t c = 0; c < 4; c++) {
        size_t rc = c < 2 ? c : c + 1;
        cr_assert(td_same_f64(x1->values[s * 4 + c], y1->values[s * 5 + rc]));
      }
    }
  }
  cr_assert_eq(r.nparams, a.nparams + b.nparams);
  cairn__view_free(&a);
  cairn__view_free(&b);
  cairn__view_free(&whole);
  cairn__view_free(&r);
}

/* A format-1 file (before typed properties): its lineage tables lack the
 * v2 columns, which read as "". */
typedef struct {
  uint64_t id;
  uint8_t kind;
  int32_t rank;
  uint64_t size, t_ns;
  char *uri, *hash;
} v1_artifact;
typedef struct {
  uint64_t id, context_id;
  int32_t rank;
  uint64_t start_ns, end_ns;
  char *name, *properties;
} v1_execution;

static void replace_table(hid_t f, const char *name, hid_t t, const void *row) {
  cr_assert_geq(H5Ldelete(f, name, H5P_DEFAULT), 0);
  hsize_t one = 1;
  hid_t sp = H5Screate_simple(1, &one, NULL);
  hid_t d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  cr_assert_geq(d, 0);
  cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, row), 0);
  H5Dclose(d);
  H5Sclose(sp);
}

Test(h5_file, format_1_files_are_read_with_empty_v2_columns) {
  char path[512];
  snprintf(path, sizeof path, "%s/v1.h5", tempdir());
  write_world(path, 2, NULL);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  hid_t s = H5Tcopy(H5T_C_S1);
  H5Tset_size(s, H5T_VARIABLE);
  hid_t ta = H5Tcreate(H5T_COMPOUND, sizeof(v1_artifact));
  H5Tinsert(ta, "id", HOFFSET(v1_artifact, id), H5T_NATIVE_UINT64);
  H5Tinsert(ta, "kind", HOFFSET(v1_artifact, kind), H5T_NATIVE_UINT8);
  H5Tinsert(ta, "rank", HOFFSET(v1_artifact, rank), H5T_NATIVE_INT32);
  H5Tinsert(ta, "size", HOFFSET(v1_artifact, size), H5T_NATIVE_UINT64);
  H5Tinsert(ta, "t_ns", HOFFSET(v1_artifact, t_ns), H5T_NATIVE_UINT64);
  H5Tinsert(ta, "uri", HOFFSET(v1_artifact, uri), s);
  H5Tinsert(ta, "hash", HOFFSET(v1_artifact, hash), s);
  v1_artifact a = {41, CAIRN_H5_ARTIFACT_MODEL, 1, 1000, 5, "ckpt.pt", "sha256:ab"};
  replace_table(f, CAIRN_H5_L_ARTIFACTS, ta, &a);
  hid_t te = H5Tcreate(H5T_COMPOUND, sizeof(v1_execution));
  H5Tinsert(te, "id", HOFFSET(v1_execution, id), H5T_NATIVE_UINT64);
  H5Tinsert(te, "context_id", HOFFSET(v1_execution, context_id), H5T_NATIVE_UINT64);
  H5Tinsert(te, "rank", HOFFSET(v1_execution, rank), H5T_NATIVE_INT32);
  H5Tinsert(te, "start_ns", HOFFSET(v1_execution, start_ns), H5T_NATIVE_UINT64);
  H5Tinsert(te, "end_ns", HOFFSET(v1_execution, end_ns), H5T_NATIVE_UINT64);
  H5Tinsert(te, "name", HOFFSET(v1_execution, name), s);
  H5Tinsert(te, "properties", HOFFSET(v1_execution, properties), s);
  v1_execution e = {7, 3, 0, 10, 20, "epoch-0", "{\"lr\": 0.1}"};
  replace_table(f, CAIRN_H5_L_EXECUTIONS, te, &e);
  hid_t at = H5Aopen(f, CAIRN_H5_ATTR_FORMAT_VERSION, H5P_DEFAULT);
  unsigned one = 1;
  H5Awrite(at, H5T_NATIVE_UINT, &one);
  H5Aclose(at);
  H5Tclose(ta);
  H5Tclose(te);
  H5Tclose(s);
  H5Fclose(f);

  cairn_run_view v;
  cairn__view_init(&v);
  cairn_run_report rep = {0};
  cr_assert_eq(cairn__view_from_h5(path, &v, &rep), CAIRN_OK);
  cr_assert_eq(v.format_version, 1);
  cr_assert_eq(rep.lost_datasets, 0);
  cr_assert_eq(v.nartifacts, 1);
  cr_assert_eq(v.artifacts[0].id, 41);
  cr_assert_eq(v.artifacts[0].size, 1000);
  cr_assert_str_eq(v.artifacts[0].uri, "ckpt.pt");
  cr_assert_str_eq(v.artifacts[0].hash, "sha256:ab");
  cr_assert_str_eq(v.artifacts[0].properties, "");
  cr_assert_eq(v.nexecutions, 1);
  cr_assert_eq(v.executions[0].end_ns, 20);
  cr_assert_str_eq(v.executions[0].name, "epoch-0");
  cr_assert_str_eq(v.executions[0].properties, "{\"lr\": 0.1}");
  cr_assert_str_eq(v.executions[0].type, "");
  cr_assert_str_eq(v.executions[0].command, "");
  cairn__view_free(&v);
}
