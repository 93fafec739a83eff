/*
 * config.c — private to cairn. The table of configuration keys and the code
 * that fills a cairn_config from it: built-in defaults, a YAML file, then
 * CAIRN_* environment variables.
 *
 * Everything here is reentrant: no global mutable state, all scratch space
 * lives on the caller's stack, and errors are reported as text into the
 * caller's buffer rather than printed, so cairn_init decides what to say.
 */
#include "config.h"

#include "cairn.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* ---------------------------------------------------------------------- */
/* The key table                                                           */
/* ---------------------------------------------------------------------- */

/* How a key's text is parsed, and therefore what C type its field has. */
typedef enum {
  KEY_BOOL,   /* bool                                                  */
  KEY_PATH,   /* char[size]; non-empty, shorter than the field         */
  KEY_TEXT,   /* char[size]; any text (may be empty), shorter than it  */
  KEY_UUID,   /* char[37]; "" or a canonical UUID, stored lower case   */
  KEY_U32,    /* uint32_t in [min, max]                                */
  KEY_INT,    /* int in [min, max]                                     */
  KEY_POW2,   /* uint32_t, a power of two in [min, max]                */
  KEY_DOUBLE, /* double in [dmin, dmax]                                */
  KEY_ENUM,   /* an int-sized enum; the value is the index in choices  */
  KEY_SIZE    /* uint64_t bytes in [min, max]; K/M/G/T suffixes        */
} key_kind;

typedef struct {
  const char *name; /* dotted name, as written in YAML          */
  key_kind kind;
  const char *def;            /* default, as text: parsed by the same code
                                 as user input, so it obeys the same rules */
  long long min, max;         /* integer and size kinds                   */
  double dmin, dmax;          /* KEY_DOUBLE                               */
  const char *const *choices; /* KEY_ENUM, NULL-terminated                */
  size_t offset, size;        /* the field in cairn_config                */
  const char *doc;            /* one line; docs/config.md says more       */
} key_spec;

#define FIELD(f)                                                               \
  .offset = offsetof(cairn_config, f), .size = sizeof(((cairn_config *)0)->f)

