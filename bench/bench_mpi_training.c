/*
 * bench_mpi_training.c — what tracking costs a synthetic I/O-bound
 * data-parallel training loop, under mpirun. Each step: a compute kernel, an
 * MPI_Allreduce of a gradient buffer, and a read of a data shard from a file,
 * plus M metrics per rank. In one job, rounds alternate between four ways of
 * recording the metrics:
 *   untracked   nothing is recorded (cairn is loaded but not called);
 *   cairn       cairn_step + M x cairn_metric;
 *   gather_h5   the naive peer: MPI_Gather of every rank's metrics to rank 0,
 *               which appends them to an HDF5 dataset with H5Dwrite each step;
 *   csv         the other naive peer: every rank fprintf's M CSV lines a step.
 * Reports the mean step time per mode, the overhead against untracked as a
 * ratio, cairn's records lost, the CPU cairn's background threads used in
 * the cairn rounds (by kind of thread, per record, and against the budget
 * the 0.5% target leaves them when the ranks keep every CPU busy) and over
 * the whole job (a niced aggregator that falls behind catches up while
 * other modes are timed), and the time MPI_Finalize takes (where cairn
 * completes the run's output).
 *
 * usage: mpirun -np R bench_mpi_training [STEPS_PER_ROUND=200] [ROUNDS=3]
 *          [METRICS=1000] [COMPUTE_US=2000] [SHARD_KB=1024] [GRAD_KB=4096]
 * BENCH_MODES (environment) limits the modes, e.g. BENCH_MODES=cairn for a
 * finalize-time measurement. BENCH_CKPT_MB=M and BENCH_CKPT_EVERY=N make
 * rank 0 write an M MiB checkpoint every N steps in every mode; in the
 * cairn mode it is also logged with cairn_artifact (OUTPUT), so the
 * difference to untracked includes hashing it in the background.
 * BENCH_F32=1 rounds every metric value to float32 before it is logged (as
 * a framework computing in float32 would hand them over; the run file then
 * stores them as float32).
 * BENCH_FLUSH_EVERY=N makes every rank call cairn_flush every N steps of
 * the cairn rounds (as at a checkpoint) and reports how long those calls
 * took over all ranks (p50, p90, p99, max): the time a rank waits for its
 * aggregator to have written its records.
 */
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

enum { UNTRACKED, CAIRN, GATHER_H5, CSV, NMODES };
static const char *mode_name[NMODES] = {"untracked", "cairn", "gather_h5", "csv"};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A compute kernel that takes about `us` microseconds and cannot be
 * optimised away. */
static double compute(int us, double seed) {
  double x = seed, t0 = now_s();
  while ((now_s() - t0) * 1e6 < us)
    for (int i = 0; i < 1000; i++)
      x = x * 1.0000001 + 1e-9;
  return x;
}

/* The kinds of cairn thread, by the name each gives itself. */
enum { BG_DRAIN, BG_WRITER, BG_AGGR, BG_HASHER, NBG };
static const char *const bg_name[NBG] = {"cairn-drain", "cairn-writer", "cairn-aggr",
                                         "cairn-hasher"};

/* Adds the CPU seconds used so far by this process's cairn threads to
 * use[kind] and their minor page faults to use[NBG + kind], from
 * /proc/self/task/<tid>/{comm,stat}; nothing where /proc is not there. */
