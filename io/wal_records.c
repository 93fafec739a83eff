/* wal_records.c — encoding and bounds-checked decoding of the sections inside
 * a WAL DATA block (layout in docs/format.md, "WAL DATA payload"). */
#include "wal_records.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

/* ---- buffer --------------------------------------------------------------- */

static int buf_reserve(cairn_buf *b, size_t extra) {
  if (b->failed)
    return -1;
  if (b->len + extra <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra)
    cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (!p) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void cairn__buf_reset(cairn_buf *b) {
  b->len = 0;
  b->failed = 0;
}

int cairn__buf_append(cairn_buf *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  if (buf_reserve(b, n) != 0)
    return -1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void cairn__buf_free(cairn_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* Little-endian stores and loads. On little-endian hosts (every HPC CPU in
 * use) they compile to single moves; elsewhere they assemble bytes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CAIRN_LE_HOST 1
#else
#define CAIRN_LE_HOST 0
#endif

static void st16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void st32(uint8_t *p, uint32_t v) {
  if (CAIRN_LE_HOST) {
    memcpy(p, &v, 4);
    return;
  }
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v) {
  if (CAIRN_LE_HOST) {
    memcpy(p, &v, 8);
    return;
  }
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p) {
  if (CAIRN_LE_HOST) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
  }
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) {
  if (CAIRN_LE_HOST) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
  }
  return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}
static uint64_t f2u(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}
static double u2f(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

static void put_u8(cairn_buf *b, uint8_t v) {
  if (buf_reserve(b, 1) == 0)
    b->data[b->len++] = v;
}
static void put_u16(cairn_buf *b, uint16_t v) {
  if (buf_reserve(b, 2) == 0) {
    st16(b->data + b->len, v);
    b->len += 2;
  }
}
static void put_u32(cairn_buf *b, uint32_t v) {
  if (buf_reserve(b, 4) == 0) {
    st32(b->data + b->len, v);
    b->len += 4;
  }
}
static void put_u64(cairn_buf *b, uint64_t v) {
  if (buf_reserve(b, 8) == 0) {
    st64(b->data + b->len, v);
    b->len += 8;
  }
}
static void put_bytes(cairn_buf *b, const void *p, size_t n) {
  if (n && buf_reserve(b, n) == 0) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
  }
}

static size_t open_layout(cairn_buf *b, uint16_t type, uint16_t layout) {
  size_t off = b->len;
  put_u16(b, type);
  put_u16(b, layout);
  put_u32(b, 0); /* count, patched by close */
  put_u32(b, 0); /* body bytes, patched by close */
  return off;
}

size_t cairn__rec_open(cairn_buf *b, uint16_t type) { return open_layout(b, type, 0); }
size_t cairn__rec_open_artifacts(cairn_buf *b) {
  return open_layout(b, CAIRN_SEC_ARTIFACTS, CAIRN_SEC_LAYOUT_V2);
}
size_t cairn__rec_open_lineage(cairn_buf *b) {
  return open_layout(b, CAIRN_SEC_LINEAGE, CAIRN_SEC_LAYOUT_V2);
}

void cairn__rec_close(cairn_buf *b, size_t off, uint32_t count) {
  if (b->failed)
    return;
  st32(b->data + off + 4, count);
  st32(b->data + off + 8, (uint32_t)(b->len - off - CAIRN_SEC_HEADER_SIZE));
}

/* Strings are length-prefixed, never NUL-terminated on disk. Keys are at most
 * CAIRN_NAME_MAX bytes (u16 length), values up to CAIRN_VALUE_MAX (u32). */
static void put_key(cairn_buf *b, const char *s, size_t n) {
  put_u16(b, (uint16_t)n);
  put_bytes(b, s, n);
}
static void put_val(cairn_buf *b, const char *s, size_t n) {
  put_u32(b, (uint32_t)n);
  put_bytes(b, s, n);
}

void cairn__rec_put_run(cairn_buf *b, const cairn_rec_run *r) {
  size_t off = cairn__rec_open(b, CAIRN_SEC_RUN);
  put_bytes(b, r->run_id, 16);
  put_u32(b, r->rank);
  put_u32(b, r->nranks);
  put_u32(b, r->pid);
  put_u64(b, r->start_ns);
  put_key(b, r->hostname, r->hostname_len);
  put_key(b, r->version, r->version_len);
  cairn__rec_close(b, off, 1);
}

void cairn__rec_put_names(cairn_buf *b, size_t n, const uint32_t *ids,
                          const char *const *names) {
  size_t off = cairn__rec_open(b, CAIRN_SEC_NAMES);
  for (size_t i = 0; i < n; i++) {
    put_u32(b, ids[i]);
    put_key(b, names[i], strlen(names[i]));
  }
  cairn__rec_close(b, off, (uint32_t)n);
}

/* Byte-plane shuffle of an array of 8-byte values (the HDF5 shuffle filter's
 * idea): the exponent and high mantissa bytes of neighbouring doubles are
 * similar, and grouping them gives zstd long runs to work with. One pass per
 * byte plane over a contiguous array keeps reads and writes sequential. */
static void put_shuffled64(cairn_buf *b, size_t n, const uint64_t *v) {
  if (buf_reserve(b, n * 8) != 0)
    return;
  uint8_t *dst = b->data + b->len;
  for (int k = 0; k < 8; k++) {
    uint8_t *plane = dst + (size_t)k * n;
    for (size_t i = 0; i < n; i++)
      plane[i] = (uint8_t)(v[i] >> (8 * k));
  }
  b->len += n * 8;
}

static uint64_t get_shuffled64(const uint8_t *src, size_t n, size_t i) {
  uint64_t x = 0;
  for (int k = 0; k < 8; k++)
    x |= (uint64_t)src[(size_t)k * n + i] << (8 * k);
  return x;
}

/* LEB128 varints with zigzag for signed deltas: the keys of a training loop
 * (same step, next metric id, one sample) take one byte each. */
static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }
static inline uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/*
 * METRICS body, columnar (n = count in the section header):
 *   u32 K               byte length of the key column
 *   key column          per entry, three LEB128 varints:
 *                         zigzag(step[i] - step[i-1])   (step[-1] = 0)
 *                         zigzag(id[i] - id[i-1])       (id[-1] = 0)
 *                         count[i] - 1
 *   f64 sum[n]          byte-shuffled (all byte 0s, then all byte 1s, ...)
 *   u32 m               number of entries with count > 1
 *   f64 min[m], f64 max[m]  byte-shuffled, for those entries in order
 * For count == 1 min == max == sum, so they are not stored.
 */
