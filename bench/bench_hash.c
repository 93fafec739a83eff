/*
 * bench_hash.c — content-hash throughput (io/hash) beside sha256sum on the
 * same file in the same run: one thread, each thread count up to all cores,
 * and a one-leaf run whose digest must equal sha256sum's. Then the runtime's
 * hasher pool end to end: four files (a quarter of SIZE_MIB each), and then
 * the whole file alone, logged with cairn_artifact, from the call to
 * cairn_finalize (which waits for the hashes), with lineage.hasher_threads
 * = 1, 2, ... up to all cores; the recorded hashes must not depend on the
 * pool's size.
 *
 * Usage: bench_hash [FILE [SIZE_MIB [REPEATS]]]  (defaults:
 * /tmp/cairn-bench-hash.bin, 1024, 3). The file is created with
 * pseudo-random bytes if it is missing or has another size, then read once
 * so every run hashes from the page cache (the benchmark measures hashing,
 * not the disk). Each configuration runs REPEATS times, interleaved; the
 * best and the median are printed.
 */
#include "hash/hash.h"

#include "cairn.h"
#include "run_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFIGS 16
#define MAX_REPEATS 15

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int make_file(const char *path, uint64_t size) {
  struct stat st;
  if (stat(path, &st) == 0 && (uint64_t)st.st_size == size)
    return 0;
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  static uint64_t buf[1 << 17]; /* 1 MiB */
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (uint64_t done = 0; done < size;) {
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = x;
    }
    size_t n = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
    if (fwrite(buf, 1, n, f) != n) {
      fclose(f);
      return -1;
    }
    done += n;
  }
  return fclose(f);
}

static void warm(const char *path) {
  static char buf[1 << 20];
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return;
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
}

/* Runs sha256sum on path; returns seconds, hex digest in hex. */
static double run_sha256sum(const char *path, char hex[65]) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
  double t0 = now_s();
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  size_t got = fread(hex, 1, 64, p);
  hex[got] = '\0';
  while (fgetc(p) != EOF) {
  }
  int st = pclose(p);
  double t = now_s() - t0;
  return st == 0 && got == 64 ? t : -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  char label[64];
  unsigned threads; /* 0: sha256sum */
  uint64_t leaf;
  double t[MAX_REPEATS];
  char hex[65];
} config;

/* rm -r of a run directory (files only, one level: what a run holds). */
static void remove_run(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4096 + 256 + 2];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

#define POOL_FILES 4

/* Logs nfiles files with a pool of `threads`, returns seconds from the
 * first call to the end of cairn_finalize, and the recorded hashes. */
static double run_pool(char paths[POOL_FILES][4096], int nfiles, unsigned threads,
                       char hashes[POOL_FILES][128]) {
  char env[16];
  snprintf(env, sizeof env, "%u", threads);
  setenv("CAIRN_LINEAGE_HASHER_THREADS", env, 1);
  setenv("CAIRN_RUN_DIR", "/tmp/cairn-bench-hash-runs", 1);
  if (cairn_init(NULL) != CAIRN_OK)
    return -1;
  cairn_run_info info;
  cairn_get_run_info(&info);
  int64_t ids[POOL_FILES];
  double t0 = now_s();
  for (int i = 0; i < nfiles; i++)
    ids[i] = cairn_artifact(paths[i], CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT);
  int rc = cairn_finalize();
  double t = now_s() - t0;
  cairn_run_view v;
  cairn__view_init(&v);
  if (rc != CAIRN_OK || cairn__run_open(info.run_dir, &v, NULL) != CAIRN_OK)
    t = -1;
  for (int i = 0; i < nfiles; i++) {
    hashes[i][0] = '\0';
    for (size_t k = 0; k < v.nartifacts; k++)
      if (v.artifacts[k].id == (uint64_t)ids[i])
        snprintf(hashes[i], 128, "%s", v.artifacts[k].hash);
  }
  cairn__view_free(&v);
  remove_run(info.run_dir);
  return t;
}

