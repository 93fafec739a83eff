/* h5_writer_mpi.c — the parallel HDF5 run-file writer: the aggregators of
 * one group agree on the file's shapes, exchange what each step's
 * statistics need, write their rank columns collectively through MPI-IO,
 * and process 0 adds the small tables, syncs and renames. */
#include "h5_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "util.h"
#include "h5_layout.h"
#include "h5_schema.h"
#include "h5_writer_internal.h"
#include "h5zstd/h5zstd.h"

/* ---------------------------------------------------------------------- */
/* A byte packer for what travels between processes (native byte order:   */
/* it never leaves the job).                                               */
/* ---------------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} pack;

static void put(pack *b, const void *x, size_t n) {
  if (b->failed || n == 0)
    return;
  if (b->len + n > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 4096;
    while (nc < b->len + n)
      nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->failed = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, x, n);
  b->len += n;
}

static void put_u64(pack *b, uint64_t x) { put(b, &x, sizeof x); }
static void put_str(pack *b, const char *s, size_t n) {
  put_u64(b, n);
  put(b, s, n);
}

typedef struct {
  const char *p;
  size_t len, at;
  int bad;
} unpack;

static void get(unpack *u, void *x, size_t n) {
  if (n == 0)
    return;
  if (u->bad || u->len - u->at < n) {
    u->bad = 1;
    memset(x, 0, n);
    return;
  }
  memcpy(x, u->p + u->at, n);
  u->at += n;
}

static uint64_t get_u64(unpack *u) {
  uint64_t x;
  get(u, &x, sizeof x);
  return x;
}

/* Returns a malloc'd NUL-terminated copy (NULL on error). */
static char *get_str(unpack *u, size_t *len) {
  uint64_t n = get_u64(u);
  if (u->bad || u->len - u->at < n) {
    u->bad = 1;
    return NULL;
  }
  char *s = malloc(n + 1);
  if (!s) {
    u->bad = 1;
    return NULL;
  }
  memcpy(s, u->p + u->at, n);
  s[n] = '\0';
  u->at += n;
  if (len)
    *len = n;
  return s;
}

/* ---------------------------------------------------------------------- */
/* Agreement                                                               */
/* ---------------------------------------------------------------------- */

/* Makes every process return the same code: the first failing process's
 * code and message are broadcast. */
static int agree(MPI_Comm comm, int rc, char *err, size_t errlen) {
  int me, P;
  MPI_Comm_rank(comm, &me);
  MPI_Comm_size(comm, &P);
  int who = rc != CAIRN_OK ? me : P, first;
  MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == P)
    return CAIRN_OK;
  MPI_Bcast(&rc, 1, MPI_INT, first, comm);
  char msg[1024];
  if (me == first)
    snprintf(msg, sizeof msg, "%s", err);
  MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, comm);
  if (me != first)
    snprintf(err, errlen, "aggregator %d: %s", first, msg);
  return rc;
}


/* Gathers every process's blob on every process (*counts and *displs get
 * one entry per process). The caller has already compared the processes'
 * shapes by hash (cairn__h5_write_parallel, step 2): this runs only when
 * they differ. Every process makes the same collective calls and returns
 * the same code. */
static int allgather_blobs(MPI_Comm comm, const pack *mine, char **all, int **counts,
                           int **displs) {
  int P;
  MPI_Comm_size(comm, &P);
  *all = NULL;
  *counts = malloc((size_t)P * sizeof **counts);
  *displs = malloc((size_t)P * sizeof **displs);
  int ok[2] = {*counts && *displs, mine->len <= 0x7fffffff}, all_ok[2];
  MPI_Allreduce(ok, all_ok, 2, MPI_INT, MPI_MIN, comm);
  if (!all_ok[0] || !all_ok[1])
    return all_ok[1] ? CAIRN_ENOMEM : CAIRN_EINVAL;
  int len = (int)mine->len;
  MPI_Allgather(&len, 1, MPI_INT, *counts, 1, MPI_INT, comm);
  long long total = 0;
  for (int p = 0; p < P; p++) {
    (*displs)[p] = (int)total;
    total += (*counts)[p];
  }
  if (total > 0x7fffffff) /* the same on every process */
    return CAIRN_EINVAL;
  *all = malloc(total ? (size_t)total : 1);
  int have = *all != NULL, all_have;
  MPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_MIN, comm);
  if (!all_have)
    return CAIRN_ENOMEM;
  MPI_Allgatherv(mine->p, len, MPI_BYTE, *all, *counts, *displs, MPI_BYTE, comm);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Union of metric names and steps                                         */
/* ---------------------------------------------------------------------- */

typedef struct {
  char *name;
  size_t len;
  int64_t *steps;
  size_t n;
} useries;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_series(const void *a, const void *b) {
  const useries *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

static int strictly_ascending(const int64_t *s, size_t n) {
  for (size_t i = 1; i < n; i++)
    if (s[i] <= s[i - 1])
      return 0;
  return 1;
}

static size_t sort_unique(int64_t *s, size_t n) {
  if (strictly_ascending(s, n)) /* the usual case: one process's steps */
    return n;
  qsort(s, n, sizeof *s, cmp_i64);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (k == 0 || s[k - 1] != s[i])
      s[k++] = s[i];
  return k;
}

static void free_series(useries *s, size_t n) {
  for (size_t i = 0; s && i < n; i++) {
    free(s[i].name);
    free(s[i].steps);
  }
  free(s);
}

/* Blob: u64 nmetrics, then per metric str name, u64 n, i64 steps[n]; then
 * u64 nmarks, i64 marks[nmarks]. */
static void pack_shape(pack *b, const cairn_run_view *v) {
  put_u64(b, v->nmetrics);
  for (size_t i = 0; i < v->nmetrics; i++) {
    put_str(b, v->metrics[i].name, v->metrics[i].name_len);
    put_u64(b, v->metrics[i].nsteps);
    put(b, v->metrics[i].step, v->metrics[i].nsteps * sizeof(int64_t));
  }
  put_u64(b, v->nmarks);
  put(b, v->mark_step, v->nmarks * sizeof(int64_t));
}

/* The shape of a view as pack_shape would write it, hashed where it lies
 * (128 bits, two lanes of xxHash64's round over 64-bit words; every
 * length precedes what it counts, so different shapes make different
 * word streams): what the processes compare before they exchange shapes
 * at all. Not for content identity, nor against shapes crafted to
 * collide (the processes are one job's aggregators): two different
 * shapes hash alike with a chance of the order of 2^-128. */
typedef struct {
  uint64_t a, b, words;
} shape_hash;

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static void sh_word(shape_hash *h, uint64_t w) {
  h->a = rotl64(h->a + w * 0xc2b2ae3d27d4eb4full, 31) * 0x9e3779b185ebca87ull;
  h->b = rotl64(h->b ^ (w * 0x165667b19e3779f9ull), 27) * 0x85ebca77c2b2ae63ull +
         0x27d4eb2f165667c5ull;
  h->words++;
}

static void sh_bytes(shape_hash *h, const void *p, size_t n) {
  const unsigned char *c = p;
  sh_word(h, n);
  for (; n >= 8; n -= 8, c += 8) {
    uint64_t w;
    memcpy(&w, c, 8);
    sh_word(h, w);
  }
  if (n) {
    uint64_t w = 0;
    memcpy(&w, c, n);
    sh_word(h, w);
  }
}

/* Whether v's shape is already what union_shape makes of it alone: names
 * in byte-wise order without repeats, steps and marks strictly
 * ascending. Then, and only then, the hash stands for the shape. */
static int shape_canonical(const cairn_run_view *v) {
  for (size_t i = 0; i < v->nmetrics; i++) {
    const cairn_view_metric *m = &v->metrics[i];
    if (i > 0) {
      useries x = {v->metrics[i - 1].name, v->metrics[i - 1].name_len, NULL, 0};
      useries y = {m->name, m->name_len, NULL, 0};
      if (cmp_series(&x, &y) >= 0)
        return 0;
    }
    if (!strictly_ascending(m->step, m->nsteps))
      return 0;
  }
  return strictly_ascending(v->mark_step, v->nmarks);
}

static void hash_shape(const cairn_run_view *v, uint64_t out[2]) {
  shape_hash h = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0};
  sh_word(&h, v->nmetrics);
  for (size_t i = 0; i < v->nmetrics; i++) {
    const cairn_view_metric *m = &v->metrics[i];
    sh_bytes(&h, m->name, m->name_len);
    sh_bytes(&h, m->step, m->nsteps * sizeof(int64_t));
  }
  sh_bytes(&h, v->mark_step, v->nmarks * sizeof(int64_t));
  out[0] = cairn__mix64(h.a ^ h.words);
  out[1] = cairn__mix64(h.b + rotl64(h.words, 17));
}

