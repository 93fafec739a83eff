/*
 * db_query.c — reading the lineage database for the questions: runs,
 * last-value-per-key params and key/values, property search terms, metric
 * summaries, and the text forms the commands share. Only prepared
 * statements with bound parameters (db_query.h).
 */
#include "db_query.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cairn.h"
#include "db.h"
#include "util.h"
#include "wal_records.h"

/* A malloc'd copy of a text column ("" for NULL); NULL only without memory. */
static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  size_t n = (size_t)sqlite3_column_bytes(st, i);
  char *d = malloc(n + 1);
  if (d) {
    if (s)
      memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static double col_double_or_nan(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* ---------------------------------------------------------------------- */
/* Runs                                                                    */
/* ---------------------------------------------------------------------- */

#define RUN_COLUMNS                                                                          \
  "id, uuid, pipeline, origin, source, cairn_version, format_version, created_ns,"          \
  " merged_ns, nranks, naggregators, detail, nmetrics, steps, samples, artifacts,"          \
  " executions, recovered_ranks, damaged, logged, stored, dropped, rejected, context_id,"   \
  " execution_id"

static int run_row(sqlite3_stmt *st, cairn_dbq_run *r) {
  memset(r, 0, sizeof *r);
  int i = 0;
  r->id = sqlite3_column_int64(st, i++);
  r->uuid = col_dup(st, i++);
  r->pipeline = col_dup(st, i++);
  r->origin = col_dup(st, i++);
  r->source = col_dup(st, i++);
  r->cairn_version = col_dup(st, i++);
  int64_t *f[] = {&r->format_version, &r->created_ns, &r->merged_ns, &r->nranks,
                  &r->naggregators,   &r->detail,     &r->nmetrics,  &r->steps,
                  &r->samples,        &r->artifacts,  &r->executions, &r->recovered_ranks,
                  &r->damaged,        &r->logged,     &r->stored,    &r->dropped,
                  &r->rejected,       &r->context_id, &r->execution_id};
  for (size_t k = 0; k < sizeof f / sizeof *f; k++)
    *f[k] = sqlite3_column_int64(st, i++);
  if (!r->uuid || !r->pipeline || !r->origin || !r->source || !r->cairn_version) {
    cairn_dbq_run_free(r);
    return CAIRN_ENOMEM;
  }
  return CAIRN_OK;
}

void cairn_dbq_run_free(cairn_dbq_run *r) {
  free(r->uuid);
  free(r->pipeline);
  free(r->origin);
  free(r->source);
  free(r->cairn_version);
  memset(r, 0, sizeof *r);
}

void cairn_dbq_runs_free(cairn_dbq_run *runs, size_t n) {
  for (size_t i = 0; i < n; i++)
    cairn_dbq_run_free(&runs[i]);
  free(runs);
}

int cairn_dbq_run_load(sqlite3 *db, int64_t id, cairn_dbq_run *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st, "SELECT " RUN_COLUMNS " FROM cairn_run WHERE id=?1", err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    rc = run_row(st, r);
  } else if (s == SQLITE_DONE) {
    cairn__fmt(err, errlen, "no run with id %" PRId64, id);
    rc = CAIRN_ENOTFOUND;
  } else {
    rc = cairn_db_sql_error(db, err, errlen, "read cairn_run");
  }
  sqlite3_finalize(st);
  return rc;
}

int cairn_dbq_run_list(sqlite3 *db, const char *pipeline, cairn_dbq_run **runs, size_t *n,
                       char *err, size_t errlen) {
  *runs = NULL;
  *n = 0;
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st,
                "SELECT " RUN_COLUMNS " FROM cairn_run WHERE ?1 IS NULL OR pipeline=?1"
                " ORDER BY created_ns DESC, id DESC",
                err, errlen);
  if (rc)
    return rc;
  if (pipeline)
    sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_TRANSIENT);
  size_t cap = 0;
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      cairn_dbq_run *t = realloc(*runs, nc * sizeof *t);
      if (!t) {
        rc = CAIRN_ENOMEM;
        break;
      }
      *runs = t;
      cap = nc;
    }
    if ((rc = run_row(st, &(*runs)[*n])))
      break;
    (*n)++;
  }
  if (!rc && s != SQLITE_DONE)
    rc = cairn_db_sql_error(db, err, errlen, "read cairn_run");
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, errlen, "out of memory");
  sqlite3_finalize(st);
  if (rc) {
    cairn_dbq_runs_free(*runs, *n);
    *runs = NULL;
    *n = 0;
  }
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Typed values                                                            */
/* ---------------------------------------------------------------------- */