void cairn__rec_put_metrics(cairn_buf *b, size_t n, const cairn_metric_agg *a) {
  size_t off = cairn__rec_open(b, CAIRN_SEC_METRICS);
  /* Worst case 10 + 10 + 5 bytes of varints per entry. */
  if (buf_reserve(b, 4 + n * 25) != 0)
    return;
  uint8_t *start = b->data + b->len + 4, *p = start;
  int64_t prev_step = 0, prev_id = 0;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    p = put_varint(p, zigzag((int64_t)((uint64_t)a[i].step - (uint64_t)prev_step)));
    p = put_varint(p, zigzag((int64_t)a[i].id - prev_id));
    p = put_varint(p, (uint64_t)a[i].count - 1);
    prev_step = a[i].step;
    prev_id = a[i].id;
    m += a[i].count > 1;
  }
  st32(b->data + b->len, (uint32_t)(p - start));
  b->len += 4 + (size_t)(p - start);
  uint64_t *tmp = malloc((n + 2 * m + 1) * sizeof *tmp);
  if (!tmp) {
    b->failed = 1;
    return;
  }
  uint64_t *mins = tmp + n, *maxs = mins + m;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    tmp[i] = f2u(a[i].sum);
    if (a[i].count > 1) {
      mins[j] = f2u(a[i].min);
      maxs[j] = f2u(a[i].max);
      j++;
    }
  }
  put_shuffled64(b, n, tmp);
  put_u32(b, (uint32_t)m);
  put_shuffled64(b, m, mins);
  put_shuffled64(b, m, maxs);
  free(tmp);
  cairn__rec_close(b, off, (uint32_t)n);
}