/* KEY_ENUM stores through an int; the index in choices is the enum value. */
_Static_assert(sizeof(cairn_ring_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(cairn_sync_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(cairn_log_level) == sizeof(int), "enum size");
_Static_assert(CAIRN_POLICY_DROP == 0 && CAIRN_POLICY_BLOCK == 1, "order");
_Static_assert(CAIRN_SYNC_NONE == 0 && CAIRN_SYNC_INTERVAL == 1 &&
                   CAIRN_SYNC_ALWAYS == 2,
               "order");
_Static_assert(CAIRN_LOG_ERROR == 0 && CAIRN_LOG_WARN == 1 &&
                   CAIRN_LOG_INFO == 2 && CAIRN_LOG_DEBUG == 3,
               "order");

static const char *const ring_policies[] = {"drop", "block", NULL};
static const char *const sync_policies[] = {"none", "interval", "always", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug",
                                         NULL};

#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)
#define TIB (1024LL * GIB)

/* Every key cairn knows, in the order docs/config.md lists them. */
static const key_spec key_table[] = {
    {.name = "enabled",
     .kind = KEY_BOOL,
     .def = "true",
     FIELD(enabled),
     .doc = "false makes cairn_init return CAIRN_EDISABLED"},
    {.name = "run.dir",
     .kind = KEY_PATH,
     .def = "cairn-runs",
     FIELD(run_dir),
     .doc = "parent directory of run directories"},
    {.name = "run.id",
     .kind = KEY_UUID,
     .def = "",
     FIELD(run_id),
     .doc = "fixed run id; empty generates a random UUID v4"},
    {.name = "ring.capacity",
     .kind = KEY_POW2,
     .def = "65536",
     .min = 1024,
     .max = 67108864,
     FIELD(ring_capacity),
     .doc = "records per thread ring (metric channel)"},
    {.name = "ring.policy",
     .kind = KEY_ENUM,
     .def = "drop",
     .choices = ring_policies,
     FIELD(ring_policy),
     .doc = "what a full metric ring does: drop the record or block"},
    {.name = "ring.high_water",
     .kind = KEY_DOUBLE,
     .def = "0.5",
     .dmin = 0.05,
     .dmax = 1.0,
     FIELD(ring_high_water),
     .doc = "fill fraction at which a producer wakes the drain early"},
    {.name = "ring.overflow_bytes",
     .kind = KEY_SIZE,
     .def = "64M",
     .min = 0,
     .max = TIB,
     FIELD(ring_overflow_bytes),
     .doc = "memory a full ring may add in overflow segments before it drops or blocks"},
    {.name = "drain.flush_interval_ms",
     .kind = KEY_U32,
     .def = "100",
     .min = 1,
     .max = 60000,
     FIELD(flush_interval_ms),
     .doc = "how often the idle drain wakes to write a block"},
    {.name = "wal.compression_level",
     .kind = KEY_INT,
     .def = "1",
     .min = -7,
     .max = 19,
     FIELD(compression_level),
     .doc = "zstd compression level of WAL blocks"},
    {.name = "wal.sync",
     .kind = KEY_ENUM,
     .def = "interval",
     .choices = sync_policies,
     FIELD(wal_sync),
     .doc = "when the WAL is fdatasync'ed"},
    {.name = "wal.sync_interval_ms",
     .kind = KEY_U32,
     .def = "1000",
     .min = 1,
     .max = 3600000,
     FIELD(wal_sync_interval_ms),
     .doc = "minimum time between fdatasyncs with wal.sync: interval"},
    {.name = "wal.segment_bytes",
     .kind = KEY_SIZE,
     .def = "64M",
     .min = MIB,
     .max = TIB,
     FIELD(wal_segment_bytes),
     .doc = "WAL segment size at which a new segment is started"},
    {.name = "wal.convert_memory",
     .kind = KEY_SIZE,
     .def = "0",
     .min = 0,
     .max = 1024 * GIB,
     FIELD(convert_memory),
     .doc = "memory the conversion of the WAL into the run file may use at finalize "
            "(0: 80% of what the node and the job's cgroup have available)"},
    {.name = "metrics.max_names",
     .kind = KEY_U32,
     .def = "4096",
     .min = 1,
     .max = 1048576,
     FIELD(max_names),
     .doc = "maximum distinct metric names per run"},
    {.name = "log.level",
     .kind = KEY_ENUM,
     .def = "warn",
     .choices = log_levels,
     FIELD(log_level),
     .doc = "verbosity of cairn's own messages on stderr"},
    {.name = "signals.sigterm",
     .kind = KEY_BOOL,
     .def = "true",
     FIELD(sigterm),
     .doc = "flush the log on SIGTERM before the previous handler runs"},
    {.name = "metadata.env",
     .kind = KEY_TEXT,
     .def = "",
     FIELD(metadata_env),
     .doc = "environment variables recorded with the run (comma-separated, PREFIX* allowed)"},
    {.name = "pipeline.name",
     .kind = KEY_TEXT,
     .def = "default",
     FIELD(pipeline_name),
     .doc = "the pipeline the run's stages belong to"},
    {.name = "lineage.hasher_threads",
     .kind = KEY_U32,
     .def = "0",
     .min = 0,
     .max = 256,
     FIELD(hasher_threads),
     .doc = "threads hashing artifacts in the background; 0 = min(2, cores)"},
    {.name = "mpi.enabled",
     .kind = KEY_BOOL,
     .def = "true",
     FIELD(mpi_enabled),
     .doc = "start cairn inside MPI_Init and finish it inside MPI_Finalize"},
    {.name = "mpi.ranks_per_aggregator",
     .kind = KEY_U32,
     .def = "0",
     .min = 0,
     .max = 1048576,
     FIELD(ranks_per_aggregator),
     .doc = "ranks per aggregator; 0 = one aggregator per node"},
    {.name = "mpi.aggregators_per_file",
     .kind = KEY_U32,
     .def = "16",
     .min = 1,
     .max = 1048576,
     FIELD(aggregators_per_file),
     .doc = "aggregators writing one HDF5 file together"},
    {.name = "mpi.channel_bytes",
     .kind = KEY_SIZE,
     .def = "8M",
     .min = 64 * KIB,
     .max = GIB,
     FIELD(channel_bytes),
     .doc = "node shared memory per rank for blocks on their way to the aggregator"},
    {.name = "mpi.aggregator_memory",
     .kind = KEY_SIZE,
     .def = "1G",
     .min = 0,
     .max = 1024 * GIB,
     FIELD(aggregator_memory),
     .doc = "memory an aggregator may keep its ranks' data in, ready for finalize"},
    {.name = "mpi.aggregator_nice",
     .kind = KEY_INT,
     .def = "19",
     .min = 0,
     .max = 19,
     FIELD(aggregator_nice),
     .doc = "nice value of the aggregator thread (19: it runs in the time the ranks leave)"},
    {.name = "mpi.aggregator_huge_pages",
     .kind = KEY_BOOL,
     .def = "false",
     FIELD(aggregator_huge_pages),
     .doc = "keep the aggregator's run view in memory advised for transparent huge pages"},
};

#define KEY_COUNT (sizeof key_table / sizeof key_table[0])

/* Longest dotted key accepted from a file; known keys are far shorter, so
 * anything longer is unknown anyway and only needs to be reported. */
#define KEY_TEXT_MAX 256

size_t cairn__config_key_count(void) { return KEY_COUNT; }

const char *cairn__config_key_name(size_t i) {
  return i < KEY_COUNT ? key_table[i].name : NULL;
}

static const key_spec *find_key(const char *name) {
  for (size_t i = 0; i < KEY_COUNT; i++)
    if (strcmp(key_table[i].name, name) == 0)
      return &key_table[i];
  return NULL;
}

/* True if some key lives under `prefix.` (so "ring" is a section). */
static bool is_section(const char *prefix) {
  size_t n = strlen(prefix);
  for (size_t i = 0; i < KEY_COUNT; i++)
    if (strncmp(key_table[i].name, prefix, n) == 0 &&
        key_table[i].name[n] == '.')
      return true;
  return false;
}

/* ---------------------------------------------------------------------- */
/* Error text                                                              */
/* ---------------------------------------------------------------------- */


/*
 * Copies user text into dst for quoting in a message: control bytes become
 * '?' (a block scalar's newlines would otherwise break the one-line message)
 * and long values are cut with "...", since the point is to recognise the
 * value, not to reproduce a 4 KiB path.
 */
static void quote_text(char *dst, size_t dstlen, const char *src) {
  size_t keep = dstlen - 4, i = 0;
  for (; src[i] != '\0' && i < keep; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (src[i] != '\0')
    memcpy(dst + i, "...", 3), i += 3;
  dst[i] = '\0';
}

/* strerror is not thread-safe; cairn_init may run beside other threads. */
static const char *errno_text(int e, char *buf, size_t len) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(e, buf, len);
#else
  if (strerror_r(e, buf, len) != 0)
    snprintf(buf, len, "error %d", e);
  return buf;
#endif
}

/* Writes e.g. 1048576 as "1MiB": sizes are limits people read, not count. */
static void size_text(char *buf, size_t len, long long v) {
  static const struct {
    long long mult;
    const char *unit;
  } units[] = {{TIB, "TiB"}, {GIB, "GiB"}, {MIB, "MiB"}, {KIB, "KiB"}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (v >= units[i].mult && v % units[i].mult == 0) {
      snprintf(buf, len, "%lld%s", v / units[i].mult, units[i].unit);
      return;
    }
  snprintf(buf, len, "%lld", v);
}

/* The "<what>" of "expected <what>, got '<value>'" for key k. */
static void expected_text(const key_spec *k, char *buf, size_t len) {
  char lo[32], hi[32];
  size_t used;
  switch (k->kind) {
  case KEY_BOOL:
    snprintf(buf, len, "a boolean (true/false)");
    return;
  case KEY_PATH:
    snprintf(buf, len, "a non-empty path shorter than %zu bytes", k->size);
    return;
  case KEY_TEXT:
    snprintf(buf, len, "text shorter than %zu bytes", k->size);
    return;
  case KEY_UUID:
    snprintf(buf, len,
             "a UUID in canonical form (8-4-4-4-12 hex digits) or ''");
    return;
  case KEY_U32:
  case KEY_INT:
    snprintf(buf, len, "an integer between %lld and %lld", k->min, k->max);
    return;
  case KEY_POW2:
    snprintf(buf, len, "a power of two between %lld and %lld", k->min, k->max);
    return;
  case KEY_DOUBLE:
    snprintf(buf, len, "a number between %g and %g", k->dmin, k->dmax);
    return;
  case KEY_ENUM:
    used = (size_t)snprintf(buf, len, "one of ");
    for (size_t i = 0; k->choices[i] != NULL && used < len; i++)
      used += (size_t)snprintf(buf + used, len - used, "%s%s", i > 0 ? "|" : "",
                               k->choices[i]);
    return;
  case KEY_SIZE:
    size_text(lo, sizeof lo, k->min);
    size_text(hi, sizeof hi, k->max);
    snprintf(buf, len,
             "a size between %s and %s (bytes, or with a K, M, G or T "
             "suffix)",
             lo, hi);
    return;
  }
  snprintf(buf, len, "a valid value");
}

/* ---------------------------------------------------------------------- */
/* Parsing one value                                                       */
/* ---------------------------------------------------------------------- */

static bool parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp(s, yes[i]) == 0)
      return *out = true, true;
    if (strcasecmp(s, no[i]) == 0)
      return *out = false, true;
  }
  return false;
}