static void cairn_threads_use(double use[2 * NBG]) {
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[300], comm[64] = "", stat[1024];
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    int kind = -1;
    if (fgets(comm, sizeof comm, f)) {
      comm[strcspn(comm, "\n")] = '\0';
      for (int k = 0; k < NBG; k++)
        if (strcmp(comm, bg_name[k]) == 0)
          kind = k;
    }
    fclose(f);
    if (kind < 0)
      continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    f = fopen(path, "r");
    if (!f)
      continue;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    /* fields after the ")" closing comm: state is field 3, utime 14, stime 15 */
    char *p = strrchr(stat, ')');
    unsigned long long flt = 0, ut = 0, st = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu", &flt,
                    &ut, &st) == 3) {
      use[kind] += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
      use[NBG + kind] += (double)flt;
    }
  }
  closedir(d);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Paired comparison: in round i, r_i = t(mode, i) / t(untracked, i) - 1.
 * Prints the median of the r_i and a distribution-free 95% confidence
 * interval of the median (order statistics of the binomial(n, 1/2) sign
 * test: no assumption on the noise's shape), and for cairn the verdict on
 * the 0.5% target: met if the whole interval is at or below it, missed if
 * it is above, not shown otherwise. */
static void paired_report(const double *per_round, int rounds, const int *enabled) {
  double *r = malloc((size_t)rounds * sizeof *r);
  if (!r)
    return;
  printf("  paired per-round overhead (median of %d rounds, 95%% CI of the median):\n", rounds);
  for (int m = 0; m < NMODES; m++) {
    if (m == UNTRACKED || !enabled[m])
      continue;
    for (int i = 0; i < rounds; i++)
      r[i] = per_round[(size_t)i * NMODES + (size_t)m] /
                 per_round[(size_t)i * NMODES + UNTRACKED] -
             1.0;
    qsort(r, (size_t)rounds, sizeof *r, cmp_double);
    double med = rounds % 2 ? r[rounds / 2] : 0.5 * (r[rounds / 2 - 1] + r[rounds / 2]);
    /* lower index k (0-based) = floor((n - 1.96 sqrt(n)) / 2), upper n-1-k */
    int k = (int)floor(((double)rounds - 1.96 * sqrt((double)rounds)) / 2.0);
    printf("    %-10s %+8.2f%%", mode_name[m], med * 100.0);
    if (k >= 0 && rounds - 1 - k > k) {
      double lo = r[k], hi = r[rounds - 1 - k];
      printf("   [%+.2f%%, %+.2f%%]", lo * 100.0, hi * 100.0);
      if (m == CAIRN)
        printf("   target <= 0.5%%: %s",
               hi <= 0.005 ? "met" : lo > 0.005 ? "MISSED" : "not shown (interval spans it)");
    } else {
      printf("   (too few rounds for an interval: use >= 6)");
    }
    printf("\n");
  }
  free(r);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 200;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  int metrics = argc > 3 ? atoi(argv[3]) : 1000;
  int compute_us = argc > 4 ? atoi(argv[4]) : 2000;
  size_t shard = (size_t)(argc > 5 ? atoi(argv[5]) : 1024) * 1024;
  size_t grad = (size_t)(argc > 6 ? atoi(argv[6]) : 4096) * 1024 / sizeof(double);
  if (steps <= 0 || rounds <= 0 || metrics <= 0) {
    if (rank == 0)
      fprintf(stderr, "usage: bench_mpi_training [STEPS] [ROUNDS] [METRICS] [COMPUTE_US] "
                      "[SHARD_KB] [GRAD_KB]\n");
    MPI_Finalize();
    return 2;
  }

  /* cairn is active if it was linked or preloaded and MPI_Init started it. */
  int *ids = malloc((size_t)metrics * sizeof *ids);
  int tracked = 1;
  for (int i = 0; i < metrics; i++) {
    char name[32];
    snprintf(name, sizeof name, "layer%04d.grad_norm", i);
    ids[i] = cairn_metric_id(name);
    if (ids[i] < 0)
      tracked = 0;
  }
  if (!tracked && rank == 0)
    fprintf(stderr, "bench: cairn is not active; its rounds measure nothing\n");

  /* The data shard: a private file per rank, read sequentially, wrapping. */
  char dir[] = "/tmp/cairn-bench-XXXXXX";
  if (rank == 0 && !mkdtemp(dir))
    MPI_Abort(MPI_COMM_WORLD, 2);
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  char path[256];
  snprintf(path, sizeof path, "%s/shard-%d.bin", dir, rank);
  size_t file_bytes = shard * 16;
  char *block = malloc(shard);
  memset(block, rank, shard);
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
  for (size_t off = 0; off < file_bytes; off += shard)
    if (write(fd, block, shard) != (ssize_t)shard)
      MPI_Abort(MPI_COMM_WORLD, 2);
  double *g = malloc(grad * sizeof *g), *gsum = malloc(grad * sizeof *gsum);
  for (size_t i = 0; i < grad; i++)
    g[i] = rank * 1e-3;
  double *vals = malloc((size_t)metrics * sizeof *vals);
  double *gathered = rank == 0 ? malloc((size_t)metrics * (size_t)size * sizeof *gathered) : NULL;

  /* Naive peer 1: rank 0's HDF5 file (serial driver, rank 0 only). */
  hid_t h5 = -1, h5d = -1;
  if (rank == 0) {
    char h5path[300];
    snprintf(h5path, sizeof h5path, "%s/gathered.h5", dir);
    h5 = H5Fcreate(h5path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {0, (hsize_t)size * (hsize_t)metrics},
            maxd[2] = {H5S_UNLIMITED, (hsize_t)size * (hsize_t)metrics},
            chunk[2] = {1, (hsize_t)size * (hsize_t)metrics};
    hid_t sp = H5Screate_simple(2, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    h5d = H5Dcreate2(h5, "/metrics", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
  }
  hsize_t h5rows = 0;
  /* Naive peer 2: one CSV file per rank. */
  snprintf(path, sizeof path, "%s/metrics-%d.csv", dir, rank);
  FILE *csv = fopen(path, "w");

  double total[NMODES] = {0};
  long nsteps[NMODES] = {0};
  /* Per round and mode (rank 0): the slowest rank's time, for paired
   * per-round ratios against the same round's untracked time. */
  double bg_cpu[2 * NBG] = {0}; /* this rank's cairn threads, during the cairn rounds */
  double *per_round = calloc((size_t)rounds * NMODES, sizeof *per_round);
  if (!per_round)
    MPI_Abort(MPI_COMM_WORLD, 2);
  int64_t step = 0;
  double sink = 0;
  off_t roff = 0;
  int ckpt_mb = getenv("BENCH_CKPT_MB") ? atoi(getenv("BENCH_CKPT_MB")) : 0;
  int ckpt_every = getenv("BENCH_CKPT_EVERY") ? atoi(getenv("BENCH_CKPT_EVERY")) : 0;
  char *ckpt = NULL;
  size_t ckpt_bytes = (size_t)ckpt_mb << 20;
  if (rank == 0 && ckpt_mb > 0 && ckpt_every > 0) {
    ckpt = malloc(ckpt_bytes);
    if (!ckpt)
      MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = 0; i < ckpt_bytes; i++)
      ckpt[i] = (char)(i * 131 + 7);
  }
  int ncheckpoints = 0;
  int flush_every = getenv("BENCH_FLUSH_EVERY") ? atoi(getenv("BENCH_FLUSH_EVERY")) : 0;
  int f32_values = getenv("BENCH_F32") && atoi(getenv("BENCH_F32")) != 0;
  size_t nflush = 0, flush_cap = flush_every > 0 ? (size_t)rounds * (size_t)steps /
                                                       (size_t)flush_every + 1 : 1;
  double *flush_s = calloc(flush_cap, sizeof *flush_s);
  if (!flush_s)
    MPI_Abort(MPI_COMM_WORLD, 2);
  int enabled[NMODES];
  const char *only = getenv("BENCH_MODES");
  for (int m = 0; m < NMODES; m++)
    enabled[m] = !only || strstr(only, mode_name[m]) != NULL;
  /* cairn's threads over the whole job too: an aggregator that falls
   * behind catches up while the other modes run, outside the cairn rounds */
  double job0[2 * NBG] = {0}, job1[2 * NBG] = {0};
  cairn_threads_use(job0);
  for (int round = 0; round < rounds; round++) {
    for (int k = 0; k < NMODES; k++) {
      /* Odd rounds run the modes in reverse order, so a drift of the
       * machine during a round does not favour the modes that run first. */
      int mode = round % 2 ? NMODES - 1 - k : k;
      if (!enabled[mode])
        continue;
      MPI_Barrier(MPI_COMM_WORLD);
      double c0[2 * NBG] = {0}, c1[2 * NBG] = {0};
      if (mode == CAIRN)
        cairn_threads_use(c0);
      double t0 = MPI_Wtime();
      for (int s = 0; s < steps; s++, step++) {
        sink += compute(compute_us, sink);
        MPI_Allreduce(g, gsum, (int)grad, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (pread(fd, block, shard, roff) != (ssize_t)shard)
          MPI_Abort(MPI_COMM_WORLD, 2);
        roff = (off_t)(((size_t)roff + shard) % file_bytes);
        for (int i = 0; i < metrics; i++)
          vals[i] = gsum[i % grad] + 1.0 / (1.0 + (double)step) + i * 1e-6;
        if (f32_values)
          for (int i = 0; i < metrics; i++)
            vals[i] = (double)(float)vals[i];
        if (mode == CAIRN && tracked) {
          cairn_step(step);
          for (int i = 0; i < metrics; i++)
            cairn_metric(ids[i], vals[i]);
        } else if (mode == GATHER_H5) {
          MPI_Gather(vals, metrics, MPI_DOUBLE, gathered, metrics, MPI_DOUBLE, 0,
                     MPI_COMM_WORLD);
          if (rank == 0) {
            hsize_t dims[2] = {h5rows + 1, (hsize_t)size * (hsize_t)metrics};
            H5Dset_extent(h5d, dims);
            hid_t fs = H5Dget_space(h5d);
            hsize_t start[2] = {h5rows, 0}, count[2] = {1, dims[1]};
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
            hid_t ms = H5Screate_simple(2, count, NULL);
            H5Dwrite(h5d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, gathered);
            H5Sclose(ms);
            H5Sclose(fs);
            h5rows++;
          }
        }
        if (ckpt && (s + 1) % ckpt_every == 0) {
          /* A checkpoint: written in every mode, logged in the cairn one. */
          char cp[300];
          /* Four names in turn: a file is rewritten only long after it was
           * logged, so the background hash never sees it change. */
          snprintf(cp, sizeof cp, "%s/ckpt-%d.bin", dir, ncheckpoints++ % 4);
          int cfd = open(cp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
          /* write() moves at most ~2 GiB at a time: loop. */
          for (size_t done = 0; cfd >= 0 && done < ckpt_bytes;) {
            ssize_t w = write(cfd, ckpt + done, ckpt_bytes - done);
            if (w <= 0)
              MPI_Abort(MPI_COMM_WORLD, 2);
            done += (size_t)w;
          }
          if (cfd < 0)
            MPI_Abort(MPI_COMM_WORLD, 2);
          close(cfd);
          ckpt[0]++; /* a new content each time */
          if (mode == CAIRN && tracked)
            cairn_artifact(cp, CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT);
        }
        if (mode == CAIRN && tracked && flush_every > 0 && (s + 1) % flush_every == 0 &&
            nflush < flush_cap) {
          double q0 = now_s();
          cairn_flush();
          flush_s[nflush++] = now_s() - q0;
        }
        if (mode == CSV) {
          for (int i = 0; i < metrics; i++)
            fprintf(csv, "%lld,%d,%.17g\n", (long long)step, i, vals[i]);
        }
      }
      double t = MPI_Wtime() - t0, tmax;
      if (mode == CAIRN) {
        cairn_threads_use(c1);
        for (int b = 0; b < 2 * NBG; b++)
          bg_cpu[b] += c1[b] - c0[b];
      }
      MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
      total[mode] += tmax;
      nsteps[mode] += steps;
      per_round[(size_t)round * NMODES + (size_t)mode] = tmax;
    }
  }
  cairn_counters c = {0};
  if (tracked) {
    /* The counters count published records: publish the last step's
     * (after the timed rounds), so that logged is every call made. */
    (void)cairn_flush();
    cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  }
  cairn_threads_use(job1);
  double job = 0, job_all = 0;
  for (int k = 0; k < NBG; k++)
    job += job1[k] - job0[k];
  MPI_Reduce(&job, &job_all, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  uint64_t lost = c.dropped, lost_all = 0, logged_all = 0;
  MPI_Reduce(&lost, &lost_all, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(&c.logged, &logged_all, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  double bg_kind[2 * NBG] = {0}, bg_all = 0;
  MPI_Reduce(bg_cpu, bg_kind, 2 * NBG, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  for (int k = 0; k < NBG; k++)
    bg_all += bg_kind[k];
  /* every rank's cairn_flush times, gathered on rank 0 (each rank made the
   * same number of calls: the same steps) */
  double *flush_all = NULL;
  if (flush_every > 0) {
    flush_all = rank == 0 ? calloc(nflush * (size_t)size + 1, sizeof *flush_all) : NULL;
    if (rank == 0 && !flush_all)
      MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Gather(flush_s, (int)nflush, MPI_DOUBLE, flush_all, (int)nflush, MPI_DOUBLE, 0,
               MPI_COMM_WORLD);
  }
  if (rank == 0) {
    H5Dclose(h5d);
    H5Fclose(h5);
  }
  fclose(csv);
  close(fd);

  if (rank == 0) {
    printf("synthetic training loop: %d ranks, %d steps x %d rounds per mode, %d metrics per "
           "step per rank, compute %d us, shard %zu KiB, gradient %zu KiB\n",
           size, steps, rounds, metrics, compute_us, shard / 1024, grad * sizeof(double) / 1024);
    double base = nsteps[UNTRACKED] ? total[UNTRACKED] / (double)nsteps[UNTRACKED] : NAN;
    printf("  %-10s %12s %12s\n", "mode", "step (ms)", "vs untracked");
    for (int m = 0; m < NMODES; m++) {
      if (!nsteps[m])
        continue;
      double st = total[m] / (double)nsteps[m];
      printf("  %-10s %12.3f %+11.2f%%\n", mode_name[m], st * 1e3, (st / base - 1.0) * 100.0);
    }
    if (enabled[UNTRACKED])
      paired_report(per_round, rounds, enabled);
    printf("  cairn records logged %llu, lost %llu\n", (unsigned long long)logged_all,
           (unsigned long long)lost_all);
    if (nsteps[CAIRN]) {
      long cpus = sysconf(_SC_NPROCESSORS_ONLN);
      double wall = total[CAIRN];
      printf("  cairn's threads (drain, writer, aggregator, hasher; all ranks) used %.3f CPU s "
             "in the cairn rounds' %.3f s: %.2f%% of %ld CPUs, %.0f ns per record\n",
             bg_all, wall, wall > 0 && cpus > 0 ? 100.0 * bg_all / (wall * (double)cpus) : 0.0,
             cpus, logged_all ? bg_all * 1e9 / (double)logged_all : 0.0);
      /* With every CPU kept busy by the ranks, the background threads'
       * CPU is taken from them: the 0.5% target allows them 0.5% of the
       * CPUs over the rounds. */
      if (logged_all && cpus > 0)
        printf("    0.5%% of %ld CPUs over these rounds is %.1f ns of CPU per record\n", cpus,
               0.005 * (double)cpus * wall * 1e9 / (double)logged_all);
      printf("   ");
      for (int k = 0; k < NBG; k++)
        printf(" %s %.3f s (%.0f ns/record, %.2f page faults/1000)%s", bg_name[k] + 6,
               bg_kind[k], logged_all ? bg_kind[k] * 1e9 / (double)logged_all : 0.0,
               logged_all ? bg_kind[NBG + k] * 1e3 / (double)logged_all : 0.0,
               k + 1 < NBG ? ";" : "\n");
      if (job_all > bg_all)
        printf("    over the whole job (every mode's rounds, then a flush) they used %.3f CPU s: "
               "%.0f ns per record, %.2f%% of %ld CPUs over the cairn rounds; %.0f%% of it "
               "outside them (while other modes were timed, between rounds, in the flush)\n",
               job_all, logged_all ? job_all * 1e9 / (double)logged_all : 0.0,
               wall > 0 && cpus > 0 ? 100.0 * job_all / (wall * (double)cpus) : 0.0, cpus,
               100.0 * (job_all - bg_all) / job_all);
    }
    if (flush_all && nflush) {
      size_t n = nflush * (size_t)size;
      qsort(flush_all, n, sizeof *flush_all, cmp_double);
      printf("  cairn_flush every %d steps, %zu calls over all ranks: p50 %.2f ms, p90 %.2f ms, "
             "p99 %.2f ms, max %.2f ms\n",
             flush_every, n, flush_all[n / 2] * 1e3, flush_all[n * 9 / 10] * 1e3,
             flush_all[n * 99 / 100] * 1e3, flush_all[n - 1] * 1e3);
    }
    if (ckpt)
      printf("  rank 0 wrote a %d MiB checkpoint every %d steps (%d in all; hashed in the "
             "background in the cairn mode)\n",
             ckpt_mb, ckpt_every, ncheckpoints);
  }
  double f0 = now_s();
  MPI_Finalize();
  double fin = now_s() - f0;
  if (rank == 0) {
    printf("  MPI_Finalize (cairn completes the run's output): %.3f s\n", fin);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "bench: could not remove %s\n", dir);
  }
  free(ids);
  free(block);
  free(g);
  free(gsum);
  free(vals);
  free(gathered);
  free(ckpt);
  free(per_round);
  free(flush_s);
  free(flush_all);
  (void)sink;
  return 0;
}
