/*
 * runmeta.c — private to cairn. Collects the automatic run metadata described
 * in runmeta.h and docs/metadata.md from /proc, the C library, scheduler
 * environment variables and the on-disk state of a git repository.
 *
 * Two rules shape everything here. It never spawns a process (no `git`, no
 * `hostname`): a runtime preloaded into an MPI job must not fork, and the
 * answer must not depend on what is on PATH. And it never records a secret:
 * the environment is read only by name from an allowlist, and names that look
 * like credentials are refused before their value is even looked up.
 */
#include "runmeta.h"

#include "cairn.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------------- */
/* The key/value list                                                      */
/* ---------------------------------------------------------------------- */

/* Longest prefix of s (at most max bytes) that does not end inside a UTF-8
 * sequence, so a truncated value is still valid text. */
static size_t utf8_cut(const char *s, size_t max) {
  size_t n = strnlen(s, max + 1);
  if (n <= max)
    return n;
  n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  return n;
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

int cairn__meta_add(cairn_meta *m, const char *key, const char *value) {
  if (!m || !key || !value || key[0] == '\0')
    return CAIRN_EINVAL;
  size_t klen = strnlen(key, CAIRN_NAME_MAX + 1);
  if (klen > CAIRN_NAME_MAX)
    return CAIRN_ENAMETOOLONG;
  char *v = dup_n(value, utf8_cut(value, CAIRN_VALUE_MAX));
  if (!v)
    return CAIRN_ENOMEM;
  for (size_t i = 0; i < m->n; i++) {
    if (strcmp(m->kv[i].key, key) == 0) {
      free(m->kv[i].value);
      m->kv[i].value = v;
      return CAIRN_OK;
    }
  }
  char *k = dup_n(key, klen);
  if (!k) {
    free(v);
    return CAIRN_ENOMEM;
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 32;
    cairn_meta_kv *kv = realloc(m->kv, cap * sizeof *kv);
    if (!kv) {
      free(k);
      free(v);
      return CAIRN_ENOMEM;
    }
    m->kv = kv;
    m->cap = cap;
  }
  m->kv[m->n].key = k;
  m->kv[m->n].value = v;
  m->n++;
  return CAIRN_OK;
}

const char *cairn__meta_get(const cairn_meta *m, const char *key) {
  if (!m || !key)
    return NULL;
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->kv[i].key, key) == 0)
      return m->kv[i].value;
  return NULL;
}

void cairn__meta_free(cairn_meta *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++) {
    free(m->kv[i].key);
    free(m->kv[i].value);
  }
  free(m->kv);
  m->kv = NULL;
  m->n = m->cap = 0;
}

static int meta_addf(cairn_meta *m, const char *key, const char *fmt, ...)
    CAIRN_PRINTF(3, 4);
static int meta_addf(cairn_meta *m, const char *key, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return cairn__meta_add(m, key, buf);
}

