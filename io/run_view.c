/* run_view.c — builds the in-memory run view from write-ahead-log segments,
 * combines views of disjoint ranks, lists run directories and opens a run
 * from whichever files it holds (HDF5 when complete, WAL otherwise). */
#include "run_view.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "hugemem.h"
#include "util.h"
#include "wal.h"
#include "wal_format.h"

/* Ranks above this are taken for a damaged header rather than allocated
 * for: a rank indexes dense per-rank arrays while the WAL is read. */
#define MAX_RANK (1u << 22)

static void report_msg(cairn_run_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report_msg(cairn_run_report *rep, const char *fmt, ...) {
  if (!rep || !rep->fn)
    return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rep->fn(rep->ctx, msg);
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    if (n)
      memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static char *dup_s(const char *s) { return dup_n(s ? s : "", s ? strlen(s) : 0); }

/* Grows *p (of *cap elements of size sz) to hold at least need elements. */
static int grow(void *p, size_t *cap, size_t need, size_t sz) {
  if (need <= *cap)
    return CAIRN_OK;
  size_t nc = *cap ? *cap : 16;
  while (nc < need)
    nc *= 2;
  void *np = realloc(*(void **)p, nc * sz);
  if (!np)
    return CAIRN_ENOMEM;
  *(void **)p = np;
  *cap = nc;
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Init, free, metric arrays                                               */
/* ---------------------------------------------------------------------- */

void cairn__view_init(cairn_run_view *v) { memset(v, 0, sizeof *v); }

/* cairn__view_metric_alloc, taking `steps` (at least nsteps elements, from
 * cairn__huge_*) as the step array when it is not NULL: the array is
 * neither allocated nor mapped again. On failure `steps` stays the
 * caller's. */
static int metric_alloc(cairn_view_metric *m, size_t nsteps, size_t ncols, int detail,
                        int64_t *steps, int stats) {
  size_t n = nsteps ? nsteps : 1;
  m->count = NULL; /* the statistics stay NULL unless stats */
  m->sum = m->sumsq = m->min = m->max = NULL;
  m->rank_min = m->rank_max = NULL;
  m->nsteps = nsteps;
  m->step = steps ? steps : cairn__huge_malloc(n * sizeof *m->step);
  if (stats) {
    m->count = cairn__huge_malloc(n * sizeof *m->count);
    m->sum = cairn__huge_malloc(n * sizeof *m->sum);
    m->sumsq = cairn__huge_malloc(n * sizeof *m->sumsq);
    m->min = cairn__huge_malloc(n * sizeof *m->min);
    m->max = cairn__huge_malloc(n * sizeof *m->max);
    m->rank_min = cairn__huge_malloc(n * sizeof *m->rank_min);
    m->rank_max = cairn__huge_malloc(n * sizeof *m->rank_max);
  }
  m->values = NULL;
  m->samples = NULL;
  int ok = m->step && (!stats || (m->count && m->sum && m->sumsq && m->min && m->max &&
                                  m->rank_min && m->rank_max));
  size_t cells = n * (ncols ? ncols : 1);
  if (ok && detail) {
    if (ncols && cells / ncols != n) {
      ok = 0;
    } else {
      m->values = cairn__huge_malloc(cells * sizeof *m->values);
      m->samples = cairn__huge_malloc(cells * sizeof *m->samples);
      ok = m->values && m->samples;
    }
  }
  if (!ok) {
    if (steps)
      m->step = NULL;
    cairn__view_metric_free(m);
    return CAIRN_ENOMEM;
  }
  /* Every element is written next (finishing, merging, reading a file):
   * map the pages in one call each rather than a fault per page. */
  if (!steps)
    cairn__mem_prefault(m->step, n * sizeof *m->step);
  if (stats) {
    cairn__mem_prefault(m->count, n * sizeof *m->count);
    cairn__mem_prefault(m->sum, n * sizeof *m->sum);
    cairn__mem_prefault(m->sumsq, n * sizeof *m->sumsq);
    cairn__mem_prefault(m->min, n * sizeof *m->min);
    cairn__mem_prefault(m->max, n * sizeof *m->max);
    cairn__mem_prefault(m->rank_min, n * sizeof *m->rank_min);
    cairn__mem_prefault(m->rank_max, n * sizeof *m->rank_max);
  }
  if (m->values) {
    cairn__mem_prefault(m->values, cells * sizeof *m->values);
    cairn__mem_prefault(m->samples, cells * sizeof *m->samples);
  }
  return CAIRN_OK;
}

int cairn__view_metric_alloc(cairn_view_metric *m, size_t nsteps, size_t ncols, int detail) {
  return metric_alloc(m, nsteps, ncols, detail, NULL, 1);
}

void cairn__view_metric_release(cairn_view_metric *m) {
  char *name = m->name;
  size_t name_len = m->name_len;
  m->name = NULL;
  cairn__view_metric_free(m);
  m->name = name;
  m->name_len = name_len;
}

void cairn__view_metric_free(cairn_view_metric *m) {
  cairn__huge_free(m->step);
  cairn__huge_free(m->count);
  cairn__huge_free(m->sum);
  cairn__huge_free(m->sumsq);
  cairn__huge_free(m->min);
  cairn__huge_free(m->max);
  cairn__huge_free(m->rank_min);
  cairn__huge_free(m->rank_max);
  cairn__huge_free(m->values);
  if (!m->samples_shared)
    cairn__huge_free(m->samples);
  char *name = m->name;
  memset(m, 0, sizeof *m);
  free(name);
}

void cairn__view_free(cairn_run_view *v) {
  if (!v)
    return;
  for (size_t i = 0; i < v->nmetrics; i++)
    cairn__view_metric_free(&v->metrics[i]);
  free(v->metrics);
  cairn__huge_free(v->ones);
  for (size_t c = 0; c < v->ncols && v->ranks; c++)
    free(v->ranks[c].hostname);
  free(v->ranks);
  free(v->col_rank);
  free(v->acct);
  free(v->acct_reported);
  free(v->mark_step);
  free(v->mark_time);
  for (size_t i = 0; i < v->nparams; i++) {
    free(v->params[i].key);
    free(v->params[i].str);
  }
  free(v->params);
  for (size_t i = 0; i < v->nkv; i++) {
    free(v->kv[i].key);
    free(v->kv[i].value);
  }
  free(v->kv);
  for (size_t i = 0; i < v->nartifacts; i++) {
    free(v->artifacts[i].uri);
    free(v->artifacts[i].hash);
    free(v->artifacts[i].properties);
  }
  free(v->artifacts);
  for (size_t i = 0; i < v->nexecutions; i++) {
    free(v->executions[i].name);
    free(v->executions[i].properties);
    free(v->executions[i].type);
    free(v->executions[i].command);
  }
  free(v->executions);
  free(v->events);
  for (size_t i = 0; i < v->ncontexts; i++) {
    free(v->contexts[i].name);
    free(v->contexts[i].pipeline);
    free(v->contexts[i].properties);
  }
  free(v->contexts);
  memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------------------- */
/* Appending table rows                                                    */
/* ---------------------------------------------------------------------- */


int cairn__view_add_param(cairn_run_view *v, const cairn_view_param *p) {
  if (grow(&v->params, &v->cap_.params, v->nparams + 1, sizeof *v->params))
    return CAIRN_ENOMEM;
  cairn_view_param *d = &v->params[v->nparams];
  *d = *p;
  d->key = dup_s(p->key);
  d->str = dup_s(p->str);
  if (!d->key || !d->str) {
    free(d->key);
    free(d->str);
    return CAIRN_ENOMEM;
  }
  v->nparams++;
  return CAIRN_OK;
}

int cairn__view_add_kv(cairn_run_view *v, int32_t rank, const char *key, const char *value) {
  if (grow(&v->kv, &v->cap_.kv, v->nkv + 1, sizeof *v->kv))
    return CAIRN_ENOMEM;
  cairn_view_kv *d = &v->kv[v->nkv];
  d->rank = rank;
  d->key = dup_s(key);
  d->value = dup_s(value);
  if (!d->key || !d->value) {
    free(d->key);
    free(d->value);
    return CAIRN_ENOMEM;
  }
  v->nkv++;
  return CAIRN_OK;
}

int cairn__view_add_artifact(cairn_run_view *v, const cairn_h5_artifact_row *r) {
  if (grow(&v->artifacts, &v->cap_.artifacts, v->nartifacts + 1, sizeof *v->artifacts))
    return CAIRN_ENOMEM;
  cairn_h5_artifact_row *d = &v->artifacts[v->nartifacts];
  *d = *r;
  d->uri = dup_s(r->uri);
  d->hash = dup_s(r->hash);
  d->properties = dup_s(r->properties);
  if (!d->uri || !d->hash || !d->properties) {
    free(d->uri);
    free(d->hash);
    free(d->properties);
    return CAIRN_ENOMEM;
  }
  v->nartifacts++;
  return CAIRN_OK;
}

int cairn__view_add_execution(cairn_run_view *v, const cairn_h5_execution_row *r) {
  if (grow(&v->executions, &v->cap_.executions, v->nexecutions + 1, sizeof *v->executions))
    return CAIRN_ENOMEM;
  cairn_h5_execution_row *d = &v->executions[v->nexecutions];
  *d = *r;
  d->name = dup_s(r->name);
  d->properties = dup_s(r->properties);
  d->type = dup_s(r->type);
  d->command = dup_s(r->command);
  if (!d->name || !d->properties || !d->type || !d->command) {
    free(d->name);
    free(d->properties);
    free(d->type);
    free(d->command);
    return CAIRN_ENOMEM;
  }
  v->nexecutions++;
  return CAIRN_OK;
}

int cairn__view_add_event(cairn_run_view *v, const cairn_h5_event_row *r) {
  if (grow(&v->events, &v->cap_.events, v->nevents + 1, sizeof *v->events))
    return CAIRN_ENOMEM;
  v->events[v->nevents++] = *r;
  return CAIRN_OK;
}

int cairn__view_add_context(cairn_run_view *v, const cairn_h5_context_row *r) {
  if (grow(&v->contexts, &v->cap_.contexts, v->ncontexts + 1, sizeof *v->contexts))
    return CAIRN_ENOMEM;
  cairn_h5_context_row *d = &v->contexts[v->ncontexts];
  *d = *r;
  d->name = dup_s(r->name);
  d->pipeline = dup_s(r->pipeline);
  d->properties = dup_s(r->properties);
  if (!d->name || !d->pipeline || !d->properties) {
    free(d->name);
    free(d->pipeline);
    free(d->properties);
    return CAIRN_ENOMEM;
  }
  v->ncontexts++;
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */
/* ---------------------------------------------------------------------- */

void cairn__view_stats_row(const double *values, const uint32_t *samples,
                           const int32_t *col_rank, size_t ncols, uint32_t *count,
                           double *sum, double *sumsq, double *min, double *max,
                           int32_t *rank_min, int32_t *rank_max) {
  uint32_t n = 0;
  double s = 0, s2 = 0, lo = NAN, hi = NAN;
  int32_t rlo = -1, rhi = -1;
  /* Strict comparisons in ascending column (= rank) order: the lowest rank
   * wins a tie, in every writer, so serial and parallel files agree. */
  for (size_t c = 0; c < ncols; c++) {
    if (!samples[c])
      continue;
    double x = values[c];
    n++;
    s += x;
    s2 += x * x;
    if (isnan(x))
      continue;
    if (rlo < 0 || x < lo) {
      lo = x;
      rlo = col_rank[c];
    }
    if (rhi < 0 || x > hi) {
      hi = x;
      rhi = col_rank[c];
    }
  }
  *count = n;
  *sum = s;
  *sumsq = s2;
  *min = lo;
  *max = hi;
  *rank_min = rlo;
  *rank_max = rhi;
}

/* ---------------------------------------------------------------------- */
/* Step index: sorted unique steps of a set of records, and a lookup       */
/* ---------------------------------------------------------------------- */

/* Steps are usually dense (0, 1, 2, ...) but need not be: a dense position
 * table over [lo, hi] is used when it is not much larger than the records,
 * otherwise a sorted array searched by bisection. */
typedef struct {
  int64_t lo;
  int32_t *pos; /* dense: row of step lo+k, or -1 */
  int64_t *uniq;
  size_t nuniq;
} step_index;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* `steps` is read at base + k*stride for k < n. */
static int step_index_build(step_index *ix, const void *base, size_t stride, size_t n) {
  memset(ix, 0, sizeof *ix);
  if (n == 0) {
    ix->uniq = malloc(sizeof *ix->uniq);
    return ix->uniq ? CAIRN_OK : CAIRN_ENOMEM;
  }
  const char *p = base;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (size_t k = 0; k < n; k++) {
    int64_t s;
    memcpy(&s, p + k * stride, sizeof s);
    if (s < lo)
      lo = s;
    if (s > hi)
      hi = s;
  }
  uint64_t range = (uint64_t)hi - (uint64_t)lo + 1u; /* wraps only for 2^64 */
  if (range != 0 && range <= 4u * (uint64_t)n + 1024u && range < INT32_MAX) {
    ix->lo = lo;
    ix->pos = malloc((size_t)range * sizeof *ix->pos);
    if (!ix->pos)
      return CAIRN_ENOMEM;
    memset(ix->pos, 0xff, (size_t)range * sizeof *ix->pos); /* -1 */
    for (size_t k = 0; k < n; k++) {
      int64_t s;
      memcpy(&s, p + k * stride, sizeof s);
      ix->pos[(uint64_t)s - (uint64_t)lo] = 0;
    }
    size_t nu = 0;
    for (uint64_t k = 0; k < range; k++)
      if (ix->pos[k] == 0)
        nu++;
    ix->uniq = malloc((nu ? nu : 1) * sizeof *ix->uniq);
    if (!ix->uniq) {
      free(ix->pos);
      return CAIRN_ENOMEM;
    }
    for (uint64_t k = 0; k < range; k++)
      if (ix->pos[k] == 0) {
        ix->pos[k] = (int32_t)ix->nuniq;
        ix->uniq[ix->nuniq++] = (int64_t)((uint64_t)lo + k);
      }
    return CAIRN_OK;
  }
  ix->uniq = malloc(n * sizeof *ix->uniq);
  if (!ix->uniq)
    return CAIRN_ENOMEM;
  for (size_t k = 0; k < n; k++)
    memcpy(&ix->uniq[k], p + k * stride, sizeof(int64_t));
  qsort(ix->uniq, n, sizeof *ix->uniq, cmp_i64);
  size_t nu = 0;
  for (size_t k = 0; k < n; k++)
    if (nu == 0 || ix->uniq[nu - 1] != ix->uniq[k])
      ix->uniq[nu++] = ix->uniq[k];
  ix->nuniq = nu;
  return CAIRN_OK;
}

/* The first index of ascending a[0..n) whose value is >= s (n if none). */
static size_t lower_bound_i64(const int64_t *a, size_t n, int64_t s) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < s)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static size_t step_index_row(const step_index *ix, int64_t s) {
  if (ix->pos)
    return (size_t)ix->pos[(uint64_t)s - (uint64_t)ix->lo];
  return lower_bound_i64(ix->uniq, ix->nuniq, s);
}

static void step_index_free(step_index *ix) {
  free(ix->pos);
  free(ix->uniq);
}

/* ---------------------------------------------------------------------- */
/* Building a view from the WAL                                            */
/* ---------------------------------------------------------------------- */

/* One metric's per-rank cells while blocks are read. Rows are steps in the
 * order first seen (a step -> row hash finds them again), columns are ranks
 * in the order the builder first saw them; a cell holds the running sum and
 * sample count of one (step, rank). A rank's next record usually lands in
 * the row after its previous one, so most records cost no hash probe, and
 * builder_finish turns the cells into the view's means in place when rows
 * and columns are already in order (the common case: no copy, no sort). */
typedef struct {
  char *name;
  size_t len;
  int64_t *steps;      /* [caprows] row -> step                             */
  size_t nrows, caprows;
  uint32_t *rowhash;   /* step -> row + 1, open addressing, 0 = empty; only */
                       /* once rows are out of order (else: bisection)      */
  size_t hcap;
  size_t stride;       /* columns allocated per row                         */
  double *val;         /* [caprows × stride] sums of the parts              */
  uint32_t *cnt;       /* [caprows × stride] samples; 0 = no part yet; NULL */
                       /* while lazy                                        */
  int lazy;            /* no cnt yet: a cell is CELL_EMPTY (no part yet) or */
                       /* holds one sample (see CELL_EMPTY)                 */
  uint64_t filled;     /* cells filled while lazy                           */
  uint32_t *next;      /* [stride] per column: row after its last one, + 1  */
  int unordered;       /* some row's step is below an earlier row's         */
  int dense;           /* row r is step lo + r for every row (the usual     */
  int64_t lo;          /* case): a record finds its row without a lookup    */
} wal_metric;

typedef struct {
  int64_t step;
  uint64_t t_ns;
  uint32_t rank;
} wal_mark;

typedef struct {
  int seen;            /* a segment of this rank was opened                  */
  int have_run;
  uint8_t run_id[16];
  uint32_t nranks, pid;
  uint64_t start_ns;
  char *hostname;
  char version[32];
  cairn_rec_counters ctr[CAIRN_H5_NCHANNELS];
  int have_ctr;
  uint32_t *idmap;     /* metric id -> builder metric index + 1, 0 = unnamed */
  size_t nid;
  uint32_t col;        /* builder column (valid when seen)                   */
} wal_rank;

typedef struct {
  cairn_run_view *v;
  cairn_run_report *rep;
  const char *path;    /* segment being decoded, for messages                */
  uint32_t seg_rank;   /* its writer's rank (segment header)                 */
  uint32_t rank;       /* rank of the records being decoded (SOURCE section, */
                       /* else the segment's writer)                         */
  int skip_rank;       /* that rank is read from elsewhere: ignore it        */
  int (*skip)(void *ctx, uint32_t rank);
  void *skip_ctx;
  uint32_t writers;    /* distinct segment writers (aggregators)             */
  wal_rank *ranks;
  size_t nranks_cap;
  uint32_t *col_rank;  /* builder column -> rank, in the order first seen   */
  size_t ncols, capcols;
  size_t bytes;        /* what the cells and markers hold, for callers that */
                       /* bound the memory of a builder kept for a run      */
  size_t expect_cols;   /* columns a metric's rows get at once (a hint)     */
  wal_metric *m;
  size_t nm, capm;
  size_t *hash;        /* open addressing over m, index + 1, 0 = empty       */
  size_t hcap;
  wal_mark *marks;
  size_t nmarks, capmarks;
  int failed;          /* CAIRN_ENOMEM seen inside a callback                */
  int values_only;     /* finish: per-rank values, not statistics           */
} wal_builder;


/* Returns the builder index of the metric called name, creating it. */
static long builder_metric(wal_builder *b, const char *name, size_t len) {
  if (b->nm * 2 >= b->hcap) {
    size_t nc = b->hcap ? b->hcap * 2 : 64;
    size_t *nh = calloc(nc, sizeof *nh);
    if (!nh)
      return -1;
    for (size_t i = 0; i < b->nm; i++) {
      size_t h = (size_t)cairn__fnv1a64(b->m[i].name, b->m[i].len) & (nc - 1);
      while (nh[h])
        h = (h + 1) & (nc - 1);
      nh[h] = i + 1;
    }
    free(b->hash);
    b->hash = nh;
    b->hcap = nc;
  }
  size_t h = (size_t)cairn__fnv1a64(name, len) & (b->hcap - 1);
  while (b->hash[h]) {
    wal_metric *m = &b->m[b->hash[h] - 1];
    if (m->len == len && memcmp(m->name, name, len) == 0)
      return (long)(b->hash[h] - 1);
    h = (h + 1) & (b->hcap - 1);
  }
  if (grow(&b->m, &b->capm, b->nm + 1, sizeof *b->m))
    return -1;
  wal_metric *m = &b->m[b->nm];
  memset(m, 0, sizeof *m);
  m->name = dup_n(name, len);
  if (!m->name)
    return -1;
  m->len = len;
  m->lazy = 1;
  b->hash[h] = ++b->nm;
  return (long)(b->nm - 1);
}

static wal_rank *builder_rank(wal_builder *b, uint32_t rank) {
  if (rank >= b->nranks_cap) {
    size_t nc = b->nranks_cap ? b->nranks_cap : 8;
    while (nc <= rank)
      nc *= 2;
    wal_rank *nr = realloc(b->ranks, nc * sizeof *nr);
    if (!nr)
      return NULL;
    memset(nr + b->nranks_cap, 0, (nc - b->nranks_cap) * sizeof *nr);
    b->ranks = nr;
    b->nranks_cap = nc;
  }
  return &b->ranks[rank];
}

/* Selects the rank whose records follow. Under MPI an aggregator's log
 * interleaves blocks of every rank it serves; each block opens with a
 * SOURCE section naming its rank. */
static int set_rank(wal_builder *b, uint32_t rank) {
  b->rank = rank;
  b->skip_rank = rank >= MAX_RANK || (b->skip && b->skip(b->skip_ctx, rank));
  if (b->skip_rank)
    return 0;
  wal_rank *w = builder_rank(b, rank);
  if (!w)
    return b->failed = CAIRN_ENOMEM;
  if (!w->seen) {
    if (grow(&b->col_rank, &b->capcols, b->ncols + 1, sizeof *b->col_rank))
      return b->failed = CAIRN_ENOMEM;
    w->col = (uint32_t)b->ncols;
    b->col_rank[b->ncols++] = rank;
    w->seen = 1;
  }
  return 0;
}

static int on_source(void *ctx, uint32_t rank) { return set_rank(ctx, rank); }

static int on_run(void *ctx, const cairn_rec_run *r) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  wal_rank *w = &b->ranks[b->rank];
  if (r->rank != b->rank)
    report_msg(b->rep, "%s: RUN record says rank %" PRIu32 " in a block of rank %" PRIu32
               "; the block's rank is used", b->path, r->rank, b->rank);
  w->have_run = 1;
  memcpy(w->run_id, r->run_id, 16);
  w->nranks = r->nranks;
  w->pid = r->pid;
  w->start_ns = r->start_ns;
  free(w->hostname);
  w->hostname = dup_n(r->hostname, r->hostname_len);
  snprintf(w->version, sizeof w->version, "%.*s", (int)r->version_len, r->version);
  if (!w->hostname)
    return b->failed = CAIRN_ENOMEM;
  return 0;
}

static int on_name(void *ctx, uint32_t id, const char *name, size_t len) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  wal_rank *w = &b->ranks[b->rank];
  if (id >= MAX_RANK) /* ids are dense small integers; bound the map */
    return 0;
  if (id >= w->nid) {
    size_t nc = w->nid ? w->nid : 16;
    while (nc <= id)
      nc *= 2;
    uint32_t *nm = realloc(w->idmap, nc * sizeof *nm);
    if (!nm)
      return b->failed = CAIRN_ENOMEM;
    memset(nm + w->nid, 0, (nc - w->nid) * sizeof *nm);
    w->idmap = nm;
    w->nid = nc;
  }
  long mi = builder_metric(b, name, len);
  if (mi < 0)
    return b->failed = CAIRN_ENOMEM;
  w->idmap[id] = (uint32_t)mi + 1;
  return 0;
}

static uint32_t step_hash(int64_t step) {
  uint64_t x = (uint64_t)step * 0x9e3779b97f4a7c15ull;
  return (uint32_t)(x >> 32);
}

static int metric_rehash(wal_metric *m, size_t nc) {
  uint32_t *nh = calloc(nc, sizeof *nh);
  if (!nh)
    return CAIRN_ENOMEM;
  for (size_t r = 0; r < m->nrows; r++) {
    size_t h = step_hash(m->steps[r]) & (nc - 1);
    while (nh[h])
      h = (h + 1) & (nc - 1);
    nh[h] = (uint32_t)r + 1;
  }
  free(m->rowhash);
  m->rowhash = nh;
  m->hcap = nc;
  return CAIRN_OK;
}

/*
 * Lazy counts. In a data-parallel run every rank logs every metric once a
 * step, so nearly every cell ends up with exactly one sample, and a count
 * array beside the sums would be a third of the view's memory — memory new
 * to the process at every step, whose first touch is a page fault — that
 * says "1" everywhere. So a metric starts without one: its cells hold
 * CELL_EMPTY (a signalling NaN no arithmetic produces) until their one
 * sample arrives, and the metric gets real counts (materialize_counts) at
 * its first cell with more than one sample. A logged value with
 * CELL_EMPTY's bits is stored quieted (the bits the view's division by 1
 * would give it anyway). At finish, a lazy metric with no empty cell
 * shares the view's array of ones as its samples; one with empty cells
 * gets its samples from them.
 */
#define CELL_EMPTY_BITS UINT64_C(0x7ff4c0ffee0dd5ed)
#define QUIET_BIT UINT64_C(0x0008000000000000)

static inline int cell_empty(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u == CELL_EMPTY_BITS;
}

static inline double cell_value(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  if (u != CELL_EMPTY_BITS)
    return x;
  u |= QUIET_BIT;
  memcpy(&x, &u, sizeof x);
  return x;
}

static void fill_empty(double *p, size_t n) {
  const uint64_t e = CELL_EMPTY_BITS;
  for (size_t i = 0; i < n; i++)
    memcpy(&p[i], &e, sizeof e);
}

/* Gives a lazy metric its counts: 1 for each filled cell, 0 for the rest. */
static int materialize_counts(wal_builder *b, wal_metric *m) {
  size_t cells = m->caprows * m->stride;
  uint32_t *cnt = cairn__huge_malloc((cells ? cells : 1) * sizeof *cnt);
  if (!cnt)
    return CAIRN_ENOMEM;
  for (size_t i = 0; i < cells; i++)
    cnt[i] = !cell_empty(m->val[i]);
  m->cnt = cnt;
  m->lazy = 0;
  b->bytes += cairn__huge_usable(cnt);
  return CAIRN_OK;
}

/* Widens every row of m to `stride` columns (a rank seen for the first
 * time; ranks show up early, so this moves little). */
static int metric_widen(wal_builder *b, wal_metric *m, size_t stride) {
  size_t rows = m->caprows;
  double *val = cairn__huge_malloc((rows ? rows : 1) * stride * sizeof *val);
  uint32_t *cnt =
      m->lazy ? NULL : cairn__huge_calloc((rows ? rows : 1) * stride, sizeof *cnt);
  uint32_t *next = calloc(stride, sizeof *next);
  if (!val || (!m->lazy && !cnt) || !next) {
    cairn__huge_free(val);
    cairn__huge_free(cnt);
    free(next);
    return CAIRN_ENOMEM;
  }
  if (m->lazy)
    fill_empty(val, rows * stride);
  for (size_t r = 0; r < m->nrows; r++) {
    memcpy(val + r * stride, m->val + r * m->stride, m->stride * sizeof *val);
    if (cnt)
      memcpy(cnt + r * stride, m->cnt + r * m->stride, m->stride * sizeof *cnt);
  }
  if (m->stride)
    memcpy(next, m->next, m->stride * sizeof *next);
  /* the memory bound counts what the blocks hold, not what was asked */
  b->bytes += cairn__huge_usable(val) + cairn__huge_usable(cnt);
  b->bytes -= cairn__huge_usable(m->val) + cairn__huge_usable(m->cnt);
  cairn__huge_free(m->val);
  cairn__huge_free(m->cnt);
  free(m->next);
  m->val = val;
  m->cnt = cnt;
  m->next = next;
  m->stride = stride;
  return CAIRN_OK;
}

/* The row of `step` in m for column col, creating it. -1: out of memory. */
static long metric_row(wal_builder *b, wal_metric *m, size_t col, int64_t step) {
  if (col >= m->stride) {
    size_t ns = m->stride ? m->stride : 1;
    while (ns <= col)
      ns *= 2;
    if (ns < b->ncols)
      ns = b->ncols;
    if (col < b->expect_cols && ns < b->expect_cols)
      ns = b->expect_cols;
    if (metric_widen(b, m, ns))
      return -1;
  }
  uint32_t nx = m->next[col];
  if (nx) {
    if (nx < m->nrows && m->steps[nx] == step)
      return (long)nx;
    if (m->steps[nx - 1] == step)
      return (long)nx - 1;
  }
  if (!m->unordered) {
    /* Rows in ascending step order (the usual case): a step above the last
     * row's is new; any other is found by bisection. No hash is kept. */
    if (m->nrows && step <= m->steps[m->nrows - 1]) {
      size_t lo = lower_bound_i64(m->steps, m->nrows, step);
      if (m->steps[lo] == step)
        return (long)lo;
    }
  } else {
    size_t h = step_hash(step) & (m->hcap - 1);
    while (m->rowhash[h]) {
      uint32_t r = m->rowhash[h] - 1;
      if (m->steps[r] == step)
        return (long)r;
      h = (h + 1) & (m->hcap - 1);
    }
  }
  if (m->nrows >= UINT32_MAX - 1)
    return -1;
  if (m->nrows == m->caprows) {
    /* a quarter at a time; the pool (hugemem.h) gives a block that must
     * move twice its old size, so most of these calls stay in place */
    size_t nc = m->caprows + m->caprows / 4 + 64;
    size_t held = cairn__huge_usable(m->steps) + cairn__huge_usable(m->val) +
                  cairn__huge_usable(m->cnt);
    int64_t *st = cairn__huge_realloc(m->steps, nc * sizeof *st);
    if (!st)
      return -1;
    m->steps = st;
    double *val = cairn__huge_realloc(m->val, nc * m->stride * sizeof *val);
    if (!val)
      return -1;
    m->val = val;
    uint32_t *cnt = NULL;
    if (!m->lazy) {
      cnt = cairn__huge_realloc(m->cnt, nc * m->stride * sizeof *cnt);
      if (!cnt)
        return -1;
      m->cnt = cnt;
    }
    /* The new rows are written within the next few blocks: map their
     * pages in one call rather than a fault each (hugemem.h). */
    size_t added = (nc - m->caprows) * m->stride;
    cairn__mem_prefault(val + m->caprows * m->stride, added * sizeof *val);
    if (cnt) {
      cairn__mem_prefault(cnt + m->caprows * m->stride, added * sizeof *cnt);
      memset(cnt + m->caprows * m->stride, 0, added * sizeof *cnt);
    } else {
      fill_empty(val + m->caprows * m->stride, added);
    }
    /* what the blocks hold (the pool may give more than asked) */
    b->bytes += cairn__huge_usable(st) + cairn__huge_usable(val) + cairn__huge_usable(cnt);
    b->bytes -= held;
    m->caprows = nc;
  }
  size_t r = m->nrows;
  int unordered = m->unordered || (r && step < m->steps[r - 1]);
  /* From the first row out of order on, rows are found through a hash
   * (built then over every row so far). */
  if (unordered && (r + 1) * 2 > m->hcap) {
    size_t nc = m->hcap ? m->hcap : 128;
    while ((r + 1) * 2 > nc)
      nc *= 2;
    size_t before = m->hcap;
    if (metric_rehash(m, nc))
      return -1;
    b->bytes += (nc - before) * sizeof *m->rowhash;
  }
  m->nrows++;
  m->steps[r] = step;
  m->unordered = unordered;
  if (r == 0)
    m->lo = step;
  m->dense = r == 0 || (m->dense && (uint64_t)step - (uint64_t)m->lo == r);
  if (unordered) {
    size_t h = step_hash(step) & (m->hcap - 1);
    while (m->rowhash[h])
      h = (h + 1) & (m->hcap - 1);
    m->rowhash[h] = (uint32_t)r + 1;
  }
  return (long)r;
}

static int on_metric(void *ctx, const cairn_metric_agg *a) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  wal_rank *w = &b->ranks[b->rank];
  long mi;
  if (a->id < w->nid && w->idmap[a->id]) {
    mi = (long)w->idmap[a->id] - 1;
  } else {
    /* Its NAMES record was in a block that was lost: keep the data under a
     * name that cannot collide with another rank's lost id. */
    char name[64];
    int len = snprintf(name, sizeof name, "?unnamed.r%" PRIu32 ".id%" PRIu32, b->rank, a->id);
    long before = (long)b->nm;
    mi = builder_metric(b, name, (size_t)len);
    if (mi < 0)
      return b->failed = CAIRN_ENOMEM;
    if (mi == before) {
      if (b->rep)
        b->rep->unnamed_metrics++;
      report_msg(b->rep, "%s: metric id %" PRIu32 " of rank %" PRIu32
                 " has no name (its NAMES record was lost); kept as '%s'", b->path, a->id,
                 b->rank, name);
    }
  }
  wal_metric *m = &b->m[mi];
  size_t col = b->ranks[b->rank].col;
  uint64_t d = (uint64_t)a->step - (uint64_t)m->lo;
  long row;
  if (m->dense && d < m->nrows && col < m->stride) {
    row = (long)d; /* the step's row, with no lookup */
  } else {
    row = metric_row(b, m, col, a->step);
    if (row < 0)
      return b->failed = CAIRN_ENOMEM;
  }
  size_t at = (size_t)row * m->stride + col;
  if (m->lazy) {
    if (a->count == 1 && cell_empty(m->val[at])) {
      m->val[at] = cell_value(a->sum);
      m->filled++;
      goto placed;
    }
    if (materialize_counts(b, m))
      return b->failed = CAIRN_ENOMEM;
  }
  /* Partial aggregates of one (step, rank) from several blocks add up,
   * sums and counts, in log order, so every reader gets the same bits; the
   * first part is taken as is, so a lone -0.0 stays -0.0. */
  m->val[at] = m->cnt[at] ? m->val[at] + a->sum : a->sum;
  m->cnt[at] += a->count;
placed:
  if (!m->dense)
    m->next[col] = (uint32_t)row + 1;
  /* This rank's next record of this metric is usually the next step's,
   * about one record per metric later: fetch its cells now (a block covers
   * more rows than the caches hold, so they would miss). */
  if ((size_t)row + 1 < m->nrows) {
    __builtin_prefetch(&m->val[at + m->stride], 1);
    if (m->cnt)
      __builtin_prefetch(&m->cnt[at + m->stride], 1);
  }
  return 0;
}

static int on_step(void *ctx, const cairn_rec_step *s) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  if (grow(&b->marks, &b->capmarks, b->nmarks + 1, sizeof *b->marks))
    return b->failed = CAIRN_ENOMEM;
  b->marks[b->nmarks++] = (wal_mark){s->step, s->t_ns, b->rank};
  b->bytes += sizeof *b->marks;
  return 0;
}