void cairn_dbq_values_free(cairn_dbq_value *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].key);
    free(v[i].str);
  }
  free(v);
}

/* Reads rows (key, type, int, double, string, rank) into *v. */
static int load_values(sqlite3 *db, sqlite3_stmt *st, cairn_dbq_value **v, size_t *n,
                       char *err, size_t errlen) {
  size_t cap = 0;
  int rc = CAIRN_OK, s;
  *v = NULL;
  *n = 0;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      cairn_dbq_value *t = realloc(*v, nc * sizeof *t);
      if (!t) {
        rc = CAIRN_ENOMEM;
        break;
      }
      *v = t;
      cap = nc;
    }
    cairn_dbq_value *x = &(*v)[*n];
    memset(x, 0, sizeof *x);
    x->key = col_dup(st, 0);
    x->type = sqlite3_column_int(st, 1);
    x->i64 = sqlite3_column_int64(st, 2);
    x->f64 = sqlite3_column_double(st, 3);
    x->str = col_dup(st, 4);
    x->rank = sqlite3_column_int(st, 5);
    (*n)++;
    if (!x->key || !x->str) {
      rc = CAIRN_ENOMEM;
      break;
    }
  }
  if (!rc && s != SQLITE_DONE)
    rc = cairn_db_sql_error(db, err, errlen, "read values");
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, errlen, "out of memory");
  sqlite3_finalize(st);
  if (rc) {
    cairn_dbq_values_free(*v, *n);
    *v = NULL;
    *n = 0;
  }
  return rc;
}

int cairn_dbq_params(sqlite3 *db, int64_t run_id, cairn_dbq_value **v, size_t *n, char *err,
                     size_t errlen) {
  /* SQLite takes the bare columns of an aggregate query from the row that
   * holds max(seq): the last value logged for each key. */
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st,
                "SELECT key, type, int_value, double_value, string_value, rank, max(seq)"
                " FROM cairn_param WHERE run_id=?1 GROUP BY key ORDER BY key",
                err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  return load_values(db, st, v, n, err, errlen);
}

int cairn_dbq_kv(sqlite3 *db, int64_t run_id, cairn_dbq_value **v, size_t *n, char *err,
                 size_t errlen) {
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st,
                "SELECT key, 3, 0, 0, value, rank, max(seq) FROM cairn_kv WHERE run_id=?1"
                " GROUP BY key ORDER BY key",
                err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  return load_values(db, st, v, n, err, errlen);
}

const char *cairn_dbq_fmt_double(double d, char buf[40]) {
  if (isnan(d))
    return strcpy(buf, "nan");
  if (isinf(d))
    return strcpy(buf, d > 0 ? "inf" : "-inf");
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, 40, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      break;
  }
  return buf;
}

const char *cairn_dbq_value_text(const cairn_dbq_value *v, char *buf, size_t len) {
  char tmp[40];
  switch (v->type) {
  case CAIRN_PARAM_INT64:
    snprintf(buf, len, "%" PRId64, v->i64);
    break;
  case CAIRN_PARAM_DOUBLE:
    snprintf(buf, len, "%s", cairn_dbq_fmt_double(v->f64, tmp));
    break;
  case CAIRN_PARAM_BOOL:
    snprintf(buf, len, "%s", v->i64 ? "true" : "false");
    break;
  default:
    snprintf(buf, len, "%s", v->str ? v->str : "");
  }
  return buf;
}

int cairn_dbq_value_equal(const cairn_dbq_value *a, const cairn_dbq_value *b) {
  if (a->type != b->type)
    return 0;
  switch (a->type) {
  case CAIRN_PARAM_INT64: return a->i64 == b->i64;
  case CAIRN_PARAM_BOOL: return !a->i64 == !b->i64;
  case CAIRN_PARAM_DOUBLE:
    return a->f64 == b->f64 || (isnan(a->f64) && isnan(b->f64));
  default: return !strcmp(a->str ? a->str : "", b->str ? b->str : "");
  }
}

const char *cairn_dbq_type_name(int type) {
  switch (type) {
  case CAIRN_PARAM_INT64: return "int64";
  case CAIRN_PARAM_DOUBLE: return "double";
  case CAIRN_PARAM_BOOL: return "bool";
  default: return "string";
  }
}

/* ---------------------------------------------------------------------- */
/* Search terms                                                            */
/* ---------------------------------------------------------------------- */

int cairn_dbq_parse_number(const char *s, double *d) {
  if (!s || !*s)
    return 0;
  /* Only decimal notation: "inf", "nan" and hex floats are text. */
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
      return 0;
  char *end;
  double v = strtod(s, &end);
  if (*end || !isfinite(v))
    return 0;
  *d = v;
  return 1;
}