/* Strict decimal: optional sign, digits, nothing else (no space, no 0x). */
static bool parse_integer(const char *s, long long *out) {
  const char *d = (*s == '+' || *s == '-') ? s + 1 : s;
  if (!isdigit((unsigned char)*d))
    return false;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno == ERANGE || *end != '\0')
    return false;
  *out = v;
  return true;
}

/*
 * strtod honours LC_NUMERIC, and cairn runs inside applications that may
 * have called setlocale (a German locale would reject "0.5"). Parse in the
 * C locale where the platform lets us name it per call.
 */
static bool parse_double(const char *s, double *out) {
  if (*s == '\0' || isspace((unsigned char)*s))
    return false;
  char *end;
  double v;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (c == (locale_t)0)
    return false;
  v = strtod_l(s, &end, c);
  freelocale(c);
#else
  v = strtod(s, &end);
#endif
  if (*end != '\0' || !isfinite(v))
    return false;
  *out = v;
  return true;
}

/* Digits, optional spaces, optional binary suffix (K or KiB ... T or TiB). */
static bool parse_size(const char *s, unsigned long long *out) {
  static const struct {
    const char *suffix;
    unsigned long long mult;
  } suffixes[] = {{"", 1},      {"K", KIB},   {"KiB", KIB},
                  {"M", MIB},   {"MiB", MIB}, {"G", GIB},
                  {"GiB", GIB}, {"T", TIB},   {"TiB", TIB}};
  if (!isdigit((unsigned char)*s))
    return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE)
    return false;
  while (*end == ' ')
    end++;
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    if (strcasecmp(end, suffixes[i].suffix) != 0)
      continue;
    if (v > ULLONG_MAX / suffixes[i].mult)
      return false;
    *out = v * suffixes[i].mult;
    return true;
  }
  return false;
}

