/*
 * db_load.c — a merged run read back from the lineage database into the
 * same in-memory view the run-directory readers give (io/run_view.h), and
 * database-to-database merge built on it: the runs of another database are
 * loaded one by one and merged exactly as if their run directories were
 * (same transaction per run, same idempotence, lineage re-linked by content
 * hash in the target).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "db.h"
#include "util.h"

static char *dup_col(sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  int n = sqlite3_column_bytes(st, i);
  char *d = malloc((size_t)n + 1);
  if (d) {
    if (n)
      memcpy(d, s, (size_t)n);
    d[n] = '\0';
  }
  return d;
}

static int load_ranks(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err, size_t el) {
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT rank, hostname, pid, start_ns, acct_reported FROM cairn_rank"
                              " WHERE run_id=? ORDER BY rank",
                              run_id, err, el);
  if (rc)
    return rc;
  size_t cap = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (v->ncols == cap) {
      cap = cap ? cap * 2 : 16;
      int32_t *cr = realloc(v->col_rank, cap * sizeof *cr);
      if (cr)
        v->col_rank = cr;
      cairn_view_rank *rk = realloc(v->ranks, cap * sizeof *rk);
      if (rk)
        v->ranks = rk;
      uint8_t *ar = realloc(v->acct_reported, cap);
      if (ar)
        v->acct_reported = ar;
      if (!cr || !rk || !ar) {
        rc = CAIRN_ENOMEM;
        break;
      }
    }
    size_t c = v->ncols;
    v->col_rank[c] = sqlite3_column_int(st, 0);
    v->ranks[c].hostname = dup_col(st, 1);
    v->ranks[c].pid = (uint32_t)sqlite3_column_int64(st, 2);
    v->ranks[c].start_ns = (uint64_t)sqlite3_column_int64(st, 3);
    v->acct_reported[c] = (uint8_t)sqlite3_column_int(st, 4);
    v->ncols++;
    if (!v->ranks[c].hostname) {
      rc = CAIRN_ENOMEM;
      break;
    }
  }
  sqlite3_finalize(st);
  if (rc)
    return rc;
  v->acct = calloc(v->ncols * CAIRN_H5_NCHANNELS + 1, sizeof *v->acct);
  if (!v->acct)
    return CAIRN_ENOMEM;
  rc = cairn_db_query_run(db, &st,
                          "SELECT rank, channel, logged, stored, dropped, rejected FROM"
                          " cairn_accounting WHERE run_id=?",
                          run_id, err, el);
  if (rc)
    return rc;
  while (sqlite3_step(st) == SQLITE_ROW) {
    long c = cairn__view_col_of_rank(v, sqlite3_column_int(st, 0));
    int ch = sqlite3_column_int(st, 1);
    if (c < 0 || ch < 0 || ch >= CAIRN_H5_NCHANNELS)
      continue;
    cairn_view_acct *a = &v->acct[(size_t)c * CAIRN_H5_NCHANNELS + (size_t)ch];
    a->logged = (uint64_t)sqlite3_column_int64(st, 2);
    a->stored = (uint64_t)sqlite3_column_int64(st, 3);
    a->dropped = (uint64_t)sqlite3_column_int64(st, 4);
    a->rejected = (uint64_t)sqlite3_column_int64(st, 5);
  }
  sqlite3_finalize(st);
  return CAIRN_OK;
}

static int load_metric(sqlite3 *db, cairn_run_view *v, int64_t metric_id, size_t nsteps,
                       int detail, uint64_t missing, cairn_view_metric *m, char *err,
                       size_t el) {
  cairn_db_series s;
  int rc = cairn_db_series_load(db, metric_id, INT64_MIN, INT64_MAX, -1, ~0u, &s, err, el);
  if (rc)
    return rc;
  if (s.n != nsteps) {
    cairn__fmt(err, el, "metric %lld: %zu steps in its chunks, %zu in its summary row",
               (long long)metric_id, s.n, nsteps);
    cairn_db_series_free(&s);
    return CAIRN_ECORRUPT;
  }
  rc = cairn__view_metric_alloc(m, nsteps, v->ncols, detail);
  if (!rc) {
    memcpy(m->step, s.step, nsteps * 8);
    memcpy(m->count, s.count, nsteps * 4);
    memcpy(m->sum, s.sum, nsteps * 8);
    memcpy(m->sumsq, s.sumsq, nsteps * 8);
    memcpy(m->min, s.min, nsteps * 8);
    memcpy(m->max, s.max, nsteps * 8);
    memcpy(m->rank_min, s.rank_min, nsteps * 4);
    memcpy(m->rank_max, s.rank_max, nsteps * 4);
    m->nsteps = nsteps;
    m->missing = missing;
  }
  cairn_db_series_free(&s);
  for (size_t c = 0; detail && !rc && c < v->ncols; c++) {
    cairn_db_series r;
    rc = cairn_db_series_load(db, metric_id, INT64_MIN, INT64_MAX, v->col_rank[c], 0, &r, err,
                              el);
    if (rc == CAIRN_ENOTFOUND && nsteps == 0)
      rc = CAIRN_OK;
    if (rc)
      break;
    for (size_t i = 0; i < nsteps && i < r.n; i++) {
      m->values[i * v->ncols + c] = r.values[i];
      m->samples[i * v->ncols + c] = r.samples[i];
    }
    cairn_db_series_free(&r);
  }
  return rc;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int load_marks(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err, size_t el) {
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT rank, n, steps, times FROM cairn_step_mark WHERE run_id=?"
                              " ORDER BY rank, step_lo",
                              run_id, err, el);
  if (rc)
    return rc;
  /* Collected as (rank, step, time) triples, then laid out as the view's
   * [step × column] matrix. */
  size_t n = 0, cap = 0;
  int64_t *rk = NULL, *sp = NULL;
  uint64_t *tm = NULL;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    size_t k = (size_t)sqlite3_column_int64(st, 1);
    if (n + k > cap) {
      cap = (n + k) * 2;
      int64_t *a = realloc(rk, cap * 8), *b = a ? realloc(sp, cap * 8) : NULL;
      if (a)
        rk = a;
      if (b)
        sp = b;
      uint64_t *c = b ? realloc(tm, cap * 8) : NULL;
      if (c)
        tm = c;
      if (!a || !b || !c) {
        rc = CAIRN_ENOMEM;
        break;
      }
    }
    if (cairn_db_chunk_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                              k, 8, 1, sp + n) ||
        cairn_db_chunk_decode(sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3),
                              k, 8, 1, tm + n)) {
      cairn__fmt(err, el, "run %lld: a step-marker chunk is corrupt", (long long)run_id);
      rc = CAIRN_ECORRUPT;
      break;
    }
    for (size_t i = 0; i < k; i++)
      rk[n + i] = sqlite3_column_int(st, 0);
    n += k;
  }
  sqlite3_finalize(st);
  if (!rc && n) {
    int64_t *steps = malloc(n * 8);
    if (!steps) {
      rc = CAIRN_ENOMEM;
    } else {
      memcpy(steps, sp, n * 8);
      qsort(steps, n, 8, cmp_i64);
      size_t u = 0;
      for (size_t i = 0; i < n; i++)
        if (!u || steps[u - 1] != steps[i])
          steps[u++] = steps[i];
      v->mark_step = steps;
      v->nmarks = u;
      v->mark_time = calloc(u * v->ncols + 1, 8);
      if (!v->mark_time)
        rc = CAIRN_ENOMEM;
      for (size_t i = 0; !rc && i < n; i++) {
        long c = cairn__view_col_of_rank(v, (int32_t)rk[i]);
        int64_t *hit = bsearch(&sp[i], steps, u, 8, cmp_i64);
        if (c >= 0 && hit)
          v->mark_time[(size_t)(hit - steps) * v->ncols + (size_t)c] = tm[i];
      }
    }
  }
  free(rk);
  free(sp);
  free(tm);
  return rc;
}

