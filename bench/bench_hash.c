/*
 * bench_hash.c — content-hash throughput (io/hash) beside sha256sum on the
 * same file in the same run: one thread, each thread count up to all cores,
 * and a one-leaf run whose digest must equal sha256sum's.
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
  return 0;
}