static int on_param(void *ctx, const cairn_rec_param *p) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  char *key = dup_n(p->key, p->key_len);
  char *str = p->type == CAIRN_PARAM_STRING ? dup_n(p->str, p->str_len) : dup_s("");
  int rc = CAIRN_ENOMEM;
  if (key && str) {
    cairn_view_param vp = {(int32_t)b->rank, (uint8_t)p->type, key, p->i64, p->f64, str};
    if (p->type != CAIRN_PARAM_DOUBLE)
      vp.f64 = 0;
    if (p->type != CAIRN_PARAM_INT64 && p->type != CAIRN_PARAM_BOOL)
      vp.i64 = 0;
    rc = cairn__view_add_param(b->v, &vp);
  }
  free(key);
  free(str);
  return rc ? (b->failed = rc) : 0;
}

static int on_kv(void *ctx, const char *k, size_t kl, const char *val, size_t vl) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  char *key = dup_n(k, kl), *value = dup_n(val, vl);
  int rc = key && value ? cairn__view_add_kv(b->v, (int32_t)b->rank, key, value) : CAIRN_ENOMEM;
  free(key);
  free(value);
  return rc ? (b->failed = rc) : 0;
}

/* An artifact becomes a row of /lineage/artifacts and an INPUT or OUTPUT
 * event of the run (execution 0 until executions are logged). */