int cairn__meta_add_mpi(cairn_meta *m, const char *mpi_version, int nranks,
                        int ranks_per_node, const char *host_list,
                        int nhosts) {
  if (!m || nranks < 0 || ranks_per_node < 0 || nhosts < 0)
    return CAIRN_EINVAL;
  int rc = CAIRN_OK;
  /* Some MPI libraries end their version string with a newline. */
  if (mpi_version) {
    size_t n = strlen(mpi_version);
    while (n > 0 && (mpi_version[n - 1] == '\n' || mpi_version[n - 1] == ' '))
      n--;
    char *v = dup_n(mpi_version, n);
    if (!v)
      return CAIRN_ENOMEM;
    rc = cairn__meta_add(m, "mpi.library", v);
    free(v);
  }
  if (rc == CAIRN_OK)
    rc = meta_addf(m, "mpi.ranks", "%d", nranks);
  if (rc == CAIRN_OK)
    rc = meta_addf(m, "mpi.ranks_per_node", "%d", ranks_per_node);
  if (rc == CAIRN_OK && host_list)
    rc = cairn__meta_add(m, "hosts", host_list);
  if (rc == CAIRN_OK)
    rc = meta_addf(m, "hosts.count", "%d", nhosts);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Small file and path helpers                                             */
/* ---------------------------------------------------------------------- */

/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * malloc'd buffer (*len bytes, not counting the NUL). Returns NULL if it is
 * missing, not a regular file, too big or unreadable. O_NONBLOCK so that a
 * FIFO planted where a file should be cannot hang init. */
static char *read_file(const char *path, size_t max, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return NULL;
  struct stat st;
  char *buf = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_size > max)
    goto out;
  size_t want = (size_t)st.st_size, got = 0;
  buf = malloc(want + 1);
  if (!buf)
    goto out;
  while (got < want) {
    ssize_t r = read(fd, buf + got, want - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break; /* shrank under us: keep what was there */
    got += (size_t)r;
  }
  buf[got] = '\0';
  if (len)
    *len = got;
out:
  close(fd);
  return buf;
}

/* Reads a /proc pseudo-file (whose st_size is 0) of at most max bytes. */
static char *read_proc(const char *path, size_t max, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, got = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    if (got == cap) {
      if (cap >= max)
        break;
      cap = cap * 2 > max ? max : cap * 2;
      char *nb = realloc(buf, cap + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    ssize_t r = read(fd, buf + got, cap - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(fd);
  if (buf) {
    buf[got] = '\0';
    *len = got;
  }
  return buf;
}

/* dir + "/" + name, or name alone if it is absolute. malloc'd; NULL on OOM. */
static char *path_join(const char *dir, const char *name) {
  if (name[0] == '/')
    return strdup(name);
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p)
    return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

static void chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                   s[n - 1] == '\t'))
    s[--n] = '\0';
}

/* ---------------------------------------------------------------------- */
/* Process: user, times, executable, command line, cwd, host               */
/* ---------------------------------------------------------------------- */

/* getpwuid_r with a buffer grown on ERANGE. Returns CAIRN_ENOMEM only for a
 * failed allocation; a user the name service does not know is just left
 * out. */
static int add_user(cairn_meta *m) {
  uid_t uid = getuid();
  int rc = meta_addf(m, "uid", "%lu", (unsigned long)uid);
  if (rc != CAIRN_OK)
    return rc;
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = hint > 0 ? (size_t)hint : 4096;
  for (;;) {
    char *buf = malloc(size);
    if (!buf)
      return CAIRN_ENOMEM;
    struct passwd pw, *res = NULL;
    int e = getpwuid_r(uid, &pw, buf, size, &res);
    if (e == 0 && res)
      rc = cairn__meta_add(m, "user", res->pw_name);
    free(buf);
    if (e != ERANGE || size >= (1u << 20))
      return rc;
    size *= 2;
  }
}

/* The process start time: /proc/self/stat gives it in clock ticks since boot
 * (CLOCK_BOOTTIME), so start = now - (uptime - starttime). Under MPI every
 * rank was launched at nearly the same moment, so the value from whichever
 * rank collects is the job's launch time to within the launcher's skew. If
 * /proc is missing, the time of this call stands in. */
static int add_launch_time(cairn_meta *m) {
  uint64_t now = cairn__now_realtime_ns(), start = now;
  size_t len;
  char *stat = read_proc("/proc/self/stat", 1u << 16, &len);
  if (stat) {
    /* comm (field 2) may contain spaces and ')', so count from the last ')'. */
    char *p = strrchr(stat, ')');
    unsigned long long ticks = 0;
    bool ok = false;
    if (p) {
      p++;
      for (int field = 3; field <= 22 && *p; field++) {
        while (*p == ' ')
          p++;
        if (field == 22) {
          char *end;
          errno = 0;
          ticks = strtoull(p, &end, 10);
          ok = end != p && errno == 0;
          break;
        }
        while (*p && *p != ' ')
          p++;
      }
    }
    struct timespec boot;
    long hz = sysconf(_SC_CLK_TCK);
    if (ok && hz > 0 && clock_gettime(CLOCK_BOOTTIME, &boot) == 0) {
      uint64_t up = (uint64_t)boot.tv_sec * 1000000000u + (uint64_t)boot.tv_nsec;
      uint64_t st = (uint64_t)ticks * (1000000000u / (uint64_t)hz);
      if (st <= up && up - st <= now)
        start = now - (up - st);
    }
    free(stat);
  }
  time_t secs = (time_t)(start / 1000000000u);
  struct tm tm;
  char iso[64];
  if (!gmtime_r(&secs, &tm))
    return CAIRN_OK;
  size_t n = strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
  cairn__fmt(iso + n, sizeof iso - n, ".%03uZ",
             (unsigned)(start % 1000000000u / 1000000u));
  int rc = cairn__meta_add(m, "launch.time", iso);
  if (rc == CAIRN_OK)
    rc = meta_addf(m, "launch.time_ns", "%llu", (unsigned long long)start);
  return rc;
}

static int add_executable(cairn_meta *m) {
  size_t size = 256;
  for (;;) {
    char *buf = malloc(size);
    if (!buf)
      return CAIRN_ENOMEM;
    ssize_t n = readlink("/proc/self/exe", buf, size);
    if (n < 0) {
      free(buf);
      return CAIRN_OK;
    }
    if ((size_t)n < size) {
      buf[n] = '\0';
      int rc = cairn__meta_add(m, "executable", buf);
      free(buf);
      return rc;
    }
    free(buf);
    if (size >= 65536)
      return CAIRN_OK;
    size *= 2;
  }
}

/* True if arg can be pasted into a POSIX shell as it is. */
static bool shell_safe(const char *arg) {
  if (*arg == '\0')
    return false;
  for (const char *p = arg; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || strchr("_-+=:,./@%", c)))
      return false;
  }
  return true;
}

/* The command line as a shell would need it to run it again: arguments
 * joined by spaces, each one that needs it in single quotes (a quote inside
 * becomes '\''), so "a b" and a, b stay distinguishable. */
char *cairn__meta_cmdline(void) {
  size_t len;
  char *raw = read_proc("/proc/self/cmdline", 4u << 20, &len);
  if (!raw)
    return NULL;
  /* Worst case every byte is a quote (4 bytes as '\'') plus quotes and a
   * space per argument. */
  size_t cap = len * 4 + 3 * (len + 1) + 1, o = 0;
  char *out = malloc(cap);
  if (!out) {
    free(raw);
    return NULL;
  }
  for (size_t i = 0; i < len;) {
    const char *arg = raw + i;
    size_t alen = strlen(arg);
    if (o > 0)
      out[o++] = ' ';
    if (shell_safe(arg)) {
      memcpy(out + o, arg, alen);
      o += alen;
    } else {
      out[o++] = '\'';
      for (const char *p = arg; *p; p++) {
        if (*p == '\'') {
          memcpy(out + o, "'\\''", 4);
          o += 4;
        } else {
          out[o++] = *p;
        }
      }
      out[o++] = '\'';
    }
    i += alen + 1;
  }
  out[o] = '\0';
  free(raw);
  return out;
}

