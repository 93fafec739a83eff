/*
 * test_view_builder.c — the two pieces that make MPI_Finalize fast:
 *  - the run view built block by block (what an aggregator keeps while it
 *    logs) equals the view read back from the same blocks' log, and both
 *    equal a recomputation made here from the records themselves, for a
 *    stream with late ranks, ranks first seen out of order, steps out of
 *    order, several parts of one (step, rank) in different blocks, and a
 *    metric named but never logged, with enough cells to be finished on
 *    several threads;
 *  - chunks the serial writer compresses itself and writes with
 *    H5Dwrite_chunk are byte for byte what HDF5's filter pipeline writes
 *    (shuffle + zstd), for 8-, 4-byte and converted float32 elements, 1-D
 *    and 2-D datasets, edge chunks and chunks split across columns.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "cairn.h"
#include "h5/h5_chunks.h"
#include "h5/h5_format.h"
#include "h5/h5_layout.h"
#include "h5/h5_schema.h"
#include "h5/h5_writer.h"
#include "h5_testdata.h"
#include "test_tmpdir.h"
#include "h5zstd/h5zstd.h"
#include "run_view.h"
#include "wal.h"
#include "wal_format.h"
#include "wal_records.h"

static char *tempdir(void) {
  char *d = tt_tempdir("cairn-vb");
  cr_assert_not_null(d);
  return d;
}

/* ---------------------------------------------------------------------- */
/* Builder == log == recomputation                                         */
/* ---------------------------------------------------------------------- */

#define NR 7       /* ranks served: 3, 9, 4, 12, 5, 10 and the late 1 */
#define NM 4       /* "m0".."m3"; "m3" is named and never logged      */
#define NS 3000    /* steps 0..2999, logged in windows                 */

static const uint32_t ranks[NR] = {3, 9, 4, 12, 5, 10, 1};

/* Reference: per (metric, step, rank) the parts in log order. */
typedef struct {
  double sum;
  uint32_t count;
} ref_cell;
static ref_cell ref[NM][NS][13];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

typedef struct {
  cairn_wal_writer *w;
  cairn_view_builder *vb;
  cairn_buf b;
} sink;

static void emit(sink *s) {
  cr_assert(!s->b.failed);
  cr_assert_eq(cairn__wal_append(s->w, CAIRN_WAL_BLOCK_DATA, s->b.data, s->b.len), CAIRN_OK);
  char err[256] = "";
  cr_assert_eq(cairn__view_builder_add(s->vb, 3, s->b.data, s->b.len, err, sizeof err),
               CAIRN_OK, "%s", err);
  cairn__buf_reset(&s->b);
}