static int on_artifact(void *ctx, const cairn_rec_artifact *a) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  char *uri = dup_n(a->uri, a->uri_len), *hash = dup_n(a->hash, a->hash_len),
       *props = dup_n(a->props, a->props_len);
  int rc = CAIRN_ENOMEM;
  if (uri && hash && props) {
    cairn_h5_artifact_row row = {a->id, a->kind, (int32_t)b->rank, a->size, a->t_ns, uri, hash,
                                 props};
    cairn_h5_event_row ev = {a->execution_id, a->id,
                             (uint8_t)(a->role == 1 ? CAIRN_H5_EVENT_INPUT : CAIRN_H5_EVENT_OUTPUT),
                             (int32_t)b->rank, a->t_ns};
    rc = cairn__view_add_artifact(b->v, &row);
    if (rc == CAIRN_OK)
      rc = cairn__view_add_event(b->v, &ev);
  }
  free(uri);
  free(hash);
  free(props);
  return rc ? (b->failed = rc) : 0;
}

/* Stages become /lineage/contexts rows, executions /lineage/executions
 * rows whose end time the EXEC_END record fills in. */
static int on_lineage(void *ctx, const cairn_rec_lineage *l) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  char *name = dup_n(l->name, l->name_len), *text = dup_n(l->text, l->text_len),
       *props = dup_n(l->props, l->props_len), *type = dup_n(l->type, l->type_len),
       *command = dup_n(l->command, l->command_len);
  int rc = name && text && props && type && command ? CAIRN_OK : CAIRN_ENOMEM;
  if (rc == CAIRN_OK && l->what == CAIRN_LIN_CONTEXT) {
    cairn_h5_context_row row = {l->id, name, text, props};
    rc = cairn__view_add_context(b->v, &row);
  } else if (rc == CAIRN_OK && l->what == CAIRN_LIN_EXEC_BEGIN) {
    cairn_h5_execution_row row = {l->id, l->parent, (int32_t)b->rank, l->t_ns, 0,
                                  name,  props,     type,             command};
    rc = cairn__view_add_execution(b->v, &row);
  } else if (rc == CAIRN_OK) {
    for (size_t i = b->v->nexecutions; i-- > 0;)
      if (b->v->executions[i].id == l->id) {
        b->v->executions[i].end_ns = l->t_ns;
        break;
      }
  }
  free(name);
  free(text);
  free(props);
  free(type);
  free(command);
  return rc ? (b->failed = rc) : 0;
}