static int add_cmdline(cairn_meta *m) {
  char *out = cairn__meta_cmdline();
  if (!out)
    return CAIRN_OK; /* no /proc (or no memory): left out, like other items */
  int rc = out[0] ? cairn__meta_add(m, "cmdline", out) : CAIRN_OK;
  free(out);
  return rc;
}

static int add_cwd_host(cairn_meta *m, char **cwd_out) {
  int rc = CAIRN_OK;
  char *cwd = getcwd(NULL, 0);
  if (cwd)
    rc = cairn__meta_add(m, "cwd", cwd);
  else if (errno == ENOMEM)
    rc = CAIRN_ENOMEM;
  *cwd_out = cwd;
  char host[256];
  if (rc == CAIRN_OK && gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = '\0';
    rc = cairn__meta_add(m, "hostname", host);
  }
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Batch scheduler                                                         */
/* ---------------------------------------------------------------------- */

typedef struct {
  const char *key; /* "job.<key>" */
  const char *var; /* environment variable; first one set wins */
} job_var;

typedef struct {
  const char *name;    /* job.scheduler */
  const char *id_var;  /* present iff running in a job of this scheduler */
  job_var vars[10];
} scheduler;

/* Flux first: a Flux instance started inside a Slurm or LSF allocation
 * inherits their variables, and the innermost scheduler is the one that
 * launched this job. PBS_NODEFILE is a path: the host list is one line per
 * slot in that file, and reading a shared file at init is not worth it. */
static const scheduler schedulers[] = {
    {"flux", "FLUX_JOB_ID",
     {{"id", "FLUX_JOB_ID"},
      {"nnodes", "FLUX_JOB_NNODES"},
      {"ntasks", "FLUX_JOB_SIZE"},
      {"uri", "FLUX_URI"}}},
    {"slurm", "SLURM_JOB_ID",
     {{"id", "SLURM_JOB_ID"},
      {"name", "SLURM_JOB_NAME"},
      {"nodes", "SLURM_JOB_NODELIST"},
      {"nodes", "SLURM_NODELIST"},
      {"nnodes", "SLURM_JOB_NUM_NODES"},
      {"nnodes", "SLURM_NNODES"},
      {"ntasks", "SLURM_NTASKS"},
      {"queue", "SLURM_JOB_PARTITION"},
      {"array_id", "SLURM_ARRAY_JOB_ID"},
      {"array_task", "SLURM_ARRAY_TASK_ID"}}},
    {"pbs", "PBS_JOBID",
     {{"id", "PBS_JOBID"},
      {"name", "PBS_JOBNAME"},
      {"nodefile", "PBS_NODEFILE"},
      {"nnodes", "PBS_NUM_NODES"},
      {"ntasks", "PBS_NP"},
      {"queue", "PBS_QUEUE"},
      {"array_task", "PBS_ARRAY_INDEX"},
      {"array_task", "PBS_ARRAYID"}}},
    {"lsf", "LSB_JOBID",
     {{"id", "LSB_JOBID"},
      {"name", "LSB_JOBNAME"},
      {"nodes", "LSB_MCPU_HOSTS"},
      {"nodes", "LSB_HOSTS"},
      {"ntasks", "LSB_DJOB_NUMPROC"},
      {"queue", "LSB_QUEUE"},
      {"array_task", "LSB_JOBINDEX"}}},
};

static int add_scheduler(cairn_meta *m) {
  for (size_t s = 0; s < sizeof schedulers / sizeof *schedulers; s++) {
    const scheduler *sc = &schedulers[s];
    const char *id = getenv(sc->id_var);
    if (!id || !*id)
      continue;
    int rc = cairn__meta_add(m, "job.scheduler", sc->name);
    for (size_t i = 0; rc == CAIRN_OK && i < sizeof sc->vars / sizeof *sc->vars &&
                       sc->vars[i].key;
         i++) {
      char key[64];
      cairn__fmt(key, sizeof key, "job.%s", sc->vars[i].key);
      if (cairn__meta_get(m, key))
        continue; /* an earlier, preferred variable already set it */
      const char *v = getenv(sc->vars[i].var);
      if (v && *v)
        rc = cairn__meta_add(m, key, v);
    }
    return rc;
  }
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Allowlisted environment variables                                       */
/* ---------------------------------------------------------------------- */

/* Whether a variable name suggests it holds a credential. Deliberately
 * broad: "MONKEY_COUNT" is refused too, and a refused harmless name costs
 * less than a leaked token in every run's metadata. */
static bool secret_name(const char *name, size_t len) {
  static const char *const words[] = {"TOKEN", "SECRET", "PASSWORD",
                                      "PASSWD", "KEY", "CREDENTIAL"};
  for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
    size_t wl = strlen(words[w]);
    for (size_t i = 0; i + wl <= len; i++)
      if (strncasecmp(name + i, words[w], wl) == 0)
        return true;
  }
  return false;
}

/* Appends name to the comma-separated list *refused (once). */
static int note_refused(char **refused, const char *name, size_t len) {
  size_t have = *refused ? strlen(*refused) : 0;
  if (*refused) {
    for (const char *p = *refused; p;) {
      const char *comma = strchr(p, ',');
      size_t pl = comma ? (size_t)(comma - p) : strlen(p);
      if (pl == len && strncmp(p, name, len) == 0)
        return CAIRN_OK;
      p = comma ? comma + 1 : NULL;
    }
  }
  char *r = realloc(*refused, have + len + 2);
  if (!r)
    return CAIRN_ENOMEM;
  if (have)
    r[have++] = ',';
  memcpy(r + have, name, len);
  r[have + len] = '\0';
  *refused = r;
  return CAIRN_OK;
}

static int add_env_var(cairn_meta *m, const char *name, size_t len,
                       const char *value) {
  char key[CAIRN_NAME_MAX + 1];
  if (len + 4 > CAIRN_NAME_MAX)
    return CAIRN_OK; /* the key would be too long; such names are not real */
  memcpy(key, "env.", 4);
  memcpy(key + 4, name, len);
  key[4 + len] = '\0';
  return cairn__meta_add(m, key, value);
}

/* Handles one allowlist entry: a plain name, or a prefix ending in '*'.
 * Entries that are not valid variable names are ignored. */
static int add_env_entry(cairn_meta *m, const char *name, size_t len,
                         char **refused) {
  bool prefix = len > 0 && name[len - 1] == '*';
  size_t nl = prefix ? len - 1 : len;
  if (nl == 0)
    return CAIRN_OK; /* "" or a bare "*": never the whole environment */
  for (size_t i = 0; i < nl; i++) {
    char c = name[i];
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9')))
      return CAIRN_OK;
  }
  /* Checked on the name before any value is read, so a refused value never
   * even passes through this code. */
  if (secret_name(name, nl))
    return note_refused(refused, name, nl);
  if (!prefix) {
    char var[CAIRN_NAME_MAX + 1];
    if (nl > CAIRN_NAME_MAX)
      return CAIRN_OK;
    memcpy(var, name, nl);
    var[nl] = '\0';
    const char *v = getenv(var);
    return v ? add_env_var(m, name, nl, v) : CAIRN_OK;
  }
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || strncmp(*e, name, nl) != 0 || (size_t)(eq - *e) < nl)
      continue;
    size_t vl = (size_t)(eq - *e);
    int rc = secret_name(*e, vl) ? note_refused(refused, *e, vl)
                                 : add_env_var(m, *e, vl, eq + 1);
    if (rc != CAIRN_OK)
      return rc;
  }
  return CAIRN_OK;
}

