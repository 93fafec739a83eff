/*
 * bench_h5_size.c — what cairn's HDF5 run file costs for a realistic
 * synthetic training run: on-disk bytes per per-rank sample beside raw
 * float64 and a gzip'd CSV of the same numbers, the serial and parallel
 * writers' bandwidth, and the time to convert a write-ahead log into the
 * run file (the standalone finalize step).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

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
static void breakdown(const char *path, double per_metric_samples) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return;
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
  }
  hid_t d = H5Dopen2(f, "/steps/time_ns", H5P_DEFAULT);
  printf("    %-16s %22.3f\n", "step markers", (double)H5Dget_storage_size(d) / (per_metric_samples * NM));
  H5Dclose(d);
  H5Fclose(f);
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
    int frc = cairn__h5_finalize_run(wdir, err, sizeof err);
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
    breakdown(path, samples / NM);
    printf("  serial writer:   %.2f s, %.1f MB/s of raw float64 values\n", tser,
           raw / tser / 1e6);
    printf("  WAL -> HDF5 conversion (cairn__h5_finalize_run): %.2f s, %.1f MB/s\n", tconv,
           raw / tconv / 1e6);
    printf("  (CSV export + gzip took %.1f s)\n", tcsv);
    cairn__view_free(&all);
  }
  MPI_Finalize();
  return 0;
}