static int on_counters(void *ctx, const cairn_rec_counters *c) {
  wal_builder *b = ctx;
  if (b->skip_rank)
    return 0;
  wal_rank *w = &b->ranks[b->rank];
  if (c->channel < CAIRN_H5_NCHANNELS) {
    w->ctr[c->channel] = *c; /* cumulative: the last one is the total */
    w->have_ctr = 1;
  }
  return 0;
}

static int name_cmp(const char *a, size_t al, const char *b, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = memcmp(a, b, n);
  return c ? c : (al < bl ? -1 : al > bl);
}

static int cmp_wal_metric(const void *a, const void *b) {
  const wal_metric *x = *(wal_metric *const *)a, *y = *(wal_metric *const *)b;
  return name_cmp(x->name, x->len, y->name, y->len);
}

/* A sort key and the position it came from: qsort by key is stable this
 * way (the position breaks ties). */
typedef struct {
  int64_t key;
  size_t at;
} keyed_at;

static int cmp_keyed_at(const void *a, const void *b) {
  const keyed_at *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->at < y->at ? -1 : x->at > y->at;
}

/* Stable sort of the params and key/values by rank (qsort is not stable:
 * the position breaks ties). */
static int sort_by_rank(cairn_run_view *v) {
  size_t n = v->nparams > v->nkv ? v->nparams : v->nkv;
  keyed_at *ix = malloc((n ? n : 1) * sizeof *ix);
  void *tmp = malloc((n ? n : 1) * (sizeof(cairn_view_param) > sizeof(cairn_view_kv)
                                        ? sizeof(cairn_view_param)
                                        : sizeof(cairn_view_kv)));
  if (!ix || !tmp) {
    free(ix);
    free(tmp);
    return CAIRN_ENOMEM;
  }
  for (size_t i = 0; i < v->nparams; i++)
    ix[i] = (keyed_at){v->params[i].rank, i};
  qsort(ix, v->nparams, sizeof *ix, cmp_keyed_at);
  cairn_view_param *tp = tmp;
  for (size_t i = 0; i < v->nparams; i++)
    tp[i] = v->params[ix[i].at];
  if (v->nparams)
    memcpy(v->params, tp, v->nparams * sizeof *tp);
  for (size_t i = 0; i < v->nkv; i++)
    ix[i] = (keyed_at){v->kv[i].rank, i};
  qsort(ix, v->nkv, sizeof *ix, cmp_keyed_at);
  cairn_view_kv *tk = tmp;
  for (size_t i = 0; i < v->nkv; i++)
    tk[i] = v->kv[ix[i].at];
  if (v->nkv)
    memcpy(v->kv, tk, v->nkv * sizeof *tk);
  free(ix);
  free(tmp);
  return CAIRN_OK;
}

/* How builder columns map to view columns (builder_finish). */
enum { COLS_OTHER, COLS_PERMUTED, COLS_IN_ORDER };

/* Turns one metric's cells into the view's dense [step × rank] sums,
 * steps ascending and columns by rank (means_and_stats divides them). When
 * the rows are in step order (the usual case), the cell arrays become the
 * view's arrays: rows allocated wider than the view (the builder widens by
 * doubling, so a node of 6 or 12 ranks has rows of 8 or 16 cells) are
 * packed down in place, row by row, and columns first seen out of rank
 * order are permuted on the way. Otherwise the cells are copied into new
 * arrays. */
/* Whether finish_metric gives the view m's own cell arrays (rows in step
 * order, every view column in them). */
static int cells_in_place(const wal_metric *wm, int cols, size_t ncols) {
  return !wm->unordered && wm->stride >= ncols && cols != COLS_OTHER;
}

/* Whether m, finished in place, takes the view's ones as its samples: lazy
 * and every cell filled. finish_prepare sizes the ones by this. */
static int shares_ones(const wal_metric *wm, int cols, size_t ncols) {
  return wm->lazy && cells_in_place(wm, cols, ncols) &&
         wm->filled == (uint64_t)(wm->nrows * ncols);
}

static int finish_metric(wal_metric *wm, cairn_view_metric *m, const size_t *perm,
                         int cols, size_t ncols, int stats, const uint32_t *ones) {
  size_t n = wm->nrows;
  int lazy = wm->lazy;
  char *name = m->name; /* moved in by finish_prepare; alloc failing frees it */
  size_t name_len = m->name_len;
  /* When the view takes the builder's cell arrays (below), it takes its
   * steps array too: mapped and warm, where a new one would be neither. */
  int in_place = cells_in_place(wm, cols, ncols);
  int shared = shares_ones(wm, cols, ncols);
  int rc = metric_alloc(m, n, ncols, 0, in_place && n ? wm->steps : NULL, stats);
  if (rc)
    return rc;
  if (in_place && n)
    wm->steps = NULL;
  m->name = name;
  m->name_len = name_len;
  size_t cells = n * ncols;
  if (in_place) {
    /* Rows already in step order: the view takes the builder's arrays.
     * Row i moves from i * stride to i * ncols, in ascending order, so it
     * never lands on a row not yet moved (ncols <= stride); columns in
     * first-seen order are put in rank order on the way. */
    size_t stride = wm->stride;
    if (cols == COLS_PERMUTED && cells) {
      double *tv = malloc(ncols * sizeof *tv);
      uint32_t *tc = lazy ? NULL : malloc(ncols * sizeof *tc);
      if (!tv || (!lazy && !tc)) {
        free(tv);
        free(tc);
        return CAIRN_ENOMEM;
      }
      for (size_t i = 0; i < n; i++) {
        const double *rv = wm->val + i * stride;
        for (size_t j = 0; j < ncols; j++)
          tv[perm[j]] = rv[j];
        memcpy(wm->val + i * ncols, tv, ncols * sizeof *tv);
        if (lazy)
          continue;
        const uint32_t *rn = wm->cnt + i * stride;
        for (size_t j = 0; j < ncols; j++)
          tc[perm[j]] = rn[j];
        memcpy(wm->cnt + i * ncols, tc, ncols * sizeof *tc);
      }
      free(tv);
      free(tc);
    } else if (stride > ncols) {
      for (size_t i = 1; i < n; i++) {
        memmove(wm->val + i * ncols, wm->val + i * stride, ncols * sizeof *wm->val);
        if (!lazy)
          memmove(wm->cnt + i * ncols, wm->cnt + i * stride, ncols * sizeof *wm->cnt);
      }
    }
    m->values = cells ? cairn__huge_realloc(wm->val, cells * sizeof *m->values) : NULL;
    if (!lazy)
      m->samples = cells ? cairn__huge_realloc(wm->cnt, cells * sizeof *m->samples) : NULL;
    if (!cells) {
      cairn__huge_free(wm->val);
      cairn__huge_free(wm->cnt);
      m->values = malloc(sizeof *m->values);
      m->samples = malloc(sizeof *m->samples);
    }
    /* realloc to a smaller size only fails by returning NULL: keep the
     * larger block then */
    if (cells && !m->values)
      m->values = wm->val;
    if (cells && !lazy && !m->samples)
      m->samples = wm->cnt;
    wm->val = NULL;
    wm->cnt = NULL;
    if (cells && lazy) {
      /* every cell filled: the view's ones; else 1 where filled */
      if (shared) {
        m->samples = (uint32_t *)ones;
        m->samples_shared = 1;
      } else if ((m->samples = cairn__huge_malloc(cells * sizeof *m->samples)) != NULL) {
        for (size_t i = 0; i < cells; i++)
          m->samples[i] = !cell_empty(m->values[i]);
      }
    }
    if (!m->values || !m->samples)
      return CAIRN_ENOMEM;
  } else {
    keyed_at *ord = malloc((n ? n : 1) * sizeof *ord);
    m->values = cairn__huge_malloc((cells ? cells : 1) * sizeof *m->values);
    m->samples = cairn__huge_calloc(cells ? cells : 1, sizeof *m->samples);
    if (!ord || !m->values || !m->samples) {
      free(ord);
      return CAIRN_ENOMEM;
    }
    for (size_t r = 0; r < n; r++)
      ord[r] = (keyed_at){wm->steps[r], r};
    if (wm->unordered)
      qsort(ord, n, sizeof *ord, cmp_keyed_at);
    size_t used = wm->stride < ncols ? wm->stride : ncols;
    for (size_t i = 0; i < n; i++) {
      m->step[i] = ord[i].key;
      const double *sv = wm->val + ord[i].at * wm->stride;
      double *dv = m->values + i * ncols;
      uint32_t *dc = m->samples + i * ncols;
      if (lazy) {
        for (size_t j = 0; j < used; j++) {
          dv[perm[j]] = sv[j];
          dc[perm[j]] = !cell_empty(sv[j]);
        }
        continue;
      }
      const uint32_t *sc = wm->cnt + ord[i].at * wm->stride;
      for (size_t j = 0; j < used; j++) {
        dv[perm[j]] = sv[j];
        dc[perm[j]] = sc[j];
      }
    }
    free(ord);
    cairn__huge_free(wm->val);
    cairn__huge_free(wm->cnt);
    wm->val = NULL;
    wm->cnt = NULL;
  }
  cairn__huge_free(wm->steps);
  free(wm->rowhash);
  free(wm->next);
  wm->steps = NULL;
  wm->rowhash = NULL;
  wm->next = NULL;
  return CAIRN_OK;
}

/* Divides each cell's sum by its samples (NaN without any) and computes the
 * row's statistics (unless the metric has no arrays for them), and whether
 * its values fit float32, while the row is in cache. */
