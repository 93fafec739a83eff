/* util.c — clocks, UUIDs, directory creation and diagnostics for the runtime. */
#include "util.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"
#include "config.h"

unsigned cairn__usable_cpus(void) {
  cpu_set_t set;
  long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                       : sysconf(_SC_NPROCESSORS_ONLN);
  return n > 1 ? (unsigned)n : 1u;
}

void cairn__release_free_memory(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/* The first unsigned number in a small file; 0 (and *is_max set) for "max". */
static int read_u64_file(const char *path, uint64_t *v, int *is_max) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char buf[64] = "";
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  if (!ok)
    return -1;
  *is_max = strncmp(buf, "max", 3) == 0;
  *v = *is_max ? 0 : strtoull(buf, NULL, 10);
  return 0;
}

uint64_t cairn__memory_available(void) {
  uint64_t avail = 0;
  char line[4096];
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    unsigned long long kb;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        avail = (uint64_t)kb * 1024u;
        break;
      }
    fclose(f);
  }
  /* cgroup v2 ("0::/path"): the tightest headroom of the cgroup and its
   * parents (a batch system may set the limit on the job, not the step). */
  f = fopen("/proc/self/cgroup", "r");
  if (!f)
    return avail;
  char *rel = NULL;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "0::", 3) == 0) {
      rel = line + 3;
      rel[strcspn(rel, "\n")] = '\0';
      break;
    }
  fclose(f);
  if (!rel)
    return avail;
  char dir[4200];
  snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", rel);
  for (;;) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
      dir[--len] = '\0';
    if (len <= strlen("/sys/fs/cgroup"))
      break;
    char p[4300];
    uint64_t max, cur;
    int is_max, cur_max;
    snprintf(p, sizeof p, "%s/memory.max", dir);
    if (read_u64_file(p, &max, &is_max) == 0 && !is_max) {
      snprintf(p, sizeof p, "%s/memory.current", dir);
      if (read_u64_file(p, &cur, &cur_max) == 0 && !cur_max) {
        uint64_t head = max > cur ? max - cur : 0;
        if (!avail || head < avail)
          avail = head;
      }
    }
    char *slash = strrchr(dir, '/');
    if (!slash)
      break;
    *slash = '\0';
  }
  return avail;
}

int cairn__uuid_generate(uint8_t id[16]) {
  size_t got = 0;
  while (got < 16) {
    ssize_t n = getrandom(id + got, 16 - got, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return CAIRN_EIO;
    }
    got += (size_t)n;
  }
  id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
  id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  return CAIRN_OK;
}

void cairn__uuid_format(const uint8_t id[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[id[i] >> 4];
    out[o++] = hex[id[i] & 15];
  }
  out[o] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int cairn__uuid_parse(const char *text, uint8_t id[16]) {
  if (!text || strlen(text) != 36)
    return CAIRN_EINVAL;
  int b = 0;
  for (int i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return CAIRN_EINVAL;
      i++;
      continue;
    }
    int hi = hexval(text[i]), lo = hexval(text[i + 1]);
    if (hi < 0 || lo < 0)
      return CAIRN_EINVAL;
    id[b++] = (uint8_t)(hi << 4 | lo);
    i += 2;
  }
  return b == 16 ? CAIRN_OK : CAIRN_EINVAL;
}

int cairn__mkdir_p(const char *path, unsigned mode, char *err, size_t errlen) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) {
    cairn__fmt(err, errlen, "run directory path is empty or longer than %zu bytes",
               sizeof buf - 1);
    return CAIRN_EINVAL;
  }
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
      cairn__fmt(err, errlen, "cannot create directory '%s': %s", buf, strerror(errno));
      return CAIRN_EIO;
    }
    buf[i] = saved;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    cairn__fmt(err, errlen, "'%s' exists and is not a directory", path);
    return CAIRN_EIO;
  }
  return CAIRN_OK;
}

static atomic_int log_level = CAIRN_LOG_WARN;

void cairn__log_set_level(int level) {
  atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

void cairn__log(int level, const char *fmt, ...) {
  if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
    return;
  static const char *const names[] = {"error", "warning", "info", "debug"};
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* One fprintf call: stdio locks the stream, so lines from threads do not
   * interleave. */
  fprintf(stderr, "cairn: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

void cairn__fmt(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}