static bool is_uuid(const char *s) {
  if (strlen(s) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return false;
  }
  return true;
}

/*
 * Parses `text` as key k and stores it into *cfg. Returns false, leaving
 * *cfg untouched, if the text is not a valid value; the caller words the
 * message because only it knows where the text came from.
 */
static bool apply_value(cairn_config *cfg, const key_spec *k,
                        const char *text) {
  char *field = (char *)cfg + k->offset;
  long long i;
  unsigned long long u;
  double d;
  bool b;
  size_t len;

  switch (k->kind) {
  case KEY_BOOL:
    if (!parse_bool(text, &b))
      return false;
    memcpy(field, &b, sizeof b);
    return true;
  case KEY_PATH:
    len = strlen(text);
    if (len == 0 || len >= k->size)
      return false;
    memcpy(field, text, len + 1);
    return true;
  case KEY_TEXT:
    len = strlen(text);
    if (len >= k->size)
      return false;
    memcpy(field, text, len + 1);
    return true;
  case KEY_UUID:
    len = strlen(text);
    if (len != 0 && !is_uuid(text))
      return false;
    /* Lower case: the id names the run directory, so one run must not be
     * able to appear under two spellings. */
    for (size_t j = 0; j <= len; j++)
      field[j] = (char)tolower((unsigned char)text[j]);
    return true;
  case KEY_U32:
  case KEY_POW2:
    if (!parse_integer(text, &i) || i < k->min || i > k->max)
      return false;
    if (k->kind == KEY_POW2 && (i & (i - 1)) != 0)
      return false;
    {
      uint32_t v = (uint32_t)i;
      memcpy(field, &v, sizeof v);
    }
    return true;
  case KEY_INT:
    if (!parse_integer(text, &i) || i < k->min || i > k->max)
      return false;
    {
      int v = (int)i;
      memcpy(field, &v, sizeof v);
    }
    return true;
  case KEY_DOUBLE:
    if (!parse_double(text, &d) || d < k->dmin || d > k->dmax)
      return false;
    memcpy(field, &d, sizeof d);
    return true;
  case KEY_ENUM:
    for (int j = 0; k->choices[j] != NULL; j++)
      if (strcasecmp(text, k->choices[j]) == 0) {
        memcpy(field, &j, sizeof j);
        return true;
      }
    return false;
  case KEY_SIZE:
    if (!parse_size(text, &u) || u < (unsigned long long)k->min ||
        u > (unsigned long long)k->max)
      return false;
    {
      uint64_t v = u;
      memcpy(field, &v, sizeof v);
    }
    return true;
  }
  return false;
}