int cairn_dbq_term_parse(const char *arg, cairn_dbq_term *t) {
  memset(t, 0, sizeof *t);
  size_t k = strcspn(arg, "=~");
  if (!arg[k] || k == 0)
    return 0;
  t->key = malloc(k + 1);
  if (!t->key)
    return CAIRN_ENOMEM;
  memcpy(t->key, arg, k);
  t->key[k] = '\0';
  t->substr = arg[k] == '~';
  t->value = arg + k + 1;
  t->isnum = !t->substr && cairn_dbq_parse_number(t->value, &t->num);
  return 1;
}

void cairn_dbq_term_free(cairn_dbq_term *t) {
  free(t->key);
  memset(t, 0, sizeof *t);
}

int cairn_dbq_term_matches(const cairn_dbq_term *t, const cairn_dbq_value *v) {
  char buf[64];
  const char *text = v->type == CAIRN_PARAM_STRING ? (v->str ? v->str : "")
                                                    : cairn_dbq_value_text(v, buf, sizeof buf);
  if (t->substr)
    return strstr(text, t->value) != NULL;
  if (t->isnum) {
    double d;
    switch (v->type) {
    case CAIRN_PARAM_INT64: return (double)v->i64 == t->num;
    case CAIRN_PARAM_DOUBLE: return v->f64 == t->num;
    case CAIRN_PARAM_BOOL: return (v->i64 ? 1.0 : 0.0) == t->num;
    default:
      if (cairn_dbq_parse_number(text, &d))
        return d == t->num;
    }
  }
  if (v->type == CAIRN_PARAM_BOOL)
    return !strcmp(text, t->value) || (!strcmp(t->value, "1") && v->i64) ||
           (!strcmp(t->value, "0") && !v->i64);
  return !strcmp(text, t->value);
}

int cairn_dbq_ids_add(cairn_dbq_ids *s, int64_t id) {
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 32;
    int64_t *t = realloc(s->v, nc * sizeof *t);
    if (!t)
      return CAIRN_ENOMEM;
    s->v = t;
    s->cap = nc;
  }
  s->v[s->n++] = id;
  return CAIRN_OK;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

void cairn_dbq_ids_normalize(cairn_dbq_ids *s) {
  if (!s->n)
    return;
  qsort(s->v, s->n, sizeof *s->v, cmp_i64);
  size_t o = 1;
  for (size_t i = 1; i < s->n; i++)
    if (s->v[i] != s->v[o - 1])
      s->v[o++] = s->v[i];
  s->n = o;
}

int cairn_dbq_ids_has(const cairn_dbq_ids *s, int64_t id) {
  return s->n && bsearch(&id, s->v, s->n, sizeof *s->v, cmp_i64) != NULL;
}

void cairn_dbq_ids_intersect(cairn_dbq_ids *a, const cairn_dbq_ids *b) {
  size_t o = 0;
  for (size_t i = 0; i < a->n; i++)
    if (cairn_dbq_ids_has(b, a->v[i]))
      a->v[o++] = a->v[i];
  a->n = o;
}

void cairn_dbq_ids_free(cairn_dbq_ids *s) {
  free(s->v);
  memset(s, 0, sizeof *s);
}

/* Steps st (rows: owner id, type, int, double, string ordered by owner then
 * seq) and adds the owners whose LAST row matches when `last`, else any. */
static int collect(sqlite3 *db, sqlite3_stmt *st, const cairn_dbq_term *t, int last,
                   cairn_dbq_ids *out, char *err, size_t errlen) {
  int rc = CAIRN_OK, s, have = 0, match = 0;
  int64_t cur = 0;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t owner = sqlite3_column_int64(st, 0);
    if (have && owner != cur && match && (rc = cairn_dbq_ids_add(out, cur)))
      break;
    if (!have || owner != cur)
      match = 0;
    have = 1;
    cur = owner;
    cairn_dbq_value v = {NULL, sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2),
                         sqlite3_column_double(st, 3), (char *)sqlite3_column_text(st, 4), -1};
    int m = cairn_dbq_term_matches(t, &v);
    match = last ? m : (match || m);
  }
  if (!rc && s != SQLITE_DONE)
    rc = cairn_db_sql_error(db, err, errlen, "search");
  if (!rc && have && match)
    rc = cairn_dbq_ids_add(out, cur);
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, errlen, "out of memory");
  sqlite3_finalize(st);
  return rc;
}

