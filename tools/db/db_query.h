/*
 * db_query.h — private to cairn's tools: reading the lineage database for
 * the questions (`cairn runs`, `show`, `metrics`, `diff`, `search`).
 *
 * Every query is a prepared statement with bound parameters; no SQL is ever
 * built from user text. Functions that can fail return CAIRN_OK or a
 * negative cairn error code and write a message into err (errlen bytes).
 * Strings in the structs below are malloc'd copies owned by the struct and
 * released by its _free function. Nothing here is thread-safe beyond what
 * one sqlite3 connection per thread gives.
 */
#ifndef CAIRN_TOOLS_DB_QUERY_H
#define CAIRN_TOOLS_DB_QUERY_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------- */
/* Runs                                                                    */
/* ---------------------------------------------------------------------- */

/* One cairn_run row. */
typedef struct {
  int64_t id;
  char *uuid, *pipeline, *origin, *source, *cairn_version;
  int64_t format_version, created_ns, merged_ns, nranks, naggregators, detail, nmetrics;
  int64_t steps, samples, artifacts, executions, recovered_ranks, damaged;
  int64_t logged, stored, dropped, rejected;
  int64_t context_id, execution_id; /* MLMD Context / Execution of the run */
} cairn_dbq_run;

/* Loads run `id` (cairn_run.id). CAIRN_OK, CAIRN_ENOTFOUND, CAIRN_ENOMEM,
 * CAIRN_EIO. On failure *r is zeroed (nothing to free). */
int cairn_dbq_run_load(sqlite3 *db, int64_t id, cairn_dbq_run *r, char *err, size_t errlen);
/* Loads every run (of `pipeline` when not NULL), newest first. *runs is
 * malloc'd (free with cairn_dbq_runs_free). */
int cairn_dbq_run_list(sqlite3 *db, const char *pipeline, cairn_dbq_run **runs, size_t *n,
                       char *err, size_t errlen);
void cairn_dbq_run_free(cairn_dbq_run *r);
void cairn_dbq_runs_free(cairn_dbq_run *runs, size_t n);

/* ---------------------------------------------------------------------- */
/* Typed values: params, run key/values, MLMD properties                   */
/* ---------------------------------------------------------------------- */

/* A value with its key; type is CAIRN_PARAM_* (io/wal_records.h): run
 * key/values and MLMD string properties are CAIRN_PARAM_STRING. */
typedef struct {
  char *key;
  int type;
  int64_t i64; /* INT64, BOOL (0/1) */
  double f64;  /* DOUBLE            */
  char *str;   /* STRING            */
  int rank;    /* rank that logged it (params, key/values), -1 otherwise */
} cairn_dbq_value;

/* The run's params / key-values, the last value logged for each key,
 * sorted by key (bytewise). */
int cairn_dbq_params(sqlite3 *db, int64_t run_id, cairn_dbq_value **v, size_t *n, char *err,
                     size_t errlen);
int cairn_dbq_kv(sqlite3 *db, int64_t run_id, cairn_dbq_value **v, size_t *n, char *err,
                 size_t errlen);
void cairn_dbq_values_free(cairn_dbq_value *v, size_t n);

/* Writes the value as text into buf (numbers in the shortest form that
 * reads back exactly, bools as true/false); strings are copied (truncated
 * to len). Returns buf. */
const char *cairn_dbq_value_text(const cairn_dbq_value *v, char *buf, size_t len);
/* 1 if a and b have the same type and value. */
int cairn_dbq_value_equal(const cairn_dbq_value *a, const cairn_dbq_value *b);
/* Name of a CAIRN_PARAM_* type ("int64", "double", "string", "bool"). */
const char *cairn_dbq_type_name(int type);

/* ---------------------------------------------------------------------- */
/* Search terms                                                            */
/* ---------------------------------------------------------------------- */

/* "key=value" (equal; numerically when both sides parse as numbers) or
 * "key~substring" (the value's text contains it). value points into the
 * parsed argument, which must outlive the term. */