static int add_env(cairn_meta *m, const char *allowlist) {
  if (!allowlist)
    return CAIRN_OK;
  char *refused = NULL;
  int rc = CAIRN_OK;
  for (const char *p = allowlist; rc == CAIRN_OK && *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',')
      p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if (end > start)
      rc = add_env_entry(m, start, (size_t)(end - start), &refused);
  }
  if (rc == CAIRN_OK && refused)
    rc = cairn__meta_add(m, "env.refused", refused);
  free(refused);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Git: discovery and refs                                                 */
/* ---------------------------------------------------------------------- */

typedef struct {
  char *worktree;  /* top directory of the working tree                   */
  char *gitdir;    /* HEAD and index (per worktree)                       */
  char *commondir; /* refs, packed-refs, config (shared by worktrees)     */
  size_t hashlen;  /* 20 for SHA-1 repositories, 32 for SHA-256 ones     */
  bool filemode;   /* core.filemode: whether the exec bit is tracked      */
} git_repo;

static void git_repo_free(git_repo *r) {
  free(r->worktree);
  free(r->gitdir);
  free(r->commondir);
}

/* The parent directory of path, in place ("/a/b" -> "/a", "/a" -> "/").
 * Returns false at the root. */
static bool path_up(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash || (slash == path && path[1] == '\0'))
    return false;
  if (slash == path)
    slash[1] = '\0';
  else
    *slash = '\0';
  return true;
}

/* Reads the few config settings that change how the index is read: the
 * object format (SHA-1 or SHA-256) and core.filemode. A deliberately small
 * parser: sections, `key = value`, comments; no includes. */
static void git_read_config(git_repo *r) {
  r->hashlen = 20;
  r->filemode = true;
  char *path = path_join(r->commondir, "config");
  char *text = path ? read_file(path, 1u << 20, NULL) : NULL;
  free(path);
  if (!text)
    return;
  char section[64] = "";
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    while (*line == ' ' || *line == '\t')
      line++;
    if (*line == '[') {
      size_t n = strcspn(line + 1, " \t]\"");
      if (n >= sizeof section)
        n = sizeof section - 1;
      memcpy(section, line + 1, n);
      section[n] = '\0';
      continue;
    }
    char *eq = strchr(line, '=');
    if (!eq || *line == '#' || *line == ';')
      continue;
    char *kend = eq;
    while (kend > line && (kend[-1] == ' ' || kend[-1] == '\t'))
      kend--;
    *kend = '\0';
    char *val = eq + 1;
    while (*val == ' ' || *val == '\t' || *val == '"')
      val++;
    val[strcspn(val, "\"#; \t\r")] = '\0';
    if (strcasecmp(section, "extensions") == 0 &&
        strcasecmp(line, "objectformat") == 0 &&
        strcasecmp(val, "sha256") == 0)
      r->hashlen = 32;
    if (strcasecmp(section, "core") == 0 &&
        strcasecmp(line, "filemode") == 0)
      r->filemode = !(strcasecmp(val, "false") == 0 ||
                      strcasecmp(val, "no") == 0 ||
                      strcasecmp(val, "off") == 0 || strcmp(val, "0") == 0);
  }
  free(text);
}

/* Finds the repository whose working tree contains cwd, the way git does:
 * look for .git in cwd and each parent, stopping at a file-system boundary.
 * .git is a directory, or a file "gitdir: <path>" (linked worktrees,
 * submodules); a linked worktree's gitdir names the shared directory in its
 * "commondir" file. Returns CAIRN_OK with r filled, CAIRN_ENOTFOUND, or
 * CAIRN_ENOMEM. GIT_DIR and GIT_CEILING_DIRECTORIES are not honoured. */