int cairn_dbq_runs_matching(sqlite3 *db, const cairn_dbq_term *t, cairn_dbq_ids *out,
                            char *err, size_t errlen) {
  static const char *const sql[] = {
      "SELECT run_id, type, int_value, double_value, string_value FROM cairn_param"
      " WHERE key=?1 ORDER BY run_id, seq",
      "SELECT run_id, 3, 0, 0, value FROM cairn_kv WHERE key=?1 ORDER BY run_id, seq",
      "SELECT id, 3, 0, 0, pipeline FROM cairn_run WHERE ?1='pipeline' ORDER BY id",
  };
  for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
    sqlite3_stmt *st;
    int rc = cairn_db_prepare(db, &st, sql[i], err, errlen);
    if (rc)
      return rc;
    sqlite3_bind_text(st, 1, t->key, -1, SQLITE_TRANSIENT);
    if ((rc = collect(db, st, t, 1, out, err, errlen)))
      return rc;
  }
  cairn_dbq_ids_normalize(out);
  return CAIRN_OK;
}

int cairn_dbq_mlmd_matching(sqlite3 *db, int kind, const cairn_dbq_term *t,
                            cairn_dbq_ids *out, char *err, size_t errlen) {
  /* The value columns as one typed value: string, then double, then bool,
   * then int (MLMD fills exactly one of them). */
#define PROP_VALUE                                                                          \
  " CASE WHEN string_value IS NOT NULL THEN 3 WHEN double_value IS NOT NULL THEN 2"        \
  " WHEN bool_value IS NOT NULL THEN 4 ELSE 1 END,"                                         \
  " CASE WHEN bool_value IS NOT NULL AND int_value IS NULL THEN bool_value ELSE"            \
  " int_value END, double_value, string_value"
  static const char *const sql[] = {
      "SELECT artifact_id," PROP_VALUE " FROM ArtifactProperty WHERE name=?1"
      " ORDER BY artifact_id",
      "SELECT execution_id," PROP_VALUE " FROM ExecutionProperty WHERE name=?1"
      " ORDER BY execution_id",
      "SELECT context_id," PROP_VALUE " FROM ContextProperty WHERE name=?1"
      " ORDER BY context_id",
  };
#undef PROP_VALUE
  if (kind < 0 || kind > 2) {
    cairn__fmt(err, errlen, "bad entity kind %d", kind);
    return CAIRN_EINVAL;
  }
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st, sql[kind], err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, t->key, -1, SQLITE_TRANSIENT);
  if ((rc = collect(db, st, t, 0, out, err, errlen)))
    return rc;
  if (kind == CAIRN_DBQ_ARTIFACT && !strcmp(t->key, "type")) {
    if ((rc = cairn_db_prepare(db, &st,
                   "SELECT a.id, 3, 0, 0, t.name FROM Artifact a JOIN Type t ON t.id=a.type_id"
                   " ORDER BY a.id",
                   err, errlen)))
      return rc;
    if ((rc = collect(db, st, t, 0, out, err, errlen)))
      return rc;
  }
  cairn_dbq_ids_normalize(out);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Metrics                                                                 */
/* ---------------------------------------------------------------------- */

#define METRIC_COLUMNS                                                                       \
  "id, name, nsteps, first_step, last_step, ncols, detail, missing, samples, last_count,"   \
  " last_mean, last_min, last_max"

static int metric_row(sqlite3_stmt *st, cairn_dbq_metric *m) {
  memset(m, 0, sizeof *m);
  m->id = sqlite3_column_int64(st, 0);
  m->name = col_dup(st, 1);
  int64_t *f[] = {&m->nsteps, &m->first_step, &m->last_step, &m->ncols,
                  &m->detail, &m->missing,    &m->samples,   &m->last_count};
  for (size_t k = 0; k < sizeof f / sizeof *f; k++)
    *f[k] = sqlite3_column_int64(st, (int)k + 2);
  m->last_mean = col_double_or_nan(st, 10);
  m->last_min = col_double_or_nan(st, 11);
  m->last_max = col_double_or_nan(st, 12);
  return m->name ? CAIRN_OK : CAIRN_ENOMEM;
}

void cairn_dbq_metrics_free(cairn_dbq_metric *m, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(m[i].name);
  free(m);
}