/* nfiles == POOL_FILES: quarter files made next to path; 1: path itself. */
static int bench_pool(const char *path, uint64_t size, long ncpu, int repeats, int nfiles) {
  char paths[POOL_FILES][4096];
  uint64_t each = size / (uint64_t)nfiles;
  for (int i = 0; i < nfiles; i++) {
    if (nfiles == 1) {
      snprintf(paths[i], sizeof paths[i], "%s", path);
      continue;
    }
    snprintf(paths[i], sizeof paths[i], "%s.pool%d", path, i);
    if (make_file(paths[i], each + (uint64_t)i) != 0) { /* distinct sizes, distinct files */
      perror(paths[i]);
      return 1;
    }
    warm(paths[i]);
  }
  unsigned counts[8];
  int ncounts = 0;
  for (long t = 1; ncounts < 8; t *= 2) {
    if (t > ncpu)
      t = ncpu;
    counts[ncounts++] = (unsigned)t;
    if (t == ncpu)
      break;
  }
  double best[8], med[8];
  char ref[POOL_FILES][128];
  int same = 1;
  for (int k = 0; k < ncounts; k++) {
    double t[MAX_REPEATS];
    for (int r = 0; r < repeats; r++) {
      char got[POOL_FILES][128];
      t[r] = run_pool(paths, nfiles, counts[k], got);
      if (t[r] < 0) {
        fprintf(stderr, "hasher pool run failed (%s)\n", cairn_last_error());
        return 1;
      }
      for (int i = 0; i < nfiles; i++) {
        if (k == 0 && r == 0)
          memcpy(ref[i], got[i], sizeof ref[i]);
        same &= strcmp(ref[i], got[i]) == 0 && strncmp(got[i], "cairn-merkle", 12) == 0;
      }
    }
    qsort(t, (size_t)repeats, sizeof t[0], cmp_double);
    best[k] = (double)(each * (uint64_t)nfiles) / t[0] / 1e6;
    med[k] = (double)(each * (uint64_t)nfiles) / t[repeats / 2] / 1e6;
  }
  unsetenv("CAIRN_LINEAGE_HASHER_THREADS");
  printf("\nhasher pool: %d file%s of %llu MiB logged with cairn_artifact, call to finalize\n",
         nfiles, nfiles > 1 ? "s" : "", (unsigned long long)(each >> 20));
  printf("%-32s %10s %10s %10s\n", "lineage.hasher_threads", "best MB/s", "median", "MB/s/thr");
  for (int k = 0; k < ncounts; k++)
    printf("%-32u %10.0f %10.0f %10.0f\n", counts[k], best[k], med[k], best[k] / counts[k]);
  printf("recorded hashes %s whatever the pool's size\n", same ? "identical" : "DIFFER");
  for (int i = 0; nfiles > 1 && i < nfiles; i++)
    unlink(paths[i]);
  return same ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "/tmp/cairn-bench-hash.bin";
  uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
  int repeats = argc > 3 ? atoi(argv[3]) : 3;
  if (repeats < 1 || repeats > MAX_REPEATS || mib == 0) {
    fprintf(stderr, "usage: bench_hash [FILE [SIZE_MIB [REPEATS<=%d]]]\n", MAX_REPEATS);
    return 2;
  }
  uint64_t size = mib << 20;
  if (make_file(path, size) != 0) {
    perror(path);
    return 1;
  }
  warm(path);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1)
    ncpu = 1;

  config c[MAX_CONFIGS];
  int nc = 0;
  memset(c, 0, sizeof c);
  snprintf(c[nc].label, sizeof c[nc].label, "sha256sum (coreutils)");
  nc++;
  /* One leaf as large as the file: plain SHA-256, must equal sha256sum. */
  uint64_t one_leaf = CAIRN_HASH_MAX_LEAF;
  if (size <= one_leaf) {
    snprintf(c[nc].label, sizeof c[nc].label, "cairn 1 thread, one leaf");
    c[nc].threads = 1;
    c[nc].leaf = one_leaf;
    nc++;
  }
  /* 1, 2, 4, ... threads, and all cores last. */
  for (long t = 1; nc < MAX_CONFIGS; t *= 2) {
    if (t > ncpu)
      t = ncpu;
    snprintf(c[nc].label, sizeof c[nc].label, "cairn %ld thread%s, 4 MiB leaves", t,
             t > 1 ? "s" : "");
    c[nc].threads = (unsigned)t;
    c[nc].leaf = CAIRN_HASH_DEFAULT_LEAF;
    nc++;
    if (t == ncpu)
      break;
  }

  for (int r = 0; r < repeats; r++) {
    for (int i = 0; i < nc; i++) {
      if (c[i].threads == 0) {
        c[i].t[r] = run_sha256sum(path, c[i].hex);
        if (c[i].t[r] < 0) {
          fprintf(stderr, "sha256sum failed\n");
          return 1;
        }
        continue;
      }
      cairn_hash_result res;
      double t0 = now_s();
      int rc = cairn__hash_file(path, c[i].leaf, c[i].threads, &res);
      c[i].t[r] = now_s() - t0;
      if (rc != CAIRN_OK) {
        fprintf(stderr, "%s: %s (%s)\n", path, cairn_err_name(rc), res.reason);
        return 1;
      }
      memcpy(c[i].hex, res.hex, sizeof c[i].hex);
    }
  }

  printf("file %s, %llu MiB, %ld online cores, %d repeats, page cache warm\n", path,
         (unsigned long long)mib, ncpu, repeats);
  printf("%-32s %10s %10s %10s  %s\n", "configuration", "best MB/s", "median", "MB/s/thr",
         "digest");
  for (int i = 0; i < nc; i++) {
    double s[MAX_REPEATS];
    memcpy(s, c[i].t, sizeof s);
    qsort(s, (size_t)repeats, sizeof s[0], cmp_double);
    double best = (double)size / s[0] / 1e6, med = (double)size / s[repeats / 2] / 1e6;
    unsigned thr = c[i].threads ? c[i].threads : 1;
    printf("%-32s %10.0f %10.0f %10.0f  %.16s...\n", c[i].label, best, med, best / thr,
           c[i].hex);
  }
  if (nc > 1 && c[1].leaf == one_leaf) {
    int same = strcmp(c[0].hex, c[1].hex) == 0;
    printf("one-leaf digest %s sha256sum's\n", same ? "equals" : "DIFFERS FROM");
    if (!same)
      return 1;
  }
  if (bench_pool(path, size, ncpu, repeats, POOL_FILES) != 0)
    return 1;
  return bench_pool(path, size, ncpu, repeats, 1);
}