void cairn__rec_put_steps(cairn_buf *b, size_t n, const cairn_rec_step *s) {
  size_t off = cairn__rec_open(b, CAIRN_SEC_STEPS);
  for (size_t i = 0; i < n; i++) {
    put_u64(b, (uint64_t)s[i].step);
    put_u64(b, s[i].t_ns);
    put_u32(b, s[i].thread);
  }
  cairn__rec_close(b, off, (uint32_t)n);
}

void cairn__rec_add_param(cairn_buf *b, const cairn_rec_param *p) {
  put_u8(b, (uint8_t)p->type);
  put_key(b, p->key, p->key_len);
  switch (p->type) {
  case CAIRN_PARAM_INT64:
    put_u64(b, (uint64_t)p->i64);
    break;
  case CAIRN_PARAM_DOUBLE:
    put_u64(b, f2u(p->f64));
    break;
  case CAIRN_PARAM_BOOL:
    put_u8(b, p->i64 ? 1 : 0);
    break;
  default:
    put_val(b, p->str, p->str_len);
    break;
  }
}

void cairn__rec_add_kv(cairn_buf *b, const char *key, size_t klen, const char *val,
                       size_t vlen) {
  put_key(b, key, klen);
  put_val(b, val, vlen);
}

void cairn__rec_put_counters(cairn_buf *b, size_t n, const cairn_rec_counters *c) {
  size_t off = cairn__rec_open(b, CAIRN_SEC_COUNTERS);
  for (size_t i = 0; i < n; i++) {
    put_u8(b, (uint8_t)c[i].channel);
    put_u64(b, c[i].logged);
    put_u64(b, c[i].written);
    put_u64(b, c[i].dropped);
    put_u64(b, c[i].rejected);
  }
  cairn__rec_close(b, off, (uint32_t)n);
}

void cairn__rec_add_artifact(cairn_buf *b, const cairn_rec_artifact *a) {
  put_u64(b, a->id);
  put_u8(b, a->kind);
  put_u8(b, a->role);
  put_u64(b, a->execution_id);
  put_u64(b, a->size);
  put_u64(b, a->t_ns);
  put_val(b, a->uri, a->uri_len);
  put_val(b, a->hash, a->hash_len);
  put_val(b, a->props, a->props_len);
}

void cairn__rec_add_lineage(cairn_buf *b, const cairn_rec_lineage *l) {
  put_u8(b, l->what);
  put_u64(b, l->id);
  put_u64(b, l->parent);
  put_u64(b, l->t_ns);
  put_val(b, l->name, l->name_len);
  put_val(b, l->text, l->text_len);
  put_val(b, l->props, l->props_len);
  put_val(b, l->type, l->type_len);
  put_val(b, l->command, l->command_len);
}

void cairn__rec_put_source(cairn_buf *b, uint32_t rank) {
  size_t off = cairn__rec_open(b, CAIRN_SEC_SOURCE);
  put_u32(b, rank);
  cairn__rec_close(b, off, 1);
}

/* ---- decoder --------------------------------------------------------------- */

typedef struct {
  const uint8_t *p, *end, *base;
  int sec;
  char *err;
  size_t errlen;
} cursor;

static int fail(cursor *c, const char *what) {
  if (c->err && c->errlen)
    snprintf(c->err, c->errlen, "section %d, byte %zu: %s", c->sec,
             (size_t)(c->p - c->base), what);
  return CAIRN_ECORRUPT;
}

#define NEED(c, n)                                                             \
  do {                                                                         \
    if ((size_t)((c)->end - (c)->p) < (size_t)(n))                             \
      return fail((c), "record runs past the end of its section");            \
  } while (0)