/* The shape every process agreed on, taken from v itself (a canonical
 * view whose hash all processes share). */
static int own_shape(const cairn_run_view *v, useries **out, size_t *nout, int64_t **marks,
                     size_t *nmarks) {
  useries *s = calloc(v->nmetrics ? v->nmetrics : 1, sizeof *s);
  int64_t *mk = malloc((v->nmarks ? v->nmarks : 1) * sizeof *mk);
  int rc = s && mk ? CAIRN_OK : CAIRN_ENOMEM;
  size_t n = 0;
  for (; n < v->nmetrics && rc == CAIRN_OK; n++) {
    const cairn_view_metric *m = &v->metrics[n];
    s[n].name = malloc(m->name_len + 1);
    s[n].steps = malloc((m->nsteps ? m->nsteps : 1) * sizeof *s[n].steps);
    if (!s[n].name || !s[n].steps) {
      rc = CAIRN_ENOMEM;
      n++; /* freed with the others */
      break;
    }
    memcpy(s[n].name, m->name, m->name_len);
    s[n].name[m->name_len] = '\0';
    s[n].len = m->name_len;
    if (m->nsteps)
      memcpy(s[n].steps, m->step, m->nsteps * sizeof *s[n].steps);
    s[n].n = m->nsteps;
  }
  if (rc != CAIRN_OK) {
    free_series(s, n);
    free(mk);
    return rc;
  }
  if (v->nmarks)
    memcpy(mk, v->mark_step, v->nmarks * sizeof *mk);
  *out = s;
  *nout = n;
  *marks = mk;
  *nmarks = v->nmarks;
  return CAIRN_OK;
}

/* Decodes every blob and merges: the union of metric names (sorted), each
 * with the union of its steps, and the union of marked steps. */
static int union_shape(const char *all, const int *counts, const int *displs, int nblobs,
                       useries **out, size_t *nout, int64_t **marks, size_t *nmarks) {
  useries *s = NULL;
  size_t n = 0, cap = 0;
  int64_t *mk = NULL;
  size_t nmk = 0;
  int rc = CAIRN_OK;
  for (int p = 0; p < nblobs && rc == CAIRN_OK; p++) {
    unpack u = {all + displs[p], (size_t)counts[p], 0, 0};
    uint64_t nm = get_u64(&u);
    for (uint64_t i = 0; i < nm && !u.bad; i++) {
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        useries *ns = realloc(s, cap * sizeof *ns);
        if (!ns) {
          rc = CAIRN_ENOMEM;
          break;
        }
        s = ns;
      }
      useries *e = &s[n];
      memset(e, 0, sizeof *e);
      e->name = get_str(&u, &e->len);
      e->n = get_u64(&u);
      if (u.bad || e->n > (u.len - u.at) / sizeof(int64_t)) {
        free(e->name);
        u.bad = 1;
        break;
      }
      e->steps = malloc((e->n ? e->n : 1) * sizeof *e->steps);
      if (!e->steps) {
        free(e->name);
        rc = CAIRN_ENOMEM;
        break;
      }
      get(&u, e->steps, e->n * sizeof *e->steps);
      n++;
    }
    uint64_t m = get_u64(&u);
    if (!u.bad && m <= (u.len - u.at) / sizeof(int64_t)) {
      int64_t *nm2 = realloc(mk, (nmk + m + 1) * sizeof *nm2);
      if (!nm2) {
        rc = CAIRN_ENOMEM;
      } else {
        mk = nm2;
        get(&u, mk + nmk, m * sizeof *mk);
        nmk += m;
      }
    }
    if (u.bad && rc == CAIRN_OK)
      rc = CAIRN_EINVAL;
  }
  if (rc != CAIRN_OK) {
    free_series(s, n);
    free(mk);
    return rc;
  }
  /* Same names next to each other, then concatenate their steps. */
  if (n)
    qsort(s, n, sizeof *s, cmp_series);
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1, total = s[i].n;
    while (j < n && cmp_series(&s[i], &s[j]) == 0)
      total += s[j++].n;
    int64_t *steps = malloc((total ? total : 1) * sizeof *steps);
    if (!steps) {
      free_series(s, n);
      free(mk);
      return CAIRN_ENOMEM;
    }
    size_t at = 0;
    for (size_t q = i; q < j; q++) {
      memcpy(steps + at, s[q].steps, s[q].n * sizeof *steps);
      at += s[q].n;
      free(s[q].steps);
      if (q > i)
        free(s[q].name);
    }
    useries merged = {s[i].name, s[i].len, steps, sort_unique(steps, total)};
    s[k++] = merged;
    i = j;
  }
  *out = s;
  *nout = k;
  *marks = mk;
  *nmarks = sort_unique(mk ? mk : (int64_t[]){0}, mk ? nmk : 0);
  if (!mk)
    *marks = calloc(1, sizeof **marks);
  return *marks ? CAIRN_OK : CAIRN_ENOMEM;
}

/* ---------------------------------------------------------------------- */
/* The small tables, gathered to process 0                                 */
/* ---------------------------------------------------------------------- */