void cairn__config_defaults(cairn_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  /* Cannot fail: the defaults are constants that the tests check parse. */
  for (size_t i = 0; i < KEY_COUNT; i++)
    (void)apply_value(cfg, &key_table[i], key_table[i].def);
}

/* ---------------------------------------------------------------------- */
/* Suggestions for unknown keys                                            */
/* ---------------------------------------------------------------------- */

#define LEV_MAX 128

/* Edit distance with two rows; SIZE_MAX if a string is too long to care. */
static size_t levenshtein(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  size_t row0[LEV_MAX + 1], row1[LEV_MAX + 1];
  size_t *prev = row0, *cur = row1;
  if (la > LEV_MAX || lb > LEV_MAX)
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    size_t *t = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb];
}

static const char *last_component(const char *s) {
  const char *dot = strrchr(s, '.');
  return dot ? dot + 1 : s;
}

/* Largest distance at which a full dotted name still counts as a typo. */
static size_t close_enough(const char *s) {
  size_t half = strlen(s) / 2;
  return half > 3 ? half : 3;
}

/* The same for a last component alone: stricter, because components are
 * short and any two-letter word is within 3 edits of "id". */
static size_t tail_close_enough(const char *s) {
  size_t third = strlen(s) / 3;
  return third > 1 ? third : 1;
}

/*
 * The known key nearest to `name`, or NULL if none is close. Comparing the
 * last components too catches a key put in the wrong place ("capacity:" at
 * the top level, "drain.sync") where the full names are far apart.
 */
static const char *nearest_key(const char *name) {
  const char *best = NULL, *tail = last_component(name);
  size_t best_d = SIZE_MAX, best_full = SIZE_MAX;
  for (size_t i = 0; i < KEY_COUNT; i++) {
    const char *known = key_table[i].name;
    size_t full = levenshtein(name, known);
    size_t part = levenshtein(tail, last_component(known));
    size_t d = SIZE_MAX;
    if (full <= close_enough(name))
      d = full;
    if (part <= tail_close_enough(tail) && part < d)
      d = part;
    if (d == SIZE_MAX)
      continue;
    /* Ties go to the closer full name, then to table order. */
    if (d < best_d || (d == best_d && full < best_full)) {
      best = known;
      best_d = d;
      best_full = full;
    }
  }
  return best;
}