static int get_key(cursor *c, const char **s, size_t *n) {
  NEED(c, 2);
  *n = ld16(c->p);
  c->p += 2;
  NEED(c, *n);
  *s = (const char *)c->p;
  c->p += *n;
  return 0;
}

static int get_val(cursor *c, const char **s, size_t *n) {
  NEED(c, 4);
  *n = ld32(c->p);
  c->p += 4;
  NEED(c, *n);
  *s = (const char *)c->p;
  c->p += *n;
  return 0;
}

static int dec_run(cursor *c, const cairn_rec_visitor *v) {
  cairn_rec_run r;
  NEED(c, 16 + 4 + 4 + 4 + 8);
  memcpy(r.run_id, c->p, 16);
  r.rank = ld32(c->p + 16);
  r.nranks = ld32(c->p + 20);
  r.pid = ld32(c->p + 24);
  r.start_ns = ld64(c->p + 28);
  c->p += 36;
  int rc;
  if ((rc = get_key(c, &r.hostname, &r.hostname_len)) ||
      (rc = get_key(c, &r.version, &r.version_len)))
    return rc;
  return v->run ? v->run(v->ctx, &r) : 0;
}

static int dec_names(cursor *c, uint32_t n, const cairn_rec_visitor *v) {
  for (uint32_t i = 0; i < n; i++) {
    NEED(c, 4);
    uint32_t id = ld32(c->p);
    c->p += 4;
    const char *s;
    size_t len;
    int rc = get_key(c, &s, &len);
    if (rc)
      return rc;
    if (len == 0)
      return fail(c, "empty metric name");
    if (v->name && (rc = v->name(v->ctx, id, s, len)))
      return rc;
  }
  return 0;
}