/* Params and run key/values, then the lineage rows. */
static int load_tables(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err, size_t el) {
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT rank, key, type, int_value, double_value, string_value FROM"
                              " cairn_param WHERE run_id=? ORDER BY seq",
                              run_id, err, el);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    cairn_view_param p = {sqlite3_column_int(st, 0),
                          (uint8_t)sqlite3_column_int(st, 2),
                          (char *)sqlite3_column_text(st, 1),
                          sqlite3_column_int64(st, 3),
                          sqlite3_column_double(st, 4),
                          (char *)(sqlite3_column_text(st, 5) ? sqlite3_column_text(st, 5)
                                                              : (const unsigned char *)"")};
    rc = cairn__view_add_param(v, &p);
  }
  sqlite3_finalize(st);
  if (rc)
    return rc;
  rc = cairn_db_query_run(db, &st,
                          "SELECT rank, key, value FROM cairn_kv WHERE run_id=? ORDER BY seq",
                          run_id, err, el);
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = cairn__view_add_kv(v, sqlite3_column_int(st, 0), (const char *)sqlite3_column_text(st, 1),
                            (const char *)sqlite3_column_text(st, 2));
  sqlite3_finalize(st);
  if (rc)
    return rc;
  return cairn_db_load_lineage(db, run_id, v, err, el);
}