static void pack_meta(pack *b, const cairn_run_view *v) {
  put_u64(b, (uint64_t)v->have_run_id);
  put(b, v->run_id, 16);
  put_str(b, v->cairn_version, strlen(v->cairn_version));
  put_u64(b, v->nranks);
  put_u64(b, v->naggregators);
  put_u64(b, v->ncols);
  for (size_t c = 0; c < v->ncols; c++) {
    put_u64(b, (uint64_t)(int64_t)v->col_rank[c]);
    put_str(b, v->ranks[c].hostname, strlen(v->ranks[c].hostname));
    put_u64(b, v->ranks[c].pid);
    put_u64(b, v->ranks[c].start_ns);
    put(b, &v->acct[c * CAIRN_H5_NCHANNELS], CAIRN_H5_NCHANNELS * sizeof *v->acct);
    put_u64(b, v->acct_reported[c]);
  }
  put_u64(b, v->nparams);
  for (size_t i = 0; i < v->nparams; i++) {
    const cairn_view_param *p = &v->params[i];
    put_u64(b, (uint64_t)(int64_t)p->rank);
    put_u64(b, p->type);
    put_str(b, p->key, strlen(p->key));
    put(b, &p->i64, sizeof p->i64);
    put(b, &p->f64, sizeof p->f64);
    put_str(b, p->str, strlen(p->str));
  }
  put_u64(b, v->nkv);
  for (size_t i = 0; i < v->nkv; i++) {
    put_u64(b, (uint64_t)(int64_t)v->kv[i].rank);
    put_str(b, v->kv[i].key, strlen(v->kv[i].key));
    put_str(b, v->kv[i].value, strlen(v->kv[i].value));
  }
  put_u64(b, v->nartifacts);
  for (size_t i = 0; i < v->nartifacts; i++) {
    const cairn_h5_artifact_row *a = &v->artifacts[i];
    put_u64(b, a->id);
    put_u64(b, a->kind);
    put_u64(b, (uint64_t)(int64_t)a->rank);
    put_u64(b, a->size);
    put_u64(b, a->t_ns);
    put_str(b, a->uri, strlen(a->uri));
    put_str(b, a->hash, strlen(a->hash));
    put_str(b, a->properties ? a->properties : "", a->properties ? strlen(a->properties) : 0);
  }
  put_u64(b, v->nexecutions);
  for (size_t i = 0; i < v->nexecutions; i++) {
    const cairn_h5_execution_row *e = &v->executions[i];
    put_u64(b, e->id);
    put_u64(b, e->context_id);
    put_u64(b, (uint64_t)(int64_t)e->rank);
    put_u64(b, e->start_ns);
    put_u64(b, e->end_ns);
    put_str(b, e->name, strlen(e->name));
    put_str(b, e->properties, strlen(e->properties));
    put_str(b, e->type ? e->type : "", e->type ? strlen(e->type) : 0);
    put_str(b, e->command ? e->command : "", e->command ? strlen(e->command) : 0);
  }
  put_u64(b, v->nevents);
  put(b, v->events, v->nevents * sizeof *v->events); /* no pointers inside */
  put_u64(b, v->ncontexts);
  for (size_t i = 0; i < v->ncontexts; i++) {
    const cairn_h5_context_row *c = &v->contexts[i];
    put_u64(b, c->id);
    put_str(b, c->name, strlen(c->name));
    put_str(b, c->pipeline, strlen(c->pipeline));
    put_str(b, c->properties, strlen(c->properties));
  }
}

typedef struct {
  size_t order; /* arrival order, to keep each rank's records in order */
  cairn_view_param p;
} param_in;
typedef struct {
  size_t order;
  cairn_view_kv kv;
} kv_in;

