/*
 * db_merge.c — folds a run into the lineage database.
 *
 * A run is read completely first (HDF5 files, or the write-ahead log of a
 * job that died, through io/run_view.h), then written in ONE transaction:
 * a merge killed half-way leaves the database as it was (SQLite's journal
 * rolls the transaction back), and two merges into one database take turns
 * (BEGIN IMMEDIATE plus a busy timeout). A run is known by its UUID: merging
 * it again finds the same fingerprint and changes nothing.
 *
 * Lineage goes into the MLMD tables with the Common Metadata Framework's
 * conventions (docs/database.md): the pipeline is a Parent_Context, stages
 * are Pipeline_Stage contexts named "<pipeline>/<stage>", each run is a
 * cairn_Run context with one execution standing for the whole run (the
 * artifacts logged outside any execution are its events), artifacts are
 * identified by content hash (uri = hash; name = "<path>:<hash>" as CMF
 * names them, so that the same file seen by two runs is one artifact and
 * lineage crosses runs). The run itself, exactly as logged, goes into the
 * cairn_ tables.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "db.h"
#include "props.h"
#include "util.h"

/* ---------------------------------------------------------------------- */
/* Statements                                                              */
/* ---------------------------------------------------------------------- */

typedef struct {
  sqlite3 *db;
  char *err;
  size_t errlen;
  const cairn_db_merge_opts *o;
  uint64_t progress_calls;
  long kill_after; /* test hook: CAIRN_TEST_MERGE_KILL_AFTER */
  cairn_db_scratch sc;
} mctx;

static int sql_fail(mctx *m, const char *what) {
  cairn__fmt(m->err, m->errlen, "%s: %s: %s", sqlite3_db_filename(m->db, "main"), what,
             sqlite3_errmsg(m->db));
  return CAIRN_EIO;
}

static int prep(mctx *m, sqlite3_stmt **st, const char *sql) {
  if (sqlite3_prepare_v2(m->db, sql, -1, st, NULL) != SQLITE_OK)
    return sql_fail(m, "prepare");
  return CAIRN_OK;
}

/* Steps a statement that returns no row (or whose row is ignored). */
static int run(mctx *m, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return sql_fail(m, what);
  return CAIRN_OK;
}

static void progress(mctx *m, const char *what, uint64_t done, uint64_t total) {
  if (m->o && m->o->progress)
    m->o->progress(m->o->ctx, what, done, total);
  m->progress_calls++;
  if (m->kill_after > 0 && m->progress_calls >= (uint64_t)m->kill_after)
    raise(SIGKILL); /* test hook: die mid-transaction */
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
  sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

/* ---------------------------------------------------------------------- */
/* MLMD helpers                                                            */
/* ---------------------------------------------------------------------- */

/* Steps st, a query of one id, and finalizes it. Returns 1 with *id set
 * when there was a row, else 0. */
static int found_id(sqlite3_stmt *st, int64_t *id) {
  int found = sqlite3_step(st) == SQLITE_ROW;
  if (found)
    *id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return found;
}

/* Runs st, an INSERT (what names it in errors), and finalizes it. Returns
 * CAIRN_OK with *id the new row's id, or the error. */
static int insert_id(mctx *m, sqlite3_stmt *st, const char *what, int64_t *id) {
  int rc = run(m, st, what);
  sqlite3_finalize(st);
  if (!rc)
    *id = sqlite3_last_insert_rowid(m->db);
  return rc;
}

/* Id of the type (name, kind), created if missing. */
static int type_id(mctx *m, const char *name, int kind, int64_t *id) {
  sqlite3_stmt *st;
  int rc = prep(m, &st, "SELECT id FROM Type WHERE name=?1 AND type_kind=?2");
  if (rc)
    return rc;
  bind_text(st, 1, name);
  sqlite3_bind_int(st, 2, kind);
  if (found_id(st, id))
    return CAIRN_OK;
  if ((rc = prep(m, &st, "INSERT INTO Type(name, type_kind) VALUES (?1, ?2)")))
    return rc;
  bind_text(st, 1, name);
  sqlite3_bind_int(st, 2, kind);
  return insert_id(m, st, "insert Type", id);
}

/* Declares a (non-custom) property of a type. */
static int type_prop(mctx *m, int64_t tid, const char *name, int data_type) {
  sqlite3_stmt *st;
  int rc = prep(m, &st,
                "INSERT OR IGNORE INTO TypeProperty(type_id, name, data_type) VALUES (?,?,?)");
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, tid);
  bind_text(st, 2, name);
  sqlite3_bind_int(st, 3, data_type);
  rc = run(m, st, "insert TypeProperty");
  sqlite3_finalize(st);
  return rc;
}

/* Id of the context (type, name), created (with its parent) if missing. */
static int context_id(mctx *m, int64_t tid, const char *name, int64_t t_ms, int64_t parent,
                      int64_t *id, int *created) {
  sqlite3_stmt *st;
  int rc = prep(m, &st, "SELECT id FROM Context WHERE type_id=?1 AND name=?2");
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, tid);
  bind_text(st, 2, name);
  *created = 0;
  if (found_id(st, id))
    return CAIRN_OK;
  if ((rc = prep(m, &st,
                 "INSERT INTO Context(type_id, name, create_time_since_epoch,"
                 " last_update_time_since_epoch) VALUES (?1, ?2, ?3, ?3)")))
    return rc;
  sqlite3_bind_int64(st, 1, tid);
  bind_text(st, 2, name);
  sqlite3_bind_int64(st, 3, t_ms);
  if ((rc = insert_id(m, st, "insert Context", id)))
    return rc;
  *created = 1;
  if (parent > 0) {
    if ((rc = prep(m, &st,
                   "INSERT OR IGNORE INTO ParentContext(context_id, parent_context_id)"
                   " VALUES (?1, ?2)")))
      return rc;
    sqlite3_bind_int64(st, 1, *id);
    sqlite3_bind_int64(st, 2, parent);
    rc = run(m, st, "insert ParentContext");
    sqlite3_finalize(st);
  }
  return rc;
}

/* The statements used per row, prepared once per merge. */
typedef struct {
  sqlite3_stmt *aprop, *eprop, *cprop, *assoc, *attr, *event;
} mlmd_stmts;

static int mlmd_prepare(mctx *m, mlmd_stmts *s) {
  memset(s, 0, sizeof *s);
  int rc = prep(m, &s->aprop,
                "INSERT OR REPLACE INTO ArtifactProperty(artifact_id, name, is_custom_property,"
                " int_value, double_value, string_value, bool_value) VALUES (?,?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &s->eprop,
              "INSERT OR REPLACE INTO ExecutionProperty(execution_id, name, is_custom_property,"
              " int_value, double_value, string_value, bool_value) VALUES (?,?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &s->cprop,
              "INSERT OR REPLACE INTO ContextProperty(context_id, name, is_custom_property,"
              " int_value, double_value, string_value, bool_value) VALUES (?,?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &s->assoc,
              "INSERT OR IGNORE INTO Association(context_id, execution_id) VALUES (?,?)");
  if (!rc)
    rc = prep(m, &s->attr,
              "INSERT OR IGNORE INTO Attribution(context_id, artifact_id) VALUES (?,?)");
  if (!rc)
    rc = prep(m, &s->event,
              "INSERT OR IGNORE INTO Event(artifact_id, execution_id, type,"
              " milliseconds_since_epoch) VALUES (?,?,?,?)");
  return rc;
}

static void mlmd_finalize(mlmd_stmts *s) {
  sqlite3_finalize(s->aprop);
  sqlite3_finalize(s->eprop);
  sqlite3_finalize(s->cprop);
  sqlite3_finalize(s->assoc);
  sqlite3_finalize(s->attr);
  sqlite3_finalize(s->event);
}

/* One property row: type CAIRN_PROP_* (props.h), values as given. */
static int put_prop(mctx *m, sqlite3_stmt *st, int64_t owner, const char *name, size_t nlen,
                    int custom, const cairn_prop *p) {
  sqlite3_bind_int64(st, 1, owner);
  sqlite3_bind_text(st, 2, name, (int)nlen, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 3, custom);
  for (int i = 4; i <= 7; i++)
    sqlite3_bind_null(st, i);
  switch (p->type) {
  case CAIRN_PROP_INT: sqlite3_bind_int64(st, 4, p->i64); break;
  case CAIRN_PROP_DOUBLE: sqlite3_bind_double(st, 5, p->f64); break;
  case CAIRN_PROP_STRING:
    sqlite3_bind_text(st, 6, p->str, (int)p->str_len, SQLITE_TRANSIENT);
    break;
  case CAIRN_PROP_BOOL: sqlite3_bind_int(st, 7, p->b ? 1 : 0); break;
  }
  return run(m, st, "insert property");
}

static int put_str(mctx *m, sqlite3_stmt *st, int64_t owner, const char *name, int custom,
                   const char *v) {
  cairn_prop p = {0};
  p.type = CAIRN_PROP_STRING;
  p.str = v ? v : "";
  p.str_len = strlen(p.str);
  return put_prop(m, st, owner, name, strlen(name), custom, &p);
}

static int put_int(mctx *m, sqlite3_stmt *st, int64_t owner, const char *name, int custom,
                   int64_t v) {
  cairn_prop p = {0};
  p.type = CAIRN_PROP_INT;
  p.i64 = v;
  return put_prop(m, st, owner, name, strlen(name), custom, &p);
}

typedef struct {
  mctx *m;
  sqlite3_stmt *st;
  int64_t owner;
} prop_sink;

static int on_prop(void *ctx, const cairn_prop *p) {
  prop_sink *s = ctx;
  return put_prop(s->m, s->st, s->owner, p->key, p->key_len, 1, p);
}