static int git_find(const char *cwd, git_repo *r) {
  memset(r, 0, sizeof *r);
  struct stat st;
  if (cwd[0] != '/' || stat(cwd, &st) != 0)
    return CAIRN_ENOTFOUND;
  dev_t dev = st.st_dev;
  char *dir = strdup(cwd);
  if (!dir)
    return CAIRN_ENOMEM;
  int rc = CAIRN_ENOTFOUND;
  for (;;) {
    char *dotgit = path_join(dir, ".git");
    if (!dotgit) {
      rc = CAIRN_ENOMEM;
      break;
    }
    bool found = stat(dotgit, &st) == 0;
    if (found && S_ISDIR(st.st_mode)) {
      r->gitdir = dotgit;
    } else if (found && S_ISREG(st.st_mode)) {
      char *text = read_file(dotgit, 4096, NULL);
      free(dotgit);
      if (text && strncmp(text, "gitdir:", 7) == 0) {
        char *target = text + 7;
        while (*target == ' ')
          target++;
        chomp(target);
        r->gitdir = path_join(dir, target);
        if (!r->gitdir)
          rc = CAIRN_ENOMEM;
      }
      free(text);
    } else {
      free(dotgit);
    }
    /* A .git file that is not a valid gitfile ends the search, as it does
     * for git, rather than letting an enclosing repository answer. */
    if (r->gitdir || rc == CAIRN_ENOMEM || (found && S_ISREG(st.st_mode)))
      break;
    if (!path_up(dir) || stat(dir, &st) != 0 || st.st_dev != dev)
      break;
  }
  if (r->gitdir) {
    r->worktree = dir;
    dir = NULL;
    char *cd = path_join(r->gitdir, "commondir");
    char *text = cd ? read_file(cd, 4096, NULL) : NULL;
    free(cd);
    if (text) {
      chomp(text);
      r->commondir = path_join(r->gitdir, text);
      free(text);
    } else {
      r->commondir = strdup(r->gitdir);
    }
    rc = r->commondir ? CAIRN_OK : CAIRN_ENOMEM;
    if (rc == CAIRN_OK)
      git_read_config(r);
    else
      git_repo_free(r);
  }
  free(dir);
  return rc;
}