/* ---------------------------------------------------------------------- */
/* YAML file                                                               */
/* ---------------------------------------------------------------------- */

/*
 * The file is loaded as a whole document before any key is looked at, so a
 * syntax error anywhere is reported ahead of a bad value above it: users fix
 * errors top-down and should not be told their YAML is fine when it is not.
 */
typedef struct {
  cairn_config *cfg;
  const char *path;
  FILE *file;
  yaml_parser_t parser;
  yaml_document_t *doc;
  char *err;
  size_t errlen;
  size_t first_line[KEY_COUNT]; /* 1-based line a key was set on, or 0 */
} file_loader;

static unsigned long line_of(yaml_mark_t m) {
  return (unsigned long)m.line + 1;
}
static unsigned long col_of(yaml_mark_t m) {
  return (unsigned long)m.column + 1;
}

/* Reports a failed yaml_parser_load and returns the code for it. */
static int parse_failure(file_loader *ld) {
  yaml_parser_t *p = &ld->parser;
  char buf[128];

  if (p->error == YAML_MEMORY_ERROR) {
    cairn__fmt(ld->err, ld->errlen, "%s: out of memory while parsing", ld->path);
    return CAIRN_ENOMEM;
  }
  if (p->error == YAML_READER_ERROR) {
    if (ferror(ld->file)) {
      cairn__fmt(ld->err, ld->errlen, "%s: cannot read configuration file: %s",
              ld->path, errno_text(errno, buf, sizeof buf));
      return CAIRN_EIO;
    }
    /* The reader (bad UTF-8, control bytes) knows only a byte offset. */
    cairn__fmt(ld->err, ld->errlen, "%s: YAML syntax error: %s (at byte %zu)",
            ld->path, p->problem ? p->problem : "unreadable input",
            p->problem_offset);
    return CAIRN_ECONFIG;
  }
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->context != NULL)
    cairn__fmt(ld->err, ld->errlen, "%s:%lu:%lu: YAML syntax error: %s (%s)",
            ld->path, line_of(p->problem_mark), col_of(p->problem_mark),
            problem, p->context);
  else
    cairn__fmt(ld->err, ld->errlen, "%s:%lu:%lu: YAML syntax error: %s", ld->path,
            line_of(p->problem_mark), col_of(p->problem_mark), problem);
  return CAIRN_ECONFIG;
}

