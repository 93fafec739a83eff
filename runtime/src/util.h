/*
 * util.h — private to cairn. Small process-level services the runtime needs:
 * clocks, run identifiers, directories and cairn's own diagnostics on stderr.
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__GNUC__)
#define CAIRN_LIKELY(x) __builtin_expect(!!(x), 1)
#define CAIRN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CAIRN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CAIRN_LIKELY(x) (x)
#define CAIRN_UNLIKELY(x) (x)
#define CAIRN_PRINTF(f, a)
#endif

#define CAIRN_CACHELINE 64

/* Wall-clock time in ns since the epoch (vDSO, no system call on Linux). */
static inline uint64_t cairn__now_realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic time in ns, for intervals. */
static inline uint64_t cairn__now_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 64-bit FNV-1a of n bytes: a fast, well-spread hash for in-memory tables
 * and for comparing blobs between processes (not for content identity). */
static inline uint64_t cairn__fnv1a64(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output
 * bit (for spreading counters and finishing word hashes). */
static inline uint64_t cairn__mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  return k ^ (k >> 33);
}

/* Fills id with a random (version 4) UUID from getrandom(). Returns CAIRN_OK
 * or CAIRN_EIO if the kernel's random source fails. */
int cairn__uuid_generate(uint8_t id[16]);
/* Formats as canonical lower-case text into out[37]. */
void cairn__uuid_format(const uint8_t id[16], char out[37]);
/* Parses canonical text; returns CAIRN_OK or CAIRN_EINVAL. */
int cairn__uuid_parse(const char *text, uint8_t id[16]);

/* Creates `path` and missing parents with `mode` (existing directories are
 * fine). Returns CAIRN_OK or CAIRN_EIO with a message in err. */
/* CPUs this process may run on (its affinity mask), at least 1. */
unsigned cairn__usable_cpus(void);

/* Bytes of memory this process can still get without the out-of-memory
 * killer: the node's MemAvailable, or less if its memory cgroup (the v1
 * memory controller's hierarchy, else cgroup v2, found through
 * /proc/self/cgroup and /proc/self/mountinfo), or one of that cgroup's
 * parents, has a limit closer to its working set (usage minus the
 * inactive page cache). 0 if neither can be read; at least 1 otherwise,
 * also when a cgroup has no headroom left. */
uint64_t cairn__memory_available(void);
/* The same from other files, for tests: meminfo and cgroup_file replace
 * /proc/meminfo and /proc/self/cgroup, mountinfo /proc/self/mountinfo, and
 * prefix is put before every mount point found there. */
uint64_t cairn__memory_available_from(const char *meminfo, const char *cgroup_file,
                                      const char *mountinfo, const char *prefix);

/* Gives the memory malloc keeps free back to the system (glibc's
 * malloc_trim; nothing elsewhere). Called by cairn_finalize once the run
 * file is written: the conversion frees gigabytes that glibc would
 * otherwise keep in its arenas for the rest of the application's life. */
void cairn__release_free_memory(void);

int cairn__mkdir_p(const char *path, unsigned mode, char *err, size_t errlen);

/* cairn's own diagnostics: "cairn: <level>: message\n" on stderr, filtered
 * by log.level (set by cairn__log_set_level). Thread-safe. */
void cairn__log_set_level(int level);
void cairn__log(int level, const char *fmt, ...) CAIRN_PRINTF(2, 3);

/* snprintf that always NUL-terminates and never fails on truncation. */
void cairn__fmt(char *buf, size_t len, const char *fmt, ...) CAIRN_PRINTF(3, 4);

#endif /* CAIRN_UTIL_H */