int cairn_dbq_metrics(sqlite3 *db, int64_t run_id, cairn_dbq_metric **m, size_t *n,
                      char *err, size_t errlen) {
  *m = NULL;
  *n = 0;
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st,
                "SELECT " METRIC_COLUMNS " FROM cairn_metric WHERE run_id=?1 ORDER BY name",
                err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  size_t cap = 0;
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      cairn_dbq_metric *t = realloc(*m, nc * sizeof *t);
      if (!t) {
        rc = CAIRN_ENOMEM;
        break;
      }
      *m = t;
      cap = nc;
    }
    if ((rc = metric_row(st, &(*m)[*n])))
      break;
    (*n)++;
  }
  if (!rc && s != SQLITE_DONE)
    rc = cairn_db_sql_error(db, err, errlen, "read cairn_metric");
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, errlen, "out of memory");
  sqlite3_finalize(st);
  if (rc) {
    cairn_dbq_metrics_free(*m, *n);
    *m = NULL;
    *n = 0;
  }
  return rc;
}

/* Levenshtein distance of a and b, bytewise, capped at 255. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 255 || lb > 255)
    return 255;
  size_t row[256];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      if (up + 1 < best)
        best = up + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  if (!n)
    return 0;
  for (; *hay; hay++)
    if (!strncasecmp(hay, needle, n))
      return 1;
  return 0;
}

int cairn_dbq_metric_find(sqlite3 *db, int64_t run_id, const char *name, cairn_dbq_metric *m,
                          char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  sqlite3_stmt *st;
  int rc = cairn_db_prepare(db, &st,
                "SELECT " METRIC_COLUMNS " FROM cairn_metric WHERE run_id=?1 AND name=?2",
                err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW)
    rc = metric_row(st, m);
  else if (s != SQLITE_DONE)
    rc = cairn_db_sql_error(db, err, errlen, "read cairn_metric");
  else
    rc = CAIRN_ENOTFOUND;
  sqlite3_finalize(st);
  if (rc != CAIRN_ENOTFOUND) {
    if (rc == CAIRN_ENOMEM)
      cairn__fmt(err, errlen, "out of memory");
    return rc;
  }
  /* Not there: name the close ones (or all of a small run's). */
  cairn_dbq_metric *all;
  size_t n;
  char list[768] = "";
  size_t o = 0, shown = 0, close = 0;
  if (cairn_dbq_metrics(db, run_id, &all, &n, NULL, 0) == CAIRN_OK) {
    size_t limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    for (int pass = 0; pass < 2 && !shown; pass++)
      for (size_t i = 0; i < n; i++) {
        int near = edit_distance(name, all[i].name) <= limit || contains_ci(all[i].name, name) ||
                   contains_ci(name, all[i].name);
        if (pass == 0 && !near)
          continue;
        if (pass == 1 && n > 12)
          break;
        close += pass == 0;
        if (o < sizeof list - 80) {
          /* Names are the run's bytes: quote them, controls as \xNN. */
          o += (size_t)snprintf(list + o, sizeof list - o, "%s'", shown ? ", " : "");
          for (const unsigned char *p = (const unsigned char *)all[i].name;
               *p && o < sizeof list - 8; p++)
            o += (size_t)(*p < 0x20 || *p == 0x7f
                              ? snprintf(list + o, sizeof list - o, "\\x%02x", *p)
                              : snprintf(list + o, sizeof list - o, "%c", *p));
          o += (size_t)snprintf(list + o, sizeof list - o, "'");
        } else if (o < sizeof list - 6) {
          o += (size_t)snprintf(list + o, sizeof list - o, ", ...");
          break;
        }
        shown++;
      }
    cairn_dbq_metrics_free(all, n);
  }
  if (!n)
    cairn__fmt(err, errlen, "no metric '%s' in this run (it has no metrics)", name);
  else if (shown)
    cairn__fmt(err, errlen, "no metric '%s' in this run; %s: %s", name,
               close ? "close names" : "its metrics", list);
  else
    cairn__fmt(err, errlen, "no metric '%s' in this run (%zu metrics; see `cairn metrics RUN`)",
               name, n);
  return CAIRN_ENOTFOUND;
}

/* ---------------------------------------------------------------------- */
/* Formatting                                                              */
/* ---------------------------------------------------------------------- */

const char *cairn_dbq_iso_time(int64_t ns, int ms, char buf[40]) {
  if (ns <= 0)
    return strcpy(buf, "-");
  time_t s = (time_t)(ns / 1000000000);
  struct tm tm;
  if (!gmtime_r(&s, &tm))
    return strcpy(buf, "-");
  size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  if (ms)
    snprintf(buf + n, 40 - n, ".%03dZ", (int)((ns / 1000000) % 1000));
  else
    snprintf(buf + n, 40 - n, "Z");
  return buf;
}

size_t cairn_dbq_esc_width(const char *s) {
  size_t w = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    w += *p < 0x20 || *p == 0x7f ? 4 : (*p & 0xc0) != 0x80;
  return w;
}
