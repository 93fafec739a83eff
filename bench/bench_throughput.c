/*
 * bench_throughput.c — sustained logging throughput with the drain live and
 * writing the write-ahead log, and the drain's CPU use when idle.
 *
 * A producer thread logs M metrics per step (cairn_step + M x cairn_metric)
 * paced at a target rate for D seconds, twice: as an I/O-bound training loop
 * (it blocks between steps until the next is due, as a loop waiting on data
 * reads or a GPU does) and as a spinning loop (it never gives its core
 * away); the report gives the achieved rate,
 * records dropped (the target is zero at the default ring size), the drain's
 * CPU time while busy and while idle, and WAL bytes per record. Targets are
 * run side by side in one process: paced at 20 M/s, then unpaced (as fast as
 * the producer can go), so the ratio of what the drain sustains to what one
 * producer core can generate is visible.
 *
 * usage: bench_throughput [SECONDS=10] [METRICS_PER_STEP=1000] [RATE_M=21]
 * (RATE_M is the rate the paced producers offer; the verdict asks for at
 * least 20 M/s achieved with zero drops.)
 */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system, in seconds) of the thread named `name`. */
static double thread_cpu_s(const char *name) {
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return -1;
  struct dirent *e;
  double cpu = -1;
  long hz = sysconf(_SC_CLK_TCK);
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    if (!fgets(comm, sizeof comm, f))
      comm[0] = 0;
    fclose(f);
    if (strncmp(comm, name, strlen(name)) != 0)
      continue;
    /* schedstat: nanoseconds on a CPU (exact); stat: clock ticks, where
     * schedstat is missing. */
    snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
    f = fopen(path, "r");
    unsigned long long ns;
    if (f && fscanf(f, "%llu", &ns) == 1) {
      fclose(f);
      cpu = (double)ns * 1e-9;
      continue;
    }
    if (f)
      fclose(f);
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    f = fopen(path, "r");
    if (!f)
      continue;
    char buf[1024];
    if (fgets(buf, sizeof buf, f)) {
      char *p = strrchr(buf, ')');
      unsigned long ut = 0, st = 0;
      /* fields after ")": state(3) ... utime(14) stime(15) */
      if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                      &st) == 2)
        cpu = (double)(ut + st) / (double)hz;
    }
    fclose(f);
  }
  closedir(d);
  return cpu;
}

static double drain_cpu_s(void) { return thread_cpu_s("cairn-drain"); }
static double writer_cpu_s(void) { return thread_cpu_s("cairn-writer"); }

/* Removes a run directory the benchmark made (it holds only run files). */
static void remove_run(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char p[4400];
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

static uint64_t dir_bytes(const char *dir) {
  DIR *d = opendir(dir);
  uint64_t total = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (e->d_name[0] != '.' && stat(p, &st) == 0)
      total += (uint64_t)st.st_size;
  }
  if (d)
    closedir(d);
  return total;
}

typedef struct {
  double seconds, rate, drain_cpu, writer_cpu, bytes_per_rec;
  uint64_t logged, written, dropped;
} result;

/* The sustained-rate target, M records/s (issue 2). */
#define TARGET_M 20.0

/* How the producer keeps to its rate. */
enum { PACE_NONE, PACE_SLEEP, PACE_SPIN };

static int run(double seconds, int per_step, double rate_per_s, int pace, result *res) {
  int rc = cairn_init(NULL);
  if (rc != CAIRN_OK) {
    fprintf(stderr, "cairn_init: %s: %s\n", cairn_strerror(rc), cairn_last_error());
    return 1;
  }
  int *ids = malloc((size_t)per_step * sizeof *ids);
  for (int i = 0; i < per_step; i++) {
    char name[32];
    snprintf(name, sizeof name, "layer%03d.metric", i);
    ids[i] = cairn_metric_id(name);
  }
  double cpu0;
  struct timespec settle = {0, 10000000};
  while ((cpu0 = drain_cpu_s()) < 0)
    nanosleep(&settle, NULL);
  double wcpu0 = writer_cpu_s();
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9), n = 0;
  int64_t step = 0;
  unsigned seed = 7;
  double base = 1.0;
  /* Pacing: each step is due per_step/rate after the previous one. A
   * producer that fell behind (descheduled) does not burst to catch up by
   * more than 1 ms of records — a training loop does not either — so the
   * achieved rate is reported as measured. */
  const double step_ns = pace != PACE_NONE ? (double)per_step / rate_per_s * 1e9 : 0;
  double due = (double)t0;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= deadline)
      break;
    if (pace != PACE_NONE) {
      if (due > (double)t) {
        if (pace == PACE_SPIN)
          continue; /* a CPU-bound host thread: never gives the core away */
        /* An I/O-bound loop: it blocks (data read, GPU sync, allreduce)
         * until its next step is due, in ticks of at most 1 ms. */
        uint64_t wait = (uint64_t)(due - (double)t);
        struct timespec ts = {0, (long)(wait < 1000000 ? wait : 1000000)};
        nanosleep(&ts, NULL);
        continue;
      }
      if ((double)t - due > 1e6)
        due = (double)t - 1e6;
      due += step_ns;
    }
    cairn_step(step);
    base = 0.999 * base + 0.001 * ((double)rand_r(&seed) / RAND_MAX);
    for (int i = 0; i < per_step; i++)
      cairn_metric(ids[i], base + i * 1e-3);
    n += (uint64_t)per_step;
    step++;
  }
  uint64_t t1 = now_ns();
  double cpu1 = drain_cpu_s(), wcpu1 = writer_cpu_s();
  cairn_run_info info;
  cairn_get_run_info(&info);
  cairn_finalize();
  cairn_counters c;
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  res->seconds = (double)(t1 - t0) / 1e9;
  res->rate = (double)c.logged / res->seconds;
  res->drain_cpu = (cpu1 - cpu0) / res->seconds;
  res->writer_cpu = (wcpu1 - wcpu0) / res->seconds;
  res->logged = c.logged;
  res->written = c.written;
  res->dropped = c.dropped;
  res->bytes_per_rec = c.logged ? (double)dir_bytes(info.run_dir) / (double)c.logged : 0;
  remove_run(info.run_dir); /* gigabytes at these rates */
  free(ids);
  return 0;
}