static int error_at(file_loader *ld, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<path>:<line>:<col>: " followed by the formatted text. */
static int error_at(file_loader *ld, yaml_mark_t m, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cairn__fmt(ld->err, ld->errlen, "%s:%lu:%lu: %s", ld->path, line_of(m),
          col_of(m), msg);
  return CAIRN_ECONFIG;
}

/* A plain empty, "~" or "null" scalar: YAML's null, e.g. "ring:" alone. */
static bool is_null(const yaml_node_t *n) {
  const char *v = (const char *)n->data.scalar.value;
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *n) {
  return n->type == YAML_SEQUENCE_NODE ? "a sequence" : "a mapping";
}

static int unknown_key(file_loader *ld, yaml_mark_t m, const char *key) {
  char shown[KEY_TEXT_MAX + 4];
  const char *near = nearest_key(key);
  quote_text(shown, sizeof shown, key);
  if (near != NULL)
    return error_at(ld, m, "unknown key '%s' (did you mean '%s'?)", shown,
                    near);
  return error_at(ld, m, "unknown key '%s'", shown);
}

/* A scalar value for a known key: check for a repeat, then parse it. */
static int set_scalar(file_loader *ld, const key_spec *k, yaml_mark_t key_mark,
                      const yaml_node_t *val) {
  size_t idx = (size_t)(k - key_table);
  const char *text = (const char *)val->data.scalar.value;
  char what[160], shown[80];

  if (ld->first_line[idx] != 0)
    return error_at(ld, key_mark, "duplicate key '%s' (first set on line %zu)",
                    k->name, ld->first_line[idx]);
  ld->first_line[idx] = line_of(key_mark);

  expected_text(k, what, sizeof what);
  /* A "\0" escape would silently cut the value short at the C string. */
  if (strlen(text) != val->data.scalar.length)
    return error_at(ld, val->start_mark,
                    "key '%s': expected %s, got a value containing a NUL "
                    "byte",
                    k->name, what);
  if (!apply_value(ld->cfg, k, text)) {
    quote_text(shown, sizeof shown, text);
    return error_at(ld, val->start_mark, "key '%s': expected %s, got '%s'",
                    k->name, what, shown);
  }
  return CAIRN_OK;
}

static int load_mapping(file_loader *ld, const yaml_node_t *map,
                        const char *prefix);

/* Handles the value node `val` of dotted key `key`. */
static int load_value(file_loader *ld, const char *key, yaml_mark_t key_mark,
                      const yaml_node_t *val) {
  const key_spec *k = find_key(key);
  char what[160], shown[80];

  if (k != NULL && val->type == YAML_SCALAR_NODE)
    return set_scalar(ld, k, key_mark, val);
  if (k != NULL) {
    expected_text(k, what, sizeof what);
    return error_at(ld, val->start_mark, "key '%s': expected %s, got %s", key,
                    what, node_kind(val));
  }
  if (is_section(key)) {
    if (val->type == YAML_MAPPING_NODE)
      return load_mapping(ld, val, key);
    /* "ring:" with every entry commented out is an empty section. */
    if (is_null(val))
      return CAIRN_OK;
    if (val->type != YAML_SCALAR_NODE)
      return error_at(ld, val->start_mark,
                      "key '%s': expected a mapping of '%s.*' keys, got %s",
                      key, key, node_kind(val));
    quote_text(shown, sizeof shown, (const char *)val->data.scalar.value);
    return error_at(ld, val->start_mark,
                    "key '%s': expected a mapping of '%s.*' keys, got '%s'",
                    key, key, shown);
  }
  /*
   * Not a key and not a section, yet a non-empty mapping may still spell
   * one out ("wal: {segment: {bytes: 1}}"): descend to name the full key.
   * Every path under here ends in an error at its first leaf, so even a
   * self-referencing alias costs at most KEY_TEXT_MAX / 2 levels.
   */
  if (val->type == YAML_MAPPING_NODE &&
      val->data.mapping.pairs.top != val->data.mapping.pairs.start)
    return load_mapping(ld, val, key);
  return unknown_key(ld, key_mark, key);
}

/* Applies every key/value pair of mapping node `map`, named under prefix. */
static int load_mapping(file_loader *ld, const yaml_node_t *map,
                        const char *prefix) {
  for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    const yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
    const yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
    char key[KEY_TEXT_MAX + 1], shown[KEY_TEXT_MAX + 4];

    if (kn == NULL || vn == NULL) /* libyaml guarantees both; be safe */
      return error_at(ld, map->start_mark, "malformed YAML mapping");
    if (kn->type != YAML_SCALAR_NODE)
      return error_at(ld, kn->start_mark, "expected a plain key, got %s",
                      node_kind(kn));
    const char *name = (const char *)kn->data.scalar.value;
    int n =
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", name);
    if (strlen(name) != kn->data.scalar.length)
      return error_at(ld, kn->start_mark, "unknown key containing a NUL byte");
    if (n < 0 || (size_t)n >= sizeof key) {
      quote_text(shown, sizeof shown, key);
      return error_at(ld, kn->start_mark, "unknown key '%s'", shown);
    }
    int rc = load_value(ld, key, kn->start_mark, vn);
    if (rc != CAIRN_OK)
      return rc;
  }
  return CAIRN_OK;
}

/* The root node: a mapping, or nothing / null for "no keys". */
static int load_root(file_loader *ld) {
  const yaml_node_t *root = yaml_document_get_root_node(ld->doc);
  if (root == NULL || is_null(root))
    return CAIRN_OK; /* empty, comment-only, or "---" alone */
  if (root->type != YAML_MAPPING_NODE)
    return error_at(ld, root->start_mark,
                    "expected a mapping of keys at the top level");
  return load_mapping(ld, root, "");
}