static bool is_hex_oid(const char *s, size_t hexlen) {
  for (size_t i = 0; i < hexlen; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return s[hexlen] == '\0' || s[hexlen] == '\n' || s[hexlen] == ' ' ||
         s[hexlen] == '\r';
}

/* A ref name we are willing to turn into a path: under refs/, no "..". */
static bool safe_refname(const char *ref) {
  return strncmp(ref, "refs/", 5) == 0 && !strstr(ref, "..") &&
         !strstr(ref, "//");
}

/* Resolves refname to a hex object id in out (hashlen*2+1 bytes): the loose
 * ref file first, then packed-refs, following symbolic refs a few levels.
 * Returns CAIRN_OK, CAIRN_ENOTFOUND (e.g. a branch with no commit yet, or a
 * reftable repository) or CAIRN_ENOMEM. */
static int git_resolve(const git_repo *r, const char *refname, char *out,
                       int depth) {
  size_t hexlen = r->hashlen * 2;
  if (depth > 5 || !safe_refname(refname))
    return CAIRN_ENOTFOUND;
  /* Per-worktree refs live in the worktree's own gitdir. */
  bool per_wt = strncmp(refname, "refs/worktree/", 14) == 0 ||
                strncmp(refname, "refs/bisect/", 12) == 0;
  char *path = path_join(per_wt ? r->gitdir : r->commondir, refname);
  if (!path)
    return CAIRN_ENOMEM;
  char *text = read_file(path, 4096, NULL);
  free(path);
  if (text) {
    int rc = CAIRN_ENOTFOUND;
    if (strncmp(text, "ref:", 4) == 0) {
      char *target = text + 4;
      while (*target == ' ')
        target++;
      chomp(target);
      rc = git_resolve(r, target, out, depth + 1);
    } else if (is_hex_oid(text, hexlen)) {
      memcpy(out, text, hexlen);
      out[hexlen] = '\0';
      rc = CAIRN_OK;
    }
    free(text);
    return rc;
  }
  path = path_join(r->commondir, "packed-refs");
  if (!path)
    return CAIRN_ENOMEM;
  text = read_file(path, 256u << 20, NULL);
  free(path);
  if (!text)
    return CAIRN_ENOTFOUND;
  int rc = CAIRN_ENOTFOUND;
  size_t rl = strlen(refname);
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    chomp(line);
    /* "<oid> <refname>"; '#' starts the header, '^' a peeled tag. */
    if (line[0] == '#' || line[0] == '^' || strlen(line) != hexlen + 1 + rl ||
        line[hexlen] != ' ' || strcmp(line + hexlen + 1, refname) != 0)
      continue;
    line[hexlen] = '\0';
    if (is_hex_oid(line, hexlen)) {
      memcpy(out, line, hexlen + 1);
      rc = CAIRN_OK;
    }
    break;
  }
  free(text);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Git: is the working tree dirty?                                         */
/* ---------------------------------------------------------------------- */

/*
 * The working tree is compared with the index, as `git diff --quiet` does,
 * by reading .git/index (versions 2, 3 and 4) and lstat-ing every tracked
 * file: a missing file, a changed type, exec bit or size, or an unresolved
 * merge conflict is a change. When size and mtime both match, the file is
 * unchanged, unless it was modified in the same instant the index was written
 * (git's "racy" case), which is settled by hashing the content as a git blob
 * and comparing it with the index's object id; a file whose mtime changed
 * but whose size did not is settled the same way, so touching a file does
 * not make the tree dirty.
 *
 * Not detected: untracked files, changes staged but not committed (that
 * needs the HEAD tree, which is zlib-compressed in the object store), and
 * changes inside submodules.
 */

typedef enum { GIT_CLEAN, GIT_DIRTY, GIT_UNKNOWN, GIT_OOM } git_state;

/* Bounds that keep init from stalling on a huge checkout on a slow shared
 * file system: past these the answer is "unknown". */
#define GIT_INDEX_MAX_BYTES (256u << 20)
#define GIT_MAX_ENTRIES 1000000u
#define GIT_HASH_BUDGET (256ull << 20)
#define GIT_TIME_BUDGET_NS 3000000000ull
#define GIT_READ_CHUNK 65536

typedef struct {
  const git_repo *repo;
  EVP_MD_CTX *md;
  unsigned char *buf; /* GIT_READ_CHUNK bytes, for hashing file content */
  uint64_t hashed;   /* bytes hashed so far, against GIT_HASH_BUDGET */
  uint64_t deadline; /* CLOCK_MONOTONIC ns                            */
  struct timespec index_mtime;
} git_check;

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint16_t be16(const unsigned char *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static const EVP_MD *git_md(const git_repo *r) {
  return r->hashlen == 32 ? EVP_sha256() : EVP_sha1();
}

/* Hashes "blob <size>\0" + content the way git names a blob, and compares
 * with oid. Regular files are read with O_NOFOLLOW|O_NONBLOCK; symlinks are
 * hashed as their target text. Returns GIT_CLEAN if equal, GIT_DIRTY if
 * not, GIT_UNKNOWN if the file could not be read or the budget ran out. */
static git_state git_same_blob(git_check *c, const char *path,
                               const struct stat *st, const unsigned char *oid) {
  if ((uint64_t)st->st_size > GIT_HASH_BUDGET - c->hashed)
    return GIT_UNKNOWN;
  char head[32];
  int hl = snprintf(head, sizeof head, "blob %llu",
                    (unsigned long long)st->st_size);
  if (EVP_DigestInit_ex(c->md, git_md(c->repo), NULL) != 1 ||
      EVP_DigestUpdate(c->md, head, (size_t)hl + 1) != 1)
    return GIT_UNKNOWN;
  uint64_t total = 0;
  if (S_ISLNK(st->st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target);
    if (n < 0 || (size_t)n >= sizeof target)
      return GIT_UNKNOWN;
    total = (uint64_t)n;
    if (EVP_DigestUpdate(c->md, target, (size_t)n) != 1)
      return GIT_UNKNOWN;
  } else {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
      return errno == ENOENT ? GIT_DIRTY : GIT_UNKNOWN;
    for (;;) {
      ssize_t n = read(fd, c->buf, GIT_READ_CHUNK);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        close(fd);
        return GIT_UNKNOWN;
      }
      if (n == 0)
        break;
      total += (uint64_t)n;
      if (total > (uint64_t)st->st_size ||
          EVP_DigestUpdate(c->md, c->buf, (size_t)n) != 1)
        break; /* grew while we read: it is being changed, so dirty */
    }
    close(fd);
  }
  c->hashed += total;
  if (total != (uint64_t)st->st_size)
    return GIT_DIRTY;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_DigestFinal_ex(c->md, md, &mdlen) != 1 || mdlen != c->repo->hashlen)
    return GIT_UNKNOWN;
  return memcmp(md, oid, mdlen) == 0 ? GIT_CLEAN : GIT_DIRTY;
}

/* Git's object id of the empty blob, which an index entry may carry with
 * size 0 legitimately (every other size-0 entry has been "smudged"). */
static bool empty_blob(const git_repo *r, const unsigned char *oid) {
  static const unsigned char sha1[20] = {
      0xe6, 0x9d, 0xe2, 0x9b, 0xb2, 0xd1, 0xd6, 0x43, 0x4b, 0x8b,
      0x29, 0xae, 0x77, 0x5a, 0xd8, 0xc2, 0xe4, 0x8c, 0x53, 0x91};
  static const unsigned char sha256[32] = {
      0x47, 0x3a, 0x0f, 0x4c, 0x3b, 0xe8, 0xa9, 0x36, 0x81, 0xa2, 0x67,
      0xe3, 0xb1, 0xe9, 0xa7, 0xdc, 0xda, 0x11, 0x85, 0x43, 0x6f, 0xe1,
      0x41, 0xf7, 0x74, 0x91, 0x20, 0xa3, 0x03, 0x72, 0x18, 0x13};
  return memcmp(oid, r->hashlen == 32 ? sha256 : sha1, r->hashlen) == 0;
}