static void means_and_stats(cairn_view_metric *m, const int32_t *col_rank, size_t ncols) {
  m->missing = 0;
  int fits = 1;
  for (size_t i = 0; i < m->nsteps; i++) {
    double *v = m->values + i * ncols;
    const uint32_t *n = m->samples + i * ncols;
    for (size_t c = 0; c < ncols; c++) {
      double x = n[c] ? v[c] / n[c] : NAN;
      v[c] = x;
      fits &= (isnan(x) != 0) | ((double)(float)x == x); /* as cairn__h5_fits_f32 */
    }
    uint32_t count = 0;
    if (m->count) {
      cairn__view_stats_row(v, n, col_rank, ncols, &m->count[i], &m->sum[i], &m->sumsq[i],
                            &m->min[i], &m->max[i], &m->rank_min[i], &m->rank_max[i]);
      count = m->count[i];
    } else {
      for (size_t c = 0; c < ncols; c++)
        count += n[c] != 0;
    }
    m->missing += ncols - count;
  }
  m->f32 = fits ? 2 : 1;
}

/* Views of at least this many cells are finished on several threads. */
#define FINISH_PARALLEL_CELLS (1u << 15)
#define FINISH_MAX_THREADS 7u

/* What finishing the metrics needs once the rest of the view is done. */
typedef struct {
  size_t *order; /* view metric index -> builder metric index */
  size_t *perm;  /* builder column -> view column             */
  int cols;      /* COLS_*                                    */
  size_t ncols;
} finish_plan;

typedef struct {
  wal_builder *b;      /* its view (b->v) gets the finished metrics */
  const finish_plan *fp;
  _Atomic size_t next; /* next metric (view index) to finish */
  size_t end;          /* one past the last one of this range */
  _Atomic int rc;
} finish_work;

static void *finish_worker(void *arg) {
  finish_work *w = arg;
  for (;;) {
    size_t k = atomic_fetch_add(&w->next, 1);
    if (k >= w->end || atomic_load(&w->rc) != CAIRN_OK)
      return NULL;
    const finish_plan *fp = w->fp;
    cairn_view_metric *m = &w->b->v->metrics[k];
    int rc = finish_metric(&w->b->m[fp->order[k]], m, fp->perm, fp->cols, fp->ncols,
                           !w->b->values_only, w->b->v->ones);
    if (rc != CAIRN_OK) {
      int ok = CAIRN_OK;
      atomic_compare_exchange_strong(&w->rc, &ok, rc);
      return NULL;
    }
    means_and_stats(m, w->b->v->col_rank, fp->ncols);
  }
}

static void finish_plan_free(finish_plan *fp) {
  free(fp->order);
  free(fp->perm);
  fp->order = fp->perm = NULL;
}

/* Turns what the builder gathered into the view, all but the metrics'
 * arrays: ranks, accounting, step markers, params and key/values, and the
 * metrics' names in byte-wise name order (each metric still empty;
 * finish_range fills them). */
static int finish_prepare(wal_builder *b, finish_plan *fp) {
  cairn_run_view *v = b->v;
  memset(fp, 0, sizeof *fp);
  size_t ncols = 0;
  for (size_t r = 0; r < b->nranks_cap; r++)
    ncols += b->ranks[r].seen != 0;
  v->ncols = ncols;
  v->col_rank = malloc((ncols ? ncols : 1) * sizeof *v->col_rank);
  v->ranks = calloc(ncols ? ncols : 1, sizeof *v->ranks);
  v->acct = calloc((ncols ? ncols : 1) * CAIRN_H5_NCHANNELS, sizeof *v->acct);
  v->acct_reported = calloc(ncols ? ncols : 1, 1);
  /* rank -> column, for the cells */
  int32_t *col_of = malloc((b->nranks_cap ? b->nranks_cap : 1) * sizeof *col_of);
  if (!v->col_rank || !v->ranks || !v->acct || !v->acct_reported || !col_of) {
    free(col_of);
    return CAIRN_ENOMEM;
  }
  size_t c = 0;
  for (size_t r = 0; r < b->nranks_cap; r++) {
    wal_rank *w = &b->ranks[r];
    col_of[r] = -1;
    if (!w->seen)
      continue;
    col_of[r] = (int32_t)c;
    v->col_rank[c] = (int32_t)r;
    v->ranks[c].hostname = w->hostname ? w->hostname : dup_s("");
    w->hostname = NULL;
    if (!v->ranks[c].hostname)
      return CAIRN_ENOMEM;
    v->ranks[c].pid = w->pid;
    v->ranks[c].start_ns = w->start_ns;
    if (w->have_ctr) {
      v->acct_reported[c] = 1;
      for (int ch = 0; ch < CAIRN_H5_NCHANNELS; ch++)
        v->acct[c * CAIRN_H5_NCHANNELS + (size_t)ch] =
            (cairn_view_acct){w->ctr[ch].logged, w->ctr[ch].written, w->ctr[ch].dropped,
                              w->ctr[ch].rejected};
    }
    if (w->have_run) {
      if (!v->have_run_id) {
        memcpy(v->run_id, w->run_id, 16);
        v->have_run_id = 1;
        snprintf(v->cairn_version, sizeof v->cairn_version, "%s", w->version);
      } else if (memcmp(v->run_id, w->run_id, 16) != 0) {
        report_msg(b->rep, "rank %zu: segments belong to a different run id than rank %" PRId32
                   "'s; kept, but the directory mixes runs", r, v->col_rank[0]);
      }
      if (w->nranks > v->nranks)
        v->nranks = w->nranks;
      if (w->start_ns && (!v->created_ns || w->start_ns < v->created_ns))
        v->created_ns = w->start_ns;
    }
    if (r + 1 > v->nranks)
      v->nranks = (uint32_t)r + 1;
    c++;
  }
  v->naggregators = b->writers; /* each WAL writer is an aggregator */
  v->group = 0;
  v->detail = 1;
  v->source |= CAIRN_VIEW_FROM_WAL;
  if (b->rep)
    b->rep->wal_ranks += (uint32_t)ncols;

  /* Metrics in byte-wise name order (the file's metric index order). */
  size_t *order = malloc((b->nm ? b->nm : 1) * sizeof *order);
  v->metrics = calloc(b->nm ? b->nm : 1, sizeof *v->metrics);
  if (!order || !v->metrics) {
    free(order);
    free(col_of);
    return CAIRN_ENOMEM;
  }
  {
    wal_metric **pm = malloc((b->nm ? b->nm : 1) * sizeof *pm);
    if (!pm) {
      free(order);
      free(col_of);
      return CAIRN_ENOMEM;
    }
    for (size_t i = 0; i < b->nm; i++)
      pm[i] = &b->m[i];
    qsort(pm, b->nm, sizeof *pm, cmp_wal_metric);
    for (size_t i = 0; i < b->nm; i++)
      order[i] = (size_t)(pm[i] - b->m);
    free(pm);
  }
  /* builder column -> view column */
  size_t *perm = malloc((b->ncols ? b->ncols : 1) * sizeof *perm);
  if (!perm) {
    free(order);
    free(col_of);
    return CAIRN_ENOMEM;
  }
  int in_order = 1;
  for (size_t j = 0; j < b->ncols; j++) {
    perm[j] = (size_t)col_of[b->col_rank[j]];
    in_order &= perm[j] == j;
  }
  /* Every builder column is a view column (perm is a permutation) unless
   * the counts differ. */
  fp->cols = b->ncols != ncols ? COLS_OTHER : in_order ? COLS_IN_ORDER : COLS_PERMUTED;
  fp->order = order;
  fp->perm = perm;
  fp->ncols = ncols;
  /* The ones that lazy metrics with every cell filled share as samples,
   * as many as the largest of them needs (finish_metric). */
  size_t most = 0;
  for (size_t i = 0; i < b->nm; i++)
    if (shares_ones(&b->m[i], fp->cols, ncols) && b->m[i].nrows * ncols > most)
      most = b->m[i].nrows * ncols;
  if (most) {
    v->ones = cairn__huge_malloc(most * sizeof *v->ones);
    if (!v->ones) {
      free(col_of);
      return CAIRN_ENOMEM;
    }
    for (size_t i = 0; i < most; i++)
      v->ones[i] = 1;
  }
  /* Names move into the view now (the tables of a streamed write list
   * every metric before any metric's data is finished). Entries never
   * finished keep only their name, which cairn__view_free accepts. */
  v->nmetrics = b->nm;
  for (size_t k = 0; k < b->nm; k++) {
    wal_metric *wm = &b->m[order[k]];
    v->metrics[k].name = wm->name;
    v->metrics[k].name_len = wm->len;
    wm->name = NULL;
  }
  /* Step markers: keep each rank's earliest marker of a step (several
   * threads may mark the same step; the first one is when it began). */
  step_index ix;
  int rc = step_index_build(&ix, b->marks, sizeof *b->marks, b->nmarks);
  if (rc == CAIRN_OK) {
    v->nmarks = ix.nuniq;
    v->mark_step = malloc((ix.nuniq ? ix.nuniq : 1) * sizeof *v->mark_step);
    v->mark_time = calloc((ix.nuniq ? ix.nuniq : 1) * (ncols ? ncols : 1), sizeof *v->mark_time);
    if (!v->mark_step || !v->mark_time) {
      rc = CAIRN_ENOMEM;
    } else {
      memcpy(v->mark_step, ix.uniq, ix.nuniq * sizeof *v->mark_step);
      for (size_t i = 0; i < b->nmarks; i++) {
        const wal_mark *mk = &b->marks[i];
        uint64_t *t = &v->mark_time[step_index_row(&ix, mk->step) * ncols +
                                    (size_t)col_of[mk->rank]];
        if (*t == 0 || mk->t_ns < *t)
          *t = mk->t_ns;
      }
    }
    step_index_free(&ix);
  }
  free(col_of);
  /* An aggregator's log interleaves its ranks' blocks: order params and
   * key/values by rank, keeping each rank's records in the order logged. */
  if (rc == CAIRN_OK)
    rc = sort_by_rank(v);
  return rc;
}

/* Finishes the view's metrics k0 .. k1-1 (view order): per-rank means and
 * per-step statistics. Metrics are independent: large ranges are finished
 * on every CPU the process may use (finalize waits for this). Each builder
 * metric finished gives its cells to the view or frees them. */