/* A log of writer 3 in dir and a builder, fed the same blocks by emit(). */
static void sink_open(sink *s, const char *dir) {
  cairn_wal_options o = {.dir = dir, .rank = 3, .compression_level = 1, .segment_bytes = 1 << 20};
  char err[512];
  cr_assert_eq(cairn__wal_open(&s->w, &o, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(cairn__view_builder_new(&s->vb), CAIRN_OK);
}

/* Closes the log; the builder's view and the view read back from the log,
 * which must be equal. */
static void sink_views(sink *s, const char *dir, cairn_run_view *built,
                       cairn_run_view *logged) {
  cr_assert_eq(cairn__wal_close(s->w), CAIRN_OK);
  cairn__buf_free(&s->b);
  cr_assert_eq(cairn__view_builder_finish(s->vb, built), CAIRN_OK);
  cr_assert_eq(cairn__view_from_wal_of(dir, 3, logged, NULL), CAIRN_OK);
  char why[512];
  cr_assert_eq(td_compare(built, logged, why, sizeof why), 0, "%s", why);
}

/* 1: about one sample in 50 is missing (a step row may then be created
 * below the last one: rows out of step order). */
static int gaps = 1;

/* One block of rank r: steps [s0, s1) in the given order of metrics. Ids are
 * per process (rank r calls metric k id (k + r) % NM). */
static void block(sink *s, uint32_t r, int64_t s0, int64_t s1, int first) {
  cairn__rec_put_source(&s->b, r);
  if (first) {
    cairn_rec_run run = {.rank = r, .nranks = 13, .pid = 100 + r, .start_ns = 1000 + r,
                         .hostname = "node", .hostname_len = 4, .version = "t",
                         .version_len = 1};
    cairn__rec_put_run(&s->b, &run);
    const char *names[NM] = {"m0", "m1", "m2", "m3"};
    uint32_t ids[NM];
    for (uint32_t k = 0; k < NM; k++)
      ids[k] = (k + r) % NM;
    cairn__rec_put_names(&s->b, NM, ids, names);
  }
  for (int64_t st = s0; st < s1; st++) {
    cairn_rec_step mark = {st, (uint64_t)(st * 1000 + r), 0};
    cairn__rec_put_steps(&s->b, 1, &mark);
    for (uint32_t k = 0; k < NM - 1; k++) {
      if (gaps && (next_u32() % 50) == 0)
        continue; /* a missing sample */
      uint32_t n = 1 + next_u32() % 3;
      double sum = (double)(next_u32() % 100000) / 7.0 - 5000.0;
      cairn_metric_agg a = {st, (k + r) % NM, n, sum, sum, sum};
      cairn__rec_put_metrics(&s->b, 1, &a);
      ref_cell *c = &ref[k][st][r];
      c->sum = c->count ? c->sum + sum : sum;
      c->count += n;
    }
  }
  emit(s);
}

/* The stream of the first test: late ranks, ranks first seen out of
 * order, steps out of order, several parts of one (step, rank), a metric
 * named and never logged; then enough cells to finish on several threads. */
static void feed_mixed(sink *s) {
  /* Windows of 20 steps; ranks 0..5 of the list in a rotating order; the
   * late rank joins at step 200; window 100..120 comes after 120..140
   * (steps out of order); window 40..60 of rank 9 is sent twice (several
   * parts of one (step, rank)). */
  int seen[NR] = {0};
  int64_t windows[] = {0, 20, 40, 60, 80, 120, 100, 140, 160, 180, 200, 220, 240, 260, 280};
  for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
    for (size_t i = 0; i < NR; i++) {
      size_t j = (i + w) % NR;
      if (j == NR - 1 && windows[w] < 200)
        continue;
      block(s, ranks[j], windows[w], windows[w] + 20, !seen[j]);
      seen[j] = 1;
      if (ranks[j] == 9 && windows[w] == 40)
        block(s, ranks[j], 40, 60, 0);
    }
  }
  /* then in order, enough cells (63k) to be finished on several threads */
  for (int64_t w0 = 300; w0 < NS; w0 += 100)
    for (size_t j = 0; j < NR; j++)
      block(s, ranks[j], w0, w0 + 100, 0);
}

Test(view_builder, equals_the_log_and_a_recomputation) {
  char *dir = tempdir();
  sink s = {0};
  sink_open(&s, dir);
  feed_mixed(&s);
  cr_assert_gt(cairn__view_builder_bytes(s.vb), (size_t)(NS * NR * 12));
  cairn_run_view built, logged;
  sink_views(&s, dir, &built, &logged);

  /* Against the recomputation. */
  cr_assert_eq(built.ncols, NR);
  const int32_t want_cols[NR] = {1, 3, 4, 5, 9, 10, 12};
  for (size_t c = 0; c < NR; c++)
    cr_assert_eq(built.col_rank[c], want_cols[c]);
  cr_assert_eq(built.nmetrics, NM);
  cr_assert_eq(built.metrics[3].nsteps, 0, "m3 was named, never logged");
  for (size_t k = 0; k < NM - 1; k++) {
    const cairn_view_metric *m = &built.metrics[k];
    cr_assert_eq(m->nsteps, NS, "%s", m->name);
    for (size_t i = 0; i < NS; i++) {
      cr_assert_eq(m->step[i], (int64_t)i, "steps ascending");
      for (size_t c = 0; c < NR; c++) {
        const ref_cell *rc = &ref[k][i][want_cols[c]];
        double v = m->values[i * NR + c];
        cr_assert_eq(m->samples[i * NR + c], rc->count, "%s step %zu rank %d", m->name, i,
                     want_cols[c]);
        if (rc->count)
          cr_assert_eq(v, rc->sum / rc->count, "%s step %zu rank %d", m->name, i,
                       want_cols[c]);
        else
          cr_assert(isnan(v));
      }
    }
  }
  /* the late rank has no samples before step 200, markers only from 200 */
  cr_assert_eq(built.metrics[0].samples[199 * NR + 0], 0);
  cr_assert_eq(built.mark_time[199 * NR + 0], 0);
  cr_assert_eq(built.mark_time[200 * NR + 0], 200 * 1000 + 1);
  cairn__view_free(&built);
  cairn__view_free(&logged);
}

/* The usual MPI case: steps come in order, and the view takes the
 * builder's cell arrays. The aggregator's n ranks (`order`, the order they
 * first show up in; `want_cols`, ascending) are all seen before the rows
 * grow. With n not a power of two the rows were allocated wider than the
 * view and are packed down in place; out of rank order, their columns are
 * put in rank order on the way. */
static size_t ordered_steps(const uint32_t *order, const int32_t *want_cols, size_t n,
                            size_t hint) {
  char *dir = tempdir();
  sink s = {0};
  sink_open(&s, dir);
  if (hint)
    cairn__view_builder_expect_ranks(s.vb, hint);
  memset(ref, 0, sizeof ref);
  gaps = 0;
  for (int64_t w0 = 0; w0 < 2000; w0 += 50)
    for (size_t j = 0; j < n; j++)
      block(&s, order[j], w0, w0 + 50, w0 == 0);
  size_t bytes = cairn__view_builder_bytes(s.vb);
  cairn_run_view built, logged;
  sink_views(&s, dir, &built, &logged);
  cr_assert_eq(built.ncols, n, "ncols %zu", built.ncols);
  for (size_t c = 0; c < n; c++)
    cr_assert_eq(built.col_rank[c], want_cols[c]);
  for (size_t k = 0; k < NM - 1; k++) {
    const cairn_view_metric *m = &built.metrics[k];
    cr_assert_eq(m->nsteps, 2000, "%s", m->name);
    for (size_t i = 0; i < 2000; i++) {
      double sum = 0, mn = INFINITY, mx = -INFINITY;
      uint32_t cnt = 0;
      for (size_t c = 0; c < n; c++) {
        const ref_cell *rc = &ref[k][i][want_cols[c]];
        double v = m->values[i * n + c];
        cr_assert_eq(m->samples[i * n + c], rc->count, "%s step %zu rank %d", m->name, i,
                     want_cols[c]);
        if (!rc->count) {
          cr_assert(isnan(v));
          continue;
        }
        double want = rc->sum / rc->count;
        cr_assert_eq(v, want, "%s step %zu rank %d", m->name, i, want_cols[c]);
        sum += want;
        mn = want < mn ? want : mn;
        mx = want > mx ? want : mx;
        cnt++;
      }
      cr_assert_eq(m->count[i], cnt);
      if (cnt) {
        cr_assert_float_eq(m->sum[i], sum, 1e-9 * (1 + fabs(sum)));
        cr_assert_eq(m->min[i], mn);
        cr_assert_eq(m->max[i], mx);
      }
    }
  }
  cairn__view_free(&built);
  cairn__view_free(&logged);
  return bytes;
}

Test(view_builder, ranks_first_seen_out_of_order_with_ordered_steps) {
  const uint32_t order[4] = {7, 2, 3, 0}; /* 3 is also the writer */
  const int32_t want_cols[4] = {0, 2, 3, 7};
  ordered_steps(order, want_cols, 4, 0);
}

Test(view_builder, six_ranks_out_of_order_rows_packed_in_place) {
  const uint32_t order[6] = {11, 2, 3, 8, 0, 5}; /* rows of 8 cells, 6 used */
  const int32_t want_cols[6] = {0, 2, 3, 5, 8, 11};
  ordered_steps(order, want_cols, 6, 0);
}

/* An aggregator tells its builder how many ranks it serves: rows are then
 * that wide from the start (6 cells, not 8), and the view is the same, bit
 * for bit, as the one read back from the log (built without the hint). */
Test(view_builder, told_the_rank_count_rows_are_allocated_that_wide) {
  const uint32_t order[6] = {11, 2, 3, 8, 0, 5};
  const int32_t want_cols[6] = {0, 2, 3, 5, 8, 11};
  size_t doubling = ordered_steps(order, want_cols, 6, 0);
  size_t told = ordered_steps(order, want_cols, 6, 6);
  /* a row is 6 cells of 12 bytes and its step (8), not 8 cells and the
   * step: 80/104 = 0.77; the step markers (the same either way) add to both */
  cr_assert_lt(told, doubling * 0.9, "told 6 ranks: %zu bytes, not told: %zu", told, doubling);
  cr_assert_gt(told, doubling * 0.7, "told 6 ranks: %zu bytes, not told: %zu", told, doubling);
}

/* The hint only shapes allocation: too small, too large or right, with
 * late ranks, steps out of order and several parts of one (step, rank),
 * the view equals the one the log gives. */
Test(view_builder, a_wrong_rank_count_is_only_a_hint) {
  const size_t hints[] = {NR, 3, 8, 20};
  for (size_t h = 0; h < sizeof hints / sizeof hints[0]; h++) {
    char *dir = tempdir();
    sink s = {0};
    sink_open(&s, dir);
    cairn__view_builder_expect_ranks(s.vb, hints[h]);
    memset(ref, 0, sizeof ref);
    gaps = 1;
    feed_mixed(&s);
    cairn_run_view built, logged;
    sink_views(&s, dir, &built, &logged); /* asserts they are equal */
    cr_assert_eq(built.ncols, NR, "hint %zu", hints[h]);
    cairn__view_free(&built);
    cairn__view_free(&logged);
  }
}

Test(view_builder, five_ranks_in_order_rows_packed_in_place) {
  /* the log's writer, 3, is the builder's first column: the lowest rank */
  const uint32_t order[5] = {3, 4, 6, 9, 12}; /* rows of 8 cells, 5 used */
  const int32_t want_cols[5] = {3, 4, 6, 9, 12};
  ordered_steps(order, want_cols, 5, 0);
}

/* Finishing notes whether each metric's values fit float32, so the writer
 * does not read them all once more to find out: integer means do, sevenths
 * do not, and a missing cell (NaN) does not stop a metric from fitting.
 * The file stores the first as float32, the second as float64, and both
 * read back exactly. */
Test(view_builder, finishing_tells_the_writer_which_values_fit_float32) {
  char *dir = tempdir();
  sink s = {0};
  sink_open(&s, dir);
  const char *names[2] = {"exact", "sevenths"};
  const uint32_t ids[2] = {0, 1};
  for (uint32_t r = 3; r <= 5; r += 2) {
    cairn__rec_put_source(&s.b, r);
    cairn_rec_run run = {.rank = r, .nranks = 6, .pid = 100 + r, .start_ns = 1000 + r,
                         .hostname = "node", .hostname_len = 4, .version = "t",
                         .version_len = 1};
    cairn__rec_put_run(&s.b, &run);
    cairn__rec_put_names(&s.b, 2, ids, names);
    for (int64_t st = 0; st < 100; st++) {
      if (!(r == 5 && st == 50)) { /* a missing cell */
        double sum = 2.0 * (double)(st * 1000 + r); /* two samples: an integer mean */
        cairn_metric_agg a = {st, 0, 2, sum, sum, sum};
        cairn__rec_put_metrics(&s.b, 1, &a);
      }
      double x = (double)(st + r) / 7.0;
      cairn_metric_agg b = {st, 1, 1, x, x, x};
      cairn__rec_put_metrics(&s.b, 1, &b);
    }
    emit(&s);
  }
  cairn_run_view built, logged, back;
  sink_views(&s, dir, &built, &logged);
  cr_assert_eq(built.nmetrics, 2);
  cr_assert_eq(built.metrics[0].f32, 2, "integer means fit float32");
  cr_assert(isnan(built.metrics[0].values[50 * 2 + 1]), "rank 5's missing cell");
  cr_assert_eq(built.metrics[1].f32, 1, "sevenths do not");
  char path[4096], err[1024] = "";
  snprintf(path, sizeof path, "%s/f32.h5", dir);
  cr_assert_eq(cairn__h5_write(&built, path, NULL, err, sizeof err), CAIRN_OK, "%s", err);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  const char *dsets[2] = {"/metrics/0/values", "/metrics/1/values"};
  const size_t want[2] = {4, 8};
  for (int i = 0; i < 2; i++) {
    hid_t d = H5Dopen2(f, dsets[i], H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    cr_assert_eq(H5Tget_size(t), want[i], "%s: %zu-byte values", dsets[i], H5Tget_size(t));
    H5Tclose(t);
    H5Dclose(d);
  }
  H5Fclose(f);
  cr_assert_eq(cairn__view_from_h5(path, &back, NULL), CAIRN_OK);
  char why[512];
  cr_assert_eq(td_compare(&back, &built, why, sizeof why), 0, "%s", why);
  cairn__view_free(&back);
  cairn__view_free(&built);
  cairn__view_free(&logged);
}

/* The mixed stream logged in dir and fed to s->vb; *whole is the view read
 * back from the log at once. */
static void mixed_log(sink *s, const char *dir, cairn_run_view *whole) {
  sink_open(s, dir);
  feed_mixed(s);
  cr_assert_eq(cairn__wal_close(s->w), CAIRN_OK);
  cairn__buf_free(&s->b);
  cr_assert_eq(cairn__view_from_wal_of(dir, 3, whole, NULL), CAIRN_OK);
}

/* ---------------------------------------------------------------------- */
/* Lazy counts: a metric has no count array while each cell holds at most  */
/* one sample                                                              */
/* ---------------------------------------------------------------------- */

#define LR 3   /* ranks 3 (the log's writer), 4 and 5; the last joins at step LJ */
#define LS 200 /* steps */
#define LJ 50
enum { L_FULL, L_GAP, L_LATE, L_MULTI, L_ODD, LM };
static const char *const lnames[LM] = {"full", "gap", "late", "multi", "odd"};

static uint64_t bits_of(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static double of_bits(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* The value rank r logs for metric k at step st (distinct per cell). */
static double lval(int k, uint32_t r, int64_t st) { return (double)(k * 100000 + st * 10) + r; }

/* The block of rank 3 + r for steps [s0, s1): every metric once a step, except
 * "gap" (every 7th cell missing), "multi" (three samples a step, as
 * micro-batches) and "odd" (values whose bits matter). */
static void lazy_block(sink *s, uint32_t r, int64_t s0, int64_t s1, int first) {
  cairn__rec_put_source(&s->b, 3 + r);
  if (first) {
    cairn_rec_run run = {.rank = 3 + r, .nranks = 3 + LR, .pid = 7 + r, .start_ns = 1, .hostname = "n",
                         .hostname_len = 1, .version = "t", .version_len = 1};
    cairn__rec_put_run(&s->b, &run);
    uint32_t ids[LM] = {0, 1, 2, 3, 4};
    cairn__rec_put_names(&s->b, LM, ids, lnames);
  }
  for (int64_t st = s0; st < s1; st++) {
    for (int k = 0; k < LM; k++) {
      if (k == L_GAP && (st + r) % 7 == 0)
        continue;
      double v = lval(k, r, st);
      uint32_t n = k == L_MULTI ? 3 : 1;
      if (k == L_ODD) /* the view's empty-cell bits, -0.0, a NaN, then plain */
        v = st == 3 ? of_bits(UINT64_C(0x7ff4c0ffee0dd5ed))
            : st == 4 ? -0.0
            : st == 5 ? NAN
                      : v;
      /* one sample's sum is its value, bit for bit (no arithmetic) */
      cairn_metric_agg a = {st, (uint32_t)k, n, n == 1 ? v : v * n, v, v};
      cairn__rec_put_metrics(&s->b, 1, &a);
    }
  }
  emit(s);
}

/* Opens s on dir and feeds it every rank's blocks of 25 steps; with
 * `late`, the last rank's start at step LJ. */
static void lazy_feed(sink *s, const char *dir, int late) {
  sink_open(s, dir);
  for (int64_t w = 0; w < LS; w += 25)
    for (uint32_t r = 0; r < LR; r++) {
      int64_t from = late && r == LR - 1 ? LJ : 0;
      if (w >= from)
        lazy_block(s, r, w, w + 25, w == from);
    }
}

/* Metrics whose cells all hold one sample share the view's array of ones
 * as their samples; one with empty cells, a second part for a cell that
 * had one, or several samples a step get real counts — and every value,
 * count and missing count is what the samples make them. */
Test(view_builder, lazy_counts_equal_the_samples_logged) {
  char *dir = tempdir();
  sink s = {0};
  lazy_feed(&s, dir, 1);
  /* a second part for one cell of "late", long after it was filled */
  cairn__rec_put_source(&s.b, 3 + 1);
  cairn_metric_agg again = {5, L_LATE, 1, 0.5, 0.5, 0.5};
  cairn__rec_put_metrics(&s.b, 1, &again);
  emit(&s);
  cairn_run_view v, logged;
  sink_views(&s, dir, &v, &logged);
  cr_assert_eq(v.nmetrics, LM);
  cr_assert_eq(v.ncols, LR);
  for (int k = 0; k < LM; k++) {
    const cairn_view_metric *m = &v.metrics[k];
    cr_assert_str_eq(m->name, lnames[k]);
    cr_assert_eq(m->nsteps, LS);
    uint64_t missing = 0;
    for (int64_t st = 0; st < LS; st++)
      for (uint32_t r = 0; r < LR; r++) {
        size_t at = (size_t)st * LR + r;
        uint32_t want = r == LR - 1 && st < LJ             ? 0
                        : k == L_GAP && (st + r) % 7 == 0  ? 0
                        : k == L_LATE && st == 5 && r == 1 ? 2
                        : k == L_MULTI                     ? 3
                                                           : 1;
        cr_assert_eq(m->samples[at], want, "%s step %lld rank %u", m->name, (long long)st, r);
        missing += want == 0;
        double x = m->values[at];
        if (!want) {
          cr_assert(isnan(x), "%s step %lld rank %u: %g where nothing was logged", m->name,
                    (long long)st, r, x);
          continue;
        }
        double y = k == L_LATE && st == 5 && r == 1 ? (lval(k, r, st) + 0.5) / 2
                                                    : lval(k, r, st);
        if (k == L_ODD && st == 3)
          cr_assert_eq(bits_of(x), UINT64_C(0x7ffcc0ffee0dd5ed), "the empty bits, quieted");
        else if (k == L_ODD && st == 4)
          cr_assert(x == 0 && signbit(x), "-0.0 stays -0.0");
        else if (k == L_ODD && st == 5)
          cr_assert(isnan(x));
        else
          cr_assert_eq(x, y, "%s step %lld rank %u: %g, not %g", m->name, (long long)st, r,
                       x, y);
      }
    cr_assert_eq(m->missing, missing, "%s", m->name);
    /* the rank that joined late leaves every metric with empty cells */
    cr_assert_not(m->samples_shared, "%s", m->name);
  }
  cairn__view_free(&v);
  cairn__view_free(&logged);
}

/* With every cell filled once, the metrics share one array of ones. */
Test(view_builder, lazy_counts_full_metrics_share_the_ones) {
  char *dir = tempdir();
  sink s = {0};
  lazy_feed(&s, dir, 0);
  cairn_run_view v, logged;
  sink_views(&s, dir, &v, &logged);
  const cairn_view_metric *full = &v.metrics[L_FULL], *odd = &v.metrics[L_ODD];
  cr_assert(full->samples_shared && odd->samples_shared);
  cr_assert_eq(full->samples, v.ones);
  cr_assert_eq(odd->samples, v.ones);
  cr_assert(v.metrics[L_LATE].samples_shared, "no second part here");
  cr_assert_not(v.metrics[L_GAP].samples_shared);
  cr_assert_not(v.metrics[L_MULTI].samples_shared);
  for (size_t i = 0; i < (size_t)LS * LR; i++)
    cr_assert_eq(full->samples[i], 1);
  cr_assert_eq(full->missing, 0);
  for (size_t i = 0; i < (size_t)LS; i++) {
    cr_assert_eq(full->count[i], LR);
    cr_assert_eq(full->max[i], lval(L_FULL, LR - 1, (int64_t)i));
  }
  /* a metric released alone (as the streamed writer does) leaves the
   * ones to the view */
  cairn__view_metric_release(&v.metrics[L_FULL]);
  cr_assert_eq(odd->samples[LS * LR - 1], 1);
  cairn__view_free(&v);
  cairn__view_free(&logged);
}

/* Values only (what the parallel writer asks of an aggregator's view): the
 * same per-rank values, sample counts, missing counts and float32 findings
 * as the whole finish of the same log, and no statistics arrays at all
 * rather than numbers over this view's ranks alone. */
Test(view_builder, values_only_finish_equals_the_log_but_for_statistics) {
  char *dir = tempdir();
  sink s = {0};
  cairn_run_view whole, v;
  mixed_log(&s, dir, &whole);
  cairn__view_builder_values_only(s.vb);
  cr_assert_eq(cairn__view_builder_finish(s.vb, &v), CAIRN_OK);
  cr_assert_eq(v.nmetrics, whole.nmetrics);
  cr_assert_eq(v.ncols, whole.ncols);
  size_t rows = 0;
  for (size_t k = 0; k < v.nmetrics; k++) {
    const cairn_view_metric *a = &v.metrics[k], *b = &whole.metrics[k];
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->nsteps, b->nsteps, "%s", a->name);
    cr_assert_eq(a->missing, b->missing, "%s", a->name);
    cr_assert_eq(a->f32 == 2, cairn__h5_fits_f32(b->values, b->nsteps * v.ncols), "%s",
                 a->name);
    cr_assert(!a->count && !a->sum && !a->sumsq && !a->min && !a->max && !a->rank_min &&
                  !a->rank_max,
              "%s has statistics", a->name);
    for (size_t i = 0; i < a->nsteps; i++) {
      cr_assert_eq(a->step[i], b->step[i]);
      for (size_t c = 0; c < v.ncols; c++) {
        size_t at = i * v.ncols + c;
        cr_assert_eq(a->samples[at], b->samples[at]);
        double x = a->values[at], y = b->values[at];
        cr_assert((isnan(x) && isnan(y)) || x == y, "%s step %lld column %zu: %g vs %g",
                  a->name, (long long)a->step[i], c, x, y);
      }
      rows += b->count[i] > 0;
    }
  }
  cr_assert_gt(rows, 1000);
  cairn__view_free(&v);
  cairn__view_free(&whole);
}

/* Streamed finish (what the serial writer uses): the view without its
 * metrics' arrays, then the metrics a range at a time within a byte budget,
 * equals the whole finish, from the builder and from the log. */
Test(view_builder, streamed_finish_in_ranges_equals_the_whole_finish) {
  char *dir = tempdir();
  sink s = {0};
  cairn_run_view whole, streamed, fromlog;
  mixed_log(&s, dir, &whole);

  cairn_view_pending *p = NULL;
  cr_assert_eq(cairn__view_builder_finish_pending(s.vb, &streamed, &p), CAIRN_OK);
  cr_assert_not_null(p);
  /* Everything but the metrics' arrays is there; the names are, in order. */
  cr_assert_eq(streamed.ncols, NR);
  cr_assert_eq(streamed.nmarks, whole.nmarks);
  cr_assert_eq(streamed.nmetrics, NM);
  for (size_t k = 0; k < NM; k++) {
    cr_assert_str_eq(streamed.metrics[k].name, whole.metrics[k].name);
    cr_assert_null(streamed.metrics[k].values, "metric %zu finished too early", k);
    cr_assert_null(streamed.metrics[k].step);
  }
  /* A budget of one byte: one metric per call (m3, with no rows, too). */
  size_t next = 0;
  for (size_t k = 0; k < NM; k++) {
    cr_assert_eq(cairn__view_pending_fill(p, 1, &next), CAIRN_OK);
    cr_assert_eq(next, k + 1, "range ended at %zu after metric %zu", next, k);
    cr_assert_eq(streamed.metrics[k].nsteps, whole.metrics[k].nsteps);
    if (k + 1 < NM)
      cr_assert_null(streamed.metrics[k + 1].values, "metric %zu finished too early", k + 1);
  }
  cr_assert_eq(cairn__view_pending_fill(p, 1, &next), CAIRN_OK);
  cr_assert_eq(next, NM, "nothing left to finish");
  char why[512];
  cr_assert_eq(td_compare(&streamed, &whole, why, sizeof why), 0, "%s", why);
  cairn__view_pending_free(p);

  /* From the log: a budget of two full metrics (rows x (statistics + NR
   * cells)) takes m0 and m1, then m2 and the empty m3. */
  cr_assert_eq(cairn__view_from_wal_pending(dir, 3, 0, &fromlog, NULL, &p), CAIRN_OK);
  size_t two = 2 * (size_t)NS * (8 + 4 + 4 * 8 + 2 * 4 + NR * (8 + 4));
  cr_assert_eq(cairn__view_pending_fill(p, two, &next), CAIRN_OK);
  cr_assert_eq(next, 2);
  cr_assert_eq(cairn__view_pending_fill(p, two, &next), CAIRN_OK);
  cr_assert_eq(next, NM);
  cr_assert_eq(td_compare(&fromlog, &whole, why, sizeof why), 0, "%s", why);
  cairn__view_pending_free(p);

  /* A released metric keeps its name only, and the view still frees. */
  cairn__view_metric_release(&fromlog.metrics[0]);
  cr_assert_null(fromlog.metrics[0].values);
  cr_assert_eq(fromlog.metrics[0].nsteps, 0);
  cr_assert_str_eq(fromlog.metrics[0].name, "m0");
  cairn__view_free(&fromlog);
  cairn__view_free(&streamed);
  cairn__view_free(&whole);

  /* Nothing logged: not found, and nothing is left to free. */
  cairn_view_builder *vb;
  cr_assert_eq(cairn__view_builder_new(&vb), CAIRN_OK);
  cr_assert_eq(cairn__view_builder_finish_pending(vb, &streamed, &p), CAIRN_ENOTFOUND);
  cr_assert_null(p);
  cairn__view_free(&streamed);
}

/* The serial writer fed a pending view writes, a metric per range, the
 * same file content as from the whole view, releasing each range once its
 * chunks are stored. */
Test(view_builder, streamed_write_equals_the_whole_write) {
  char *dir = tempdir();
  sink s = {0};
  cairn_run_view whole, streamed, ra, rb;
  mixed_log(&s, dir, &whole);
  cairn__view_builder_free(s.vb);
  char a[4096], b[4096], err[1024] = "";
  snprintf(a, sizeof a, "%s/whole.h5", dir);
  snprintf(b, sizeof b, "%s/streamed.h5", dir);
  cr_assert_eq(cairn__h5_write(&whole, a, NULL, err, sizeof err), CAIRN_OK, "%s", err);

  cairn_view_pending *p;
  cr_assert_eq(cairn__view_from_wal_pending(dir, 3, 0, &streamed, NULL, &p), CAIRN_OK);
  cairn__h5_stream_bytes = 1;
  cr_assert_eq(cairn__h5_write_pending(&streamed, p, b, NULL, err, sizeof err), CAIRN_OK, "%s",
               err);
  cairn__h5_stream_bytes = CAIRN_H5_STREAM_BYTES;
  /* Every range but the last was released once written. */
  for (size_t k = 0; k + 1 < NM; k++)
    cr_assert_null(streamed.metrics[k].values, "metric %zu kept after its write", k);
  cairn__view_pending_free(p);
  cairn__view_free(&streamed);

  cr_assert_eq(cairn__view_from_h5(a, &ra, NULL), CAIRN_OK);
  cr_assert_eq(cairn__view_from_h5(b, &rb, NULL), CAIRN_OK);
  char why[512];
  cr_assert_eq(td_compare(&rb, &ra, why, sizeof why), 0, "%s", why);
  cr_assert_eq(td_compare(&rb, &whole, why, sizeof why), 0, "%s", why);
  cairn__view_free(&ra);
  cairn__view_free(&rb);
  cairn__view_free(&whole);
}

Test(view_builder, nothing_added_is_not_found_and_bad_blocks_are_reported) {
  cairn_view_builder *vb;
  cairn_run_view v;
  cr_assert_eq(cairn__view_builder_new(&vb), CAIRN_OK);
  cr_assert_eq(cairn__view_builder_finish(vb, &v), CAIRN_ENOTFOUND);
  cr_assert_eq(cairn__view_builder_new(&vb), CAIRN_OK);
  char junk[64], err[256] = "";
  memset(junk, 0xa5, sizeof junk);
  cr_assert_eq(cairn__view_builder_add(vb, 0, junk, sizeof junk, err, sizeof err),
               CAIRN_ECORRUPT);
  cr_assert_neq(err[0], '\0', "the damage is described");
  cairn__view_builder_free(vb);
  cairn__view_builder_free(NULL);
}

/* ---------------------------------------------------------------------- */
/* Direct chunks == filter pipeline                                        */
/* ---------------------------------------------------------------------- */

/* Writes src to dataset `name` of the given shape through the filters
 * (H5Dwrite) and to `name`_direct through the chunk compressor, then
 * compares every chunk's stored bytes and filter mask. */
static void same_chunks(hid_t f, cairn_h5_chunks *c, const char *name, int rank,
                        const hsize_t *dims, hid_t ftype, hid_t mtype, const void *src,
                        int cvt) {
  size_t esize = H5Tget_size(ftype);
  hid_t fs = H5Screate_simple(rank, dims, NULL);
  hid_t dcpl = cairn__h5_dcpl(rank, dims, esize, CAIRN_H5_ZSTD_LEVEL);
  cr_assert_geq(fs, 0);
  cr_assert_geq(dcpl, 0);
  char dname[64];
  snprintf(dname, sizeof dname, "%s_direct", name);
  hid_t a = H5Dcreate2(f, name, ftype, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  hid_t b = H5Dcreate2(f, dname, ftype, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  cr_assert_geq(a, 0);
  cr_assert_geq(b, 0);
  size_t n = (size_t)dims[0] * (rank == 2 ? (size_t)dims[1] : 1);
  const void *via = src;
  float *f32 = NULL;
  if (cvt) {
    f32 = malloc(n * sizeof *f32);
    for (size_t i = 0; i < n; i++)
      f32[i] = (float)((const double *)src)[i];
    via = f32;
  }
  cr_assert_geq(H5Dwrite(a, cvt ? H5T_NATIVE_FLOAT : mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, via),
                0);
  cr_assert_eq(cairn__h5_chunks_put(c, b, -1, dims, esize, src, cvt, NULL), 0);
  char err[256] = "";
  cr_assert_eq(cairn__h5_chunks_finish(c, err, sizeof err), 0, "%s", err);
  free(f32);

  b = H5Dopen2(f, dname, H5P_DEFAULT);
  hsize_t cd[2] = {1, 1};
  cr_assert_eq(H5Pget_chunk(dcpl, 2, cd), rank);
  size_t compared = 0;
  for (hsize_t r0 = 0; r0 < dims[0]; r0 += cd[0])
    for (hsize_t c0 = 0; c0 < (rank == 2 ? dims[1] : 1); c0 += (rank == 2 ? cd[1] : 1)) {
      hsize_t off[2] = {r0, c0}, sa = 0, sb = 0;
      cr_assert_geq(H5Dget_chunk_storage_size(a, off, &sa), 0);
      cr_assert_geq(H5Dget_chunk_storage_size(b, off, &sb), 0);
      cr_assert_eq(sa, sb, "%s chunk (%llu, %llu): %llu vs %llu bytes", name,
                   (unsigned long long)r0, (unsigned long long)c0, (unsigned long long)sa,
                   (unsigned long long)sb);
      void *ba = malloc(sa), *bb = malloc(sb);
      uint32_t fa = 99, fb = 99;
      cr_assert_geq(H5Dread_chunk(a, H5P_DEFAULT, off, &fa, ba), 0);
      cr_assert_geq(H5Dread_chunk(b, H5P_DEFAULT, off, &fb, bb), 0);
      cr_assert_eq(fa, fb);
      cr_assert_eq(memcmp(ba, bb, sa), 0, "%s chunk (%llu, %llu) differs", name,
                   (unsigned long long)r0, (unsigned long long)c0);
      free(ba);
      free(bb);
      compared++;
    }
  cr_assert_gt(compared, 0);
  H5Dclose(a);
  H5Dclose(b);
  H5Pclose(dcpl);
  H5Sclose(fs);
}

static void chunks_match_the_filters(unsigned workers) {
  char *dir = tempdir();
  char path[128];
  snprintf(path, sizeof path, "%s/c.h5", dir);
  cr_assert_eq(cairn__h5zstd_register(), 0);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  cairn_h5_chunks *c = cairn__h5_chunks_new(CAIRN_H5_ZSTD_LEVEL, workers);
  cr_assert_not_null(c);

  /* 2-D doubles, several row chunks and a partial last one */
  hsize_t d2[2] = {20001, 16};
  double *x = malloc(d2[0] * d2[1] * sizeof *x);
  for (size_t i = 0; i < d2[0] * d2[1]; i++)
    x[i] = 1.0 / (double)(1 + i % 977) + (double)(next_u32() % 1000) * 1e-9;
  same_chunks(f, c, "f64", 2, d2, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x, 0);
  /* the same values as float32, converted by the compressor */
  for (size_t i = 0; i < d2[0] * d2[1]; i++)
    x[i] = (double)(float)x[i];
  same_chunks(f, c, "f32", 2, d2, H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, x, 1);
  /* more columns than a chunk holds: chunks split across columns, a
   * partial one on the right edge and at the bottom */
  hsize_t dw[2] = {45, 300};
  same_chunks(f, c, "wide", 2, dw, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x, 0);
  free(x);
  /* 1-D uint32 and int64, lengths that are not multiples of 8 */
  hsize_t d1 = 300007;
  uint32_t *u = malloc(d1 * sizeof *u);
  int64_t *s = malloc(d1 * sizeof *s);
  for (size_t i = 0; i < d1; i++) {
    u[i] = next_u32() % 5 == 0 ? next_u32() : 16;
    s[i] = (int64_t)i * 3 - 7;
  }
  same_chunks(f, c, "u32", 1, &d1, H5T_STD_U32LE, H5T_NATIVE_UINT32, u, 0);
  same_chunks(f, c, "i64", 1, &d1, H5T_STD_I64LE, H5T_NATIVE_INT64, s, 0);
  hsize_t tiny = 3;
  same_chunks(f, c, "tiny", 1, &tiny, H5T_STD_I64LE, H5T_NATIVE_INT64, s, 0);
  free(u);
  free(s);
  cairn__h5_chunks_free(c);
  cr_assert_geq(H5Fclose(f), 0);
}

Test(h5_chunks, match_the_filter_pipeline_on_the_calling_thread) {
  chunks_match_the_filters(0);
}

Test(h5_chunks, match_the_filter_pipeline_with_three_workers) {
  chunks_match_the_filters(3);
}

Test(h5_chunks, refuse_a_contiguous_dataset_and_leave_it_to_the_caller) {
  char *dir = tempdir();
  char path[128];
  snprintf(path, sizeof path, "%s/c.h5", dir);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = 10;
  hid_t fs = H5Screate_simple(1, &n, NULL);
  hid_t d = H5Dcreate2(f, "plain", H5T_STD_I64LE, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  cairn_h5_chunks *c = cairn__h5_chunks_new(3, 1);
  int64_t v[10] = {0};
  cr_assert_eq(cairn__h5_chunks_put(c, d, -1, &n, 8, v, 0, NULL), -1);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE); /* given by the caller: the same */
  cr_assert_eq(cairn__h5_chunks_put(c, d, dcpl, &n, 8, v, 0, NULL), -1);
  H5Pclose(dcpl);
  char err[128] = "";
  cr_assert_eq(cairn__h5_chunks_finish(c, err, sizeof err), 0);
  cairn__h5_chunks_free(c);
  cr_assert_geq(H5Dclose(d), 0, "still the caller's");
  H5Sclose(fs);
  H5Fclose(f);
}

/* The chunk shape of cairn__h5_dcpl for dims of elem bytes (0: layout is
 * not chunked). */
static void chunk_of(int rank, hsize_t d0, hsize_t d1, size_t elem, hsize_t out[2]) {
  hsize_t dims[2] = {d0, d1};
  hid_t dcpl = cairn__h5_dcpl(rank, dims, elem, CAIRN_H5_ZSTD_LEVEL);
  cr_assert_geq(dcpl, 0);
  out[0] = out[1] = 0;
  if (H5Pget_layout(dcpl) == H5D_CHUNKED)
    cr_assert_eq(H5Pget_chunk(dcpl, 2, out), rank);
  H5Pclose(dcpl);
}

/* Chunks aim at 1 MiB and split a longer dimension into equal parts, so
 * no edge chunk is mostly padding. */
Test(h5_chunks, a_long_dimension_is_split_into_equal_chunks) {
  hsize_t c[2];
  chunk_of(2, 10000, 16, 8, c); /* at most 8192 rows: 2 of 5000 */
  cr_assert(c[0] == 5000 && c[1] == 16, "%llu x %llu", (unsigned long long)c[0],
            (unsigned long long)c[1]);
  chunk_of(2, 8192, 16, 8, c); /* exactly one chunk */
  cr_assert(c[0] == 8192 && c[1] == 16);
  chunk_of(2, 8193, 16, 8, c); /* 2 of 4097 */
  cr_assert(c[0] == 4097 && c[1] == 16);
  chunk_of(2, 100, 300, 8, c); /* at most 256 columns: 2 of 150, rows to fill 1 MiB */
  cr_assert(c[0] == 100 && c[1] == 150, "%llu x %llu", (unsigned long long)c[0],
            (unsigned long long)c[1]);
  chunk_of(2, 5000, 300, 8, c); /* 873 rows of 150 columns fit: 5000 = 6 of 834 */
  cr_assert(c[0] == 834 && c[1] == 150, "%llu x %llu", (unsigned long long)c[0],
            (unsigned long long)c[1]);
  chunk_of(1, 200000, 0, 8, c); /* at most 131072: 2 of 100000 */
  cr_assert_eq(c[0], 100000);
  chunk_of(1, 1000, 0, 8, c); /* small: one chunk of it all */
  cr_assert_eq(c[0], 1000);
  chunk_of(2, 3, 1u << 20, 8, c); /* one row of 256 columns would be 2 KiB */
  cr_assert(c[0] == 3 && c[1] == 256, "%llu x %llu", (unsigned long long)c[0],
            (unsigned long long)c[1]);
  chunk_of(1, 0, 0, 8, c); /* empty: contiguous */
  cr_assert_eq(c[0], 0);
}

Test(h5_chunks, chunks_of_only_the_fill_value_are_not_stored) {
  char *dir = tempdir();
  char path[128];
  snprintf(path, sizeof path, "%s/c.h5", dir);
  cr_assert_eq(cairn__h5zstd_register(), 0);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  /* samples of 40000 steps × 16 ranks: at most 16384 rows a chunk, so 3
   * chunks of 13334 rows (the last one 13332); the second chunk holds one
   * cell with 2 samples (mid-row) and one with none (its last cell), the
   * third differs in its very first cell only */
  hsize_t dims[2] = {40000, 16};
  uint32_t *s = malloc(dims[0] * dims[1] * sizeof *s);
  for (size_t i = 0; i < dims[0] * dims[1]; i++)
    s[i] = 1;
  s[17000 * 16 + 5] = 2;
  s[26667 * 16 + 15] = 0;
  s[26668 * 16 + 0] = 3;
  const uint32_t one = 1;
  hid_t fs = H5Screate_simple(2, dims, NULL);
  hid_t dcpl = cairn__h5_dcpl(2, dims, 4, CAIRN_H5_ZSTD_LEVEL);
  cr_assert_geq(H5Pset_fill_value(dcpl, H5T_NATIVE_UINT32, &one), 0);
  cr_assert_geq(H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET), 0);
  hid_t d = H5Dcreate2(f, "samples", H5T_STD_U32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  cairn_h5_chunks *c = cairn__h5_chunks_new(CAIRN_H5_ZSTD_LEVEL, 1);
  cr_assert_eq(cairn__h5_chunks_put(c, d, dcpl, dims, 4, s, 0, &one), 0);
  char err[128] = "";
  cr_assert_eq(cairn__h5_chunks_finish(c, err, sizeof err), 0, "%s", err);
  cairn__h5_chunks_free(c);
  H5Pclose(dcpl);
  H5Sclose(fs);
  H5Fclose(f);

  f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  d = H5Dopen2(f, "samples", H5P_DEFAULT);
  hsize_t stored = 99, second[2] = {13334, 0}, bytes = 0;
  hid_t space = H5Dget_space(d);
  cr_assert_geq(H5Dget_num_chunks(d, space, &stored), 0);
  H5Sclose(space);
  cr_assert_eq(stored, 2, "the chunk of ones is not stored, the two others are");
  cr_assert_geq(H5Dget_chunk_storage_size(d, second, &bytes), 0);
  cr_assert_gt(bytes, 0);
  hsize_t third[2] = {26668, 0};
  bytes = 0;
  cr_assert_geq(H5Dget_chunk_storage_size(d, third, &bytes), 0);
  cr_assert_gt(bytes, 0);
  uint32_t *back = malloc(dims[0] * dims[1] * sizeof *back);
  cr_assert_geq(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back), 0);
  cr_assert_eq(memcmp(back, s, dims[0] * dims[1] * sizeof *s), 0);
  free(back);
  free(s);
  H5Dclose(d);
  H5Fclose(f);
}