/* Compares one index entry with the file at path. */
static git_state git_check_entry(git_check *c, const char *path, uint32_t mode,
                                 uint32_t size, uint32_t mtime_s,
                                 uint32_t mtime_ns, const unsigned char *oid) {
  uint32_t type = mode & 0170000;
  if (type == 0160000)
    return GIT_CLEAN; /* a submodule: its own repository, not looked into */
  if (type != 0100000 && type != 0120000)
    return GIT_UNKNOWN;
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT || errno == ENOTDIR ? GIT_DIRTY : GIT_UNKNOWN;
  if (type == 0100000 ? !S_ISREG(st.st_mode) : !S_ISLNK(st.st_mode))
    return GIT_DIRTY;
  if (type == 0100000 && c->repo->filemode &&
      ((st.st_mode & S_IXUSR) != 0) != ((mode & 0100) != 0))
    return GIT_DIRTY;
  if ((uint32_t)st.st_size != size)
    /* Size 0 marks an entry git "smudged" because it was racily clean when
     * the index was written: only the content can tell. */
    return size == 0 && !empty_blob(c->repo, oid)
               ? git_same_blob(c, path, &st, oid)
               : GIT_DIRTY;
  /* Some git builds store no nanoseconds (0); then seconds must do. */
  bool same_mtime = (uint32_t)st.st_mtim.tv_sec == mtime_s &&
                    (mtime_ns == 0 || (uint32_t)st.st_mtim.tv_nsec == mtime_ns);
  bool racy = st.st_mtim.tv_sec > c->index_mtime.tv_sec ||
              (st.st_mtim.tv_sec == c->index_mtime.tv_sec &&
               st.st_mtim.tv_nsec >= c->index_mtime.tv_nsec);
  if (same_mtime && !racy)
    return GIT_CLEAN;
  return git_same_blob(c, path, &st, oid);
}

/* git's varint for the v4 path prefix length (as in offset deltas). */
static bool read_varint(const unsigned char **p, const unsigned char *end,
                        uint64_t *out) {
  if (*p >= end)
    return false;
  unsigned char ch = *(*p)++;
  uint64_t val = ch & 127;
  while (ch & 128) {
    if (*p >= end || val > (UINT64_MAX >> 8))
      return false;
    ch = *(*p)++;
    val = ((val + 1) << 7) | (ch & 127);
  }
  *out = val;
  return true;
}

/* Whether the index checksum (the hash of everything before it) is right, or
 * zero, which git writes when index.skipHash is set. */
static bool git_index_checksum_ok(const git_check *c, const unsigned char *buf,
                                  size_t len) {
  size_t hl = c->repo->hashlen;
  const unsigned char *sum = buf + len - hl;
  bool zero = true;
  for (size_t i = 0; i < hl; i++)
    zero = zero && sum[i] == 0;
  if (zero)
    return true;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  return EVP_DigestInit_ex(c->md, git_md(c->repo), NULL) == 1 &&
         EVP_DigestUpdate(c->md, buf, len - hl) == 1 &&
         EVP_DigestFinal_ex(c->md, md, &mdlen) == 1 && mdlen == hl &&
         memcmp(md, sum, hl) == 0;
}

/* Walks the index entries; buf/len is the whole verified index file. */
static git_state git_walk_index(git_check *c, const unsigned char *buf,
                                size_t len) {
  const git_repo *r = c->repo;
  uint32_t version = be32(buf + 4), count = be32(buf + 8);
  if (version < 2 || version > 4 || count > GIT_MAX_ENTRIES)
    return GIT_UNKNOWN;
  const unsigned char *p = buf + 12, *end = buf + len - r->hashlen;
  size_t wtlen = strlen(r->worktree);
  /* worktree + '/' + name; names are bounded by the index size. */
  size_t pathcap = wtlen + 2 + 4096, prevlen = 0;
  char *path = malloc(pathcap);
  if (!path)
    return GIT_OOM;
  memcpy(path, r->worktree, wtlen);
  path[wtlen] = '/';
  char *name = path + wtlen + 1;
  git_state state = GIT_CLEAN;
  size_t fixed = 40 + r->hashlen + 2;
  for (uint32_t i = 0; i < count && state == GIT_CLEAN; i++) {
    if ((i & 255) == 0 && cairn__now_mono_ns() > c->deadline) {
      state = GIT_UNKNOWN;
      break;
    }
    const unsigned char *e = p;
    if ((size_t)(end - e) < fixed) {
      state = GIT_UNKNOWN;
      break;
    }
    uint32_t mtime_s = be32(e + 8), mtime_ns = be32(e + 12);
    uint32_t mode = be32(e + 24), size = be32(e + 36);
    const unsigned char *oid = e + 40;
    uint16_t flags = be16(e + 40 + r->hashlen), ext = 0;
    p = e + fixed;
    if (flags & 0x4000) { /* extended flags follow (version 3 and up) */
      if (version < 3 || end - p < 2) {
        state = GIT_UNKNOWN;
        break;
      }
      ext = be16(p);
      p += 2;
    }
    size_t hdr = (size_t)(p - e);
    /* The name: prefix-compressed in version 4, plain and padded before. */
    size_t keep = 0;
    if (version == 4) {
      uint64_t strip;
      if (!read_varint(&p, end, &strip) || strip > prevlen) {
        state = GIT_UNKNOWN;
        break;
      }
      keep = prevlen - (size_t)strip;
    }
    const unsigned char *nul = memchr(p, '\0', (size_t)(end - p));
    if (!nul) {
      state = GIT_UNKNOWN;
      break;
    }
    size_t sfx = (size_t)(nul - p), nlen = keep + sfx;
    if (wtlen + 2 + nlen > pathcap) {
      pathcap = wtlen + 2 + nlen;
      char *np = realloc(path, pathcap);
      if (!np) {
        state = GIT_OOM;
        break;
      }
      path = np;
      name = path + wtlen + 1;
    }
    memcpy(name + keep, p, sfx);
    name[nlen] = '\0';
    prevlen = nlen;
    if (version == 4) {
      p = nul + 1;
    } else {
      size_t esize = (hdr + sfx + 8) & ~(size_t)7;
      if ((size_t)(end - e) < esize) {
        state = GIT_UNKNOWN;
        break;
      }
      p = e + esize;
    }
    if (flags & 0x3000)
      state = GIT_DIRTY; /* a merge stage other than 0: unresolved conflict */
    else if (ext & 0x2000)
      state = GIT_DIRTY; /* intent-to-add: `git add -N`, not yet staged */
    else if ((ext & 0x4000) || (flags & 0x8000))
      continue; /* skip-worktree (sparse) or assume-valid: git looks away */
    else
      state = git_check_entry(c, path, mode, size, mtime_s, mtime_ns, oid);
  }
  /* Extensions: lower-case signatures must be understood. "link" (split
   * index) puts the entries in another file; "sdir" (sparse directories)
   * only adds skip-worktree entries, handled above. */
  while (state == GIT_CLEAN && end - p >= 8) {
    uint32_t esz = be32(p + 4);
    if (p[0] >= 'a' && p[0] <= 'z' && memcmp(p, "sdir", 4) != 0) {
      state = GIT_UNKNOWN;
      break;
    }
    if ((uint64_t)(end - p - 8) < esz) {
      state = GIT_UNKNOWN;
      break;
    }
    p += 8 + esz;
  }
  free(path);
  return state;
}

