/*
 * bench_h5_size.c — what cairn's HDF5 run file costs for a realistic
 * synthetic training run: on-disk bytes per per-rank sample beside raw
 * float64 and a gzip'd CSV of the same numbers, the serial and parallel
 * writers' bandwidth, and the time to convert a write-ahead log into the
 * run file (the standalone finalize step). Then the lossless floor of the
 * same numbers, beside the file's figures: the strongest general-purpose
 * coding found (zstd 19 over layouts and transforms), a decimal re-coding of
 * the timer metrics, and the entropy of the generator's noise — how far any
 * lossless format could go below the gzip'd CSV (see lossless_floor()).
 *
 *   bench_h5_size [RANKS [STEPS [DIR]]]                  (default 64 100000 .)
 *   mpirun -np P bench_h5_size [RANKS [STEPS [DIR]]]     parallel writer only
 *
 * The run: RANKS data-parallel ranks × STEPS steps × 8 metrics, as a
 * PyTorch job logs them: loss, grad_norm and accuracy come from float32
 * tensors (.item() widens a float32), the learning rate follows a schedule
 * shared by every rank, samples/s, step time and data time are computed in
 * float64 from a nanosecond timer, and GPU memory changes now and then.
 * Each rank has its own noise. Under mpirun every process holds RANKS/P
 * ranks and only the parallel writer is measured (idle MPI processes spin,
 * which would distort the serial figures on a small node); run alone, the
 * program measures sizes, the serial writer and the WAL conversion.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <hdf5.h>
#include <mpi.h>

#include "cairn.h"
#include "h5/h5_finalize.h"
#include "h5/h5_writer.h"
#include "run_view.h"
#include "wal.h"
#include "wal_records.h"

#define NM 8
static const char *const metric_names[NM] = {"accuracy",      "data_time_s", "gpu_mem_gb",
                                             "grad_norm",     "loss",        "lr",
                                             "samples_per_s", "step_time_s"};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Deterministic noise per (rank, step, stream): splitmix64 → [0, 1). */