static int finish_range(wal_builder *b, const finish_plan *fp, size_t k0, size_t k1) {
  finish_work fw = {b, fp, k0, k1, CAIRN_OK};
  size_t cells = 0;
  for (size_t k = k0; k < k1; k++)
    cells += b->m[fp->order[k]].nrows * fp->ncols;
  unsigned extra = cells >= FINISH_PARALLEL_CELLS ? cairn__usable_cpus() - 1 : 0;
  if (extra > FINISH_MAX_THREADS)
    extra = FINISH_MAX_THREADS;
  if (extra >= k1 - k0)
    extra = k1 > k0 ? (unsigned)(k1 - k0) - 1 : 0;
  pthread_t th[FINISH_MAX_THREADS];
  unsigned started = 0;
  while (started < extra && pthread_create(&th[started], NULL, finish_worker, &fw) == 0)
    started++;
  finish_worker(&fw);
  for (unsigned i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  return atomic_load(&fw.rc);
}

/* Turns what the builder gathered into the view's dense arrays. */
static int builder_finish(wal_builder *b) {
  finish_plan fp;
  int rc = finish_prepare(b, &fp);
  if (rc == CAIRN_OK)
    rc = finish_range(b, &fp, 0, b->nm);
  finish_plan_free(&fp);
  return rc;
}

static void builder_free(wal_builder *b) {
  for (size_t i = 0; i < b->nm; i++) {
    free(b->m[i].name);
    cairn__huge_free(b->m[i].steps);
    free(b->m[i].rowhash);
    cairn__huge_free(b->m[i].val);
    cairn__huge_free(b->m[i].cnt);
    free(b->m[i].next);
  }
  free(b->m);
  free(b->hash);
  free(b->marks);
  free(b->col_rank);
  for (size_t r = 0; r < b->nranks_cap; r++) {
    free(b->ranks[r].hostname);
    free(b->ranks[r].idmap);
  }
  free(b->ranks);
}

/* Reads the segments of one writer (only_writer >= 0) or of all. */
static cairn_rec_visitor builder_visitor(wal_builder *b) {
  return (cairn_rec_visitor){b,        on_run, on_name,     on_metric, on_step,
                             on_param, on_kv,  on_counters, on_source, on_artifact,
                             on_lineage};
}

struct cairn_view_pending {
  wal_builder b;  /* the cells of the metrics not finished yet */
  finish_plan fp;
  size_t done;    /* metrics finished (handed out) so far      */
};

/* Takes a builder whose view has had finish_prepare: the metrics are
 * finished later, in ranges, by cairn__view_pending_fill. */
static int pending_take(wal_builder *b, cairn_view_pending **out) {
  cairn_view_pending *p = calloc(1, sizeof *p);
  if (!p)
    return CAIRN_ENOMEM;
  p->b = *b;
  int rc = finish_prepare(&p->b, &p->fp);
  if (rc != CAIRN_OK) {
    finish_plan_free(&p->fp);
    free(p);
    return rc; /* *b still owns the cells: the caller frees it */
  }
  memset(b, 0, sizeof *b);
  *out = p;
  return CAIRN_OK;
}

static int from_wal(const char *dir, long only_writer, uint64_t limit, cairn_run_view *view,
                    cairn_run_report *report, int (*skip)(void *ctx, uint32_t rank),
                    void *skip_ctx, cairn_view_pending **pending) {
  cairn__view_init(view);
  char err[1024] = "";
  cairn_run_file *files;
  size_t nfiles;
  int rc = cairn__run_list_files(dir, &files, &nfiles, NULL, err, sizeof err);
  if (rc != CAIRN_OK) {
    report_msg(report, "%s", err);
    return rc;
  }
  /* WAL segments sort last, by rank then sequence. */
  size_t first = 0;
  while (first < nfiles && files[first].kind != CAIRN_FILE_WAL)
    first++;
  size_t n = nfiles - first;
  wal_builder b = {.v = view, .rep = report, .skip = skip, .skip_ctx = skip_ctx};
  cairn_rec_visitor vis = builder_visitor(&b);
  uint32_t last_writer = UINT32_MAX;
  size_t used = 0;
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
    cairn_wal_reader *r;
    cairn_wal_segment_info info;
    err[0] = '\0';
    const char *path = files[first + i].path;
    int orc = cairn__wal_reader_open(&r, path, &info, err, sizeof err);
    if (orc != CAIRN_OK) {
      if (report)
        report->wal.bad_files++;
      report_msg(report, "%s", err[0] ? err : cairn_strerror(orc));
      if (orc == CAIRN_ENOMEM)
        rc = orc;
      continue;
    }
    if (only_writer >= 0 && info.rank != (uint32_t)only_writer) {
      cairn__wal_reader_close(r);
      continue;
    }
    if (info.rank != last_writer) {
      b.writers++;
      last_writer = info.rank;
    }
    used++;
    b.path = path;
    b.seg_rank = info.rank;
    if (report)
      report->wal.segments++;
    for (;;) {
      uint16_t type;
      const void *payload;
      size_t len;
      err[0] = '\0';
      int nrc = cairn__wal_reader_next(r, &type, &payload, &len, err, sizeof err);
      if (err[0])
        report_msg(report, "%s", err);
      if (nrc <= 0) {
        if (nrc < 0)
          rc = nrc;
        break;
      }
      if (type != CAIRN_WAL_BLOCK_DATA)
        continue;
      /* A block without a SOURCE section is its writer's own. */
      if (set_rank(&b, b.seg_rank) != 0) {
        rc = b.failed;
        break;
      }
      char derr[512] = "";
      int drc = cairn__rec_decode(payload, len, &vis, derr, sizeof derr);
      if (b.failed) {
        rc = b.failed;
        break;
      }
      if (drc == CAIRN_ECORRUPT) {
        /* Records before the bad one were delivered; the rest of the
         * block is lost, and said so. */
        if (report)
          report->wal.bad_blocks++;
        report_msg(report, "%s: block content does not decode: %s", path, derr);
      } else if (drc != CAIRN_OK) {
        rc = drc;
        break;
      } else if (report) {
        report->wal.blocks++;
      }
      if (limit && b.bytes > limit) {
        if (report)
          report->over_limit = b.bytes;
        rc = CAIRN_ENOMEM;
        break;
      }
    }
    cairn_wal_damage wd;
    cairn__wal_reader_damage(r, &wd);
    if (report) {
      report->wal.corrupt_regions += wd.corrupt_regions;
      report->wal.bytes_skipped += wd.bytes_skipped;
      report->wal.torn_tails += wd.torn_tail != 0;
    }
    cairn__wal_reader_close(r);
  }
  cairn__run_files_free(files, nfiles);
  if (rc == CAIRN_OK && used == 0)
    rc = CAIRN_ENOTFOUND;
  if (rc == CAIRN_OK)
    rc = pending ? pending_take(&b, pending) : builder_finish(&b);
  if (rc == CAIRN_OK && view->ncols == 0)
    rc = CAIRN_ENOTFOUND; /* every rank was skipped */
  builder_free(&b);
  if (rc != CAIRN_OK) {
    if (pending && *pending) {
      cairn__view_pending_free(*pending);
      *pending = NULL;
    }
    cairn__view_free(view);
  }
  return rc;
}

int cairn__view_from_wal(const char *dir, cairn_run_view *view, cairn_run_report *report,
                         int (*skip)(void *ctx, uint32_t rank), void *skip_ctx) {
  return from_wal(dir, -1, 0, view, report, skip, skip_ctx, NULL);
}

int cairn__view_from_wal_of(const char *dir, uint32_t writer, cairn_run_view *view,
                            cairn_run_report *report) {
  return from_wal(dir, (long)writer, 0, view, report, NULL, NULL, NULL);
}

int cairn__view_from_wal_pending(const char *dir, long writer, uint64_t limit,
                                 cairn_run_view *view, cairn_run_report *report,
                                 cairn_view_pending **pending) {
  *pending = NULL;
  return from_wal(dir, writer, limit, view, report, NULL, NULL, pending);
}

/* What a finished metric of n rows holds: step and statistics per row,
 * mean and sample count per cell. */
static size_t finished_bytes(size_t nrows, size_t ncols) {
  return nrows * (sizeof(int64_t) + sizeof(uint32_t) + 4 * sizeof(double) +
                  2 * sizeof(int32_t) + ncols * (sizeof(double) + sizeof(uint32_t)));
}

int cairn__view_pending_fill(cairn_view_pending *p, size_t budget, size_t *next) {
  wal_builder *b = &p->b;
  size_t k0 = p->done, k1 = k0, bytes = 0;
  while (k1 < b->nm) {
    size_t mb = finished_bytes(b->m[p->fp.order[k1]].nrows, p->fp.ncols);
    if (k1 > k0 && bytes + mb > budget)
      break;
    bytes += mb;
    k1++;
  }
  int rc = k1 > k0 ? finish_range(b, &p->fp, k0, k1) : CAIRN_OK;
  p->done = k1;
  *next = k1;
  return rc;
}

void cairn__view_pending_free(cairn_view_pending *p) {
  if (!p)
    return;
  builder_free(&p->b);
  finish_plan_free(&p->fp);
  free(p);
}

struct cairn_view_builder {
  wal_builder b;
  cairn_run_view v;
  uint32_t last_writer;
  size_t blocks;
};

int cairn__view_builder_new(cairn_view_builder **out) {
  cairn_view_builder *vb = calloc(1, sizeof *vb);
  if (!vb)
    return CAIRN_ENOMEM;
  cairn__view_init(&vb->v);
  vb->b.v = &vb->v;
  vb->b.path = "block in memory";
  vb->last_writer = UINT32_MAX;
  *out = vb;
  return CAIRN_OK;
}

void cairn__view_builder_expect_ranks(cairn_view_builder *vb, size_t nranks) {
  vb->b.expect_cols = nranks;
}

void cairn__view_builder_values_only(cairn_view_builder *vb) { vb->b.values_only = 1; }

int cairn__view_builder_add(cairn_view_builder *vb, uint32_t writer, const void *payload,
                            size_t len, char *err, size_t errlen) {
  wal_builder *b = &vb->b;
  if (b->failed)
    return b->failed;
  if (writer != vb->last_writer) {
    b->writers++;
    vb->last_writer = writer;
  }
  b->seg_rank = writer;
  if (set_rank(b, writer) != 0)
    return b->failed;
  cairn_rec_visitor vis = builder_visitor(b);
  int rc = cairn__rec_decode(payload, len, &vis, err, errlen);
  if (b->failed)
    return b->failed;
  vb->blocks++;
  return rc;
}

size_t cairn__view_builder_bytes(const cairn_view_builder *vb) { return vb->b.bytes; }

int cairn__view_builder_finish(cairn_view_builder *vb, cairn_run_view *view) {
  /* The streamed finish with every metric in one range. */
  cairn_view_pending *p;
  size_t next;
  int rc = cairn__view_builder_finish_pending(vb, view, &p);
  if (rc == CAIRN_OK)
    rc = cairn__view_pending_fill(p, SIZE_MAX, &next);
  cairn__view_pending_free(p);
  if (rc != CAIRN_OK)
    cairn__view_free(view);
  return rc;
}

int cairn__view_builder_finish_pending(cairn_view_builder *vb, cairn_run_view *view,
                                       cairn_view_pending **pending) {
  *pending = NULL;
  int rc = vb->b.failed;
  if (rc == CAIRN_OK && vb->blocks == 0)
    rc = CAIRN_ENOTFOUND;
  /* The view moves to the caller's (stable) address before the builder's
   * view pointer is used again. */
  *view = vb->v;
  cairn__view_init(&vb->v);
  vb->b.v = view;
  if (rc == CAIRN_OK)
    rc = pending_take(&vb->b, pending);
  if (rc == CAIRN_OK && view->ncols == 0)
    rc = CAIRN_ENOTFOUND;
  if (rc != CAIRN_OK) {
    cairn__view_pending_free(*pending);
    *pending = NULL;
    cairn__view_free(view);
  }
  builder_free(&vb->b);
  free(vb);
  return rc;
}

void cairn__view_builder_free(cairn_view_builder *vb) {
  if (!vb)
    return;
  builder_free(&vb->b);
  cairn__view_free(&vb->v);
  free(vb);
}

/* ---------------------------------------------------------------------- */
/* Merging views of disjoint ranks                                         */
/* ---------------------------------------------------------------------- */

/* Union of two ascending step arrays; *ia / *ib give each input's row in it. */
static int union_steps(const int64_t *a, size_t na, const int64_t *b, size_t nb,
                       int64_t **out, size_t *nout, size_t **ia, size_t **ib) {
  *out = malloc((na + nb ? na + nb : 1) * sizeof **out);
  *ia = malloc((na ? na : 1) * sizeof **ia);
  *ib = malloc((nb ? nb : 1) * sizeof **ib);
  if (!*out || !*ia || !*ib) {
    free(*out);
    free(*ia);
    free(*ib);
    return CAIRN_ENOMEM;
  }
  size_t i = 0, j = 0, k = 0;
  while (i < na || j < nb) {
    if (j == nb || (i < na && a[i] < b[j])) {
      (*ia)[i++] = k;
      (*out)[k++] = a[i - 1];
    } else if (i == na || b[j] < a[i]) {
      (*ib)[j++] = k;
      (*out)[k++] = b[j - 1];
    } else {
      (*ia)[i++] = k;
      (*ib)[j++] = k;
      (*out)[k++] = a[i - 1];
    }
  }
  *nout = k;
  return CAIRN_OK;
}

/* 1 if some row of x (rows mapped through ix, ascending) landed on o. */
static int ix_has(const size_t *ix, size_t n, size_t o) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ix[mid] < o)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && ix[lo] == o;
}