/*
 * Loads the first document, then makes sure no second one follows: it would
 * be ignored or merged, and neither is what its author meant.
 */
static int load_stream(file_loader *ld) {
  yaml_document_t doc, extra;
  int rc;

  if (!yaml_parser_load(&ld->parser, &doc))
    return parse_failure(ld);
  if (!yaml_parser_load(&ld->parser, &extra)) {
    rc = parse_failure(ld);
  } else {
    if (yaml_document_get_root_node(&extra) != NULL) {
      ld->doc = &extra;
      rc = error_at(ld, extra.start_mark, "expected a single YAML document");
    } else {
      ld->doc = &doc;
      rc = load_root(ld);
    }
    yaml_document_delete(&extra);
  }
  ld->doc = NULL;
  yaml_document_delete(&doc);
  return rc;
}

int cairn__config_load_file(cairn_config *cfg, const char *path, char *err,
                            size_t errlen) {
  file_loader ld;
  struct stat st;
  char buf[128];
  int rc;

  memset(&ld, 0, sizeof ld);
  ld.cfg = cfg;
  ld.path = path;
  ld.err = err;
  ld.errlen = errlen;

  ld.file = fopen(path, "rb");
  if (ld.file == NULL) {
    cairn__fmt(err, errlen, "%s: cannot open configuration file: %s", path,
            errno_text(errno, buf, sizeof buf));
    return CAIRN_EIO;
  }
  /* fopen succeeds on a directory; reading it would surface as a vague
   * libyaml "input error". */
  if (fstat(fileno(ld.file), &st) == 0 && S_ISDIR(st.st_mode)) {
    cairn__fmt(err, errlen, "%s: cannot open configuration file: %s", path,
            errno_text(EISDIR, buf, sizeof buf));
    fclose(ld.file);
    return CAIRN_EIO;
  }
  if (!yaml_parser_initialize(&ld.parser)) {
    cairn__fmt(err, errlen, "%s: out of memory while parsing", path);
    fclose(ld.file);
    return CAIRN_ENOMEM;
  }
  yaml_parser_set_input_file(&ld.parser, ld.file);
  rc = load_stream(&ld);
  yaml_parser_delete(&ld.parser);
  fclose(ld.file);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Environment and the whole chain                                         */
/* ---------------------------------------------------------------------- */

/* "ring.capacity" -> "CAIRN_RING_CAPACITY". */
static void env_name(const char *key, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "CAIRN_");
  for (; *key != '\0' && n + 1 < len; key++, n++)
    buf[n] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
  buf[n] = '\0';
}

int cairn__config_apply_env(cairn_config *cfg, char *err, size_t errlen) {
  /* Only known names are looked up, so unknown CAIRN_* variables (another
   * cairn version's) are ignored without scanning environ. */
  for (size_t i = 0; i < KEY_COUNT; i++) {
    const key_spec *k = &key_table[i];
    char var[64], what[160], shown[80];
    env_name(k->name, var, sizeof var);
    const char *v = getenv(var);
    if (v == NULL || apply_value(cfg, k, v))
      continue;
    expected_text(k, what, sizeof what);
    quote_text(shown, sizeof shown, v);
    cairn__fmt(err, errlen,
            "environment variable %s (key '%s'): expected %s, got '%s'", var,
            k->name, what, shown);
    return CAIRN_ECONFIG;
  }
  return CAIRN_OK;
}

int cairn__config_load(cairn_config *cfg, const char *path, char *err,
                       size_t errlen) {
  int rc;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  cairn__config_defaults(cfg);
  /* An empty path or $CAIRN_CONFIG means "no file", as an unset one does:
   * job scripts often export CAIRN_CONFIG= to switch the file off. */
  if (path == NULL || *path == '\0')
    path = getenv("CAIRN_CONFIG");
  if (path != NULL && *path != '\0') {
    rc = cairn__config_load_file(cfg, path, err, errlen);
    if (rc != CAIRN_OK)
      return rc;
  }
  return cairn__config_apply_env(cfg, err, errlen);
}