static int cmp_param_in(const void *a, const void *b) {
  const param_in *x = a, *y = b;
  if (x->p.rank != y->p.rank)
    return x->p.rank < y->p.rank ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_kv_in(const void *a, const void *b) {
  const kv_in *x = a, *y = b;
  if (x->kv.rank != y->kv.rank)
    return x->kv.rank < y->kv.rank ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Process 0: rebuilds the whole group's small tables into *meta, whose
 * columns are the sorted union `cols`. Metrics get names only. */
static int unpack_meta(const char *all, const int *counts, const int *displs, int P,
                       const int32_t *cols, size_t ncols, const useries *series,
                       size_t nseries, cairn_run_view *meta) {
  cairn__view_init(meta);
  meta->ncols = ncols;
  meta->col_rank = malloc((ncols + 1) * sizeof *meta->col_rank);
  meta->ranks = calloc(ncols + 1, sizeof *meta->ranks);
  meta->acct = calloc((ncols + 1) * CAIRN_H5_NCHANNELS, sizeof *meta->acct);
  meta->acct_reported = calloc(ncols + 1, 1);
  meta->metrics = calloc(nseries + 1, sizeof *meta->metrics);
  if (!meta->col_rank || !meta->ranks || !meta->acct || !meta->acct_reported || !meta->metrics)
    return CAIRN_ENOMEM;
  memcpy(meta->col_rank, cols, ncols * sizeof *cols);
  for (size_t i = 0; i < nseries; i++) {
    cairn_view_metric *m = &meta->metrics[i];
    if (cairn__view_metric_alloc(m, 0, ncols, 0))
      return CAIRN_ENOMEM;
    meta->nmetrics = i + 1;
    m->name = malloc(series[i].len + 1);
    if (!m->name)
      return CAIRN_ENOMEM;
    memcpy(m->name, series[i].name, series[i].len + 1);
    m->name_len = series[i].len;
  }
  param_in *pin = NULL;
  kv_in *kin = NULL;
  size_t np = 0, nk = 0, order = 0;
  int rc = CAIRN_OK;
  for (int p = 0; p < P && rc == CAIRN_OK; p++) {
    unpack u = {all + displs[p], (size_t)counts[p], 0, 0};
    uint64_t have = get_u64(&u);
    uint8_t id[16];
    get(&u, id, 16);
    char *ver = get_str(&u, NULL);
    uint64_t nranks = get_u64(&u), naggr = get_u64(&u);
    if (have && !meta->have_run_id) {
      meta->have_run_id = 1;
      memcpy(meta->run_id, id, 16);
    }
    if (ver && !meta->cairn_version[0])
      snprintf(meta->cairn_version, sizeof meta->cairn_version, "%s", ver);
    free(ver);
    if (nranks > meta->nranks)
      meta->nranks = (uint32_t)nranks;
    if (naggr > meta->naggregators)
      meta->naggregators = (uint32_t)naggr;
    uint64_t nc = get_u64(&u);
    for (uint64_t c = 0; c < nc && !u.bad; c++) {
      int32_t rank = (int32_t)(int64_t)get_u64(&u);
      /* its column in the file */
      size_t lo = 0, hi = ncols;
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cols[mid] < rank)
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo >= ncols || cols[lo] != rank) {
        u.bad = 1;
        break;
      }
      free(meta->ranks[lo].hostname);
      meta->ranks[lo].hostname = get_str(&u, NULL);
      meta->ranks[lo].pid = (uint32_t)get_u64(&u);
      meta->ranks[lo].start_ns = get_u64(&u);
      get(&u, &meta->acct[lo * CAIRN_H5_NCHANNELS], CAIRN_H5_NCHANNELS * sizeof *meta->acct);
      meta->acct_reported[lo] = (uint8_t)get_u64(&u);
    }
    uint64_t n = get_u64(&u);
    if (!u.bad && n) {
      param_in *g = realloc(pin, (np + n) * sizeof *g);
      if (!g) {
        rc = CAIRN_ENOMEM;
        break;
      }
      pin = g;
    }
    for (uint64_t i = 0; i < n && !u.bad; i++) {
      param_in *e = &pin[np];
      e->order = order++;
      e->p.rank = (int32_t)(int64_t)get_u64(&u);
      e->p.type = (uint8_t)get_u64(&u);
      e->p.key = get_str(&u, NULL);
      get(&u, &e->p.i64, sizeof e->p.i64);
      get(&u, &e->p.f64, sizeof e->p.f64);
      e->p.str = get_str(&u, NULL);
      np++;
      if (u.bad) {
        break;
      }
    }
    n = get_u64(&u);
    if (!u.bad && n) {
      kv_in *g = realloc(kin, (nk + n) * sizeof *g);
      if (!g) {
        rc = CAIRN_ENOMEM;
        break;
      }
      kin = g;
    }
    for (uint64_t i = 0; i < n && !u.bad; i++) {
      kv_in *e = &kin[nk++];
      e->order = order++;
      e->kv.rank = (int32_t)(int64_t)get_u64(&u);
      e->kv.key = get_str(&u, NULL);
      e->kv.value = get_str(&u, NULL);
    }
    n = get_u64(&u);
    for (uint64_t i = 0; i < n && !u.bad && rc == CAIRN_OK; i++) {
      cairn_h5_artifact_row a;
      a.id = get_u64(&u);
      a.kind = (uint8_t)get_u64(&u);
      a.rank = (int32_t)(int64_t)get_u64(&u);
      a.size = get_u64(&u);
      a.t_ns = get_u64(&u);
      a.uri = get_str(&u, NULL);
      a.hash = get_str(&u, NULL);
      a.properties = get_str(&u, NULL);
      if (!u.bad)
        rc = cairn__view_add_artifact(meta, &a);
      free(a.uri);
      free(a.hash);
      free(a.properties);
    }
    n = get_u64(&u);
    for (uint64_t i = 0; i < n && !u.bad && rc == CAIRN_OK; i++) {
      cairn_h5_execution_row e;
      e.id = get_u64(&u);
      e.context_id = get_u64(&u);
      e.rank = (int32_t)(int64_t)get_u64(&u);
      e.start_ns = get_u64(&u);
      e.end_ns = get_u64(&u);
      e.name = get_str(&u, NULL);
      e.properties = get_str(&u, NULL);
      e.type = get_str(&u, NULL);
      e.command = get_str(&u, NULL);
      if (!u.bad)
        rc = cairn__view_add_execution(meta, &e);
      free(e.name);
      free(e.properties);
      free(e.type);
      free(e.command);
    }
    n = get_u64(&u);
    for (uint64_t i = 0; i < n && !u.bad && rc == CAIRN_OK; i++) {
      cairn_h5_event_row e;
      get(&u, &e, sizeof e);
      if (!u.bad)
        rc = cairn__view_add_event(meta, &e);
    }
    n = get_u64(&u);
    for (uint64_t i = 0; i < n && !u.bad && rc == CAIRN_OK; i++) {
      cairn_h5_context_row c;
      c.id = get_u64(&u);
      c.name = get_str(&u, NULL);
      c.pipeline = get_str(&u, NULL);
      c.properties = get_str(&u, NULL);
      if (!u.bad)
        rc = cairn__view_add_context(meta, &c);
      free(c.name);
      free(c.pipeline);
      free(c.properties);
    }
    if (u.bad && rc == CAIRN_OK)
      rc = CAIRN_EINVAL;
  }
  /* Ranks are disjoint across processes but may interleave (round-robin
   * placement): order by rank, then as logged, like the serial writer. */
  if (rc == CAIRN_OK) {
    if (np)
      qsort(pin, np, sizeof *pin, cmp_param_in);
    if (nk)
      qsort(kin, nk, sizeof *kin, cmp_kv_in);
  }
  for (size_t i = 0; i < np; i++) {
    if (rc == CAIRN_OK && pin[i].p.key && pin[i].p.str)
      rc = cairn__view_add_param(meta, &pin[i].p);
    free(pin[i].p.key);
    free(pin[i].p.str);
  }
  for (size_t i = 0; i < nk; i++) {
    if (rc == CAIRN_OK && kin[i].kv.key && kin[i].kv.value)
      rc = cairn__view_add_kv(meta, kin[i].kv.rank, kin[i].kv.key, kin[i].kv.value);
    free(kin[i].kv.key);
    free(kin[i].kv.value);
  }
  free(pin);
  free(kin);
  for (size_t c = 0; c < ncols && rc == CAIRN_OK; c++)
    if (!meta->ranks[c].hostname && !(meta->ranks[c].hostname = calloc(1, 1)))
      rc = CAIRN_ENOMEM;
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Per-metric exchange for the statistics                                  */
/* ---------------------------------------------------------------------- */

typedef struct {
  MPI_Comm comm;
  int me, P;
  size_t N;                  /* columns in the file                     */
  const int *ncols_of;       /* columns held by each process            */
  const int *col_displ;      /* offset of each process's list in gcol   */
  const size_t *gcol;        /* file column of every gathered column    */
  const int32_t *col_rank;   /* sorted ranks of the file's columns      */
} exchange;

/* Rows [row0(p), row0(p+1)) of the union steps are process p's to reduce. */
static size_t row0(size_t n, int p, int P) { return (size_t)((unsigned long long)n * (unsigned)p / (unsigned)P); }

/* Sends each process the rows it owns of this process's columns, receives
 * every column of its own rows, and computes their statistics in rank
 * order — exactly what the serial writer computes, bit for bit. */
static int exchange_stats(const exchange *x, size_t nsteps, const double *vals,
                          const uint32_t *samp, size_t my_ncols, cairn_view_metric *st) {
  int P = x->P;
  size_t r0 = row0(nsteps, x->me, P), r1 = row0(nsteps, x->me + 1, P), nr = r1 - r0;
  int *sc = malloc((size_t)P * sizeof *sc), *sd = malloc((size_t)P * sizeof *sd);
  int *rcnt = malloc((size_t)P * sizeof *rcnt), *rd = malloc((size_t)P * sizeof *rd);
  double *rv = NULL, *full = NULL;
  uint32_t *rs = NULL, *fulls = NULL;
  int rc = CAIRN_ENOMEM;
  if (!sc || !sd || !rcnt || !rd)
    goto out;
  unsigned long long tot = 0;
  for (int p = 0; p < P; p++) {
    size_t a = row0(nsteps, p, P), b = row0(nsteps, p + 1, P);
    unsigned long long cnt = (unsigned long long)(b - a) * my_ncols;
    unsigned long long dsp = (unsigned long long)a * my_ncols;
    unsigned long long rcv = (unsigned long long)nr * (unsigned)x->ncols_of[p];
    if (cnt > 0x7fffffff || dsp > 0x7fffffff || tot + rcv > 0x7fffffff) {
      rc = CAIRN_EINVAL; /* beyond one MPI exchange; agreed on below */
      goto out;
    }
    sc[p] = (int)cnt;
    sd[p] = (int)dsp;
    rcnt[p] = (int)rcv;
    rd[p] = (int)tot;
    tot += rcv;
  }
  rv = malloc((tot ? tot : 1) * sizeof *rv);
  rs = malloc((tot ? tot : 1) * sizeof *rs);
  size_t cells = nr * x->N;
  if (cells == 0)
    cells = 1;
  full = malloc(cells * sizeof *full);
  fulls = malloc(cells * sizeof *fulls);
  if (!rv || !rs || !full || !fulls)
    goto out;
  rc = CAIRN_OK;
out:;
  /* Every process must take part in the exchanges even if it failed: agree
   * first. */
  int ok = rc == CAIRN_OK, all_ok;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, x->comm);
  if (all_ok) {
    MPI_Alltoallv(vals, sc, sd, MPI_DOUBLE, rv, rcnt, rd, MPI_DOUBLE, x->comm);
    MPI_Alltoallv(samp, sc, sd, MPI_UINT32_T, rs, rcnt, rd, MPI_UINT32_T, x->comm);
    for (int p = 0; p < P; p++)
      for (size_t r = 0; r < nr; r++)
        for (int c = 0; c < x->ncols_of[p]; c++) {
          size_t from = (size_t)rd[p] + r * (size_t)x->ncols_of[p] + (size_t)c;
          size_t to = r * x->N + x->gcol[x->col_displ[p] + c];
          full[to] = rv[from];
          fulls[to] = rs[from];
        }
    for (size_t r = 0; r < nr; r++)
      cairn__view_stats_row(full + r * x->N, fulls + r * x->N, x->col_rank, x->N,
                            &st->count[r], &st->sum[r], &st->sumsq[r], &st->min[r],
                            &st->max[r], &st->rank_min[r], &st->rank_max[r]);
  } else if (rc == CAIRN_OK) {
    rc = CAIRN_ENOMEM;
  }
  free(sc);
  free(sd);
  free(rcnt);
  free(rd);
  free(rv);
  free(rs);
  free(full);
  free(fulls);
  return rc;
}