static double idle_drain_cpu(double seconds) {
  /* The runs before leave gigabytes of dirty pages; their writeback's
   * interrupts are charged to whichever thread is on the CPU, often the
   * idle drain (seen: 0.4 ms/s of drain CPU after a sync, spikes of 10 ms/s
   * without). Write them back first: this measures cairn, not the disk. */
  sync();
  if (cairn_init(NULL) != CAIRN_OK)
    return -1;
  int id = cairn_metric_id("idle");
  cairn_metric(id, 1.0);
  /* Let the drain start and name itself, and write the run's first block
   * (run record, names, the segment file and its sync), before the first
   * reading: idle is the steady state after that. */
  double c0;
  struct timespec settle = {0, 50000000}, first = {1, 0};
  while (drain_cpu_s() < 0)
    nanosleep(&settle, NULL);
  nanosleep(&first, NULL);
  c0 = drain_cpu_s();
  uint64_t t0 = now_ns();
  struct timespec ts = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
  nanosleep(&ts, NULL);
  double c1 = drain_cpu_s();
  double wall = (double)(now_ns() - t0) / 1e9;
  cairn_finalize();
  return (c1 - c0) / wall;
}

static void print(const char *what, const result *r) {
  printf("  %-22s %8.2f M rec/s  %6.1f s  logged %11" PRIu64 "  dropped %9" PRIu64
         " (%.4f%%)  drain %4.1f%%  writer %4.1f%% CPU  run file %.2f B/rec\n",
         what, r->rate / 1e6, r->seconds, r->logged, r->dropped,
         r->logged ? 100.0 * (double)r->dropped / (double)r->logged : 0.0, 100.0 * r->drain_cpu,
         100.0 * r->writer_cpu, r->bytes_per_rec);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10.0;
  int per_step = argc > 2 ? atoi(argv[2]) : 1000;
  /* The target is a rate sustained with zero drops: the producers offer a
   * little more than it, so that a producer's own late wake-ups do not
   * decide the verdict; what counts is the rate achieved. */
  double rate_m = argc > 3 ? atof(argv[3]) : TARGET_M * 1.05;
  if (seconds <= 0 || per_step <= 0 || rate_m <= 0) {
    fprintf(stderr, "usage: bench_throughput [SECONDS] [METRICS_PER_STEP] [RATE_M]\n");
    return 2;
  }
  setenv("CAIRN_LOG_LEVEL", "error", 0);
  result paced, spin, flat;
  if (run(seconds, per_step, rate_m * 1e6, PACE_SLEEP, &paced) ||
      run(seconds, per_step, rate_m * 1e6, PACE_SPIN, &spin) ||
      run(seconds, per_step, 0, PACE_NONE, &flat))
    return 1;
  double idle = idle_drain_cpu(5.0);
  printf("sustained throughput, %d metrics per step, drain live writing the WAL:\n", per_step);
  char label[64];
  snprintf(label, sizeof label, "%.4g M/s, I/O-bound loop", rate_m);
  print(label, &paced);
  snprintf(label, sizeof label, "%.4g M/s, spinning loop", rate_m);
  print(label, &spin);
  print("unpaced (max)", &flat);
  printf("  ratio unpaced/paced rate: %.2fx\n", flat.rate / paced.rate);
  printf("  drain CPU when idle: %.3f%% of a core (5 s, nothing logged)\n", 100.0 * idle);
  printf("  target (>= %.0f M rec/s achieved for %.0f s, zero drops; offered %.4g M/s), "
         "I/O-bound loop: %s; spinning loop: %s\n",
         TARGET_M, seconds, rate_m,
         paced.dropped == 0 && paced.rate >= TARGET_M * 1e6 ? "met" : "MISSED",
         spin.dropped == 0 && spin.rate >= TARGET_M * 1e6 ? "met" : "MISSED");
  printf("  target (idle drain < 1%% of a core): %s\n", idle < 0.01 ? "met" : "MISSED");
  return 0;
}