typedef struct {
  char *key;         /* malloc'd                                         */
  const char *value; /* points into the parsed argument                  */
  int substr;        /* '~'                                              */
  int isnum;         /* value parses as a number                         */
  double num;
} cairn_dbq_term;

/* Parses arg. Returns 1 for a term, 0 if arg is not one (no '=' or '~',
 * or an empty key), CAIRN_ENOMEM. Free with cairn_dbq_term_free. */
int cairn_dbq_term_parse(const char *arg, cairn_dbq_term *t);
void cairn_dbq_term_free(cairn_dbq_term *t);
/* 1 if v's value matches the term (v's key is not looked at). */
int cairn_dbq_term_matches(const cairn_dbq_term *t, const cairn_dbq_value *v);
/* 1 if s parses completely as a finite number (stored in *d). */
int cairn_dbq_parse_number(const char *s, double *d);

/* A sorted set of row ids. */
typedef struct {
  int64_t *v;
  size_t n, cap;
} cairn_dbq_ids;

int cairn_dbq_ids_add(cairn_dbq_ids *s, int64_t id);
/* Sorts and removes duplicates. */
void cairn_dbq_ids_normalize(cairn_dbq_ids *s);
/* a = a ∩ b (both normalized). */
void cairn_dbq_ids_intersect(cairn_dbq_ids *a, const cairn_dbq_ids *b);
int cairn_dbq_ids_has(const cairn_dbq_ids *s, int64_t id);
void cairn_dbq_ids_free(cairn_dbq_ids *s);

/* Adds the runs (cairn_run.id) whose last param or last key/value of
 * t->key matches, or whose pipeline matches when t->key is "pipeline". */
int cairn_dbq_runs_matching(sqlite3 *db, const cairn_dbq_term *t, cairn_dbq_ids *out,
                            char *err, size_t errlen);

/* MLMD entities with properties. */
enum { CAIRN_DBQ_ARTIFACT = 0, CAIRN_DBQ_EXECUTION = 1, CAIRN_DBQ_CONTEXT = 2 };
/* Adds the ids of the MLMD artifacts / executions / contexts having a
 * property (custom or not) named t->key that matches. For artifacts, the
 * key "type" also matches the artifact's type name (Dataset, Model, ...). */
int cairn_dbq_mlmd_matching(sqlite3 *db, int kind, const cairn_dbq_term *t,
                            cairn_dbq_ids *out, char *err, size_t errlen);

/* ---------------------------------------------------------------------- */
/* Metrics                                                                 */
/* ---------------------------------------------------------------------- */

/* One cairn_metric row; doubles are NaN where the database has NULL. */
typedef struct {
  int64_t id;
  char *name;
  int64_t nsteps, first_step, last_step, ncols, detail, missing, samples, last_count;
  double last_mean, last_min, last_max;
} cairn_dbq_metric;

/* The run's metrics sorted by name. */
int cairn_dbq_metrics(sqlite3 *db, int64_t run_id, cairn_dbq_metric **m, size_t *n,
                      char *err, size_t errlen);
void cairn_dbq_metrics_free(cairn_dbq_metric *m, size_t n);
/* Finds a metric by exact name. CAIRN_ENOTFOUND with the close names (or,
 * in a small run, all names) in err. */
int cairn_dbq_metric_find(sqlite3 *db, int64_t run_id, const char *name, cairn_dbq_metric *m,
                          char *err, size_t errlen);

/* ---------------------------------------------------------------------- */
/* Formatting                                                              */
/* ---------------------------------------------------------------------- */

/* "2026-11-23T07:06:51Z", or with ms "2026-11-23T07:06:51.150Z"; "-" for 0. */
const char *cairn_dbq_iso_time(int64_t ns, int ms, char buf[40]);
/* Shortest text that reads back as d ("nan", "inf", "-inf" if not finite). */
const char *cairn_dbq_fmt_double(double d, char buf[40]);
/* Width on a terminal of s printed with control characters as \xNN
 * (bytes; a UTF-8 sequence counts as one column per lead byte). */
size_t cairn_dbq_esc_width(const char *s);

#endif /* CAIRN_TOOLS_DB_QUERY_H */