int cairn_db_load_lineage(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err,
                          size_t el) {
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT lineage_id, name, pipeline, properties FROM cairn_stage"
                              " WHERE run_id=? ORDER BY rowid",
                              run_id, err, el);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    cairn_h5_context_row r = {(uint64_t)sqlite3_column_int64(st, 0),
                              (char *)sqlite3_column_text(st, 1),
                              (char *)sqlite3_column_text(st, 2),
                              (char *)sqlite3_column_text(st, 3)};
    rc = cairn__view_add_context(v, &r);
  }
  sqlite3_finalize(st);
  if (rc)
    return rc;
  rc = cairn_db_query_run(db, &st,
                          "SELECT lineage_id, stage_lineage_id, rank, start_ns, end_ns, name,"
                          " properties, type, command FROM cairn_execution"
                          " WHERE run_id=? ORDER BY rowid",
                          run_id, err, el);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    cairn_h5_execution_row r;
    memset(&r, 0, sizeof r);
    r.id = (uint64_t)sqlite3_column_int64(st, 0);
    r.context_id = (uint64_t)sqlite3_column_int64(st, 1);
    r.rank = sqlite3_column_int(st, 2);
    r.start_ns = (uint64_t)sqlite3_column_int64(st, 3);
    r.end_ns = (uint64_t)sqlite3_column_int64(st, 4);
    r.name = (char *)sqlite3_column_text(st, 5);
    r.properties = (char *)sqlite3_column_text(st, 6);
    r.type = (char *)sqlite3_column_text(st, 7);
    r.command = (char *)sqlite3_column_text(st, 8);
    rc = cairn__view_add_execution(v, &r);
  }
  sqlite3_finalize(st);
  if (rc)
    return rc;
  rc = cairn_db_query_run(db, &st,
                          "SELECT lineage_id, kind, rank, size, t_ns, uri, hash, properties FROM"
                          " cairn_artifact WHERE run_id=? ORDER BY rowid",
                          run_id, err, el);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    cairn_h5_artifact_row r;
    memset(&r, 0, sizeof r);
    r.id = (uint64_t)sqlite3_column_int64(st, 0);
    r.kind = (uint8_t)sqlite3_column_int(st, 1);
    r.rank = sqlite3_column_int(st, 2);
    r.size = (uint64_t)sqlite3_column_int64(st, 3);
    r.t_ns = (uint64_t)sqlite3_column_int64(st, 4);
    r.uri = (char *)sqlite3_column_text(st, 5);
    r.hash = (char *)sqlite3_column_text(st, 6);
    r.properties = (char *)sqlite3_column_text(st, 7);
    rc = cairn__view_add_artifact(v, &r);
  }
  sqlite3_finalize(st);
  if (rc)
    return rc;
  rc = cairn_db_query_run(db, &st,
                          "SELECT execution_lineage_id, artifact_lineage_id, type, rank, t_ns FROM"
                          " cairn_event WHERE run_id=? ORDER BY seq",
                          run_id, err, el);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    cairn_h5_event_row r = {(uint64_t)sqlite3_column_int64(st, 0),
                            (uint64_t)sqlite3_column_int64(st, 1),
                            (uint8_t)sqlite3_column_int(st, 2), sqlite3_column_int(st, 3),
                            (uint64_t)sqlite3_column_int64(st, 4)};
    rc = cairn__view_add_event(v, &r);
  }
  sqlite3_finalize(st);
  return rc;
}