/* This process's values of metric `name` on the union rows: NaN / 0
 * where it has no sample (or does not know the metric). When the process
 * has every row (the usual case), they are the view's own arrays, with
 * the view's count of missing cells and float32 finding, and *owned is 0;
 * otherwise a dense copy the caller frees (*owned 1). */
static int my_dense(const cairn_run_view *v, const useries *u, double **vals, uint32_t **samp,
                    uint64_t *missing, int *fits, int *owned) {
  size_t nc = v->ncols, cells = u->n * nc;
  long at = cairn__view_metric_find(v, u->name, u->len);
  *owned = 0;
  if (at >= 0 && v->metrics[at].nsteps == u->n && v->metrics[at].values && cells) {
    /* its steps are among the union's, as many: the same rows */
    const cairn_view_metric *m = &v->metrics[at];
    *vals = m->values;
    *samp = m->samples;
    *missing = m->missing;
    *fits = m->f32 ? m->f32 == 2 : cairn__h5_fits_f32(m->values, cells);
    return CAIRN_OK;
  }
  *owned = 1;
  *vals = malloc((cells ? cells : 1) * sizeof **vals);
  *samp = calloc(cells ? cells : 1, sizeof **samp);
  if (!*vals || !*samp)
    return CAIRN_ENOMEM;
  for (size_t i = 0; i < cells; i++)
    (*vals)[i] = NAN;
  if (at >= 0) {
    const cairn_view_metric *m = &v->metrics[at];
    size_t j = 0;
    for (size_t i = 0; i < m->nsteps; i++) {
      while (j < u->n && u->steps[j] < m->step[i])
        j++;
      memcpy(*vals + j * nc, m->values + i * nc, nc * sizeof **vals);
      memcpy(*samp + j * nc, m->samples + i * nc, nc * sizeof **samp);
    }
  }
  *missing = 0;
  for (size_t i = 0; i < cells; i++)
    *missing += (*samp)[i] == 0;
  *fits = cairn__h5_fits_f32(*vals, cells);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Gathered write: process 0 writes, through the chunk compressor          */
/* ---------------------------------------------------------------------- */

size_t cairn__h5_gather_bytes = CAIRN_H5_STREAM_BYTES;

/* What the gathered write needs of the shapes the processes agreed on. */
typedef struct {
  const exchange *x;
  const useries *series;
  size_t nseries;
  const int64_t *mk;     /* marked steps (nmk) */
  size_t nmk;
} gather_plan;

/* Every process's [n × its columns] block of 'elem'-byte elements to
 * process 0, which puts them in file column order into full ([n × N]).
 * Counts fit an int: the caller bounded n × N. */
static void gather_cols(const exchange *x, const void *mine, size_t n, size_t my_ncols,
                        MPI_Datatype type, size_t elem, void *stage, int *cnt, int *dsp,
                        void *full) {
  for (int p = 0; p < x->P; p++) {
    cnt[p] = (int)(n * (size_t)x->ncols_of[p]);
    dsp[p] = (int)(n * (size_t)x->col_displ[p]);
  }
  MPI_Gatherv(mine, (int)(n * my_ncols), type, stage, cnt, dsp, type, 0, x->comm);
  if (x->me != 0)
    return;
  for (int p = 0; p < x->P; p++) {
    size_t nc = (size_t)x->ncols_of[p];
    const size_t *gc = x->gcol + x->col_displ[p];
    const char *from = (const char *)stage + (size_t)dsp[p] * elem;
    /* a process's ranks are usually adjacent columns: a row at a time */
    int adjacent = 1;
    for (size_t c = 1; c < nc && adjacent; c++)
      adjacent = gc[c] == gc[0] + c;
    for (size_t r = 0; r < n && nc; r++, from += nc * elem) {
      char *to = (char *)full + r * x->N * elem;
      if (adjacent) {
        memcpy(to + gc[0] * elem, from, nc * elem);
      } else if (elem == 8) {
        for (size_t c = 0; c < nc; c++)
          memcpy(to + gc[c] * 8, from + c * 8, 8);
      } else {
        for (size_t c = 0; c < nc; c++)
          memcpy(to + gc[c] * elem, from + c * elem, elem);
      }
    }
  }
}

/* The gathered write (see cairn__h5_write_parallel). Process 0 creates the
 * file at tmp with serial HDF5 and writes the root attributes and tables
 * of mv, the step markers and, one metric at a time, the columns every
 * process sends it, with their statistics, which it computes itself in
 * rank order from the gathered columns (it holds them all: exchanging them
 * as the collective path does would move the data twice). Every process
 * returns the same code; process 0 closes the file (the caller commits
 * it). */
static int write_gathered(const gather_plan *g, const cairn_run_view *mine, const cairn_run_view *mv,
                          const cairn_h5_write_opts *o, const char *tmp, char *err,
                          size_t errlen) {
  const exchange *x = g->x;
  int me = x->me, P = x->P, rc = CAIRN_OK;
  size_t N = x->N, myn = mine->ncols;
  hid_t file = -1, grp = -1;
  cairn_h5_chunks *chunks = NULL;
  size_t *cols = NULL;
  int *cnt = malloc((size_t)P * sizeof *cnt), *dsp = malloc((size_t)P * sizeof *dsp);
  if (!cnt || !dsp)
    rc = CAIRN_ENOMEM;
  if (rc == CAIRN_OK && me == 0) {
    cols = malloc((N + 1) * sizeof *cols);
    hid_t fapl = cairn__h5w_fapl(), fcpl = cairn__h5w_fcpl();
    if (!cols) {
      rc = CAIRN_ENOMEM;
    } else if (cairn__h5zstd_register() != 0) {
      cairn__h5w_fail(err, errlen, tmp, "cannot register the zstd filter (id 32015)");
      rc = CAIRN_ECOMPRESS;
    } else if (fapl < 0 || fcpl < 0 || cairn__h5w_precreate(tmp) != 0 ||
               (file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
      cairn__h5w_fail(err, errlen, tmp, "cannot create");
      rc = CAIRN_EIO;
    } else if (cairn__h5_layout_root(file, mv, o, o->detail != 0) < 0 ||
               cairn__h5_layout_tables(file, mv, o->zstd_level) < 0) {
      cairn__h5w_fail(err, errlen, tmp, "cannot write the tables");
      rc = CAIRN_EIO;
    } else if ((grp = H5Gcreate2(file, CAIRN_H5_METRICS, H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT)) < 0) {
      cairn__h5w_fail(err, errlen, tmp, "cannot create " CAIRN_H5_METRICS);
      rc = CAIRN_EIO;
    }
    if (fapl >= 0)
      H5Pclose(fapl);
    if (fcpl >= 0)
      H5Pclose(fcpl);
    if (rc == CAIRN_OK) {
      for (size_t c = 0; c < N; c++)
        cols[c] = c;
      /* without the compressor (no memory or thread) the filter pipeline
       * compresses, as in the serial writer */
      chunks = cairn__h5_chunks_new(o->zstd_level, cairn__h5_chunks_default_workers());
    }
  }
  cairn_h5_part part = {file, H5P_DEFAULT, o->zstd_level, N, cols, N, chunks};

  /* Step markers: this process's columns of each marked step. */
  if ((rc = agree(x->comm, rc, err, errlen)) == CAIRN_OK) {
    size_t cells = g->nmk * myn;
    uint64_t *t = calloc(cells ? cells : 1, sizeof *t);
    size_t all = g->nmk * N > 0 ? g->nmk * N : 1;
    uint64_t *stage = me == 0 ? malloc(all * sizeof *stage) : NULL;
    uint64_t *full = me == 0 ? calloc(all, sizeof *full) : NULL;
    if (!t || (me == 0 && (!stage || !full)))
      rc = CAIRN_ENOMEM;
    else {
      size_t j = 0;
      for (size_t i = 0; i < mine->nmarks; i++) {
        while (j < g->nmk && g->mk[j] < mine->mark_step[i])
          j++;
        memcpy(t + j * myn, mine->mark_time + i * myn, myn * sizeof *t);
      }
    }
    if ((rc = agree(x->comm, rc, err, errlen)) == CAIRN_OK) {
      gather_cols(x, t, g->nmk, myn, MPI_UINT64_T, sizeof *t, stage, cnt, dsp, full);
      if (me == 0 && cairn__h5_layout_marks(&part, g->nmk, g->mk, 1, full) < 0) {
        cairn__h5w_fail(err, errlen, tmp, "cannot write step markers");
        rc = CAIRN_EIO;
      }
      rc = cairn__h5w_chunks_wait(chunks, tmp, rc, err, errlen);
    }
    free(t);
    free(stage);
    free(full);
  }

  /* The metrics, one at a time. */
  for (size_t k = 0; k < g->nseries && (rc = agree(x->comm, rc, err, errlen)) == CAIRN_OK;
       k++) {
    const useries *u = &g->series[k];
    size_t n = u->n;
    double *vals = NULL, *vstage = NULL, *V = NULL;
    uint32_t *samp = NULL, *sstage = NULL, *S = NULL;
    uint64_t missing = 0, total_missing = 0;
    int fits = 0, all_fit = 0, owned = 1;
    cairn_view_metric all = {0};
    rc = my_dense(mine, u, &vals, &samp, &missing, &fits, &owned);
    if (rc == CAIRN_OK && me == 0) {
      size_t cells = n * N > 0 ? n * N : 1;
      vstage = malloc(cells * sizeof *vstage);
      sstage = malloc(cells * sizeof *sstage);
      V = malloc(cells * sizeof *V);
      S = malloc(cells * sizeof *S);
      if (!vstage || !sstage || !V || !S ||
          cairn__view_metric_alloc(&all, n, 0, 0) != CAIRN_OK)
        rc = CAIRN_ENOMEM;
    }
    if ((rc = agree(x->comm, rc, err, errlen)) == CAIRN_OK) {
      MPI_Reduce(&missing, &total_missing, 1, MPI_UINT64_T, MPI_SUM, 0, x->comm);
      MPI_Reduce(&fits, &all_fit, 1, MPI_INT, MPI_MIN, 0, x->comm);
      gather_cols(x, vals, n, myn, MPI_DOUBLE, sizeof *vals, vstage, cnt, dsp, V);
      gather_cols(x, samp, n, myn, MPI_UINT32_T, sizeof *samp, sstage, cnt, dsp, S);
      if (me == 0) {
        for (size_t r = 0; r < n; r++)
          cairn__view_stats_row(V + r * N, S + r * N, x->col_rank, N, &all.count[r],
                                &all.sum[r], &all.sumsq[r], &all.min[r], &all.max[r],
                                &all.rank_min[r], &all.rank_max[r]);
        cairn_h5_metric_part mp = {k,          u->name,      u->len,       total_missing,
                                   n,          u->steps,     1,            0,
                                   n,          all.count,    all.sum,      all.sumsq,
                                   all.min,    all.max,      all.rank_min, all.rank_max,
                                   o->detail != 0, all_fit,  V,            S};
        rc = cairn__h5w_metric(&part, &mp, tmp, err, errlen);
        /* the compressor reads V, S and the statistics until it is done */
        rc = cairn__h5w_chunks_wait(chunks, tmp, rc, err, errlen);
        if (k % 16 == 15)
          cairn__h5w_start_writeback(file);
      }
    }
    cairn__view_metric_free(&all);
    if (owned) {
      free(vals);
      free(samp);
    }
    free(vstage);
    free(sstage);
    free(V);
    free(S);
  }
  rc = agree(x->comm, rc, err, errlen);
  rc = cairn__h5w_chunks_wait(chunks, tmp, rc, err, errlen);
  cairn__h5_chunks_free(chunks);
  if (grp >= 0)
    H5Gclose(grp);
  if (file >= 0)
    cairn__h5w_start_writeback(file);
  if (file >= 0 && H5Fclose(file) < 0 && rc == CAIRN_OK) {
    cairn__h5w_fail(err, errlen, tmp, "cannot close (flush failed)");
    rc = CAIRN_EIO;
  }
  free(cols);
  free(cnt);
  free(dsp);
  return agree(x->comm, rc, err, errlen);
}

/* ---------------------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return x < y ? -1 : x > y;
}

int cairn__h5_write_parallel(MPI_Comm comm, const cairn_run_view *mine, const char *path,
                             const cairn_h5_write_opts *opt, char *err, size_t errlen) {
  int me, P;
  MPI_Comm_rank(comm, &me);
  MPI_Comm_size(comm, &P);
  err[0] = '\0';
  cairn_h5_write_opts o = cairn__h5w_resolve_opts(opt);
  MPI_Bcast(&o.created_ns, 1, MPI_UINT64_T, 0, comm);
  if (!o.naggregators)
    o.naggregators = (uint32_t)P;
  char tmp[4096];
  int rc = CAIRN_OK;
  if (cairn__h5w_tmp_path(path, tmp, sizeof tmp)) {
    snprintf(err, errlen, "%s: path too long", path);
    rc = CAIRN_EINVAL;
  }
  for (size_t i = 0; i < mine->nmetrics && rc == CAIRN_OK; i++)
    if (!mine->metrics[i].values && mine->metrics[i].nsteps) {
      snprintf(err, errlen, "%s: metric '%s' has no per-rank values: the parallel writer "
               "computes statistics from them", path, mine->metrics[i].name);
      rc = CAIRN_EINVAL;
    }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    return rc;

  /* 1. Columns: every process's ranks, their union in order, and where
   * each of this process's columns lands in the file. */
  int myn = (int)mine->ncols;
  int *ncols_of = malloc((size_t)P * sizeof *ncols_of);
  int *col_displ = malloc((size_t)P * sizeof *col_displ);
  int32_t *gathered = NULL, *sorted = NULL;
  size_t *gcol = NULL, *my_cols = NULL, N = 0;
  useries *series = NULL;
  size_t nseries = 0, nmk = 0;
  int64_t *mk = NULL;
  char *blobs = NULL, *metas = NULL;
  int *bc = NULL, *bd = NULL, *mc = NULL, *md = NULL;
  pack shape = {0}, meta = {0};
  cairn_run_view mv;
  cairn__view_init(&mv);
  hid_t file = -1, fapl = -1, dxpl = -1;
  cairn_h5_quiet q;
  cairn__h5_quiet_begin(&q);
  if (!ncols_of || !col_displ)
    rc = CAIRN_ENOMEM;
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  MPI_Allgather(&myn, 1, MPI_INT, ncols_of, 1, MPI_INT, comm);
  for (int p = 0; p < P; p++) {
    col_displ[p] = (int)N;
    N += (size_t)ncols_of[p];
  }
  gathered = malloc((N + 1) * sizeof *gathered);
  sorted = malloc((N + 1) * sizeof *sorted);
  gcol = malloc((N + 1) * sizeof *gcol);
  if (!gathered || !sorted || !gcol)
    rc = CAIRN_ENOMEM;
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  MPI_Allgatherv(mine->col_rank, myn, MPI_INT32_T, gathered, ncols_of, col_displ, MPI_INT32_T,
                 comm);
  memcpy(sorted, gathered, N * sizeof *sorted);
  qsort(sorted, N, sizeof *sorted, cmp_i32);
  for (size_t i = 1; i < N; i++)
    if (sorted[i] == sorted[i - 1]) {
      snprintf(err, errlen, "%s: rank %d is held by two aggregators", path, (int)sorted[i]);
      rc = CAIRN_EINVAL;
      break;
    }
  for (size_t i = 0; i < N && rc == CAIRN_OK; i++) {
    int32_t *at = bsearch(&gathered[i], sorted, N, sizeof *sorted, cmp_i32);
    gcol[i] = (size_t)(at - sorted);
  }
  my_cols = gcol + col_displ[me];

  /* 2. Shapes: metric names and steps, and marked steps, over the group.
   * When every process holds the same canonical shape (every rank logs the
   * same metrics at the same steps: the usual case), comparing hashes of
   * it is enough and each process takes its own; otherwise the shapes are
   * gathered and merged. */
  int same_shape = 0;
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  {
    uint64_t h[3] = {0, 0, (uint64_t)shape_canonical(mine)}, lo[3], hi[3];
    hash_shape(mine, h);
    MPI_Allreduce(h, lo, 3, MPI_UINT64_T, MPI_MIN, comm);
    MPI_Allreduce(h, hi, 3, MPI_UINT64_T, MPI_MAX, comm);
    same_shape = lo[0] == hi[0] && lo[1] == hi[1] && lo[2] == 1;
  }
  if (same_shape) {
    rc = own_shape(mine, &series, &nseries, &mk, &nmk);
  } else {
    pack_shape(&shape, mine);
    if (shape.failed)
      rc = CAIRN_ENOMEM;
    if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
      goto out;
    rc = allgather_blobs(comm, &shape, &blobs, &bc, &bd);
    if (rc == CAIRN_OK)
      rc = union_shape(blobs, bc, bd, P, &series, &nseries, &mk, &nmk);
  }
  if (rc != CAIRN_OK)
    snprintf(err, errlen, "%s: cannot agree on the file's shape: %s", path, cairn_strerror(rc));
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;

  /* 3. Small tables to process 0. */
  pack_meta(&meta, mine);
  int mlen = meta.failed ? -1 : (int)meta.len;
  if (meta.failed || meta.len > 0x7fffffff)
    rc = CAIRN_ENOMEM;
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  if (me == 0) {
    mc = malloc((size_t)P * sizeof *mc);
    md = malloc((size_t)P * sizeof *md);
    if (!mc || !md)
      rc = CAIRN_ENOMEM;
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  MPI_Gather(&mlen, 1, MPI_INT, mc, 1, MPI_INT, 0, comm);
  if (me == 0) {
    long long t = 0;
    for (int p = 0; p < P; p++) {
      md[p] = (int)t;
      t += mc[p];
    }
    metas = t <= 0x7fffffff ? malloc(t ? (size_t)t : 1) : NULL;
    if (!metas)
      rc = CAIRN_ENOMEM;
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  MPI_Gatherv(meta.p, mlen, MPI_BYTE, metas, mc, md, MPI_BYTE, 0, comm);
  if (me == 0) {
    rc = unpack_meta(metas, mc, md, P, sorted, N, series, nseries, &mv);
    if (rc != CAIRN_OK)
      snprintf(err, errlen, "%s: cannot assemble the tables: %s", path, cairn_strerror(rc));
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;

  /* 4. Every metric small enough to gather (the same answer on every
   * process: the shapes are agreed): process 0 writes the file alone. */
  {
    double most = (double)cairn__h5_gather_bytes;
    int gather = (double)nmk * (double)N * 8.0 <= most && (double)nmk * (double)N < 0x7fffffff;
    for (size_t k = 0; k < nseries && gather; k++)
      gather = (double)series[k].n * (double)N * 12.0 <= most &&
               (double)series[k].n * (double)N < 0x7fffffff;
    if (gather) {
      exchange xg = {comm, me, P, N, ncols_of, col_displ, gcol, sorted};
      gather_plan g = {&xg, series, nseries, mk, nmk};
      rc = write_gathered(&g, mine, &mv, &o, tmp, err, errlen);
      if (rc == CAIRN_OK && me == 0)
        rc = cairn__h5w_commit(tmp, path, err, errlen);
      if (rc != CAIRN_OK && me == 0)
        unlink(tmp);
      rc = agree(comm, rc, err, errlen);
      goto done;
    }
  }

  /* 5. Otherwise the file, collectively: step markers and metrics. Process 0 makes
   * it private (mode 0600) before MPI-IO opens it. */
  if (cairn__h5zstd_register() != 0) {
    cairn__h5w_fail(err, errlen, path, "cannot register the zstd filter (id 32015)");
    rc = CAIRN_ECOMPRESS;
  }
  if (rc == CAIRN_OK && me == 0 && cairn__h5w_precreate(tmp) != 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot create");
    rc = CAIRN_EIO;
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  fapl = cairn__h5w_fapl();
  dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (fapl < 0 || dxpl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
      H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0 ||
      H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
    cairn__h5w_fail(err, errlen, path, "cannot set up MPI-IO");
    rc = CAIRN_EIO;
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  {
    hid_t fcpl = cairn__h5w_fcpl();
    file = fcpl >= 0 ? H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl) : -1;
    if (fcpl >= 0)
      H5Pclose(fcpl);
  }
  if (file < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot create");
    rc = CAIRN_EIO;
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  cairn_h5_part part = {file, dxpl, o.zstd_level, N, my_cols, (size_t)myn, NULL};
  {
    size_t nc = (size_t)myn, cells = nmk * nc;
    uint64_t *t = calloc(cells ? cells : 1, sizeof *t);
    if (t) {
      size_t j = 0;
      for (size_t i = 0; i < mine->nmarks; i++) {
        while (j < nmk && mk[j] < mine->mark_step[i])
          j++;
        memcpy(t + j * nc, mine->mark_time + i * nc, nc * sizeof *t);
      }
    }
    int ok = t != NULL, all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
    if (!all) {
      rc = CAIRN_ENOMEM;
    } else if (cairn__h5_layout_marks(&part, nmk, mk, me == 0, t) < 0) {
      cairn__h5w_fail(err, errlen, tmp, "cannot write step markers");
      rc = CAIRN_EIO;
    }
    free(t);
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  hid_t mg = H5Gcreate2(file, CAIRN_H5_METRICS, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (mg < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot create " CAIRN_H5_METRICS);
    rc = CAIRN_EIO;
  } else {
    H5Gclose(mg);
  }
  if ((rc = agree(comm, rc, err, errlen)) != CAIRN_OK)
    goto out;
  exchange x = {comm, me, P, N, ncols_of, col_displ, gcol, sorted};
  for (size_t k = 0; k < nseries && rc == CAIRN_OK; k++) {
    const useries *u = &series[k];
    double *vals = NULL;
    uint32_t *samp = NULL;
    uint64_t missing = 0, total_missing = 0;
    int fits = 0, all_fit = 0, owned = 1;
    cairn_view_metric st = {0};
    size_t r0 = row0(u->n, me, P), r1 = row0(u->n, me + 1, P);
    rc = my_dense(mine, u, &vals, &samp, &missing, &fits, &owned);
    if (rc == CAIRN_OK)
      rc = cairn__view_metric_alloc(&st, r1 - r0, 0, 0);
    if ((rc = agree(comm, rc, err, errlen)) == CAIRN_OK) {
      MPI_Allreduce(&missing, &total_missing, 1, MPI_UINT64_T, MPI_SUM, comm);
      MPI_Allreduce(&fits, &all_fit, 1, MPI_INT, MPI_MIN, comm);
      rc = exchange_stats(&x, u->n, vals, samp, (size_t)myn, &st);
      if (rc != CAIRN_OK)
        snprintf(err, errlen, "%s: cannot exchange values of metric %zu: %s", path, k,
                 cairn_strerror(rc));
      rc = agree(comm, rc, err, errlen);
    }
    if (rc == CAIRN_OK) {
      cairn_h5_metric_part mp = {k,         u->name,     u->len,      total_missing,
                                 u->n,      u->steps,    me == 0,     r0,
                                 r1 - r0,   st.count,    st.sum,      st.sumsq,
                                 st.min,    st.max,      st.rank_min, st.rank_max,
                                 o.detail != 0, all_fit, vals,        samp};
      rc = cairn__h5w_metric(&part, &mp, tmp, err, errlen);
      rc = agree(comm, rc, err, errlen);
    }
    cairn__view_metric_free(&st);
    if (owned) {
      free(vals);
      free(samp);
    }
  }

out:
  if (file >= 0 && H5Fclose(file) < 0 && rc == CAIRN_OK) {
    cairn__h5w_fail(err, errlen, tmp, "cannot close (flush failed)");
    rc = CAIRN_EIO;
  }
  file = -1;
  rc = agree(comm, rc, err, errlen);
  /* 6. Process 0 adds the root attributes and the tables (variable-length
   * strings cannot be written through MPI-IO), then commits. */
  if (rc == CAIRN_OK && me == 0) {
    hid_t sfapl = cairn__h5w_fapl();
    hid_t f = sfapl >= 0 ? H5Fopen(tmp, H5F_ACC_RDWR, sfapl) : -1;
    if (f < 0) {
      cairn__h5w_fail(err, errlen, tmp, "cannot reopen to add the tables");
      rc = CAIRN_EIO;
    } else {
      if (cairn__h5_layout_root(f, &mv, &o, o.detail != 0) < 0 ||
          cairn__h5_layout_tables(f, &mv, o.zstd_level) < 0) {
        cairn__h5w_fail(err, errlen, tmp, "cannot write the tables");
        rc = CAIRN_EIO;
      }
      if (H5Fclose(f) < 0 && rc == CAIRN_OK) {
        cairn__h5w_fail(err, errlen, tmp, "cannot close (flush failed)");
        rc = CAIRN_EIO;
      }
    }
    if (sfapl >= 0)
      H5Pclose(sfapl);
    if (rc == CAIRN_OK)
      rc = cairn__h5w_commit(tmp, path, err, errlen);
  }
  if (rc != CAIRN_OK && me == 0)
    unlink(tmp);
  rc = agree(comm, rc, err, errlen);
done:
  if (fapl >= 0)
    H5Pclose(fapl);
  if (dxpl >= 0)
    H5Pclose(dxpl);
  cairn__h5_quiet_end(&q);
  cairn__view_free(&mv);
  free_series(series, nseries);
  free(mk);
  free(blobs);
  free(bc);
  free(bd);
  free(metas);
  free(mc);
  free(md);
  free(shape.p);
  free(meta.p);
  free(ncols_of);
  free(col_displ);
  free(gathered);
  free(sorted);
  free(gcol);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* MPI finalize of one group                                               */
/* ---------------------------------------------------------------------- */


int cairn__h5_finalize_group(MPI_Comm comm, const char *run_dir, uint32_t writer,
                             uint32_t group, uint32_t naggregators, cairn_view_builder *kept,
                             uint64_t memory, char *err, size_t errlen) {
  char damage[1024] = "";
  first_msg fm = {damage, sizeof damage};
  cairn_run_report rep = {.fn = cairn__h5w_keep_first, .ctx = &fm};
  /* A group of one writes serially and streams the view (finished a range
   * of metrics at a time); the collective writer needs it whole. */
  int P = 1;
  MPI_Comm_size(comm, &P);
  cairn_run_view v;
  cairn__view_init(&v);
  cairn_view_pending *pending = NULL;
  int rc = CAIRN_ENOMEM;
  /* The parallel writer computes the statistics over the group's ranks:
   * the kept view's own would be wasted work. */
  if (kept && P != 1)
    cairn__view_builder_values_only(kept);
  if (kept)
    rc = P == 1 ? cairn__view_builder_finish_pending(kept, &v, &pending)
                : cairn__view_builder_finish(kept, &v);
  /* Without a kept view, or if it could not be finished (out of memory),
   * the log has everything. */
  if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
    rc = P == 1 ? cairn__view_from_wal_pending(run_dir, (long)writer, memory, &v, &rep,
                                               &pending)
                : cairn__view_from_wal_of(run_dir, writer, &v, &rep);
  if (rc == CAIRN_ENOTFOUND) {
    cairn__view_init(&v); /* nothing logged here: contribute no ranks */
    rc = CAIRN_OK;
  }
  if (rc == CAIRN_ENOMEM && rep.over_limit)
    cairn__h5w_over_limit(err, errlen, run_dir, rep.over_limit, memory);
  else if (rc != CAIRN_OK)
    snprintf(err, errlen, "%s: cannot read the write-ahead log of writer %u: %s", run_dir,
             (unsigned)writer, damage[0] ? damage : cairn_strerror(rc));
  rc = agree(comm, rc, err, errlen);
  char path[4096], name[64];
  snprintf(name, sizeof name, CAIRN_H5_NAME_FMT, group);
  if (rc == CAIRN_OK && snprintf(path, sizeof path, "%s/%s", run_dir, name) >= (int)sizeof path) {
    snprintf(err, errlen, "%s: path too long", run_dir);
    rc = CAIRN_EINVAL; /* the same on every process: same run_dir */
  }
  if (rc == CAIRN_OK) {
    cairn_h5_write_opts o;
    cairn__h5_write_opts_init(&o);
    o.group = group;
    o.naggregators = naggregators;
    /* A group of one aggregator (the common case with a few aggregators per
     * file, or one node) needs no MPI-IO: the serial writer writes the same
     * content several times faster (no collective chunk redistribution). */
    rc = P != 1    ? cairn__h5_write_parallel(comm, &v, path, &o, err, errlen)
         : pending ? cairn__h5_write_pending(&v, pending, path, &o, err, errlen)
                   : cairn__h5_write(&v, path, &o, err, errlen);
  }
  cairn__view_pending_free(pending);
  cairn__view_free(&v);
  if (rc != CAIRN_OK)
    return rc;
  if (rep.wal.corrupt_regions || rep.wal.torn_tails || rep.wal.bad_files ||
      rep.wal.bad_blocks || rep.unnamed_metrics) {
    snprintf(err, errlen, "%s: converted what was readable, but kept the write-ahead log of "
             "writer %u because it is damaged: %s", path, (unsigned)writer, damage);
    return CAIRN_ECORRUPT;
  }
  /* The file is durable under its final name (process 0 synced the
   * directory before the writer returned): the log can go. */
  cairn_run_file *files;
  size_t n;
  rc = cairn__run_list_files(run_dir, &files, &n, NULL, err, errlen);
  if (rc != CAIRN_OK)
    return rc;
  int removed = 0;
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
    if (files[i].kind != CAIRN_FILE_WAL || files[i].group_or_rank != writer)
      continue;
    if (unlink(files[i].path) != 0 && errno != ENOENT) {
      snprintf(err, errlen, "%s: cannot remove after conversion: %s", files[i].path,
               strerror(errno));
      rc = CAIRN_EIO;
    }
    removed = 1;
  }
  cairn__run_files_free(files, n);
  if (rc == CAIRN_OK && removed) {
    int fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
      snprintf(err, errlen, "%s: fsync of the directory failed: %s", run_dir, strerror(errno));
      rc = CAIRN_EIO;
    }
    if (fd >= 0)
      close(fd);
  }
  return rc;
}