static double unif(uint64_t rank, uint64_t step, uint64_t stream) {
  uint64_t z = rank * 0x9E3779B97F4A7C15ull ^ step * 0xBF58476D1CE4E5B9ull ^ stream << 56;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

static double gauss(uint64_t rank, uint64_t step, uint64_t stream) {
  double u = unif(rank, step, stream) + 1e-300, v = unif(rank, step, stream + 16);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The value metric m (metric_names order) of `rank` at `step`. */
static double value(int m, int64_t step, int rank, int64_t steps) {
  uint64_t r = (uint64_t)rank, s = (uint64_t)step;
  double progress = (double)step / (double)steps;
  switch (m) {
  case 0: /* accuracy: correct / 256 of the rank's batch, as float32 */
    return (double)(float)(floor(256.0 * (0.95 - 0.85 * exp(-6 * progress)) +
                                 6.0 * gauss(r, s, 1)) / 256.0);
  case 1: { /* data loader wait, float64 from a ns timer */
    int64_t ns = (int64_t)(4e6 * (1.0 + 0.3 * fabs(gauss(r, s, 2))));
    return (double)ns / 1e9;
  }
  case 2: /* allocated GiB: changes at a few points of the run */
    return (double)(uint64_t)(12884901888.0 + 268435456.0 * floor(progress * 4) +
                              (double)(r * 4096)) / 1073741824.0;
  case 3: /* gradient norm from a float32 tensor */
    return (double)(float)(1.5 * exp(-3 * progress) + 0.2 + 0.05 * gauss(r, s, 3));
  case 4: /* loss from a float32 tensor: decaying, noisy per rank */
    return (double)(float)(2.3 * exp(-4 * progress) + 0.1 + 0.03 * gauss(r, s, 4));
  case 5: /* cosine learning-rate schedule, the same on every rank */
    return 3e-4 * 0.5 * (1.0 + cos(3.141592653589793 * progress));
  case 6: { /* samples/s = batch / step time */
    int64_t ns = (int64_t)(1.2e8 * (1.0 + 0.05 * fabs(gauss(r, s, 5))));
    return 256.0 / ((double)ns / 1e9);
  }
  default: { /* step time */
    int64_t ns = (int64_t)(1.2e8 * (1.0 + 0.05 * fabs(gauss(r, s, 5))));
    return (double)ns / 1e9;
  }
  }
}

/* The view of ranks [r0, r1) of the run. */
static void make_view(cairn_run_view *v, int r0, int r1, int nranks, int64_t steps) {
  cairn__view_init(v);
  size_t n = (size_t)(r1 - r0);
  v->have_run_id = 1;
  memset(v->run_id, 0x42, 16);
  snprintf(v->cairn_version, sizeof v->cairn_version, "%s", cairn_version());
  v->nranks = (uint32_t)nranks;
  v->naggregators = 1;
  v->detail = 1;
  v->ncols = n;
  v->col_rank = malloc(n * sizeof *v->col_rank);
  v->ranks = calloc(n, sizeof *v->ranks);
  v->acct = calloc(n * CAIRN_H5_NCHANNELS, sizeof *v->acct);
  v->acct_reported = calloc(n, 1);
  for (size_t c = 0; c < n; c++) {
    v->col_rank[c] = r0 + (int)c;
    v->ranks[c].hostname = strdup("node");
    uint64_t rec = (uint64_t)steps * NM;
    v->acct[c * 2] = (cairn_view_acct){rec, rec, 0, 0};
    v->acct_reported[c] = 1;
  }
  v->nmetrics = NM;
  v->metrics = calloc(NM, sizeof *v->metrics);
  for (int m = 0; m < NM; m++) {
    cairn_view_metric *vm = &v->metrics[m];
    if (cairn__view_metric_alloc(vm, (size_t)steps, n, 1) != CAIRN_OK) {
      fprintf(stderr, "bench_h5_size: out of memory\n");
      exit(1);
    }
    vm->name = strdup(metric_names[m]);
    vm->name_len = strlen(metric_names[m]);
    for (int64_t s = 0; s < steps; s++) {
      vm->step[s] = s;
      for (size_t c = 0; c < n; c++) {
        vm->values[(size_t)s * n + c] = value(m, s, r0 + (int)c, steps);
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
      v->mark_time[(size_t)s * n + c] =
          1700000000000000000ull + (uint64_t)s * 120000000u +
          (uint64_t)(unif((uint64_t)(r0 + (int)c), (uint64_t)s, 9) * 1e6);
  }
}

/* Where the bytes of the run file go: per metric, the per-rank values and
 * the per-step statistics, in bytes per per-rank sample. */
/* Returns 0, or -1 (said on stderr) if the file written above cannot be
 * read back: then there is no breakdown and no floor to compare with. */
static int breakdown(const char *path, double per_metric_samples, double values_b[NM],
                     double stats_b[NM], double *marks_b) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    fprintf(stderr, "bench_h5_size: %s: cannot open the file just written\n", path);
    return -1;
  }
  static const char *const stats[] = {"step", "count", "sum", "sumsq", "min", "max",
                                      "rank_min", "rank_max", "samples"};
  printf("  per metric, bytes per per-rank sample:   values (type)   stats+samples\n");
  for (int m = 0; m < NM; m++) {
    char g[64];
    snprintf(g, sizeof g, "/metrics/%d/values", m);
    hid_t d = H5Dopen2(f, g, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    double vb = (double)H5Dget_storage_size(d) / per_metric_samples;
    size_t ts = H5Tget_size(t);
    H5Tclose(t);
    H5Dclose(d);
    double sb = 0;
    for (size_t k = 0; k < sizeof stats / sizeof *stats; k++) {
      snprintf(g, sizeof g, "/metrics/%d/%s", m, stats[k]);
      d = H5Dopen2(f, g, H5P_DEFAULT);
      sb += (double)H5Dget_storage_size(d) / per_metric_samples;
      H5Dclose(d);
    }
    printf("    %-16s %22.3f (f%zu) %15.3f\n", metric_names[m], vb, ts * 8, sb);
    values_b[m] = vb;
    stats_b[m] = sb;
  }
  hid_t d = H5Dopen2(f, "/steps/time_ns", H5P_DEFAULT);
  *marks_b = (double)H5Dget_storage_size(d) / (per_metric_samples * NM);
  printf("    %-16s %22.3f\n", "step markers", *marks_b);
  H5Dclose(d);
  H5Fclose(f);
  return 0;
}

/* ---- The lossless floor --------------------------------------------------
 * How small any lossless coding of the same numbers gets, so the file's
 * figures can be judged against a floor rather than against a guess:
 *
 *  - general-purpose: zstd level 19 over every combination of layout (rows:
 *    step by step, the ranks side by side, as the file stores them; series:
 *    each rank's time series in turn) and transform (none; byte shuffle; XOR
 *    with the same rank's previous value, Gorilla-style, then shuffle; the
 *    integer difference from that value, then shuffle), on the metric's
 *    narrowest exact type (float32 when every value is one, as the file
 *    does); the smallest of these is then also tried at level 19 and at
 *    level 22 with a 128 MiB window and long-distance matching (zstd
 *    --long=27, --ultra -22);
 *  - decimal re-coding, for float64 metrics where it is bit-exact for every
 *    value: k = llround(v * 1e9) with (double)k / 1e9 == v, then the same
 *    search over the integers k (their difference along a rank's series
 *    included);
 *  - model entropy: the mean of -log2 P(value) under the exact distribution
 *    value() draws the value from (given step and rank), i.e. the Shannon
 *    information of the generator's noise: the least any coder can spend on
 *    average unless it knows the pseudo-random generator itself (which no
 *    coder of real training metrics can).
 */

/* P(a <= Z < b) for a standard normal Z, accurate in both tails. */
static double normal_mass(double a, double b) {
  const double r2 = 1.4142135623730951;
  if (a >= 0)
    return 0.5 * (erfc(a / r2) - erfc(b / r2));
  if (b <= 0)
    return 0.5 * (erfc(-b / r2) - erfc(-a / r2));
  return 1.0 - 0.5 * (erfc(-a / r2) + erfc(b / r2));
}

/* -log2 P((float)(mu + sigma Z) == v): Z's mass over v's rounding interval. */
static double f32_bits(float v, double mu, double sigma) {
  double lo = ((double)v + (double)nextafterf(v, -INFINITY)) / 2;
  double hi = ((double)v + (double)nextafterf(v, INFINITY)) / 2;
  return -log2(normal_mass((lo - mu) / sigma, (hi - mu) / sigma));
}

/* -log2 P((int64_t)(base * (1 + spread |Z|)) == ns): a timer reading. */
static double timer_bits(int64_t ns, double base, double spread) {
  double a = ((double)ns / base - 1.0) / spread, b = ((double)(ns + 1) / base - 1.0) / spread;
  return -log2(2.0 * normal_mass(a, b));
}

/* The information, in bits, of value(m, step, rank, steps) given its step and
 * rank: mirrors value(). samples_per_s is 256 / step_time_s to the bit, so
 * it carries nothing beyond step_time_s; alone it carries as much. */
static double model_bits(int m, int64_t step, int rank, int64_t steps) {
  uint64_t r = (uint64_t)rank, s = (uint64_t)step;
  double progress = (double)step / (double)steps;
  switch (m) {
  case 0: { /* k = floor(a + 6 Z), stored as k / 256 */
    double a = 256.0 * (0.95 - 0.85 * exp(-6 * progress));
    double k = floor(a + 6.0 * gauss(r, s, 1));
    return -log2(normal_mass((k - a) / 6.0, (k + 1.0 - a) / 6.0));
  }
  case 1:
    return timer_bits((int64_t)(4e6 * (1.0 + 0.3 * fabs(gauss(r, s, 2)))), 4e6, 0.3);
  case 3:
    return f32_bits((float)value(m, step, rank, steps), 1.5 * exp(-3 * progress) + 0.2, 0.05);
  case 4:
    return f32_bits((float)value(m, step, rank, steps), 2.3 * exp(-4 * progress) + 0.1, 0.03);
  case 6:
  case 7:
    return timer_bits((int64_t)(1.2e8 * (1.0 + 0.05 * fabs(gauss(r, s, 5)))), 1.2e8, 0.05);
  default: /* gpu_mem_gb, lr: determined by step and rank */
    return 0.0;
  }
}

enum { PRED_NONE, PRED_XOR, PRED_DELTA };

/* The candidate codings: layout (rows: step by step, the ranks side by side,
 * as the file stores them; series: each rank's time series in turn) x
 * transform (the prediction from the same rank's previous value, then a
 * byte shuffle or not). */
#define NVARIANTS 8
static const struct {
  int series, pred, shuffle;
  const char *name;
} variants[NVARIANTS] = {
    {0, PRED_NONE, 0, "rows, plain"},        {0, PRED_NONE, 1, "rows, shuffle"},
    {0, PRED_XOR, 1, "rows, xor+shuffle"},   {0, PRED_DELTA, 1, "rows, delta+shuffle"},
    {1, PRED_NONE, 0, "series, plain"},      {1, PRED_NONE, 1, "series, shuffle"},
    {1, PRED_XOR, 1, "series, xor+shuffle"}, {1, PRED_DELTA, 1, "series, delta+shuffle"}};

/* Every candidate is tried on a probe of the run: every rank, 1/8 of the
 * steps in 8 blocks spread evenly over it (early and late steps differ).
 * Those within 1% of the probe's best are then compressed with the whole
 * run, and the smallest of them once more with a long window. */
#define FLOOR_PROBE_BLOCKS 8
#define FLOOR_PROBE_SLACK 1.01

typedef struct {
  ZSTD_CCtx *cc;
  unsigned char *in, *out;
  size_t cap;
} floor_ctx;

typedef struct {
  double probe[NVARIANTS]; /* bytes per sample on the probe, zstd 19 */
  int tried[NVARIANTS];    /* compressed with the whole run too */
  int best;                /* the smallest of those on the whole run */
  double full, full_long;  /* that one on the whole run: zstd 19, zstd 19 --long=27 */
} floor_result;

static double floor_bytes(const floor_result *r) {
  return r->full_long < r->full ? r->full_long : r->full;
}

/* The steps [b * steps / nblocks, + blen) for b < nblocks of w[s * n + c]
 * (the low `width` bytes of each word), in variant `v`'s layout and
 * transform, into out; returns the number of words. */
static size_t floor_encode(const uint64_t *w, size_t steps, size_t n, int width, int v,
                           size_t nblocks, size_t blen, unsigned char *out) {
  size_t total = nblocks * blen * n, i = 0;
  uint64_t mask = width == 8 ? ~0ull : (1ull << (8 * width)) - 1;
  int series = variants[v].series, pred = variants[v].pred, shuffle = variants[v].shuffle;
  for (size_t a = 0; a < (series ? n : 1); a++)
    for (size_t blk = 0; blk < nblocks; blk++)
      for (size_t j = 0; j < blen; j++)
        for (size_t b = 0; b < (series ? 1 : n); b++, i++) {
          size_t s = blk * steps / nblocks + j, c = series ? a : b;
          uint64_t x = w[s * n + c], p = s ? w[(s - 1) * n + c] : 0;
          if (pred == PRED_XOR)
            x ^= p;
          else if (pred == PRED_DELTA)
            x = (x - p) & mask;
          for (int k = 0; k < width; k++) {
            unsigned char byte = (unsigned char)(x >> (8 * k));
            if (shuffle)
              out[(size_t)k * total + i] = byte;
            else
              out[i * (size_t)width + (size_t)k] = byte;
          }
        }
  return total;
}

/* zstd's compressed size of z->in[0, len) at `level`, with a 128 MiB window
 * and long-distance matching (zstd --long=27) or with the level's own. */
static size_t floor_zstd(floor_ctx *z, size_t len, int level, int long_window) {
  ZSTD_CCtx_reset(z->cc, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(z->cc, ZSTD_c_compressionLevel, level);
  if (long_window) {
    ZSTD_CCtx_setParameter(z->cc, ZSTD_c_enableLongDistanceMatching, 1);
    ZSTD_CCtx_setParameter(z->cc, ZSTD_c_windowLog, 27);
  }
  size_t r = ZSTD_compress2(z->cc, z->out, z->cap, z->in, len);
  if (ZSTD_isError(r)) {
    fprintf(stderr, "bench_h5_size: zstd: %s\n", ZSTD_getErrorName(r));
    exit(1);
  }
  return r;
}

/* Every candidate coding of w (steps x n words of `width` bytes) at zstd 19
 * on the probe, then the best of them on the whole run. */
static void floor_search(floor_ctx *z, const uint64_t *w, size_t steps, size_t n, int width,
                         floor_result *r) {
  size_t nb = steps >= 64 * FLOOR_PROBE_BLOCKS ? FLOOR_PROBE_BLOCKS : 1;
  size_t blen = nb > 1 ? steps / (8 * FLOOR_PROBE_BLOCKS) : steps;
  double least = INFINITY;
  for (int v = 0; v < NVARIANTS; v++) {
    size_t words = floor_encode(w, steps, n, width, v, nb, blen, z->in);
    r->probe[v] = (double)floor_zstd(z, words * (size_t)width, 19, 0) / (double)words;
    least = r->probe[v] < least ? r->probe[v] : least;
  }
  r->full = INFINITY;
  for (int v = 0; v < NVARIANTS; v++) {
    r->tried[v] = r->probe[v] <= least * FLOOR_PROBE_SLACK;
    if (!r->tried[v])
      continue;
    size_t words = floor_encode(w, steps, n, width, v, 1, steps, z->in);
    double b = (double)floor_zstd(z, words * (size_t)width, 19, 0) / (double)words;
    if (b < r->full) {
      r->full = b;
      r->best = v;
    }
  }
  size_t words = floor_encode(w, steps, n, width, r->best, 1, steps, z->in);
  r->full_long = (double)floor_zstd(z, words * (size_t)width, 19, 1) / (double)words;
}

static void floor_probe_row(const char *name, const char *type, const floor_result *r) {
  printf("    %-16s %-6s", name, type);
  for (int v = 0; v < NVARIANTS; v++)
    printf(" %7.3f%s", r->probe[v], v == r->best ? "*" : r->tried[v] ? "+" : " ");
  printf("\n");
}

/* "<type> <layout, transform>, zstd 19[ --long=27]" */
static void floor_how(char *buf, size_t len, const char *type, const floor_result *r) {
  snprintf(buf, len, "%s %s, zstd 19%s", type, variants[r->best].name,
           r->full_long < r->full ? " --long=27" : "");
}

/* The lossless floor of the run beside the file's figures and the gzip'd
 * CSV. csv_b, file_b and marks_b are bytes per per-rank sample of the run;
 * values_b and stats_b per per-rank sample of their own metric. */
static void lossless_floor(const cairn_run_view *v, int64_t steps, double csv_b, double file_b,
                           const double values_b[NM], const double stats_b[NM], double marks_b) {
  size_t n = v->ncols, total = (size_t)steps * n;
  double t0 = now();
  floor_ctx z = {ZSTD_createCCtx(), malloc(total * 8), NULL, ZSTD_compressBound(total * 8)};
  z.out = malloc(z.cap);
  uint64_t *w = malloc(total * sizeof *w);
  if (!z.cc || !z.in || !z.out || !w) {
    fprintf(stderr, "bench_h5_size: out of memory\n");
    exit(1);
  }
  floor_result gen[NM], dec[NM], marks;
  int is_f32[NM], has_dec[NM];
  double model[NM];
  for (int m = 0; m < NM; m++) {
    const double *x = v->metrics[m].values;
    is_f32[m] = has_dec[m] = 1;
    for (size_t i = 0; i < total && (is_f32[m] || has_dec[m]); i++) {
      if ((double)(float)x[i] != x[i])
        is_f32[m] = 0;
      if ((double)llround(x[i] * 1e9) / 1e9 != x[i])
        has_dec[m] = 0;
    }
    has_dec[m] &= !is_f32[m];
    for (size_t i = 0; i < total; i++) {
      if (is_f32[m]) {
        float f = (float)x[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        w[i] = u;
      } else
        memcpy(&w[i], &x[i], 8);
    }
    floor_search(&z, w, (size_t)steps, n, is_f32[m] ? 4 : 8, &gen[m]);
    if (has_dec[m]) {
      for (size_t i = 0; i < total; i++)
        w[i] = (uint64_t)llround(x[i] * 1e9);
      floor_search(&z, w, (size_t)steps, n, 8, &dec[m]);
    }
    double bits = 0;
    for (int64_t s = 0; s < steps; s++)
      for (size_t c = 0; c < n; c++)
        bits += model_bits(m, s, v->col_rank[c], steps);
    model[m] = bits / 8.0 / (double)total;
  }
  for (size_t i = 0; i < total; i++)
    w[i] = v->mark_time[i];
  floor_search(&z, w, (size_t)steps, n, 8, &marks);

  printf("  lossless floor (zstd %s): every candidate coding at level 19 on a probe (every"
         " rank, 1/8 of the\n  steps in %d blocks over the run), bytes per sample; those within"
         " %.0f%% of the best (+) are compressed\n  with the whole run, * the smallest there:\n",
         ZSTD_versionString(), FLOOR_PROBE_BLOCKS, 100.0 * (FLOOR_PROBE_SLACK - 1.0));
  printf("    %-23s %-35s %-35s\n", "", "  ------- rows (as the file) -------",
         "  ------ series (per rank) ---------");
  printf("    %-16s %-6s %8s %8s %8s %8s %8s %8s %8s %8s\n", "", "type", "plain", "shuffle",
         "xor+sh", "delta+sh", "plain", "shuffle", "xor+sh", "delta+sh");
  for (int m = 0; m < NM; m++) {
    floor_probe_row(metric_names[m], is_f32[m] ? "f32" : "f64", &gen[m]);
    if (has_dec[m])
      floor_probe_row("", "k/1e9", &dec[m]);
  }
  floor_probe_row("step markers", "u64", &marks);

  printf("  lossless floor, whole run, bytes per sample: zstd: the smallest candidate at zstd 19"
         " and 19 --long=27;\n  dec+zstd: the same on k = v * 1e9 (where bit-exact for every"
         " value); model: entropy of the generator's noise:\n");
  printf("    %-16s %8s %9s %9s %9s %9s   %s\n", "", "file", "zstd", "dec+zstd", "floor",
         "model", "floor's coding");
  double sum_file = 0, sum_floor = 0, sum_model = 0, sum_stats = 0;
  char how[96];
  for (int m = 0; m < NM; m++) {
    const char *type = is_f32[m] ? "f32" : "f64";
    double g = floor_bytes(&gen[m]), fl = values_b[m];
    snprintf(how, sizeof how, "the file as written (zstd 3, shuffle, chunks)");
    if (g < fl) {
      fl = g;
      floor_how(how, sizeof how, type, &gen[m]);
    }
    char dec_s[16];
    snprintf(dec_s, sizeof dec_s, "%9s", "-");
    if (has_dec[m]) {
      snprintf(dec_s, sizeof dec_s, "%9.3f", floor_bytes(&dec[m]));
      if (floor_bytes(&dec[m]) < fl) {
        fl = floor_bytes(&dec[m]);
        floor_how(how, sizeof how, "k/1e9", &dec[m]);
      }
    }
    printf("    %-16s %8.3f %9.3f %s %9.3f %9.3f   %s\n", metric_names[m], values_b[m], g, dec_s,
           fl, model[m], how);
    sum_file += values_b[m];
    sum_floor += fl;
    sum_model += model[m];
    sum_stats += stats_b[m];
  }
  /* Step markers: one time per rank and step; uniform noise of 10^6 ns. */
  double marks_zstd = floor_bytes(&marks) / NM, marks_model = log2(1e6) / 8.0 / NM;
  double marks_floor = marks_b;
  snprintf(how, sizeof how, "the file as written (zstd 3, shuffle, chunks)");
  if (marks_zstd < marks_floor) {
    marks_floor = marks_zstd;
    floor_how(how, sizeof how, "u64", &marks);
  }
  printf("    %-16s %8.3f %9.3f %9s %9.3f %9.3f   %s\n", "step markers", marks_b, marks_zstd,
         "-", marks_floor, marks_model, how);
  printf("    (floor: the smallest of file, zstd and dec+zstd; step markers: per per-rank sample"
         " of the run, i.e.\n     per rank and step / %d; samples_per_s is 256 / step_time_s to"
         " the bit: given step_time_s its model\n     entropy is 0)\n", NM);

  /* Per per-rank sample of the run: the metrics' mean. */
  double vf = sum_floor / NM, vm = sum_model / NM, vmj = (sum_model - model[6]) / NM;
  double st = sum_stats / NM;
  printf("  best case, bytes per per-rank sample of the run:\n");
  printf("    %-53s %7s %7s %8s %7s %9s\n", "", "values", "+stats", "+markers", "total",
         "CSV/total");
#define FLOOR_ROW(label, a, b, c, t)                                                           \
  printf("    %-53s %7.3f %7.3f %8.3f %7.3f %8.2fx\n", label, a, b, c, t, csv_b / (t))
  FLOOR_ROW("the file as written (zstd 3; total: whole file)", sum_file / NM, st, marks_b, file_b);
  FLOOR_ROW("floor; statistics and markers as stored", vf, st, marks_b, vf + st + marks_b);
  FLOOR_ROW("floor; markers' floor, no statistics", vf, 0.0, marks_floor, vf + marks_floor);
  FLOOR_ROW("floor; values only (what the CSV holds)", vf, 0.0, 0.0, vf);
  FLOOR_ROW("model entropy; values and markers", vm, 0.0, marks_model, vm + marks_model);
  FLOOR_ROW("model entropy; values and markers, sps from step_time", vmj, 0.0, marks_model,
            vmj + marks_model);
  FLOOR_ROW("model entropy; values only", vm, 0.0, 0.0, vm);
  FLOOR_ROW("model entropy; values only, sps from step_time", vmj, 0.0, 0.0, vmj);
#undef FLOOR_ROW
  printf("  gzip'd CSV %.3f B/sample; 4x below it: %.3f B/sample\n", csv_b, csv_b / 4);
  printf("  (lossless floor took %.1f s)\n", now() - t0);
  free(w);
  free(z.in);
  free(z.out);
  ZSTD_freeCCtx(z.cc);
}

static uint64_t file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Shortest text that reads back to the same double (as Python's repr and
 * pandas' to_csv print floats), so the CSV baseline is not padded. */
static int shortest(char *buf, size_t len, double x) {
  static const int coarse[] = {6, 9, 12, 15, 16, 17};
  int lo = 1, hi = 17;
  for (size_t i = 0; i < sizeof coarse / sizeof *coarse; i++) {
    snprintf(buf, len, "%.*g", coarse[i], x);
    if (strtod(buf, NULL) == x) {
      hi = coarse[i];
      break;
    }
    lo = coarse[i] + 1;
  }
  for (int prec = lo; prec < hi; prec++) {
    int k = snprintf(buf, len, "%.*g", prec, x);
    if (strtod(buf, NULL) == x)
      return k;
  }
  return snprintf(buf, len, "%.*g", hi, x);
}

/* The long-format CSV a user would export (step,rank,<8 metrics>), gzip'd
 * at zlib's default level, streamed; returns the compressed size. */
static uint64_t gzip_csv_bytes(const cairn_run_view *v, const char *path, double *secs) {
  double t0 = now();
  gzFile gz = gzopen(path, "wb6");
  if (!gz)
    return 0;
  char line[1024];
  int k = snprintf(line, sizeof line, "step,rank");
  for (int m = 0; m < NM; m++)
    k += snprintf(line + k, sizeof line - (size_t)k, ",%s", metric_names[m]);
  line[k++] = '\n';
  gzwrite(gz, line, (unsigned)k);
  size_t n = v->ncols;
  for (size_t s = 0; s < v->metrics[0].nsteps; s++)
    for (size_t c = 0; c < n; c++) {
      k = snprintf(line, sizeof line, "%zu,%d", s, v->col_rank[c]);
      for (int m = 0; m < NM; m++) {
        line[k++] = ',';
        k += shortest(line + k, sizeof line - (size_t)k, v->metrics[m].values[s * n + c]);
      }
      line[k++] = '\n';
      gzwrite(gz, line, (unsigned)k);
    }
  gzclose(gz);
  *secs = now() - t0;
  return file_size(path);
}

/* Writes the run as a standalone rank-per-writer WAL would hold it: one
 * writer per rank, blocks of 1000 steps. */
static void write_wal(const cairn_run_view *v, const char *dir) {
  cairn_buf b = {0};
  for (size_t c = 0; c < v->ncols; c++) {
    cairn_wal_options o = {.dir = dir, .rank = (uint32_t)v->col_rank[c],
                           .compression_level = 1, .segment_bytes = 64u << 20};
    memcpy(o.run_id, v->run_id, 16);
    cairn_wal_writer *w;
    char err[512];
    if (cairn__wal_open(&w, &o, err, sizeof err) != CAIRN_OK) {
      fprintf(stderr, "bench_h5_size: %s\n", err);
      exit(1);
    }
    size_t steps = v->metrics[0].nsteps;
    cairn_metric_agg *agg = malloc(1000 * NM * sizeof *agg);
    cairn_rec_step *mk = malloc(1000 * sizeof *mk);
    for (size_t s0 = 0; s0 < steps; s0 += 1000) {
      size_t s1 = s0 + 1000 < steps ? s0 + 1000 : steps, na = 0;
      cairn__rec_put_source(&b, (uint32_t)v->col_rank[c]);
      if (s0 == 0) {
        cairn_rec_run run = {.rank = (uint32_t)v->col_rank[c], .nranks = v->nranks,
                             .hostname = "node", .hostname_len = 4,
                             .version = cairn_version(), .version_len = strlen(cairn_version())};
        memcpy(run.run_id, v->run_id, 16);
        cairn__rec_put_run(&b, &run);
        uint32_t ids[NM];
        for (int m = 0; m < NM; m++)
          ids[m] = (uint32_t)m;
        cairn__rec_put_names(&b, NM, ids, metric_names);
      }
      for (size_t s = s0; s < s1; s++) {
        for (int m = 0; m < NM; m++) {
          double x = v->metrics[m].values[s * v->ncols + c];
          agg[na++] = (cairn_metric_agg){(int64_t)s, (uint32_t)m, 1, x, x, x};
        }
        mk[s - s0] = (cairn_rec_step){(int64_t)s, v->mark_time[s * v->ncols + c], 0};
      }
      cairn__rec_put_metrics(&b, na, agg);
      cairn__rec_put_steps(&b, s1 - s0, mk);
      cairn_rec_counters ctr[2] = {{0, s1 * NM, s1 * NM, 0, 0}, {1, 0, 0, 0, 0}};
      cairn__rec_put_counters(&b, 2, ctr);
      cairn__wal_append(w, 1, b.data, b.len);
      cairn__buf_reset(&b);
    }
    cairn__wal_close(w);
    free(agg);
    free(mk);
  }
  cairn__buf_free(&b);
}

static uint64_t dir_bytes(const char *dir, const char *prefix) {
  char **p;
  size_t n;
  char err[256];
  uint64_t t = 0;
  (void)prefix;
  if (cairn__run_list_wal(dir, &p, &n, err, sizeof err) != CAIRN_OK)
    return 0;
  for (size_t i = 0; i < n; i++)
    t += file_size(p[i]);
  cairn__run_free_paths(p, n);
  return t;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int me, P;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  int nranks = argc > 1 ? atoi(argv[1]) : 64;
  int64_t steps = argc > 2 ? atoll(argv[2]) : 100000;
  const char *base = argc > 3 ? argv[3] : ".";
  if (nranks < P || steps < 1) {
    if (me == 0)
      fprintf(stderr, "usage: [mpirun -np P] bench_h5_size [RANKS>=P [STEPS [DIR]]]\n");
    MPI_Finalize();
    return 2;
  }
  char dir[4096], path[4200], err[1024];
  snprintf(dir, sizeof dir, "%s/bench-h5-size", base);
  if (me == 0)
    mkdir(dir, 0700);
  MPI_Barrier(MPI_COMM_WORLD);
  double samples = (double)nranks * (double)steps * NM, raw = samples * 8.0;
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);

  /* Parallel writer: P processes, a contiguous block of ranks each. */
  double tpar = 0;
  if (P > 1) {
    int r0 = (int)((long long)nranks * me / P), r1 = (int)((long long)nranks * (me + 1) / P);
    cairn_run_view mine;
    make_view(&mine, r0, r1, nranks, steps);
    snprintf(path, sizeof path, "%s/run-g000001.h5", dir);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    int rc = cairn__h5_write_parallel(MPI_COMM_WORLD, &mine, path, &o, err, sizeof err);
    tpar = now() - t0;
    if (rc != CAIRN_OK && me == 0)
      fprintf(stderr, "bench_h5_size: parallel write: %s\n", err);
    cairn__view_free(&mine);
    if (me == 0 && rc == CAIRN_OK)
      printf("bench_h5_size: %d ranks x %" PRId64 " steps x %d metrics, parallel writer, %d "
             "processes: %.2f s, %.1f MB/s of raw float64 values, file %.3f B/sample\n",
             nranks, steps, NM, P, tpar, raw / tpar / 1e6, (double)file_size(path) / samples);
  }

  if (P == 1) {
    printf("bench_h5_size: %d ranks x %" PRId64 " steps x %d metrics = %.0f per-rank samples"
           " (%d MPI processes)\n", nranks, steps, NM, samples, P);
    cairn_run_view all;
    double t0 = now();
    make_view(&all, 0, nranks, nranks, steps);
    printf("  generated in %.1f s\n", now() - t0);
    snprintf(path, sizeof path, "%s/run-g000000.h5", dir);
    t0 = now();
    if (cairn__h5_write(&all, path, &o, err, sizeof err) != CAIRN_OK)
      fprintf(stderr, "bench_h5_size: serial write: %s\n", err);
    double tser = now() - t0;
    uint64_t h5 = file_size(path);
    o.detail = 0;
    char spath[4200];
    snprintf(spath, sizeof spath, "%s/run-g000002.h5", dir);
    cairn__h5_write(&all, spath, &o, err, sizeof err);
    uint64_t h5stats = file_size(spath);
    double tcsv = 0;
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/run.csv.gz", dir);
    uint64_t csv = gzip_csv_bytes(&all, cpath, &tcsv);

    /* WAL -> HDF5 (the standalone finalize step) */
    char wdir[4200];
    snprintf(wdir, sizeof wdir, "%s/wal", dir);
    mkdir(wdir, 0700);
    write_wal(&all, wdir);
    uint64_t wal = dir_bytes(wdir, "wal-");
    t0 = now();
    int frc = cairn__h5_finalize_run(wdir, 0, err, sizeof err);
    double tconv = now() - t0;
    if (frc != CAIRN_OK)
      fprintf(stderr, "bench_h5_size: finalize: %s\n", err);

    printf("  %-38s %14s %12s %10s\n", "representation", "bytes", "B/sample", "vs raw");
    printf("  %-38s %14.0f %12.3f %9.1f%%\n", "raw float64", raw, 8.0, 100.0);
    printf("  %-38s %14" PRIu64 " %12.3f %9.1f%%\n", "gzip'd CSV (shortest repr, level 6)", csv,
           (double)csv / samples, 100.0 * (double)csv / raw);
    printf("  %-38s %14" PRIu64 " %12.3f %9.1f%%\n", "cairn WAL (zstd 1)", wal,
           (double)wal / samples, 100.0 * (double)wal / raw);
    printf("  %-38s %14" PRIu64 " %12.3f %9.1f%%\n", "cairn HDF5, detail (per-rank values)", h5,
           (double)h5 / samples, 100.0 * (double)h5 / raw);
    printf("  %-38s %14" PRIu64 " %12.3f %9.1f%%\n", "cairn HDF5, statistics only", h5stats,
           (double)h5stats / samples, 100.0 * (double)h5stats / raw);
    printf("  HDF5 vs raw float64: %.1f%% (target <= 50%%: %s); gzip'd CSV / HDF5: %.2fx "
           "(target >= 4x: %s)\n",
           100.0 * (double)h5 / raw, (double)h5 <= 0.5 * raw ? "met" : "MISSED",
           (double)csv / (double)h5, (double)csv >= 4.0 * (double)h5 ? "met" : "MISSED");
    double values_b[NM] = {0}, stats_b[NM] = {0}, marks_b = 0;
    if (breakdown(path, samples / NM, values_b, stats_b, &marks_b) != 0) {
      cairn__view_free(&all);
      MPI_Finalize();
      return 1;
    }
    printf("  serial writer:   %.2f s, %.1f MB/s of raw float64 values\n", tser,
           raw / tser / 1e6);
    printf("  WAL -> HDF5 conversion (cairn__h5_finalize_run): %.2f s, %.1f MB/s\n", tconv,
           raw / tconv / 1e6);
    printf("  (CSV export + gzip took %.1f s)\n", tcsv);
    lossless_floor(&all, steps, (double)csv / samples, (double)h5 / samples, values_b, stats_b,
                   marks_b);
    cairn__view_free(&all);
  }
  MPI_Finalize();
  return 0;
}