static git_state git_dirty(const git_repo *r, bool has_commit) {
  char *path = path_join(r->gitdir, "index");
  if (!path)
    return GIT_OOM;
  struct stat st;
  if (stat(path, &st) != 0) {
    free(path);
    /* No index: nothing tracked yet in a fresh repository. */
    return errno == ENOENT && !has_commit ? GIT_CLEAN : GIT_UNKNOWN;
  }
  size_t len = 0;
  unsigned char *buf = (unsigned char *)read_file(path, GIT_INDEX_MAX_BYTES, &len);
  free(path);
  if (!buf)
    return GIT_UNKNOWN;
  git_check c = {.repo = r,
                 .deadline = cairn__now_mono_ns() + GIT_TIME_BUDGET_NS,
                 .index_mtime = st.st_mtim};
  git_state state = GIT_UNKNOWN;
  c.md = EVP_MD_CTX_new();
  c.buf = malloc(GIT_READ_CHUNK);
  if (!c.md || !c.buf)
    state = GIT_OOM;
  else if (len >= 12 + r->hashlen && memcmp(buf, "DIRC", 4) == 0 &&
           git_index_checksum_ok(&c, buf, len))
    state = git_walk_index(&c, buf, len);
  EVP_MD_CTX_free(c.md);
  free(c.buf);
  free(buf);
  return state;
}

static int add_git(cairn_meta *m, const char *cwd) {
  git_repo r;
  int rc = git_find(cwd, &r);
  if (rc != CAIRN_OK)
    return rc == CAIRN_ENOMEM ? rc : CAIRN_OK;
  rc = cairn__meta_add(m, "git.root", r.worktree);
  char *path = path_join(r.gitdir, "HEAD");
  char *head = path ? read_file(path, 4096, NULL) : NULL;
  if (!path)
    rc = CAIRN_ENOMEM;
  free(path);
  char oid[65] = "";
  if (rc == CAIRN_OK && head) {
    chomp(head);
    if (strncmp(head, "ref:", 4) == 0) {
      char *ref = head + 4;
      while (*ref == ' ')
        ref++;
      const char *branch =
          strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref;
      /* Reftable repositories keep a placeholder in HEAD; refs live in a
       * binary format this code does not read. */
      if (strcmp(branch, ".invalid") != 0)
        rc = cairn__meta_add(m, "git.branch", branch);
      int res = git_resolve(&r, ref, oid, 0);
      if (res == CAIRN_ENOMEM)
        rc = res;
      else if (res != CAIRN_OK)
        oid[0] = '\0';
    } else if (is_hex_oid(head, r.hashlen * 2)) {
      memcpy(oid, head, r.hashlen * 2);
      oid[r.hashlen * 2] = '\0';
    }
  }
  free(head);
  if (rc == CAIRN_OK && oid[0])
    rc = cairn__meta_add(m, "git.commit", oid);
  if (rc == CAIRN_OK) {
    git_state s = git_dirty(&r, oid[0] != '\0');
    rc = s == GIT_OOM ? CAIRN_ENOMEM
                      : cairn__meta_add(m, "git.dirty",
                                        s == GIT_CLEAN   ? "false"
                                        : s == GIT_DIRTY ? "true"
                                                         : "unknown");
  }
  git_repo_free(&r);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Entry point                                                             */
/* ---------------------------------------------------------------------- */

int cairn__meta_collect(cairn_meta *m, const char *env_allowlist, char *err,
                        size_t errlen) {
  if (!m) {
    cairn__fmt(err, errlen, "run metadata: no list to fill");
    return CAIRN_EINVAL;
  }
  char *cwd = NULL;
  int rc = cairn__meta_add(m, "cairn.version", cairn_version());
  if (rc == CAIRN_OK)
    rc = add_user(m);
  if (rc == CAIRN_OK)
    rc = meta_addf(m, "pid", "%ld", (long)getpid());
  if (rc == CAIRN_OK)
    rc = add_launch_time(m);
  if (rc == CAIRN_OK)
    rc = add_executable(m);
  if (rc == CAIRN_OK)
    rc = add_cmdline(m);
  if (rc == CAIRN_OK)
    rc = add_cwd_host(m, &cwd);
  if (rc == CAIRN_OK)
    rc = add_scheduler(m);
  if (rc == CAIRN_OK && cwd)
    rc = add_git(m, cwd);
  if (rc == CAIRN_OK)
    rc = add_env(m, env_allowlist);
  free(cwd);
  if (rc != CAIRN_OK)
    cairn__fmt(err, errlen, "run metadata: %s", cairn_strerror(rc));
  return rc;
}