/* Combines metric x (columns xcol -> new) and y into *out over ncols. Any
 * of x, y may be NULL. */
static int merge_metric(cairn_view_metric *out, cairn_view_metric *x, const size_t *xcol,
                        size_t xn, cairn_view_metric *y, const size_t *ycol, size_t yn,
                        size_t ncols, int detail) {
  static const int64_t none = 0;
  int64_t *steps;
  size_t nsteps, *ix, *iy;
  int rc = union_steps(x ? x->step : &none, x ? x->nsteps : 0, y ? y->step : &none,
                       y ? y->nsteps : 0, &steps, &nsteps, &ix, &iy);
  if (rc)
    return rc;
  rc = cairn__view_metric_alloc(out, nsteps, ncols, detail);
  if (rc) {
    free(steps);
    free(ix);
    free(iy);
    return rc;
  }
  memcpy(out->step, steps, nsteps * sizeof *steps);
  free(steps);
  for (size_t i = 0; i < nsteps; i++) {
    out->count[i] = 0;
    out->sum[i] = out->sumsq[i] = 0;
    out->min[i] = out->max[i] = NAN;
    out->rank_min[i] = out->rank_max[i] = -1;
  }
  if (detail) {
    for (size_t i = 0; i < nsteps * ncols; i++) {
      out->values[i] = NAN;
      out->samples[i] = 0;
    }
  }
  cairn_view_metric *src[2] = {x, y};
  const size_t *map[2] = {ix, iy}, *cols[2] = {xcol, ycol};
  size_t nc[2] = {xn, yn};
  for (int s = 0; s < 2; s++) {
    cairn_view_metric *m = src[s];
    if (!m)
      continue;
    for (size_t i = 0; i < m->nsteps; i++) {
      size_t o = map[s][i];
      /* a row only one side holds is copied as is (keeps -0.0 sums) */
      int first = s == 0 || !x || ix_has(ix, x->nsteps, o) == 0;
      out->count[o] += m->count[i];
      out->sum[o] = first ? m->sum[i] : out->sum[o] + m->sum[i];
      out->sumsq[o] = first ? m->sumsq[i] : out->sumsq[o] + m->sumsq[i];
      /* lower rank wins ties, as in cairn__view_stats_row */
      if (m->rank_min[i] >= 0 &&
          (out->rank_min[o] < 0 || m->min[i] < out->min[o] ||
           (m->min[i] == out->min[o] && m->rank_min[i] < out->rank_min[o]))) {
        out->min[o] = m->min[i];
        out->rank_min[o] = m->rank_min[i];
      }
      if (m->rank_max[i] >= 0 &&
          (out->rank_max[o] < 0 || m->max[i] > out->max[o] ||
           (m->max[i] == out->max[o] && m->rank_max[i] < out->rank_max[o]))) {
        out->max[o] = m->max[i];
        out->rank_max[o] = m->rank_max[i];
      }
      if (detail)
        for (size_t c = 0; c < nc[s]; c++) {
          out->values[o * ncols + cols[s][c]] = m->values[i * nc[s] + c];
          out->samples[o * ncols + cols[s][c]] = m->samples[i * nc[s] + c];
        }
    }
  }
  out->missing = 0;
  for (size_t i = 0; i < nsteps; i++)
    out->missing += ncols - out->count[i];
  free(ix);
  free(iy);
  return CAIRN_OK;
}

int cairn__view_merge(cairn_run_view *dst, cairn_run_view *src) {
  if (dst->ncols == 0 && dst->nmetrics == 0 && dst->nparams == 0 && dst->nkv == 0 &&
      dst->nartifacts + dst->nexecutions + dst->nevents + dst->ncontexts == 0) {
    cairn__view_free(dst);
    *dst = *src;
    cairn__view_init(src);
    return CAIRN_OK;
  }
  /* Column union; the inputs are ascending and must be disjoint. */
  size_t na = dst->ncols, nb = src->ncols, n = na + nb;
  size_t *ca = malloc((na ? na : 1) * sizeof *ca), *cb = malloc((nb ? nb : 1) * sizeof *cb);
  int32_t *col_rank = malloc((n ? n : 1) * sizeof *col_rank);
  cairn_view_rank *ranks = calloc(n ? n : 1, sizeof *ranks);
  cairn_view_acct *acct = calloc((n ? n : 1) * CAIRN_H5_NCHANNELS, sizeof *acct);
  uint8_t *rep = calloc(n ? n : 1, 1);
  cairn_view_metric *metrics = calloc(dst->nmetrics + src->nmetrics + 1, sizeof *metrics);
  int rc = CAIRN_ENOMEM;
  if (!ca || !cb || !col_rank || !ranks || !acct || !rep || !metrics)
    goto fail;
  {
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < nb) {
      if (i < na && j < nb && dst->col_rank[i] == src->col_rank[j]) {
        rc = CAIRN_EINVAL;
        goto fail;
      }
      if (j == nb || (i < na && dst->col_rank[i] < src->col_rank[j])) {
        ca[i] = k;
        col_rank[k] = dst->col_rank[i];
        ranks[k] = dst->ranks[i];
        memcpy(&acct[k * CAIRN_H5_NCHANNELS], &dst->acct[i * CAIRN_H5_NCHANNELS],
               CAIRN_H5_NCHANNELS * sizeof *acct);
        rep[k++] = dst->acct_reported[i++];
      } else {
        cb[j] = k;
        col_rank[k] = src->col_rank[j];
        ranks[k] = src->ranks[j];
        memcpy(&acct[k * CAIRN_H5_NCHANNELS], &src->acct[j * CAIRN_H5_NCHANNELS],
               CAIRN_H5_NCHANNELS * sizeof *acct);
        rep[k++] = src->acct_reported[j++];
      }
    }
  }
  int detail = dst->detail && src->detail;
  size_t nm = 0;
  {
    size_t i = 0, j = 0;
    while (i < dst->nmetrics || j < src->nmetrics) {
      cairn_view_metric *x = i < dst->nmetrics ? &dst->metrics[i] : NULL;
      cairn_view_metric *y = j < src->nmetrics ? &src->metrics[j] : NULL;
      int c = !x ? 1 : !y ? -1 : name_cmp(x->name, x->name_len, y->name, y->name_len);
      if (c < 0)
        y = NULL;
      else if (c > 0)
        x = NULL;
      rc = merge_metric(&metrics[nm], x, ca, na, y, cb, nb, n, detail);
      if (rc)
        goto fail_metrics;
      cairn_view_metric *from = x ? x : y;
      metrics[nm].name = dup_n(from->name, from->name_len);
      metrics[nm].name_len = from->name_len;
      nm++;
      if (!metrics[nm - 1].name) {
        rc = CAIRN_ENOMEM;
        goto fail_metrics;
      }
      i += x != NULL;
      j += y != NULL;
    }
  }
  /* Step markers. */
  int64_t *msteps;
  size_t nmarks, *ma, *mb;
  rc = union_steps(dst->mark_step ? dst->mark_step : (int64_t[]){0}, dst->nmarks,
                   src->mark_step ? src->mark_step : (int64_t[]){0}, src->nmarks, &msteps,
                   &nmarks, &ma, &mb);
  if (rc)
    goto fail_metrics;
  uint64_t *mtime = calloc((nmarks ? nmarks : 1) * (n ? n : 1), sizeof *mtime);
  if (!mtime) {
    free(msteps);
    free(ma);
    free(mb);
    rc = CAIRN_ENOMEM;
    goto fail_metrics;
  }
  for (size_t i = 0; i < dst->nmarks; i++)
    for (size_t c = 0; c < na; c++)
      mtime[ma[i] * n + ca[c]] = dst->mark_time[i * na + c];
  for (size_t i = 0; i < src->nmarks; i++)
    for (size_t c = 0; c < nb; c++)
      mtime[mb[i] * n + cb[c]] = src->mark_time[i * nb + c];
  free(ma);
  free(mb);
  /* Tables: params and key/values stay in rank order (ranks are disjoint,
   * so a two-way merge keeps each rank's own order). */
  cairn_view_param *params = malloc((dst->nparams + src->nparams + 1) * sizeof *params);
  cairn_view_kv *kv = malloc((dst->nkv + src->nkv + 1) * sizeof *kv);
  cairn_h5_artifact_row *art =
      malloc((dst->nartifacts + src->nartifacts + 1) * sizeof *art);
  cairn_h5_execution_row *exe =
      malloc((dst->nexecutions + src->nexecutions + 1) * sizeof *exe);
  cairn_h5_event_row *ev = malloc((dst->nevents + src->nevents + 1) * sizeof *ev);
  cairn_h5_context_row *ctx = malloc((dst->ncontexts + src->ncontexts + 1) * sizeof *ctx);
  if (!params || !kv || !art || !exe || !ev || !ctx) {
    free(params);
    free(kv);
    free(art);
    free(exe);
    free(ev);
    free(ctx);
    free(msteps);
    free(mtime);
    rc = CAIRN_ENOMEM;
    goto fail_metrics;
  }
  {
    size_t i = 0, j = 0, k = 0;
    while (i < dst->nparams || j < src->nparams)
      params[k++] = (j == src->nparams ||
                     (i < dst->nparams && dst->params[i].rank <= src->params[j].rank))
                        ? dst->params[i++]
                        : src->params[j++];
    i = j = k = 0;
    while (i < dst->nkv || j < src->nkv)
      kv[k++] = (j == src->nkv || (i < dst->nkv && dst->kv[i].rank <= src->kv[j].rank))
                    ? dst->kv[i++]
                    : src->kv[j++];
  }
#define CONCAT(arr, cnt, out)                                                                  \
  do {                                                                                         \
    if (dst->cnt)                                                                              \
      memcpy(out, dst->arr, dst->cnt * sizeof *out);                                           \
    if (src->cnt)                                                                              \
      memcpy(out + dst->cnt, src->arr, src->cnt * sizeof *out);                                \
  } while (0)
  CONCAT(artifacts, nartifacts, art);
  CONCAT(executions, nexecutions, exe);
  CONCAT(events, nevents, ev);
  CONCAT(contexts, ncontexts, ctx);
#undef CONCAT

  /* Commit: nothing below can fail. Row strings moved, so free shells. */
  cairn_run_view out = *dst;
  out.ncols = n;
  out.col_rank = col_rank;
  out.ranks = ranks;
  out.acct = acct;
  out.acct_reported = rep;
  out.nmetrics = nm;
  out.metrics = metrics;
  out.nmarks = nmarks;
  out.mark_step = msteps;
  out.mark_time = mtime;
  out.nparams = dst->nparams + src->nparams;
  out.params = params;
  out.nkv = dst->nkv + src->nkv;
  out.kv = kv;
  out.nartifacts = dst->nartifacts + src->nartifacts;
  out.artifacts = art;
  out.nexecutions = dst->nexecutions + src->nexecutions;
  out.executions = exe;
  out.nevents = dst->nevents + src->nevents;
  out.events = ev;
  out.ncontexts = dst->ncontexts + src->ncontexts;
  out.contexts = ctx;
  out.cap_.params = out.nparams;
  out.cap_.kv = out.nkv;
  out.cap_.artifacts = out.nartifacts;
  out.cap_.executions = out.nexecutions;
  out.cap_.events = out.nevents;
  out.cap_.contexts = out.ncontexts;
  out.detail = detail;
  out.source = dst->source | src->source;
  if (src->format_version > out.format_version)
    out.format_version = src->format_version;
  if (!out.have_run_id && src->have_run_id) {
    memcpy(out.run_id, src->run_id, 16);
    out.have_run_id = 1;
  }
  if (!out.cairn_version[0])
    memcpy(out.cairn_version, src->cairn_version, sizeof out.cairn_version);
  if (src->created_ns && (!out.created_ns || src->created_ns < out.created_ns))
    out.created_ns = src->created_ns;
  if (src->nranks > out.nranks)
    out.nranks = src->nranks;
  if (src->naggregators > out.naggregators)
    out.naggregators = src->naggregators;
  for (cairn_run_view *w = dst; w; w = w == dst ? src : NULL) {
    for (size_t i = 0; i < w->nmetrics; i++)
      cairn__view_metric_free(&w->metrics[i]);
    free(w->metrics);
    free(w->col_rank);
    free(w->ranks); /* hostnames moved */
    free(w->acct);
    free(w->acct_reported);
    free(w->mark_step);
    free(w->mark_time);
    free(w->params);
    free(w->kv);
    free(w->artifacts);
    free(w->executions);
    free(w->events);
    free(w->contexts);
  }
  *dst = out;
  cairn__view_init(src);
  free(ca);
  free(cb);
  return CAIRN_OK;