int cairn_db_load_view(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err,
                       size_t el) {
  cairn__view_init(v);
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT uuid, format_version, cairn_version, created_ns, nranks,"
                              " naggregators, detail, source FROM cairn_run WHERE id=?",
                              run_id, err, el);
  if (rc)
    return rc;
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    cairn__fmt(err, el, "no run with id %lld", (long long)run_id);
    return CAIRN_ENOTFOUND;
  }
  v->have_run_id = cairn__uuid_parse((const char *)sqlite3_column_text(st, 0), v->run_id) == 0;
  v->format_version = (uint32_t)sqlite3_column_int(st, 1);
  cairn__fmt(v->cairn_version, sizeof v->cairn_version, "%s",
             (const char *)sqlite3_column_text(st, 2));
  v->created_ns = (uint64_t)sqlite3_column_int64(st, 3);
  v->nranks = (uint32_t)sqlite3_column_int64(st, 4);
  v->naggregators = (uint32_t)sqlite3_column_int64(st, 5);
  v->detail = sqlite3_column_int(st, 6);
  const char *src = (const char *)sqlite3_column_text(st, 7);
  v->source = !strcmp(src, "wal") ? CAIRN_VIEW_FROM_WAL
              : !strcmp(src, "h5+wal") ? CAIRN_VIEW_FROM_H5 | CAIRN_VIEW_FROM_WAL
                                       : CAIRN_VIEW_FROM_H5;
  sqlite3_finalize(st);
  rc = load_ranks(db, run_id, v, err, el);
  if (!rc)
    rc = cairn_db_query_run(db, &st,
                            "SELECT id, name, nsteps, detail, missing FROM cairn_metric"
                            " WHERE run_id=? ORDER BY name",
                            run_id, err, el);
  if (!rc) {
    size_t cap = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
      if (v->nmetrics == cap) {
        cap = cap ? cap * 2 : 16;
        cairn_view_metric *ms = realloc(v->metrics, cap * sizeof *ms);
        if (!ms) {
          rc = CAIRN_ENOMEM;
          break;
        }
        v->metrics = ms;
      }
      cairn_view_metric *m = &v->metrics[v->nmetrics];
      memset(m, 0, sizeof *m);
      m->name_len = (size_t)sqlite3_column_bytes(st, 1);
      m->name = dup_col(st, 1);
      if (!m->name) {
        rc = CAIRN_ENOMEM;
        break;
      }
      v->nmetrics++;
      rc = load_metric(db, v, sqlite3_column_int64(st, 0), (size_t)sqlite3_column_int64(st, 2),
                       sqlite3_column_int(st, 3), (uint64_t)sqlite3_column_int64(st, 4), m, err,
                       el);
    }
    sqlite3_finalize(st);
  }
  if (!rc)
    rc = load_marks(db, run_id, v, err, el);
  if (!rc)
    rc = load_tables(db, run_id, v, err, el);
  return rc;
}

int cairn_db_merge_db(sqlite3 *db, const char *src_path, const cairn_db_merge_opts *o,
                      cairn_db_merge_stats *st, char *err, size_t el) {
  sqlite3 *src = NULL;
  int rc = cairn_db_open(src_path, 0, &src, err, el);
  if (rc)
    return rc;
  if (!strcmp(sqlite3_db_filename(src, "main"), sqlite3_db_filename(db, "main"))) {
    cairn__fmt(err, el, "%s: merging a database into itself changes nothing", src_path);
    cairn_db_close(src);
    return CAIRN_EINVAL;
  }
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(src, "SELECT id, uuid FROM cairn_run ORDER BY id", -1, &q, NULL) !=
      SQLITE_OK) {
    rc = cairn_db_sql_error(src, err, el, "read");
    cairn_db_close(src);
    return rc;
  }
  int64_t total = 0;
  sqlite3_stmt *cnt;
  if (sqlite3_prepare_v2(src, "SELECT count(*) FROM cairn_run", -1, &cnt, NULL) == SQLITE_OK) {
    if (sqlite3_step(cnt) == SQLITE_ROW)
      total = sqlite3_column_int64(cnt, 0);
    sqlite3_finalize(cnt);
  }
  int64_t done = 0;
  while (!rc && sqlite3_step(q) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(q, 0);
    char origin[600];
    cairn__fmt(origin, sizeof origin, "db:%s#%s", src_path, sqlite3_column_text(q, 1));
    cairn_run_view v;
    rc = cairn_db_load_view(src, id, &v, err, el);
    if (!rc)
      rc = cairn_db_merge_view(db, &v, origin, NULL, o, st, err, el);
    cairn__view_free(&v);
    done++;
    if (!rc && o && o->progress)
      o->progress(o->ctx, "runs", (uint64_t)done, (uint64_t)total);
  }
  sqlite3_finalize(q);
  cairn_db_close(src);
  return rc;
}
