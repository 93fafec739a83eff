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

/* The first unsigned number in a small file; *unlimited for "max" (cgroup
 * v2) or a value of 2^60 or more (cgroup v1 writes "no limit" as the
 * largest page multiple below 2^63). */
static int read_limit_file(const char *path, uint64_t *v, int *unlimited) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char buf[64] = "";
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  if (!ok)
    return -1;
  *unlimited = strncmp(buf, "max", 3) == 0;
  *v = *unlimited ? 0 : strtoull(buf, NULL, 10);
  if (*v >= (1ull << 60)) {
    *unlimited = 1;
    *v = 0;
  }
  return 0;
}

/* The value of `key` in a "key value" file (memory.stat); 0 if absent. */
static uint64_t stat_value(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  char line[256];
  size_t kl = strlen(key);
  uint64_t v = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
      v = strtoull(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

/* 1 if the comma-separated list holds "memory" as one of its items. */
static int lists_memory(const char *list) {
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    if (n == 6 && strncmp(p, "memory", 6) == 0)
      return 1;
    p += n + (p[n] == ',');
  }
  return 0;
}

/* Finds this process's memory cgroup: the cgroup v1 hierarchy with the
 * memory controller if there is one (hybrid layouts keep memory there, as
 * RHEL 7/8 and many batch systems do), else the v2 one. Sets dir to its
 * directory and top to its hierarchy's mount point (the walk up stops
 * there). Returns 1 (v1), 2 (v2) or 0 (none found). */
static int memory_cgroup(const char *cgroup_file, const char *mountinfo, const char *prefix,
                         char *dir, size_t dirlen, char *top, size_t toplen) {
  char line[4096], v1path[4096] = "", v2path[4096] = "";
  int have1 = 0, have2 = 0;
  FILE *f = fopen(cgroup_file, "r");
  if (!f)
    return 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
      continue;
    *c2 = '\0';
    const char *ctrls = c1 + 1, *path = c2 + 1;
    if (strncmp(line, "0:", 2) == 0 && ctrls[0] == '\0') {
      snprintf(v2path, sizeof v2path, "%s", path);
      have2 = 1;
      continue;
    }
    /* v1: the controllers are a comma-separated list */
    if (lists_memory(ctrls)) {
      snprintf(v1path, sizeof v1path, "%s", path);
      have1 = 1;
    }
  }
  fclose(f);
  if (!have1 && !have2)
    return 0;
  /* mountinfo: id parent dev root mountpoint options [optional...] - type source superoptions */
  f = fopen(mountinfo, "r");
  if (!f)
    return 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char root[1024], mnt[1024], *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) != 2)
      continue;
    char type[64] = "", super[1024] = "";
    if (sscanf(dash + 3, "%63s %*s %1023s", type, super) < 1)
      continue;
    int v;
    if (have1 && strcmp(type, "cgroup") == 0) {
      if (!lists_memory(super))
        continue;
      v = 1;
    } else if (!have1 && have2 && strcmp(type, "cgroup2") == 0) {
      v = 2;
    } else {
      continue;
    }
    /* The cgroup's path is relative to the hierarchy's root; a container
     * may mount its own cgroup as the root ("/" then, or the same path). */
    const char *rel = v == 1 ? v1path : v2path;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(rel, root, rl) == 0 && (rel[rl] == '/' || !rel[rl]))
      rel += rl;
    snprintf(top, toplen, "%s%s", prefix, mnt);
    snprintf(dir, dirlen, "%s%s%s", prefix, mnt, strcmp(rel, "/") == 0 ? "" : rel);
    found = v;
  }
  fclose(f);
  return found;
}

uint64_t cairn__memory_available_from(const char *meminfo, const char *cgroup_file,
                                      const char *mountinfo, const char *prefix) {
  uint64_t avail = 0;
  char line[256];
  FILE *f = fopen(meminfo, "r");
  if (f) {
    unsigned long long kb;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        avail = (uint64_t)kb * 1024u;
        break;
      }
    fclose(f);
  }
  char dir[4200], top[1100];
  int v = memory_cgroup(cgroup_file, mountinfo, prefix, dir, sizeof dir, top, sizeof top);
  if (!v)
    return avail;
  /* The tightest headroom of the cgroup and its parents (a batch system may
   * set the limit on the job, not the step): limit minus the working set,
   * which is usage minus the inactive page cache the kernel reclaims
   * before it kills anything. */
  size_t toplen = strlen(top);
  int known = 0;
  uint64_t tightest = 0;
  for (;;) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
      dir[--len] = '\0';
    if (len < toplen)
      break;
    char p[4300];
    uint64_t limit, usage;
    int unlimited, u2;
    snprintf(p, sizeof p, "%s/%s", dir, v == 1 ? "memory.limit_in_bytes" : "memory.max");
    if (read_limit_file(p, &limit, &unlimited) == 0 && !unlimited) {
      snprintf(p, sizeof p, "%s/%s", dir, v == 1 ? "memory.usage_in_bytes" : "memory.current");
      if (read_limit_file(p, &usage, &u2) == 0 && !u2) {
        snprintf(p, sizeof p, "%s/memory.stat", dir);
        uint64_t inactive = stat_value(p, v == 1 ? "total_inactive_file" : "inactive_file");
        uint64_t working = usage > inactive ? usage - inactive : 0;
        uint64_t head = limit > working ? limit - working : 0;
        if (!known || head < tightest)
          tightest = head;
        known = 1;
      }
    }
    if (len == toplen)
      break;
    char *slash = strrchr(dir, '/');
    if (!slash || (size_t)(slash - dir) < toplen)
      break;
    *slash = '\0';
  }
  if (!known)
    return avail;
  if (avail && avail < tightest)
    tightest = avail;
  return tightest ? tightest : 1; /* known, and none left: not "unknown" */
}

uint64_t cairn__memory_available(void) {
  return cairn__memory_available_from("/proc/meminfo", "/proc/self/cgroup",
                                      "/proc/self/mountinfo", "");
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