/* Reads one varint from [*p, end). Returns 0, or -1 if it runs past the end
 * or is longer than 10 bytes. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*p >= end)
      return -1;
    uint8_t byte = *(*p)++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static int dec_metrics(cursor *c, uint32_t n, const cairn_rec_visitor *v) {
  NEED(c, 4);
  uint32_t kbytes = ld32(c->p);
  c->p += 4;
  NEED(c, kbytes);
  const uint8_t *keys = c->p, *kend = keys + kbytes;
  c->p += kbytes;
  NEED(c, (uint64_t)n * 8 + 4);
  const uint8_t *sums = c->p;
  c->p = sums + (size_t)n * 8;
  uint32_t m = ld32(c->p);
  c->p += 4;
  if (m > n)
    return fail(c, "more min/max entries than metric entries");
  NEED(c, (uint64_t)m * 16);
  const uint8_t *mins = c->p, *maxs = mins + (size_t)m * 8;
  c->p += (size_t)m * 16;
  int64_t step = 0, id = 0;
  uint32_t j = 0;
  for (uint32_t i = 0; i < n; i++) {
    cairn_metric_agg a;
    uint64_t ds, di, cm1;
    if (get_varint(&keys, kend, &ds) || get_varint(&keys, kend, &di) ||
        get_varint(&keys, kend, &cm1))
      return fail(c, "metric key column ends early or holds a malformed varint");
    step = (int64_t)((uint64_t)step + (uint64_t)unzigzag(ds));
    id = (int64_t)((uint64_t)id + (uint64_t)unzigzag(di));
    if (id < 0 || id > (int64_t)UINT32_MAX || cm1 >= UINT32_MAX)
      return fail(c, "metric id or sample count out of range");
    a.step = step;
    a.id = (uint32_t)id;
    a.count = (uint32_t)cm1 + 1;
    a.sum = u2f(get_shuffled64(sums, n, i));
    if (a.count > 1) {
      if (j >= m)
        return fail(c, "min/max column shorter than the entries that need it");
      a.min = u2f(get_shuffled64(mins, m, j));
      a.max = u2f(get_shuffled64(maxs, m, j));
      j++;
    } else {
      a.min = a.max = a.sum;
    }
    int rc;
    if (v->metric && (rc = v->metric(v->ctx, &a)))
      return rc;
  }
  if (keys != kend)
    return fail(c, "metric key column has trailing bytes");
  if (j != m)
    return fail(c, "min/max column longer than the entries that need it");
  return 0;
}

static int dec_steps(cursor *c, uint32_t n, const cairn_rec_visitor *v) {
  NEED(c, (uint64_t)n * 20);
  for (uint32_t i = 0; i < n; i++) {
    cairn_rec_step s = {(int64_t)ld64(c->p), ld64(c->p + 8), ld32(c->p + 16)};
    c->p += 20;
    int rc;
    if (v->step && (rc = v->step(v->ctx, &s)))
      return rc;
  }
  return 0;
}

static int dec_params(cursor *c, uint32_t n, const cairn_rec_visitor *v) {
  for (uint32_t i = 0; i < n; i++) {
    cairn_rec_param p;
    memset(&p, 0, sizeof p);
    NEED(c, 1);
    p.type = *c->p++;
    int rc = get_key(c, &p.key, &p.key_len);
    if (rc)
      return rc;
    switch (p.type) {
    case CAIRN_PARAM_INT64:
      NEED(c, 8);
      p.i64 = (int64_t)ld64(c->p);
      c->p += 8;
      break;
    case CAIRN_PARAM_DOUBLE:
      NEED(c, 8);
      p.f64 = u2f(ld64(c->p));
      c->p += 8;
      break;
    case CAIRN_PARAM_BOOL:
      NEED(c, 1);
      if (*c->p > 1)
        return fail(c, "boolean param value is neither 0 nor 1");
      p.i64 = *c->p++;
      break;
    case CAIRN_PARAM_STRING:
      if ((rc = get_val(c, &p.str, &p.str_len)))
        return rc;
      break;
    default:
      return fail(c, "unknown param type");
    }
    if (v->param && (rc = v->param(v->ctx, &p)))
      return rc;
  }
  return 0;
}

static int dec_kv(cursor *c, uint32_t n, const cairn_rec_visitor *v) {
  for (uint32_t i = 0; i < n; i++) {
    const char *k, *val;
    size_t kl, vl;
    int rc;
    if ((rc = get_key(c, &k, &kl)) || (rc = get_val(c, &val, &vl)))
      return rc;
    if (v->kv && (rc = v->kv(v->ctx, k, kl, val, vl)))
      return rc;
  }
  return 0;
}

static int dec_artifacts(cursor *c, uint32_t n, uint16_t layout,
                         const cairn_rec_visitor *v) {
  for (uint32_t i = 0; i < n; i++) {
    cairn_rec_artifact a;
    a.props = "";
    a.props_len = 0;
    NEED(c, 8 + 1 + 1 + 8 + 8 + 8);
    a.id = ld64(c->p);
    a.kind = c->p[8];
    a.role = c->p[9];
    a.execution_id = ld64(c->p + 10);
    a.size = ld64(c->p + 18);
    a.t_ns = ld64(c->p + 26);
    c->p += 34;
    int rc;
    if ((rc = get_val(c, &a.uri, &a.uri_len)) || (rc = get_val(c, &a.hash, &a.hash_len)) ||
        (layout == CAIRN_SEC_LAYOUT_V2 && (rc = get_val(c, &a.props, &a.props_len))))
      return rc;
    if (a.role != 1 && a.role != 2)
      return fail(c, "artifact role is neither INPUT (1) nor OUTPUT (2)");
    if (v->artifact && (rc = v->artifact(v->ctx, &a)))
      return rc;
  }
  return 0;
}

static int dec_lineage(cursor *c, uint32_t n, uint16_t layout, const cairn_rec_visitor *v) {
  for (uint32_t i = 0; i < n; i++) {
    cairn_rec_lineage l;
    l.type = l.command = "";
    l.type_len = l.command_len = 0;
    NEED(c, 1 + 8 + 8 + 8);
    l.what = c->p[0];
    l.id = ld64(c->p + 1);
    l.parent = ld64(c->p + 9);
    l.t_ns = ld64(c->p + 17);
    c->p += 25;
    int rc;
    if ((rc = get_val(c, &l.name, &l.name_len)) || (rc = get_val(c, &l.text, &l.text_len)) ||
        (rc = get_val(c, &l.props, &l.props_len)) ||
        (layout == CAIRN_SEC_LAYOUT_V2 &&
         ((rc = get_val(c, &l.type, &l.type_len)) ||
          (rc = get_val(c, &l.command, &l.command_len)))))
      return rc;
    if (l.what < CAIRN_LIN_CONTEXT || l.what > CAIRN_LIN_EXEC_END)
      return fail(c, "unknown lineage record kind");
    if (v->lineage && (rc = v->lineage(v->ctx, &l)))
      return rc;
  }
  return 0;
}

static int dec_counters(cursor *c, uint32_t n, const cairn_rec_visitor *v) {
  NEED(c, (uint64_t)n * 33);
  for (uint32_t i = 0; i < n; i++) {
    cairn_rec_counters k = {c->p[0], ld64(c->p + 1), ld64(c->p + 9), ld64(c->p + 17),
                            ld64(c->p + 25)};
    c->p += 33;
    int rc;
    if (v->counters && (rc = v->counters(v->ctx, &k)))
      return rc;
  }
  return 0;
}

int cairn__rec_decode(const void *payload, size_t len, const cairn_rec_visitor *v,
                      char *err, size_t errlen) {
  const uint8_t *p = payload, *end = p + len;
  int sec = 0;
  while (p < end) {
    cursor c = {p, end, payload, sec, err, errlen};
    if ((size_t)(end - p) < CAIRN_SEC_HEADER_SIZE)
      return fail(&c, "truncated section header");
    uint16_t type = ld16(p), layout = ld16(p + 2);
    uint32_t count = ld32(p + 4), bytes = ld32(p + 8);
    if ((size_t)(end - p) - CAIRN_SEC_HEADER_SIZE < bytes)
      return fail(&c, "section body runs past the end of the block");
    c.p = p + CAIRN_SEC_HEADER_SIZE;
    c.end = c.p + bytes;
    int rc = 0;
    switch (type) {
    case CAIRN_SEC_RUN:
      rc = dec_run(&c, v);
      break;
    case CAIRN_SEC_NAMES:
      rc = dec_names(&c, count, v);
      break;
    case CAIRN_SEC_METRICS:
      rc = dec_metrics(&c, count, v);
      break;
    case CAIRN_SEC_STEPS:
      rc = dec_steps(&c, count, v);
      break;
    case CAIRN_SEC_PARAMS:
      rc = dec_params(&c, count, v);
      break;
    case CAIRN_SEC_KV:
      rc = dec_kv(&c, count, v);
      break;
    case CAIRN_SEC_COUNTERS:
      rc = dec_counters(&c, count, v);
      break;
    case CAIRN_SEC_ARTIFACTS:
    case CAIRN_SEC_LINEAGE:
      if (layout != 0 && layout != CAIRN_SEC_LAYOUT_V2) {
        rc = fail(&c, "unknown record layout in the section flags");
        break;
      }
      rc = type == CAIRN_SEC_ARTIFACTS ? dec_artifacts(&c, count, layout, v)
                                       : dec_lineage(&c, count, layout, v);
      break;
    case CAIRN_SEC_SOURCE:
      if (bytes != 4) {
        rc = fail(&c, "SOURCE section is not exactly one u32 rank");
        break;
      }
      rc = v->source ? v->source(v->ctx, ld32(c.p)) : 0;
      c.p += 4;
      break;
    default:
      c.p = c.end; /* unknown section: skip, a newer writer made it */
      break;
    }
    if (rc)
      return rc;
    if (type >= CAIRN_SEC_RUN && type <= CAIRN_SEC_LINEAGE && c.p != c.end)
      return fail(&c, "section body has trailing bytes");
    p = c.end;
    sec++;
  }
  return CAIRN_OK;
}