/* Custom properties from the JSON object text a row carries. Text that does
 * not parse (it was validated when logged, so only a damaged file) is kept
 * whole as the string property "properties". */
static int put_json_props(mctx *m, sqlite3_stmt *st, int64_t owner, const char *json) {
  if (!json || !*json)
    return CAIRN_OK;
  prop_sink s = {m, st, owner};
  char perr[128];
  int rc = cairn__props_parse(json, strlen(json), on_prop, &s, perr, sizeof perr);
  if (rc == CAIRN_EINVAL)
    return put_str(m, st, owner, "properties", 1, json);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Lineage id → MLMD id maps (sorted arrays)                               */
/* ---------------------------------------------------------------------- */

typedef struct {
  uint64_t key;
  int64_t id;
} idmap_e;

static int idmap_cmp(const void *a, const void *b) {
  uint64_t x = ((const idmap_e *)a)->key, y = ((const idmap_e *)b)->key;
  return x < y ? -1 : x > y;
}

static int64_t idmap_get(const idmap_e *e, size_t n, uint64_t key) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (e[mid].key < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && e[lo].key == key ? e[lo].id : 0;
}

/* ---------------------------------------------------------------------- */
/* Fingerprint: what "the same run" means for idempotence                  */
/* ---------------------------------------------------------------------- */

typedef struct {
  uint64_t steps, samples, logged, stored, dropped, rejected;
} run_totals;

static void totals_of(const cairn_run_view *v, run_totals *t) {
  memset(t, 0, sizeof *t);
  for (size_t i = 0; i < v->nmetrics; i++) {
    const cairn_view_metric *mt = &v->metrics[i];
    if (mt->nsteps > t->steps)
      t->steps = mt->nsteps;
    if (mt->samples) {
      for (size_t k = 0; k < mt->nsteps * v->ncols; k++)
        t->samples += mt->samples[k];
    } else {
      for (size_t k = 0; k < mt->nsteps; k++)
        t->samples += mt->count[k];
    }
  }
  for (size_t c = 0; c < v->ncols * CAIRN_H5_NCHANNELS; c++) {
    t->logged += v->acct[c].logged;
    t->stored += v->acct[c].stored;
    t->dropped += v->acct[c].dropped;
    t->rejected += v->acct[c].rejected;
  }
}

#define FP_LEN 320

static void fingerprint(const cairn_run_view *v, const run_totals *t, char out[FP_LEN]) {
  char buf[256];
  int n = snprintf(buf, sizeof buf,
                   "ranks=%u cols=%zu metrics=%zu steps=%" PRIu64 " samples=%" PRIu64
                   " artifacts=%zu executions=%zu events=%zu logged=%" PRIu64
                   " stored=%" PRIu64 " dropped=%" PRIu64,
                   v->nranks, v->ncols, v->nmetrics, t->steps, t->samples, v->nartifacts,
                   v->nexecutions, v->nevents, t->logged, t->stored, t->dropped);
  uint64_t h = cairn__fnv1a64(buf, (size_t)n);
  for (size_t i = 0; i < v->nmetrics; i++)
    h ^= cairn__fnv1a64(v->metrics[i].name, v->metrics[i].name_len) + 0x9e3779b97f4a7c15ull +
         (h << 6) + (h >> 2);
  snprintf(out, FP_LEN, "%016" PRIx64 " %s", h, buf);
}

/* ---------------------------------------------------------------------- */
/* Metric series                                                           */
/* ---------------------------------------------------------------------- */

/* Encodes a chunk into scratch slot `slot` and binds it (no copy: the
 * statement is stepped before the slot is reused). */
static int put_blob(mctx *m, sqlite3_stmt *st, int idx, int slot, const void *data, size_t n,
                    size_t es, int delta) {
  const void *z;
  size_t zn;
  int rc = cairn_db_chunk_encode_into(&m->sc, slot, data, n, es, delta, &z, &zn);
  if (rc) {
    cairn__fmt(m->err, m->errlen, "compressing a series chunk failed (%s)",
               cairn_strerror(rc));
    return rc;
  }
  sqlite3_bind_blob(st, idx, z, (int)zn, SQLITE_STATIC);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Metric series: a producer encodes, this thread inserts                  */
/* ---------------------------------------------------------------------- */

/* Compressing a metric's chunks and inserting them into SQLite each take
 * about half of a merge, so they overlap: a producer encodes metric i+1
 * (no SQLite: only the metric's arrays, zstd and its own buffers) while this
 * thread inserts metric i. The producer is a worker thread walking a view's
 * metrics, or — for a run directory holding one HDF5 file — the reading
 * thread itself, called as each metric has been read, so that reading,
 * compressing and inserting all overlap. An item carries everything the
 * insert needs (summary and compressed chunks), never a pointer into the
 * view: the reader sorts the view's metrics when it is done. */
typedef struct {
  size_t off, len; /* in the item's arena */
} enc_blob;

typedef struct mitem {
  struct mitem *next;
  char *name;
  size_t name_len, nsteps, nchunks, ncols;
  int64_t first, last;
  uint32_t last_count;
  double last_sum, last_min, last_max;
  uint64_t missing, samples;
  int detail;
  int64_t *lo, *hi;    /* [nchunks] step range of each chunk              */
  size_t *n;           /* [nchunks] steps in each chunk                   */
  enc_blob *fields;    /* [nchunks × CAIRN_DB_NFIELDS]                    */
  enc_blob *vals, *smp;/* [nchunks × ncols] when the metric has detail    */
  uint8_t *arena;      /* the compressed blobs back to back; an item is
                          reused, so the arena stops growing (no faults)  */
  size_t arena_len, arena_cap;
} mitem;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  mitem *head, *tail, *spare;
  size_t depth;        /* items queued                                    */
  size_t index, total; /* progress of the producer (total 0: unknown)     */
  int ready;           /* the view's non-metric part is complete          */
  int done;            /* the producer has finished                       */
  int cancel;          /* the consumer gave up: produce nothing more      */
  int rc;              /* the producer's first error                      */
  int unbounded;       /* no consumer runs meanwhile: never wait for room  */
  size_t ncols;
  cairn_db_scratch sc; /* the producer's                                  */
  double *col;         /* the producer's transposition buffers            */
  uint32_t *scol;
} mqueue;

enum { MQ_DEPTH = 2, COLBLOCK = 64, CSTRIDE = CAIRN_DB_CHUNK + 72 };

static void mitem_free(mitem *it) {
  if (!it)
    return;
  free(it->name);
  free(it->lo);
  free(it->hi);
  free(it->n);
  free(it->fields);
  free(it->vals);
  free(it->smp);
  free(it->arena);
  free(it);
}

static void mq_init(mqueue *q, size_t ncols) {
  memset(q, 0, sizeof *q);
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  q->ncols = ncols;
}

static void mq_destroy(mqueue *q) {
  for (mitem *it = q->head, *nx; it; it = nx) {
    nx = it->next;
    mitem_free(it);
  }
  for (mitem *it = q->spare, *nx; it; it = nx) {
    nx = it->next;
    mitem_free(it);
  }
  cairn_db_scratch_free(&q->sc);
  free(q->col);
  free(q->scol);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
}

static int arena_put(mqueue *q, mitem *it, enc_blob *b, int slot, const void *data, size_t n,
                     size_t es, int delta) {
  const void *z;
  size_t zn;
  int rc = cairn_db_chunk_encode_into(&q->sc, slot, data, n, es, delta, &z, &zn);
  if (rc)
    return rc;
  if (it->arena_len + zn > it->arena_cap) {
    size_t cap = it->arena_cap ? it->arena_cap : (size_t)1 << 20;
    while (cap < it->arena_len + zn)
      cap *= 2;
    uint8_t *a = realloc(it->arena, cap);
    if (!a)
      return CAIRN_ENOMEM;
    it->arena = a;
    it->arena_cap = cap;
  }
  memcpy(it->arena + it->arena_len, z, zn);
  b->off = it->arena_len;
  b->len = zn;
  it->arena_len += zn;
  return CAIRN_OK;
}

/* Grows an item's tables for nch chunks of ncols ranks. */
static int mitem_size(mitem *it, size_t nch, size_t ncols, int detail) {
  size_t nf = nch * CAIRN_DB_NFIELDS + 1, nv = nch * ncols + 1;
  int64_t *lo = realloc(it->lo, (nch + 1) * sizeof *lo);
  if (lo)
    it->lo = lo;
  int64_t *hi = realloc(it->hi, (nch + 1) * sizeof *hi);
  if (hi)
    it->hi = hi;
  size_t *n = realloc(it->n, (nch + 1) * sizeof *n);
  if (n)
    it->n = n;
  enc_blob *f = realloc(it->fields, nf * sizeof *f);
  if (f)
    it->fields = f;
  if (!lo || !hi || !n || !f)
    return CAIRN_ENOMEM;
  if (detail) {
    enc_blob *a = realloc(it->vals, nv * sizeof *a);
    if (a)
      it->vals = a;
    enc_blob *b = realloc(it->smp, nv * sizeof *b);
    if (b)
      it->smp = b;
    if (!a || !b)
      return CAIRN_ENOMEM;
  }
  return CAIRN_OK;
}

/* Summarises and compresses one metric into it (producer side). */
static int encode_metric(mqueue *q, mitem *it, const cairn_view_metric *mt) {
  size_t ncols = q->ncols, nch = (mt->nsteps + CAIRN_DB_CHUNK - 1) / CAIRN_DB_CHUNK;
  int detail = mt->values != NULL;
  free(it->name);
  it->name = malloc(mt->name_len + 1);
  if (!it->name || mitem_size(it, nch, ncols, detail))
    return CAIRN_ENOMEM;
  memcpy(it->name, mt->name, mt->name_len);
  it->name[mt->name_len] = '\0';
  it->name_len = mt->name_len;
  it->nsteps = mt->nsteps;
  it->nchunks = nch;
  it->ncols = ncols;
  it->detail = detail;
  it->missing = mt->missing;
  it->arena_len = 0;
  it->samples = 0;
  if (detail)
    for (size_t k = 0; k < mt->nsteps * ncols; k++)
      it->samples += mt->samples[k];
  else
    for (size_t k = 0; k < mt->nsteps; k++)
      it->samples += mt->count[k];
  if (mt->nsteps) {
    size_t l = mt->nsteps - 1;
    it->first = mt->step[0];
    it->last = mt->step[l];
    it->last_count = mt->count[l];
    it->last_sum = mt->sum[l];
    it->last_min = mt->min[l];
    it->last_max = mt->max[l];
  }
  if (detail && !q->col) {
    q->col = malloc((size_t)COLBLOCK * CSTRIDE * sizeof *q->col);
    q->scol = malloc((size_t)COLBLOCK * CSTRIDE * sizeof *q->scol);
    if (!q->col || !q->scol)
      return CAIRN_ENOMEM;
  }
  const void *fields[CAIRN_DB_NFIELDS] = {mt->step, mt->count, mt->sum, mt->sumsq,
                                         mt->min,  mt->max,   mt->rank_min, mt->rank_max};
  int rc = CAIRN_OK;
  for (size_t k = 0; k < nch && !rc; k++) {
    size_t a = k * CAIRN_DB_CHUNK;
    size_t n = mt->nsteps - a < CAIRN_DB_CHUNK ? mt->nsteps - a : CAIRN_DB_CHUNK;
    it->lo[k] = mt->step[a];
    it->hi[k] = mt->step[a + n - 1];
    it->n[k] = n;
    for (int f = 0; f < CAIRN_DB_NFIELDS && !rc; f++) {
      size_t es = f == CAIRN_DB_F_COUNT || f >= CAIRN_DB_F_RANK_MIN ? 4 : 8;
      rc = arena_put(q, it, &it->fields[k * CAIRN_DB_NFIELDS + (size_t)f], 0,
                     (const uint8_t *)fields[f] + a * es, n, es, f == CAIRN_DB_F_STEP);
    }
    /* Per-rank columns are transposed a block of columns at a time (one
     * sequential pass over the chunk's rows per block, not one strided pass
     * per rank), the column stride padded off a power of two: 64 write
     * streams exactly 512 KiB apart would all land in the same cache sets. */
    for (size_t c0 = 0; detail && c0 < ncols && !rc; c0 += COLBLOCK) {
      size_t nc = ncols - c0 < COLBLOCK ? ncols - c0 : COLBLOCK;
      for (size_t i = 0; i < n; i++) {
        const double *vr = mt->values + (a + i) * ncols + c0;
        const uint32_t *sr = mt->samples + (a + i) * ncols + c0;
        for (size_t c = 0; c < nc; c++) {
          q->col[c * CSTRIDE + i] = vr[c];
          q->scol[c * CSTRIDE + i] = sr[c];
        }
      }
      for (size_t c = 0; c < nc && !rc; c++) {
        size_t at = k * ncols + c0 + c;
        rc = arena_put(q, it, &it->vals[at], 0, q->col + c * CSTRIDE, n, 8, 0);
        if (!rc)
          rc = arena_put(q, it, &it->smp[at], 1, q->scol + c * CSTRIDE, n, 4, 0);
      }
    }
  }
  return rc;
}

/* Producer: encodes mt and queues it (waits while MQ_DEPTH items are
 * queued). Does nothing once the consumer has cancelled. */
static void mq_produce(mqueue *q, const cairn_view_metric *mt, size_t index, size_t total) {
  pthread_mutex_lock(&q->mu);
  q->ready = 1;
  q->index = index;
  q->total = total;
  mitem *it = q->spare;
  if (it)
    q->spare = it->next;
  int skip = q->cancel || q->rc;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  if (skip) {
    pthread_mutex_lock(&q->mu);
    if (it) {
      it->next = q->spare;
      q->spare = it;
    }
    pthread_mutex_unlock(&q->mu);
    return;
  }
  int rc = it ? CAIRN_OK : CAIRN_ENOMEM;
  if (!it && (it = calloc(1, sizeof *it)))
    rc = CAIRN_OK;
  if (!rc)
    rc = encode_metric(q, it, mt);
  pthread_mutex_lock(&q->mu);
  while (!rc && !q->cancel && !q->unbounded && q->depth >= MQ_DEPTH)
    pthread_cond_wait(&q->cv, &q->mu);
  if (rc || q->cancel) {
    if (rc && !q->rc)
      q->rc = rc;
    if (it) {
      it->next = q->spare;
      q->spare = it;
    }
  } else {
    it->next = NULL;
    if (q->tail)
      q->tail->next = it;
    else
      q->head = it;
    q->tail = it;
    q->depth++;
  }
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static void mq_finish(mqueue *q) {
  pthread_mutex_lock(&q->mu);
  q->ready = 1;
  q->done = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

/* Consumer: the next item, or NULL when the producer is done (check q->rc). */
static mitem *mq_pop(mqueue *q, size_t *total) {
  pthread_mutex_lock(&q->mu);
  while (!q->head && !q->done)
    pthread_cond_wait(&q->cv, &q->mu);
  mitem *it = q->head;
  if (it) {
    q->head = it->next;
    if (!q->head)
      q->tail = NULL;
    q->depth--;
    pthread_cond_broadcast(&q->cv);
  }
  *total = q->total;
  pthread_mutex_unlock(&q->mu);
  return it;
}

static void mq_recycle(mqueue *q, mitem *it) {
  pthread_mutex_lock(&q->mu);
  it->next = q->spare;
  q->spare = it;
  pthread_mutex_unlock(&q->mu);
}

/* The consumer stops: the producer drops whatever it has or makes. */
static void mq_cancel(mqueue *q) {
  pthread_mutex_lock(&q->mu);
  q->cancel = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static void mq_wait_ready(mqueue *q) {
  pthread_mutex_lock(&q->mu);
  while (!q->ready)
    pthread_cond_wait(&q->cv, &q->mu);
  pthread_mutex_unlock(&q->mu);
}

/* A producer thread over the metrics of a complete view. */
typedef struct {
  mqueue *q;
  const cairn_run_view *v;
} view_producer;

static void *produce_view(void *arg) {
  view_producer *p = arg;
  for (size_t i = 0; i < p->v->nmetrics; i++)
    mq_produce(p->q, &p->v->metrics[i], i, p->v->nmetrics);
  mq_finish(p->q);
  return NULL;
}

/* Inserts one metric: its summary row, then its compressed chunks. */
static int insert_metric(mctx *m, const mitem *it, int64_t run_id, const int32_t *col_rank,
                         sqlite3_stmt *mst, sqlite3_stmt *cst, sqlite3_stmt *rst) {
  sqlite3_bind_int64(mst, 1, run_id);
  sqlite3_bind_text(mst, 2, it->name, (int)it->name_len, SQLITE_STATIC);
  sqlite3_bind_int64(mst, 3, (int64_t)it->nsteps);
  for (int i = 4; i <= 13; i++)
    sqlite3_bind_null(mst, i);
  if (it->nsteps) {
    sqlite3_bind_int64(mst, 4, it->first);
    sqlite3_bind_int64(mst, 5, it->last);
    sqlite3_bind_int64(mst, 10, it->last_count);
    if (it->last_count)
      sqlite3_bind_double(mst, 11, it->last_sum / it->last_count);
    if (!isnan(it->last_min))
      sqlite3_bind_double(mst, 12, it->last_min);
    if (!isnan(it->last_max))
      sqlite3_bind_double(mst, 13, it->last_max);
  }
  sqlite3_bind_int64(mst, 6, (int64_t)it->ncols);
  sqlite3_bind_int(mst, 7, it->detail);
  sqlite3_bind_int64(mst, 8, (int64_t)it->missing);
  sqlite3_bind_int64(mst, 9, (int64_t)it->samples);
  int rc = run(m, mst, "insert cairn_metric");
  if (rc)
    return rc;
  int64_t metric_id = sqlite3_last_insert_rowid(m->db);
  for (size_t k = 0; k < it->nchunks && !rc; k++) {
    for (int f = 0; f < CAIRN_DB_NFIELDS && !rc; f++) {
      const enc_blob *b = &it->fields[k * CAIRN_DB_NFIELDS + (size_t)f];
      sqlite3_bind_int64(cst, 1, metric_id);
      sqlite3_bind_int(cst, 2, f);
      sqlite3_bind_int64(cst, 3, it->lo[k]);
      sqlite3_bind_int64(cst, 4, it->hi[k]);
      sqlite3_bind_int64(cst, 5, (int64_t)it->n[k]);
      sqlite3_bind_blob(cst, 6, it->arena + b->off, (int)b->len, SQLITE_STATIC);
      rc = run(m, cst, "insert cairn_series_chunk");
    }
    for (size_t c = 0; it->detail && c < it->ncols && !rc; c++) {
      const enc_blob *bv = &it->vals[k * it->ncols + c], *bs = &it->smp[k * it->ncols + c];
      sqlite3_bind_int64(rst, 1, metric_id);
      sqlite3_bind_int(rst, 2, col_rank[c]);
      sqlite3_bind_int64(rst, 3, it->lo[k]);
      sqlite3_bind_int64(rst, 4, it->hi[k]);
      sqlite3_bind_int64(rst, 5, (int64_t)it->n[k]);
      sqlite3_bind_blob(rst, 6, it->arena + bv->off, (int)bv->len, SQLITE_STATIC);
      sqlite3_bind_blob(rst, 7, it->arena + bs->off, (int)bs->len, SQLITE_STATIC);
      rc = run(m, rst, "insert cairn_rank_chunk");
    }
  }
  return rc;
}

/* Consumes the queue until the producer is done, inserting every metric.
 * On an error the producer is cancelled and the queue drained. */
static int insert_metrics(mctx *m, mqueue *q, int64_t run_id, const int32_t *col_rank) {
  sqlite3_stmt *mst = NULL, *cst = NULL, *rst = NULL;
  int rc = prep(m, &mst,
                "INSERT INTO cairn_metric(run_id, name, nsteps, first_step, last_step, ncols,"
                " detail, missing, samples, last_count, last_mean, last_min, last_max)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &cst,
              "INSERT INTO cairn_series_chunk(metric_id, field, step_lo, step_hi, n, data)"
              " VALUES (?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &rst,
              "INSERT INTO cairn_rank_chunk(metric_id, rank, step_lo, step_hi, n, vals,"
              " samples) VALUES (?,?,?,?,?,?,?)");
  if (rc)
    mq_cancel(q);
  size_t done = 0, total;
  mitem *it;
  int cancelled = q->cancel; /* set by this thread only: the caller wants nothing inserted */
  while ((it = mq_pop(q, &total)) != NULL) {
    if (!rc && !cancelled) {
      rc = insert_metric(m, it, run_id, col_rank, mst, cst, rst);
      if (rc)
        mq_cancel(q);
      else {
        done++;
        progress(m, "metrics", done, total > done ? total : done);
      }
    }
    mq_recycle(q, it);
  }
  if (!rc && q->rc) {
    rc = q->rc;
    cairn__fmt(m->err, m->errlen, "compressing metric series failed: %s", cairn_strerror(rc));
  }
  sqlite3_finalize(mst);
  sqlite3_finalize(cst);
  sqlite3_finalize(rst);
  return rc;
}

static int merge_marks(mctx *m, const cairn_run_view *v, int64_t run_id) {
  if (!v->nmarks)
    return CAIRN_OK;
  sqlite3_stmt *st;
  int rc = prep(m, &st,
                "INSERT INTO cairn_step_mark(run_id, rank, step_lo, step_hi, n, steps, times)"
                " VALUES (?,?,?,?,?,?,?)");
  if (rc)
    return rc;
  uint64_t *t = malloc(CAIRN_DB_CHUNK * sizeof *t);
  int64_t *s = malloc(CAIRN_DB_CHUNK * sizeof *s);
  if (!t || !s)
    rc = CAIRN_ENOMEM;
  for (size_t c = 0; c < v->ncols && !rc; c++) {
    /* Only the steps this rank marked. */
    size_t k = 0;
    for (size_t i = 0; i <= v->nmarks && !rc; i++) {
      if (i < v->nmarks && v->mark_time[i * v->ncols + c]) {
        s[k] = v->mark_step[i];
        t[k] = v->mark_time[i * v->ncols + c];
        k++;
      }
      if (k == CAIRN_DB_CHUNK || (i == v->nmarks && k)) {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int(st, 2, v->col_rank[c]);
        sqlite3_bind_int64(st, 3, s[0]);
        sqlite3_bind_int64(st, 4, s[k - 1]);
        sqlite3_bind_int64(st, 5, (int64_t)k);
        rc = put_blob(m, st, 6, 0, s, k, 8, 1);
        if (!rc)
          rc = put_blob(m, st, 7, 1, t, k, 8, 1);
        if (!rc)
          rc = run(m, st, "insert cairn_step_mark");
        k = 0;
      }
    }
  }
  free(t);
  free(s);
  sqlite3_finalize(st);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Lineage                                                                 */
/* ---------------------------------------------------------------------- */

const char *cairn_db_artifact_type_name(int kind) {
  switch (kind) {
  case CAIRN_H5_ARTIFACT_DATASET: return "Dataset";
  case CAIRN_H5_ARTIFACT_MODEL: return "Model";
  case CAIRN_H5_ARTIFACT_DATASLICE: return "Dataslice";
  case CAIRN_H5_ARTIFACT_METRICS: return "Metrics";
  case CAIRN_H5_ARTIFACT_STEP_METRICS: return "Step_Metrics";
  case CAIRN_H5_ARTIFACT_ENVIRONMENT: return "Environment";
  default: return "Artifact";
  }
}

int cairn_db_is_hash(const char *h) {
  return h && (!strncmp(h, "cairn-merkle-sha256-v1:", 23) ||
               !strncmp(h, "cairn-dataslice-sha256-v1:", 26) || !strncmp(h, "sha256:", 7));
}

typedef struct {
  int64_t run_ctx, pipe_ctx, run_exec;
  const char *uuid;
  const char *pipeline;
  mlmd_stmts s;
  idmap_e *stages, *execs, *arts;
  idmap_e *exec_stage; /* execution lineage id -> its stage's MLMD context */
  size_t nstages, nexecs, narts;
} lin;

static int merge_stages(mctx *m, const cairn_run_view *v, int64_t run_id, lin *L) {
  int64_t tid;
  int rc = type_id(m, "Pipeline_Stage", CAIRN_DB_CONTEXT_TYPE, &tid);
  sqlite3_stmt *st = NULL;
  if (!rc)
    rc = prep(m, &st,
              "INSERT INTO cairn_stage(run_id, lineage_id, context_id, name, pipeline,"
              " properties) VALUES (?,?,?,?,?,?)");
  L->stages = calloc(v->ncontexts + 1, sizeof *L->stages);
  if (!L->stages)
    rc = CAIRN_ENOMEM;
  for (size_t i = 0; i < v->ncontexts && !rc; i++) {
    const cairn_h5_context_row *c = &v->contexts[i];
    const char *pipe = c->pipeline && *c->pipeline ? c->pipeline : L->pipeline;
    int64_t pctx = L->pipe_ctx;
    if (strcmp(pipe, L->pipeline)) { /* a stage of another pipeline */
      int64_t ptid;
      int created;
      rc = type_id(m, "Parent_Context", CAIRN_DB_CONTEXT_TYPE, &ptid);
      if (!rc)
        rc = context_id(m, ptid, pipe, 0, 0, &pctx, &created);
      if (rc)
        break;
    }
    size_t nl = strlen(pipe) + strlen(c->name) + 2;
    char *name = malloc(nl);
    if (!name) {
      rc = CAIRN_ENOMEM;
      break;
    }
    snprintf(name, nl, "%s/%s", pipe, c->name);
    int64_t cid;
    int created;
    rc = context_id(m, tid, name, 0, pctx, &cid, &created);
    free(name);
    if (!rc && created)
      rc = put_json_props(m, L->s.cprop, cid, c->properties);
    if (!rc) {
      sqlite3_bind_int64(st, 1, run_id);
      sqlite3_bind_int64(st, 2, (int64_t)c->id);
      sqlite3_bind_int64(st, 3, cid);
      bind_text(st, 4, c->name);
      bind_text(st, 5, pipe);
      bind_text(st, 6, c->properties);
      rc = run(m, st, "insert cairn_stage");
    }
    L->stages[L->nstages].key = c->id;
    L->stages[L->nstages++].id = cid;
  }
  sqlite3_finalize(st);
  qsort(L->stages, L->nstages, sizeof *L->stages, idmap_cmp);
  return rc;
}

static int merge_executions(mctx *m, const cairn_run_view *v, int64_t run_id, lin *L) {
  sqlite3_stmt *ins = NULL, *row = NULL;
  int rc = prep(m, &ins,
                "INSERT INTO Execution(type_id, last_known_state, name, external_id,"
                " create_time_since_epoch, last_update_time_since_epoch)"
                " VALUES (?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &row,
              "INSERT INTO cairn_execution(run_id, lineage_id, execution_id, stage_lineage_id,"
              " rank, start_ns, end_ns, name, type, command, properties)"
              " VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  L->execs = calloc(v->nexecutions + 1, sizeof *L->execs);
  L->exec_stage = calloc(v->nexecutions + 1, sizeof *L->exec_stage);
  if ((!L->execs || !L->exec_stage) && !rc)
    rc = CAIRN_ENOMEM;
  const cairn_view_kv *cmd = cairn__view_kv_last(v, "cmdline", -1);
  const char *last_type = NULL;
  int64_t last_tid = 0;
  for (size_t i = 0; i < v->nexecutions && !rc; i++) {
    const cairn_h5_execution_row *e = &v->executions[i];
    const char *type = e->type && *e->type ? e->type : e->name;
    const char *command = e->command && *e->command ? e->command : cmd ? cmd->value : "";
    int64_t tid = last_tid;
    if (!last_type || strcmp(type, last_type)) { /* executions mostly share a type */
      if ((rc = type_id(m, type, CAIRN_DB_EXECUTION_TYPE, &tid)))
        break;
      last_type = type;
      last_tid = tid;
    }
    char ext[96];
    snprintf(ext, sizeof ext, "%s:%016" PRIx64, L->uuid, e->id);
    sqlite3_bind_int64(ins, 1, tid);
    sqlite3_bind_int(ins, 2, e->end_ns ? 3 /* COMPLETE */ : 2 /* RUNNING */);
    bind_text(ins, 3, ext);
    bind_text(ins, 4, ext);
    sqlite3_bind_int64(ins, 5, (int64_t)(e->start_ns / 1000000));
    sqlite3_bind_int64(ins, 6, (int64_t)((e->end_ns ? e->end_ns : e->start_ns) / 1000000));
    if ((rc = run(m, ins, "insert Execution")))
      break;
    int64_t xid = sqlite3_last_insert_rowid(m->db);
    int64_t sctx = idmap_get(L->stages, L->nstages, e->context_id);
    const char *stage_name = "";
    for (size_t k = 0; k < v->ncontexts; k++)
      if (v->contexts[k].id == e->context_id)
        stage_name = v->contexts[k].name;
    /* CMF's execution properties, then cairn's, then the custom ones. */
    rc = put_str(m, L->s.eprop, xid, "Context_Type", 0, stage_name);
    if (!rc)
      rc = put_int(m, L->s.eprop, xid, "Context_ID", 0, sctx);
    if (!rc)
      rc = put_str(m, L->s.eprop, xid, "Execution", 0, command);
    if (!rc)
      rc = put_str(m, L->s.eprop, xid, "Pipeline_Type", 0, L->pipeline);
    if (!rc)
      rc = put_int(m, L->s.eprop, xid, "Pipeline_id", 0, L->pipe_ctx);
    if (!rc)
      rc = put_str(m, L->s.eprop, xid, "Execution_Name", 0, e->name);
    if (!rc)
      rc = put_str(m, L->s.eprop, xid, "cairn_run", 0, L->uuid);
    if (!rc)
      rc = put_int(m, L->s.eprop, xid, "cairn_rank", 0, e->rank);
    if (!rc)
      rc = put_json_props(m, L->s.eprop, xid, e->properties);
    for (int k = 0; k < 2 && !rc; k++) {
      int64_t ctx = k == 0 ? L->run_ctx : sctx;
      if (ctx <= 0)
        continue;
      sqlite3_bind_int64(L->s.assoc, 1, ctx);
      sqlite3_bind_int64(L->s.assoc, 2, xid);
      rc = run(m, L->s.assoc, "insert Association");
    }
    if (rc)
      break;
    sqlite3_bind_int64(row, 1, run_id);
    sqlite3_bind_int64(row, 2, (int64_t)e->id);
    sqlite3_bind_int64(row, 3, xid);
    sqlite3_bind_int64(row, 4, (int64_t)e->context_id);
    sqlite3_bind_int(row, 5, e->rank);
    sqlite3_bind_int64(row, 6, (int64_t)e->start_ns);
    sqlite3_bind_int64(row, 7, (int64_t)e->end_ns);
    bind_text(row, 8, e->name);
    bind_text(row, 9, e->type ? e->type : "");
    bind_text(row, 10, e->command ? e->command : "");
    bind_text(row, 11, e->properties);
    rc = run(m, row, "insert cairn_execution");
    L->execs[L->nexecs].key = e->id;
    L->exec_stage[L->nexecs].key = e->id;
    L->exec_stage[L->nexecs].id = sctx;
    L->execs[L->nexecs++].id = xid;
  }
  sqlite3_finalize(ins);
  sqlite3_finalize(row);
  qsort(L->execs, L->nexecs, sizeof *L->execs, idmap_cmp);
  qsort(L->exec_stage, L->nexecs, sizeof *L->exec_stage, idmap_cmp);
  return rc;
}

static int merge_artifacts(mctx *m, const cairn_run_view *v, int64_t run_id, lin *L) {
  sqlite3_stmt *find = NULL, *ins = NULL, *row = NULL, *touch = NULL;
  int rc = prep(m, &find, "SELECT id FROM Artifact WHERE type_id=?1 AND name=?2");
  if (!rc)
    rc = prep(m, &ins,
              "INSERT INTO Artifact(type_id, uri, state, name, create_time_since_epoch,"
              " last_update_time_since_epoch) VALUES (?,?,?,?,?,?)");
  if (!rc)
    rc = prep(m, &touch,
              "UPDATE Artifact SET last_update_time_since_epoch ="
              " max(last_update_time_since_epoch, ?2) WHERE id=?1");
  if (!rc)
    rc = prep(m, &row,
              "INSERT INTO cairn_artifact(run_id, lineage_id, artifact_id, kind, rank, size,"
              " t_ns, uri, hash, properties) VALUES (?,?,?,?,?,?,?,?,?,?)");
  L->arts = calloc(v->nartifacts + 1, sizeof *L->arts);
  if (!L->arts && !rc)
    rc = CAIRN_ENOMEM;
  int64_t type_cache[256] = {0};
  for (size_t i = 0; i < v->nartifacts && !rc; i++) {
    const cairn_h5_artifact_row *a = &v->artifacts[i];
    int64_t tid = type_cache[a->kind];
    if (!tid) { /* first artifact of this kind: its type and declared properties */
      if ((rc = type_id(m, cairn_db_artifact_type_name(a->kind), CAIRN_DB_ARTIFACT_TYPE, &tid)))
        break;
      rc = type_prop(m, tid, "url", CAIRN_DB_PROP_STRING);
      if (!rc)
        rc = type_prop(m, tid, "hash", CAIRN_DB_PROP_STRING);
      if (!rc)
        rc = type_prop(m, tid, "size", CAIRN_DB_PROP_INT);
      if (rc)
        break;
      type_cache[a->kind] = tid;
    }
    /* Identity: a hashed file is "<path>:<hash>" (CMF's name), shared by
     * every run that saw the same bytes at the same path; a URI recorded as
     * given is itself; a failure belongs to its run alone. */
    const char *hash = a->hash ? a->hash : "";
    int hashed = cairn_db_is_hash(hash), failed = !hashed && *hash;
    size_t nl = strlen(a->uri) + strlen(hash) + strlen(L->uuid) + 40;
    char *name = malloc(nl);
    if (!name) {
      rc = CAIRN_ENOMEM;
      break;
    }
    if (hashed)
      snprintf(name, nl, "%s:%s", a->uri, hash);
    else if (failed)
      snprintf(name, nl, "%s:failed:%s:%016" PRIx64, a->uri, L->uuid, a->id);
    else
      snprintf(name, nl, "%s", a->uri);
    int64_t t_ms = (int64_t)(a->t_ns / 1000000), aid = 0;
    sqlite3_bind_int64(find, 1, tid);
    bind_text(find, 2, name);
    if (sqlite3_step(find) == SQLITE_ROW)
      aid = sqlite3_column_int64(find, 0);
    sqlite3_reset(find);
    if (aid) {
      sqlite3_bind_int64(touch, 1, aid);
      sqlite3_bind_int64(touch, 2, t_ms);
      rc = run(m, touch, "update Artifact");
    } else {
      sqlite3_bind_int64(ins, 1, tid);
      bind_text(ins, 2, hashed ? hash : a->uri);
      sqlite3_bind_int(ins, 3, hashed ? CAIRN_DB_STATE_LIVE
                               : failed ? CAIRN_DB_STATE_UNKNOWN
                                        : CAIRN_DB_STATE_REFERENCE);
      bind_text(ins, 4, name);
      sqlite3_bind_int64(ins, 5, t_ms);
      sqlite3_bind_int64(ins, 6, t_ms);
      rc = run(m, ins, "insert Artifact");
      if (!rc) {
        aid = sqlite3_last_insert_rowid(m->db);
        rc = put_str(m, L->s.aprop, aid, "url", 0, a->uri);
        if (!rc && hashed)
          rc = put_str(m, L->s.aprop, aid, "hash", 0, hash);
        if (!rc && hashed)
          rc = put_int(m, L->s.aprop, aid, "size", 0, (int64_t)a->size);
        if (!rc && failed)
          rc = put_str(m, L->s.aprop, aid, "error", 1, hash);
        if (!rc && !hashed && !failed)
          rc = put_str(m, L->s.aprop, aid, "reference", 1, "recorded as given, not hashed");
        if (!rc)
          rc = put_json_props(m, L->s.aprop, aid, a->properties);
      }
    }
    free(name);
    if (rc)
      break;
    sqlite3_bind_int64(L->s.attr, 1, L->run_ctx);
    sqlite3_bind_int64(L->s.attr, 2, aid);
    rc = run(m, L->s.attr, "insert Attribution");
    if (rc)
      break;
    sqlite3_bind_int64(row, 1, run_id);
    sqlite3_bind_int64(row, 2, (int64_t)a->id);
    sqlite3_bind_int64(row, 3, aid);
    sqlite3_bind_int(row, 4, a->kind);
    sqlite3_bind_int(row, 5, a->rank);
    sqlite3_bind_int64(row, 6, (int64_t)a->size);
    sqlite3_bind_int64(row, 7, (int64_t)a->t_ns);
    bind_text(row, 8, a->uri);
    bind_text(row, 9, hash);
    bind_text(row, 10, a->properties);
    rc = run(m, row, "insert cairn_artifact");
    L->arts[L->narts].key = a->id;
    L->arts[L->narts++].id = aid;
    if (!rc && (i & 1023) == 1023)
      progress(m, "artifacts", i + 1, v->nartifacts);
  }
  sqlite3_finalize(find);
  sqlite3_finalize(ins);
  sqlite3_finalize(touch);
  sqlite3_finalize(row);
  qsort(L->arts, L->narts, sizeof *L->arts, idmap_cmp);
  return rc;
}

static int merge_events(mctx *m, const cairn_run_view *v, int64_t run_id, lin *L) {
  sqlite3_stmt *row = NULL;
  int rc = prep(m, &row,
                "INSERT INTO cairn_event(run_id, seq, execution_lineage_id,"
                " artifact_lineage_id, type, rank, t_ns) VALUES (?,?,?,?,?,?,?)");
  for (size_t i = 0; i < v->nevents && !rc; i++) {
    const cairn_h5_event_row *e = &v->events[i];
    int64_t aid = idmap_get(L->arts, L->narts, e->artifact_id);
    int64_t xid = e->execution_id ? idmap_get(L->execs, L->nexecs, e->execution_id) : 0;
    if (!xid) /* outside any execution, or its execution record was lost */
      xid = L->run_exec;
    if (aid) {
      sqlite3_bind_int64(L->s.event, 1, aid);
      sqlite3_bind_int64(L->s.event, 2, xid);
      sqlite3_bind_int(L->s.event, 3,
                       e->type == CAIRN_H5_EVENT_INPUT ? CAIRN_DB_EVENT_INPUT
                                                       : CAIRN_DB_EVENT_OUTPUT);
      sqlite3_bind_int64(L->s.event, 4, (int64_t)(e->t_ns / 1000000));
      if ((rc = run(m, L->s.event, "insert Event")))
        break;
      /* CMF attributes artifacts to the stage of the execution using them. */
      int64_t sctx = e->execution_id ? idmap_get(L->exec_stage, L->nexecs, e->execution_id) : 0;
      if (sctx > 0) {
        sqlite3_bind_int64(L->s.attr, 1, sctx);
        sqlite3_bind_int64(L->s.attr, 2, aid);
        rc = run(m, L->s.attr, "insert Attribution");
      }
    }
    if (rc)
      break;
    sqlite3_bind_int64(row, 1, run_id);
    sqlite3_bind_int64(row, 2, (int64_t)i);
    sqlite3_bind_int64(row, 3, (int64_t)e->execution_id);
    sqlite3_bind_int64(row, 4, (int64_t)e->artifact_id);
    sqlite3_bind_int(row, 5, e->type);
    sqlite3_bind_int(row, 6, e->rank);
    sqlite3_bind_int64(row, 7, (int64_t)e->t_ns);
    rc = run(m, row, "insert cairn_event");
  }
  sqlite3_finalize(row);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The run                                                                 */
/* ---------------------------------------------------------------------- */

static const char *run_pipeline(const cairn_run_view *v) {
  for (size_t i = 0; i < v->ncontexts; i++)
    if (v->contexts[i].pipeline && *v->contexts[i].pipeline)
      return v->contexts[i].pipeline;
  const cairn_view_kv *kv = cairn__view_kv_last(v, "pipeline.name", -1);
  return kv && *kv->value ? kv->value : "default";
}

static const char *source_name(const cairn_run_view *v, const char *origin) {
  if (origin && !strncmp(origin, "db:", 3))
    return "db";
  switch (v->source & 3) {
  case CAIRN_VIEW_FROM_H5: return "h5";
  case CAIRN_VIEW_FROM_WAL: return "wal";
  case 3: return "h5+wal";
  default: return "none";
  }
}

static int merge_run_rows(mctx *m, const cairn_run_view *v, int64_t run_id) {
  sqlite3_stmt *st = NULL;
  int rc = prep(m, &st,
                "INSERT INTO cairn_rank(run_id, rank, hostname, pid, start_ns, acct_reported)"
                " VALUES (?,?,?,?,?,?)");
  for (size_t c = 0; c < v->ncols && !rc; c++) {
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, v->col_rank[c]);
    bind_text(st, 3, v->ranks[c].hostname);
    sqlite3_bind_int64(st, 4, v->ranks[c].pid);
    sqlite3_bind_int64(st, 5, (int64_t)v->ranks[c].start_ns);
    sqlite3_bind_int(st, 6, v->acct_reported ? v->acct_reported[c] : 0);
    rc = run(m, st, "insert cairn_rank");
  }
  sqlite3_finalize(st);
  st = NULL;
  if (!rc)
    rc = prep(m, &st,
              "INSERT INTO cairn_accounting(run_id, rank, channel, logged, stored, dropped,"
              " rejected) VALUES (?,?,?,?,?,?,?)");
  for (size_t c = 0; c < v->ncols && !rc; c++)
    for (int ch = 0; ch < CAIRN_H5_NCHANNELS && !rc; ch++) {
      const cairn_view_acct *a = &v->acct[c * CAIRN_H5_NCHANNELS + (size_t)ch];
      sqlite3_bind_int64(st, 1, run_id);
      sqlite3_bind_int(st, 2, v->col_rank[c]);
      sqlite3_bind_int(st, 3, ch);
      sqlite3_bind_int64(st, 4, (int64_t)a->logged);
      sqlite3_bind_int64(st, 5, (int64_t)a->stored);
      sqlite3_bind_int64(st, 6, (int64_t)a->dropped);
      sqlite3_bind_int64(st, 7, (int64_t)a->rejected);
      rc = run(m, st, "insert cairn_accounting");
    }
  sqlite3_finalize(st);
  st = NULL;
  if (!rc)
    rc = prep(m, &st,
              "INSERT INTO cairn_param(run_id, seq, rank, key, type, int_value, double_value,"
              " string_value) VALUES (?,?,?,?,?,?,?,?)");
  for (size_t i = 0; i < v->nparams && !rc; i++) {
    const cairn_view_param *p = &v->params[i];
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, (int64_t)i);
    sqlite3_bind_int(st, 3, p->rank);
    bind_text(st, 4, p->key);
    sqlite3_bind_int(st, 5, p->type);
    for (int k = 6; k <= 8; k++)
      sqlite3_bind_null(st, k);
    if (p->type == CAIRN_PARAM_DOUBLE)
      sqlite3_bind_double(st, 7, p->f64);
    else if (p->type == CAIRN_PARAM_STRING)
      bind_text(st, 8, p->str);
    else
      sqlite3_bind_int64(st, 6, p->i64);
    rc = run(m, st, "insert cairn_param");
  }
  sqlite3_finalize(st);
  st = NULL;
  if (!rc)
    rc = prep(m, &st,
              "INSERT INTO cairn_kv(run_id, seq, rank, key, value) VALUES (?,?,?,?,?)");
  for (size_t i = 0; i < v->nkv && !rc; i++) {
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, (int64_t)i);
    sqlite3_bind_int(st, 3, v->kv[i].rank);
    bind_text(st, 4, v->kv[i].key);
    bind_text(st, 5, v->kv[i].value);
    rc = run(m, st, "insert cairn_kv");
  }
  sqlite3_finalize(st);
  return rc;
}

/* Looks the run up: 1 present with the same fingerprint, 0 absent, <0 error. */
static int existing(mctx *m, const char *uuid, const char *fp) {
  sqlite3_stmt *st;
  int rc = prep(m, &st, "SELECT fingerprint, origin FROM cairn_run WHERE uuid=?");
  if (rc)
    return rc;
  bind_text(st, 1, uuid);
  int r = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const char *have = (const char *)sqlite3_column_text(st, 0);
    if (have && !strcmp(have, fp)) {
      r = 1;
    } else {
      cairn__fmt(m->err, m->errlen,
                 "run %s is already in %s with different content (merged from %s: %s; now: "
                 "%s); not merged again",
                 uuid, sqlite3_db_filename(m->db, "main"), sqlite3_column_text(st, 1),
                 have ? have + 17 : "?", fp + 17);
      r = CAIRN_EINVAL;
    }
  }
  sqlite3_finalize(st);
  return r;
}

/* Problems the readers reported (0 for a clean read). */
static uint64_t damage_count(const cairn_run_report *rep) {
  if (!rep)
    return 0;
  return rep->h5_bad + rep->lost_datasets + rep->unnamed_metrics + rep->wal.corrupt_regions +
         rep->wal.torn_tails + rep->wal.bad_files + rep->wal.bad_blocks;
}

/* Everything of a run but its metric series, in the open transaction: the
 * pipeline, the run's context and execution, the run row (its totals are
 * written by run_finish once every metric is in), ranks, accounting,
 * params, key/values, step markers and lineage. Reads only what a reader
 * has completed before the metrics. */
static int run_begin(mctx *m, const cairn_run_view *v, const char *origin, const char *uuid,
                     int64_t *run_id) {
  lin L;
  memset(&L, 0, sizeof L);
  L.uuid = uuid;
  L.pipeline = run_pipeline(v);
  int64_t t_ms = (int64_t)(v->created_ns / 1000000), tid;
  int created, rc = mlmd_prepare(m, &L.s);
  /* The pipeline, the run's context and its execution. */
  if (!rc)
    rc = type_id(m, "Parent_Context", CAIRN_DB_CONTEXT_TYPE, &tid);
  if (!rc)
    rc = context_id(m, tid, L.pipeline, t_ms, 0, &L.pipe_ctx, &created);
  if (!rc)
    rc = type_id(m, "cairn_Run", CAIRN_DB_CONTEXT_TYPE, &tid);
  if (!rc)
    rc = context_id(m, tid, uuid, t_ms, L.pipe_ctx, &L.run_ctx, &created);
  if (!rc && created) {
    /* Run metadata (the last value of each key) as the run context's
     * properties: findable with MLMD's own queries. */
    for (size_t i = 0; i < v->nkv && !rc; i++)
      if (cairn__view_kv_last(v, v->kv[i].key, -1) == &v->kv[i])
        rc = put_str(m, L.s.cprop, L.run_ctx, v->kv[i].key, 1, v->kv[i].value);
  }
  if (!rc)
    rc = type_id(m, "cairn_Run", CAIRN_DB_EXECUTION_TYPE, &tid);
  if (!rc) {
    sqlite3_stmt *x;
    if (!(rc = prep(m, &x,
                    "INSERT INTO Execution(type_id, last_known_state, name, external_id,"
                    " create_time_since_epoch, last_update_time_since_epoch)"
                    " VALUES (?,3,?,?,?,?)"))) {
      sqlite3_bind_int64(x, 1, tid);
      bind_text(x, 2, uuid);
      bind_text(x, 3, uuid);
      sqlite3_bind_int64(x, 4, t_ms);
      sqlite3_bind_int64(x, 5, t_ms);
      rc = run(m, x, "insert Execution");
      sqlite3_finalize(x);
      L.run_exec = sqlite3_last_insert_rowid(m->db);
    }
  }
  if (!rc) {
    const cairn_view_kv *cmd = cairn__view_kv_last(v, "cmdline", -1);
    rc = put_str(m, L.s.eprop, L.run_exec, "Execution", 0, cmd ? cmd->value : "");
    if (!rc)
      rc = put_str(m, L.s.eprop, L.run_exec, "Pipeline_Type", 0, L.pipeline);
    if (!rc)
      rc = put_int(m, L.s.eprop, L.run_exec, "Pipeline_id", 0, L.pipe_ctx);
    for (int k = 0; k < 2 && !rc; k++) {
      sqlite3_bind_int64(L.s.assoc, 1, k ? L.pipe_ctx : L.run_ctx);
      sqlite3_bind_int64(L.s.assoc, 2, L.run_exec);
      rc = run(m, L.s.assoc, "insert Association");
    }
  }
  /* The run row; totals, source and fingerprint come in run_finish. */
  if (!rc) {
    sqlite3_stmt *r;
    if (!(rc = prep(m, &r,
                    "INSERT INTO cairn_run(uuid, pipeline, context_id, execution_id, origin,"
                    " source, format_version, cairn_version, created_ns, merged_ns, nranks,"
                    " naggregators, detail, nmetrics, steps, samples, artifacts, executions,"
                    " recovered_ranks, damaged, logged, stored, dropped, rejected,"
                    " fingerprint) VALUES (?,?,?,?,?,'',?,?,?,?,?,?,?,0,0,0,?,?,0,0,0,0,0,0,'')"))) {
      int i = 1;
      bind_text(r, i++, uuid);
      bind_text(r, i++, L.pipeline);
      sqlite3_bind_int64(r, i++, L.run_ctx);
      sqlite3_bind_int64(r, i++, L.run_exec);
      bind_text(r, i++, origin);
      sqlite3_bind_int64(r, i++, v->format_version);
      bind_text(r, i++, v->cairn_version);
      sqlite3_bind_int64(r, i++, (int64_t)v->created_ns);
      sqlite3_bind_int64(r, i++, (int64_t)cairn__now_realtime_ns());
      sqlite3_bind_int64(r, i++, v->nranks);
      sqlite3_bind_int64(r, i++, v->naggregators);
      sqlite3_bind_int(r, i++, v->detail);
      sqlite3_bind_int64(r, i++, (int64_t)v->nartifacts);
      sqlite3_bind_int64(r, i++, (int64_t)v->nexecutions);
      rc = run(m, r, "insert cairn_run");
      sqlite3_finalize(r);
      *run_id = sqlite3_last_insert_rowid(m->db);
    }
  }
  if (!rc)
    rc = merge_run_rows(m, v, *run_id);
  if (!rc)
    rc = merge_marks(m, v, *run_id);
  if (!rc)
    rc = merge_stages(m, v, *run_id, &L);
  if (!rc)
    rc = merge_executions(m, v, *run_id, &L);
  if (!rc)
    rc = merge_artifacts(m, v, *run_id, &L);
  if (!rc)
    rc = merge_events(m, v, *run_id, &L);
  mlmd_finalize(&L.s);
  free(L.stages);
  free(L.execs);
  free(L.exec_stage);
  free(L.arts);
  return rc;
}

/* The run row's totals, source, damage and fingerprint, once the whole
 * view is known. A view that ended without per-rank detail (a file where
 * some metric had none: one view, one shape) keeps none in the database
 * either. */
static int run_finish(mctx *m, const cairn_run_view *v, const char *origin,
                      const cairn_run_report *rep, int64_t run_id, const char *fp,
                      const run_totals *t) {
  sqlite3_stmt *u;
  int rc = prep(m, &u,
                "UPDATE cairn_run SET source=?, detail=?, nmetrics=?, steps=?, samples=?,"
                " recovered_ranks=?, damaged=?, logged=?, stored=?, dropped=?, rejected=?,"
                " fingerprint=? WHERE id=?");
  if (rc)
    return rc;
  int i = 1;
  bind_text(u, i++, source_name(v, origin));
  sqlite3_bind_int(u, i++, v->detail);
  sqlite3_bind_int64(u, i++, (int64_t)v->nmetrics);
  sqlite3_bind_int64(u, i++, (int64_t)t->steps);
  sqlite3_bind_int64(u, i++, (int64_t)t->samples);
  sqlite3_bind_int64(u, i++, rep ? rep->wal_ranks : 0);
  sqlite3_bind_int64(u, i++, (int64_t)damage_count(rep));
  sqlite3_bind_int64(u, i++, (int64_t)t->logged);
  sqlite3_bind_int64(u, i++, (int64_t)t->stored);
  sqlite3_bind_int64(u, i++, (int64_t)t->dropped);
  sqlite3_bind_int64(u, i++, (int64_t)t->rejected);
  bind_text(u, i++, fp);
  sqlite3_bind_int64(u, i++, run_id);
  rc = run(m, u, "update cairn_run");
  sqlite3_finalize(u);
  if (!rc && !v->detail) {
    char sql[256];
    cairn__fmt(sql, sizeof sql,
               "DELETE FROM cairn_rank_chunk WHERE metric_id IN (SELECT id FROM cairn_metric"
               " WHERE run_id=%lld); UPDATE cairn_metric SET detail=0 WHERE run_id=%lld",
               (long long)run_id, (long long)run_id);
    rc = cairn_db_exec(m->db, sql, m->err, m->errlen);
  }
  return rc;
}

static void count_run(cairn_db_merge_stats *st, const cairn_run_view *v,
                      const cairn_run_report *rep, const run_totals *t) {
  st->runs_added++;
  st->steps += t->steps;
  st->samples += t->samples;
  st->artifacts += v->nartifacts;
  st->executions += v->nexecutions;
  st->recovered_ranks += rep ? rep->wal_ranks : 0;
  st->dropped += t->dropped;
}

static void mctx_init(mctx *m, sqlite3 *db, const cairn_db_merge_opts *o, char *err,
                      size_t errlen) {
  memset(m, 0, sizeof *m);
  m->db = db;
  m->err = err;
  m->errlen = errlen;
  m->o = o;
  const char *k = getenv("CAIRN_TEST_MERGE_KILL_AFTER");
  if (k && *k)
    m->kill_after = strtol(k, NULL, 10);
}

/* COMMIT on success, ROLLBACK otherwise; returns the final code. */
static int end_txn(mctx *m, int rc) {
  if (!rc)
    rc = cairn_db_exec(m->db, "COMMIT", m->err, m->errlen);
  if (rc)
    cairn_db_exec(m->db, "ROLLBACK", NULL, 0);
  cairn_db_scratch_free(&m->sc);
  return rc;
}

int cairn_db_merge_view(sqlite3 *db, const cairn_run_view *v, const char *origin,
                        const cairn_run_report *rep, const cairn_db_merge_opts *o,
                        cairn_db_merge_stats *st, char *err, size_t errlen) {
  mctx m;
  mctx_init(&m, db, o, err, errlen);
  if (!v->have_run_id) {
    cairn__fmt(err, errlen, "%s: the run has no run id (its RUN records were lost); not merged",
               origin);
    return CAIRN_ECORRUPT;
  }
  char uuid[37], fp[FP_LEN];
  cairn__uuid_format(v->run_id, uuid);
  run_totals t;
  totals_of(v, &t);
  fingerprint(v, &t, fp);
  int rc = cairn_db_exec(db, "BEGIN IMMEDIATE", err, errlen);
  if (rc)
    return rc;
  rc = existing(&m, uuid, fp);
  if (rc == 1) {
    st->runs_unchanged++;
    return end_txn(&m, CAIRN_OK);
  }
  int64_t run_id = 0;
  if (!rc)
    rc = run_begin(&m, v, origin, uuid, &run_id);
  if (!rc) {
    mqueue q;
    mq_init(&q, v->ncols);
    view_producer p = {&q, v};
    pthread_t th;
    int threaded = pthread_create(&th, NULL, produce_view, &p) == 0;
    if (!threaded) { /* no thread to be had: encode everything first, then insert */
      q.unbounded = 1;
      produce_view(&p);
    }
    rc = insert_metrics(&m, &q, run_id, v->col_rank);
    if (threaded)
      pthread_join(th, NULL);
    mq_destroy(&q);
  }
  if (!rc)
    rc = run_finish(&m, v, origin, rep, run_id, fp, &t);
  rc = end_txn(&m, rc);
  if (!rc)
    count_run(st, v, rep, &t);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* A run directory                                                         */
/* ---------------------------------------------------------------------- */

/* The usual finished run — one complete HDF5 file and nothing else — is
 * read, compressed and inserted at the same time, by three threads: the
 * reading thread hands each metric over as soon as it has read it, an
 * encoding thread compresses it, and this thread inserts it. Other
 * directories (several group files, write-ahead logs, temporaries) are read
 * whole first. */
typedef struct rawm {
  struct rawm *next;
  cairn_view_metric m; /* a copy of the struct: the arrays are the view's */
  size_t index, total, ncols;
} rawm;

typedef struct {
  const char *path;
  cairn_run_view *v;
  cairn_run_report *rep;
  mqueue *q;
  int rc;
  pthread_mutex_t mu; /* the hand-over from the reader to the encoder   */
  pthread_cond_t cv;
  rawm *head, *tail;
  int busy;           /* the encoder is compressing a metric            */
  int closed;         /* the reader has returned: nothing more comes    */
  int failed;         /* out of memory for a hand-over                  */
} stream_reader;

/* Reading thread: a metric has been read. With m NULL: the reader is about
 * to move or free the metrics, so wait until the encoder is done with them. */
static void on_metric_read(void *ctx, const cairn_view_metric *mt, size_t index, size_t total) {
  stream_reader *s = ctx;
  pthread_mutex_lock(&s->mu);
  if (mt) {
    rawm *r = malloc(sizeof *r);
    if (r) {
      r->next = NULL;
      r->m = *mt;
      r->index = index;
      r->total = total;
      r->ncols = s->v->ncols; /* complete before the first metric */
      if (s->tail)
        s->tail->next = r;
      else
        s->head = r;
      s->tail = r;
    } else {
      s->failed = 1;
    }
  } else {
    while (s->head || s->busy)
      pthread_cond_wait(&s->cv, &s->mu);
  }
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void read_stream_closed(stream_reader *s) {
  pthread_mutex_lock(&s->mu);
  s->closed = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void *read_stream(void *arg) {
  stream_reader *s = arg;
  s->rc = cairn__view_from_h5(s->path, s->v, s->rep);
  read_stream_closed(s);
  return NULL;
}

/* Encoding thread: compresses what the reader hands over, queues it for the
 * inserting thread. */
static void *encode_stream(void *arg) {
  stream_reader *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->closed)
      pthread_cond_wait(&s->cv, &s->mu);
    rawm *r = s->head;
    if (r) {
      s->head = r->next;
      if (!s->head)
        s->tail = NULL;
      s->busy = 1;
    }
    int failed = s->failed;
    pthread_mutex_unlock(&s->mu);
    if (!r) {
      if (failed) {
        pthread_mutex_lock(&s->q->mu);
        if (!s->q->rc)
          s->q->rc = CAIRN_ENOMEM;
        pthread_mutex_unlock(&s->q->mu);
      }
      break;
    }
    s->q->ncols = r->ncols; /* the encoder is the queue's only producer */
    mq_produce(s->q, &r->m, r->index, r->total);
    free(r);
    pthread_mutex_lock(&s->mu);
    s->busy = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  mq_finish(s->q);
  return NULL;
}

static int merge_h5_streaming(sqlite3 *db, const char *run_dir, const char *path,
                              const cairn_db_merge_opts *o, cairn_db_merge_stats *st,
                              char *err, size_t errlen) {
  cairn_run_view v;
  cairn__view_init(&v);
  cairn_run_report rep;
  memset(&rep, 0, sizeof rep);
  rep.fn = o ? o->report : NULL;
  rep.ctx = o ? o->ctx : NULL;
  mqueue q;
  mq_init(&q, 0);
  stream_reader s;
  memset(&s, 0, sizeof s);
  s.path = path;
  s.v = &v;
  s.rep = &rep;
  s.q = &q;
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  rep.on_metric = on_metric_read;
  rep.metric_ctx = &s;
  pthread_t th, enc;
  if (pthread_create(&enc, NULL, encode_stream, &s) != 0) {
    mq_destroy(&q);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return -1; /* the caller reads the directory the ordinary way */
  }
  if (pthread_create(&th, NULL, read_stream, &s) != 0) {
    read_stream_closed(&s);
    pthread_join(enc, NULL);
    mq_destroy(&q);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return -1;
  }
  mctx m;
  mctx_init(&m, db, o, err, errlen);
  /* Until the first metric (or the end of the file), the reader is still
   * filling the view's identity, ranks and tables. */
  mq_wait_ready(&q);
  int rc = CAIRN_OK, intxn = 0, unchanged = 0;
  int64_t run_id = 0;
  char uuid[37] = "";
  pthread_mutex_lock(&q.mu);
  int ended = q.done;
  pthread_mutex_unlock(&q.mu);
  if (!ended && v.have_run_id) {
    cairn__uuid_format(v.run_id, uuid);
    rc = cairn_db_exec(db, "BEGIN IMMEDIATE", err, errlen);
    intxn = !rc;
    sqlite3_stmt *x = NULL;
    if (!rc && !(rc = prep(&m, &x, "SELECT 1 FROM cairn_run WHERE uuid=?"))) {
      bind_text(x, 1, uuid);
      unchanged = sqlite3_step(x) == SQLITE_ROW; /* decided below, on the whole view */
      sqlite3_finalize(x);
    }
    if (!rc && !unchanged)
      rc = run_begin(&m, &v, run_dir, uuid, &run_id);
  }
  if (rc || unchanged || ended)
    mq_cancel(&q); /* nothing to insert as it comes: let the reader finish */
  int irc = insert_metrics(&m, &q, run_id, v.col_rank);
  if (!rc && !unchanged && !ended)
    rc = irc;
  pthread_join(th, NULL);
  pthread_join(enc, NULL);
  mq_destroy(&q);
  pthread_mutex_destroy(&s.mu);
  pthread_cond_destroy(&s.cv);
  /* The whole file is read: judge it as cairn__run_open would. */
  int damaged = s.rc != CAIRN_OK || rep.lost_datasets;
  if (!rc && (s.rc == CAIRN_ENOMEM || s.rc == CAIRN_EIO || (damaged && v.ncols == 0))) {
    cairn__fmt(err, errlen, "%s: cannot read the run: %s (see above); not merged", run_dir,
               cairn_strerror(s.rc ? s.rc : CAIRN_ECORRUPT));
    rc = s.rc ? s.rc : CAIRN_ECORRUPT;
  } else if (!rc && damaged && !(o && o->salvage)) {
    cairn__fmt(err, errlen,
               "%s: %u damaged HDF5 file(s), %llu unreadable dataset(s) (see above); not "
               "merged (--salvage merges what could be read)",
               run_dir, rep.h5_bad ? rep.h5_bad : 1, (unsigned long long)rep.lost_datasets);
    rc = CAIRN_ECORRUPT;
  }
  if (!rc && !v.have_run_id) {
    cairn__fmt(err, errlen, "%s: the run has no run id (its RUN records were lost); not merged",
               run_dir);
    rc = CAIRN_ECORRUPT;
  }
  if (!rc && ended) {
    /* The file ended before any metric: nothing was started; merge the
     * complete view the ordinary way. */
    st->damaged += damage_count(&rep);
    rc = cairn_db_merge_view(db, &v, run_dir, &rep, o, st, err, errlen);
    cairn__view_free(&v);
    return rc;
  }
  run_totals t;
  char fp[FP_LEN];
  if (!rc) {
    totals_of(&v, &t);
    fingerprint(&v, &t, fp);
  }
  if (!rc && unchanged) {
    rc = existing(&m, uuid, fp); /* 1 same run, or an error naming the difference */
    if (rc == 1) {
      st->runs_unchanged++;
      rc = CAIRN_OK;
    } else if (rc == 0) {
      rc = CAIRN_EIO; /* it was there a moment ago, inside our transaction */
      cairn__fmt(err, errlen, "%s: run %s vanished during the merge", run_dir, uuid);
    }
    if (intxn)
      rc = end_txn(&m, rc);
    cairn__view_free(&v);
    return rc;
  }
  if (!rc)
    rc = run_finish(&m, &v, run_dir, &rep, run_id, fp, &t);
  if (intxn)
    rc = end_txn(&m, rc);
  if (!rc) {
    st->damaged += damage_count(&rep);
    count_run(st, &v, &rep, &t);
  }
  cairn__view_free(&v);
  return rc;
}

int cairn_db_merge_dir(sqlite3 *db, const char *run_dir, const cairn_db_merge_opts *o,
                       cairn_db_merge_stats *st, char *err, size_t errlen) {
  cairn_run_file *files = NULL;
  size_t nfiles = 0;
  cairn_run_state state;
  if (cairn__run_list_files(run_dir, &files, &nfiles, &state, err, errlen) == CAIRN_OK) {
    int one_h5 = state == CAIRN_RUN_H5 && nfiles == 1 && files[0].kind == CAIRN_FILE_H5;
    int rc = one_h5 ? merge_h5_streaming(db, run_dir, files[0].path, o, st, err, errlen) : -1;
    cairn__run_files_free(files, nfiles);
    if (rc != -1)
      return rc;
  }
  cairn_run_view v;
  cairn_run_report rep;
  memset(&rep, 0, sizeof rep);
  rep.fn = o ? o->report : NULL;
  rep.ctx = o ? o->ctx : NULL;
  int rc = cairn__run_open(run_dir, &v, &rep);
  if (rc) {
    if (rc == CAIRN_ENOTFOUND)
      cairn__fmt(err, errlen,
                 "%s: no cairn run here (no run-g*.h5 file, no wal-r*.cwal segment); not merged",
                 run_dir);
    else
      cairn__fmt(err, errlen, "%s: cannot read the run: %s (see above); not merged", run_dir,
                 cairn_strerror(rc));
    cairn__view_free(&v);
    return rc;
  }
  if ((rep.h5_bad || rep.lost_datasets) && !(o && o->salvage)) {
    cairn__fmt(err, errlen,
               "%s: %u damaged HDF5 file(s), %llu unreadable dataset(s) (see above); not "
               "merged (--salvage merges what could be read)",
               run_dir, rep.h5_bad, (unsigned long long)rep.lost_datasets);
    cairn__view_free(&v);
    return CAIRN_ECORRUPT;
  }
  st->damaged += damage_count(&rep);
  rc = cairn_db_merge_view(db, &v, run_dir, &rep, o, st, err, errlen);
  cairn__view_free(&v);
  return rc;
}