fail_metrics:
  for (size_t i = 0; i <= nm && i < dst->nmetrics + src->nmetrics + 1; i++)
    cairn__view_metric_free(&metrics[i]);
fail:
  free(ca);
  free(cb);
  free(col_rank);
  free(ranks);
  free(acct);
  free(rep);
  free(metrics);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Accessors                                                               */
/* ---------------------------------------------------------------------- */

long cairn__view_metric_find(const cairn_run_view *v, const char *name, size_t len) {
  size_t lo = 0, hi = v->nmetrics;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = name_cmp(v->metrics[mid].name, v->metrics[mid].name_len, name, len);
    if (c == 0)
      return (long)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static long find_i64(const int64_t *a, size_t n, int64_t x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && a[lo] == x ? (long)lo : -1;
}

long cairn__view_step_find(const cairn_view_metric *m, int64_t step) {
  return find_i64(m->step, m->nsteps, step);
}

long cairn__view_col_of_rank(const cairn_run_view *v, int32_t rank) {
  size_t lo = 0, hi = v->ncols;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v->col_rank[mid] < rank)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < v->ncols && v->col_rank[lo] == rank ? (long)lo : -1;
}

const cairn_view_param *cairn__view_param_last(const cairn_run_view *v, const char *key,
                                               int32_t rank) {
  for (size_t i = v->nparams; i-- > 0;)
    if ((rank < 0 || v->params[i].rank == rank) && strcmp(v->params[i].key, key) == 0)
      return &v->params[i];
  return NULL;
}

const cairn_view_kv *cairn__view_kv_last(const cairn_run_view *v, const char *key,
                                         int32_t rank) {
  for (size_t i = v->nkv; i-- > 0;)
    if ((rank < 0 || v->kv[i].rank == rank) && strcmp(v->kv[i].key, key) == 0)
      return &v->kv[i];
  return NULL;
}

double cairn__view_step_seconds(const cairn_run_view *v, size_t i, size_t c) {
  if (i + 1 >= v->nmarks || c >= v->ncols)
    return NAN;
  uint64_t a = v->mark_time[i * v->ncols + c], b = v->mark_time[(i + 1) * v->ncols + c];
  if (!a || !b)
    return NAN;
  return ((double)b - (double)a) / 1e9;
}

/* ---------------------------------------------------------------------- */
/* Run directories                                                         */
/* ---------------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b) {
  const cairn_run_file *x = a, *y = b;
  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  if (x->group_or_rank != y->group_or_rank)
    return x->group_or_rank < y->group_or_rank ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void cairn__run_files_free(cairn_run_file *files, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(files[i].path);
  free(files);
}

/* Parses "run-g<group>.h5" exactly; returns 1 and the group on a match. */
static int parse_h5_name(const char *name, uint32_t *group) {
  int used = 0;
  if (sscanf(name, CAIRN_H5_NAME_SCAN, group, &used) != 1 || used == 0 || name[used] != '\0')
    return 0;
  return strncmp(name, "run-g", 5) == 0 && name[5] >= '0' && name[5] <= '9';
}

int cairn__run_list_files(const char *dir, cairn_run_file **files, size_t *n,
                          cairn_run_state *state, char *err, size_t errlen) {
  *files = NULL;
  *n = 0;
  if (state)
    *state = CAIRN_RUN_EMPTY;
  DIR *dp = opendir(dir);
  if (!dp) {
    snprintf(err, errlen, "%s: cannot open run directory: %s", dir, strerror(errno));
    return CAIRN_EIO;
  }
  cairn_run_file *v = NULL;
  size_t len = 0, cap = 0;
  int rc = CAIRN_OK, have_h5 = 0, have_wal = 0;
  size_t tl = strlen(CAIRN_H5_TMP_PREFIX), sl = strlen(CAIRN_H5_TMP_SUFFIX);
  struct dirent *de;
  while ((de = readdir(dp)) != NULL) {
    const char *name = de->d_name;
    size_t nl = strlen(name);
    cairn_run_file f = {0};
    uint32_t a, b;
    int used = 0;
    if (parse_h5_name(name, &a)) {
      f.kind = CAIRN_FILE_H5;
      f.group_or_rank = a;
    } else if (nl > tl + sl && strncmp(name, CAIRN_H5_TMP_PREFIX, tl) == 0 &&
               strcmp(name + nl - sl, CAIRN_H5_TMP_SUFFIX) == 0) {
      char inner[256];
      if (nl - tl - sl >= sizeof inner)
        continue;
      memcpy(inner, name + tl, nl - tl - sl);
      inner[nl - tl - sl] = '\0';
      if (!parse_h5_name(inner, &a))
        continue;
      f.kind = CAIRN_FILE_H5_TMP;
      f.group_or_rank = a;
    } else if (sscanf(name, "wal-r%" SCNu32 "-%" SCNu32 ".cwal%n", &a, &b, &used) == 2 &&
               used > 0 && name[used] == '\0') {
      f.kind = CAIRN_FILE_WAL;
      f.group_or_rank = a;
      f.seq = b;
    } else {
      continue;
    }
    size_t plen = strlen(dir) + 1 + nl + 1;
    f.path = malloc(plen);
    if (!f.path || grow(&v, &cap, len + 1, sizeof *v)) {
      free(f.path);
      rc = CAIRN_ENOMEM;
      break;
    }
    snprintf(f.path, plen, "%s/%s", dir, name);
    struct stat st;
    if (stat(f.path, &st) == 0)
      f.bytes = (uint64_t)st.st_size;
    have_h5 |= f.kind == CAIRN_FILE_H5;
    have_wal |= f.kind == CAIRN_FILE_WAL;
    v[len++] = f;
  }
  closedir(dp);
  if (rc != CAIRN_OK) {
    cairn__run_files_free(v, len);
    return rc;
  }
  if (len)
    qsort(v, len, sizeof *v, cmp_file);
  *files = v;
  *n = len;
  if (state)
    *state = have_h5 && have_wal ? CAIRN_RUN_BOTH
             : have_h5           ? CAIRN_RUN_H5
             : have_wal          ? CAIRN_RUN_WAL_ONLY
                                 : CAIRN_RUN_EMPTY;
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Opening a run                                                           */
/* ---------------------------------------------------------------------- */

typedef struct {
  int32_t *ranks;
  size_t n, cap;
} rank_set;

static int rank_set_add(rank_set *s, const cairn_run_view *v) {
  for (size_t c = 0; c < v->ncols; c++) {
    if (grow(&s->ranks, &s->cap, s->n + 1, sizeof *s->ranks))
      return CAIRN_ENOMEM;
    s->ranks[s->n++] = v->col_rank[c];
  }
  return CAIRN_OK;
}

static int rank_set_skip(void *ctx, uint32_t rank) {
  const rank_set *s = ctx;
  for (size_t i = 0; i < s->n; i++)
    if ((uint32_t)s->ranks[i] == rank)
      return 1;
  return 0;
}

static int views_overlap(const cairn_run_view *a, const cairn_run_view *b) {
  for (size_t c = 0; c < a->ncols; c++)
    if (cairn__view_col_of_rank(b, a->col_rank[c]) >= 0)
      return 1;
  return 0;
}

int cairn__run_open(const char *dir, cairn_run_view *view, cairn_run_report *report) {
  cairn_run_report local = {0};
  if (!report)
    report = &local;
  cairn__view_init(view);
  cairn_run_file *files;
  size_t n;
  cairn_run_state state;
  char err[1024];
  int rc = cairn__run_list_files(dir, &files, &n, &state, err, sizeof err);
  if (rc != CAIRN_OK) {
    report_msg(report, "%s", err);
    return rc;
  }
  if (state == CAIRN_RUN_EMPTY) {
    cairn__run_files_free(files, n);
    report_msg(report, "%s: no run files (run-g*.h5 or wal-r*-*.cwal)", dir);
    return CAIRN_ENOTFOUND;
  }
  rank_set covered = {0};
  cairn_run_view *damaged = NULL; /* partial views of damaged files */
  size_t ndamaged = 0;
  int first_err = CAIRN_OK, read_any = 0;
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
    if (files[i].kind == CAIRN_FILE_H5_TMP) {
      report->tmp_files++;
      report_msg(report, "%s: incomplete temporary file of a writer that did not finish; "
                 "ignored (the write-ahead log is read instead)", files[i].path);
      continue;
    }
    if (files[i].kind != CAIRN_FILE_H5)
      continue;
    cairn_run_view one;
    uint64_t lost_before = report->lost_datasets;
    int frc = cairn__view_from_h5(files[i].path, &one, report);
    if (frc == CAIRN_ENOMEM || frc == CAIRN_EIO) {
      cairn__view_free(&one);
      rc = frc;
      break;
    }
    if (frc != CAIRN_OK || report->lost_datasets != lost_before) {
      if (first_err == CAIRN_OK)
        first_err = frc != CAIRN_OK ? frc : CAIRN_ECORRUPT;
      if (one.ncols == 0) {
        cairn__view_free(&one);
        continue;
      }
      cairn_run_view *nd = realloc(damaged, (ndamaged + 1) * sizeof *nd);
      if (!nd) {
        cairn__view_free(&one);
        rc = CAIRN_ENOMEM;
        break;
      }
      damaged = nd;
      damaged[ndamaged++] = one;
      continue;
    }
    if (views_overlap(view, &one)) {
      report_msg(report, "%s: holds ranks another file of this directory already holds; "
                 "ignored", files[i].path);
      cairn__view_free(&one);
      continue;
    }
    if ((rc = rank_set_add(&covered, &one)) != CAIRN_OK ||
        (rc = cairn__view_merge(view, &one)) != CAIRN_OK) {
      cairn__view_free(&one);
      break;
    }
    read_any = 1;
  }
  /* WAL of every rank no complete file holds: a crashed job, or a group
   * whose file is damaged or missing. */
  if (rc == CAIRN_OK && (state == CAIRN_RUN_WAL_ONLY || state == CAIRN_RUN_BOTH)) {
    cairn_run_view wal;
    int wrc = cairn__view_from_wal(dir, &wal, report, rank_set_skip, &covered);
    if (wrc == CAIRN_OK) {
      for (size_t d = 0; d < ndamaged; d++) {
        if (!views_overlap(&damaged[d], &wal))
          continue;
        report_msg(report, "%s: damaged HDF5 file superseded by the write-ahead log of its "
                   "ranks", dir);
        cairn__view_free(&damaged[d]);
      }
      if ((rc = cairn__view_merge(view, &wal)) == CAIRN_OK)
        read_any = 1;
      cairn__view_free(&wal);
    } else if (wrc != CAIRN_ENOTFOUND) {
      rc = wrc;
    }
  }
  for (size_t d = 0; d < ndamaged; d++) {
    if (rc == CAIRN_OK && damaged[d].ncols && !views_overlap(view, &damaged[d])) {
      if ((rc = cairn__view_merge(view, &damaged[d])) == CAIRN_OK)
        read_any = 1;
    }
    cairn__view_free(&damaged[d]);
  }
  free(damaged);
  free(covered.ranks);
  cairn__run_files_free(files, n);
  if (rc != CAIRN_OK) {
    cairn__view_free(view);
    return rc;
  }
  if (!read_any) {
    cairn__view_free(view);
    return first_err != CAIRN_OK ? first_err : CAIRN_ENOTFOUND;
  }
  return CAIRN_OK;
}
