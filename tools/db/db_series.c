/*
 * db_series.c — metric series in the lineage database: one compressed
 * array per (metric, field, chunk of CAIRN_DB_CHUNK steps), so that a query
 * reads only the fields and the step range it needs.
 *
 * Chunk encoding (docs/database.md): n little-endian elements of 4 or 8
 * bytes; steps as the first value then differences; bytes shuffled (all
 * first bytes, then all second bytes, ...) so that zstd sees the slowly
 * changing exponent bytes of doubles together; one zstd frame (fast level -3)
 * carrying its content size.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cairn.h"
#include "db.h"
#include "util.h"

/* Transposes an 8×8 byte matrix held as 8 little-endian words: byte j of
 * word i becomes byte i of word j (three rounds of block swaps). */
static inline void transpose8(uint64_t x[8]) {
  for (int r = 0; r < 8; r += 2) {
    uint64_t t = ((x[r] >> 8) ^ x[r + 1]) & 0x00ff00ff00ff00ffull;
    x[r + 1] ^= t;
    x[r] ^= t << 8;
  }
  for (int r = 0; r < 8; r += 4)
    for (int k = 0; k < 2; k++) {
      uint64_t t = ((x[r + k] >> 16) ^ x[r + k + 2]) & 0x0000ffff0000ffffull;
      x[r + k + 2] ^= t;
      x[r + k] ^= t << 16;
    }
  for (int k = 0; k < 4; k++) {
    uint64_t t = ((x[k] >> 32) ^ x[k + 4]) & 0x00000000ffffffffull;
    x[k + 4] ^= t;
    x[k] ^= t << 32;
  }
}

/* Byte shuffle: element i's byte b goes to out[b*n + i]. 8-byte elements
 * go 8 at a time through an 8×8 byte transpose (whole-word loads and
 * stores). Little-endian hosts only, like the rest of the format. */
static void shuffle(const uint8_t *in, uint8_t *out, size_t n, size_t es) {
  size_t i = 0;
  if (es == 8) {
    for (; i + 8 <= n; i += 8) {
      uint64_t x[8];
      memcpy(x, in + i * 8, 64);
      transpose8(x);
      for (size_t b = 0; b < 8; b++)
        memcpy(out + b * n + i, &x[b], 8);
    }
  }
  for (size_t b = 0; b < es; b++)
    for (size_t k = i; k < n; k++)
      out[b * n + k] = in[k * es + b];
}

static void unshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t es) {
  size_t i = 0;
  if (es == 8) {
    for (; i + 8 <= n; i += 8) {
      uint64_t x[8];
      for (size_t b = 0; b < 8; b++)
        memcpy(&x[b], in + b * n + i, 8);
      transpose8(x);
      memcpy(out + i * 8, x, 64);
    }
  }
  for (size_t b = 0; b < es; b++)
    for (size_t k = i; k < n; k++)
      out[k * es + b] = in[b * n + k];
}

static int reserve(uint8_t **p, size_t *cap, size_t need) {
  if (*cap >= need)
    return CAIRN_OK;
  uint8_t *q = realloc(*p, need);
  if (!q)
    return CAIRN_ENOMEM;
  *p = q;
  *cap = need;
  return CAIRN_OK;
}

void cairn_db_scratch_free(cairn_db_scratch *sc) {
  free(sc->tmp);
  free(sc->sh);
  free(sc->z[0]);
  free(sc->z[1]);
  ZSTD_freeCCtx(sc->cctx);
  memset(sc, 0, sizeof *sc);
}

int cairn_db_chunk_encode_into(cairn_db_scratch *sc, int slot, const void *data, size_t n,
                               size_t es, int delta, const void **out, size_t *outlen) {
  size_t raw = n * es, cap = ZSTD_compressBound(raw);
  if (reserve(&sc->sh, &sc->sh_cap, raw + 1) || reserve(&sc->z[slot], &sc->z_cap[slot], cap) ||
      (delta && es == 8 && reserve(&sc->tmp, &sc->tmp_cap, raw + 1)))
    return CAIRN_ENOMEM;
  const uint8_t *src = data;
  if (delta && es == 8) {
    const int64_t *s = data;
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
      int64_t d = (int64_t)((uint64_t)s[i] - (uint64_t)prev);
      memcpy(sc->tmp + i * 8, &d, 8);
      prev = s[i];
    }
    src = sc->tmp;
  }
  shuffle(src, sc->sh, n, es);
  if (!sc->cctx && !(sc->cctx = ZSTD_createCCtx()))
    return CAIRN_ENOMEM;
  size_t zn = ZSTD_compressCCtx(sc->cctx, sc->z[slot], cap, sc->sh, raw, CAIRN_DB_ZSTD_LEVEL);
  if (ZSTD_isError(zn))
    return CAIRN_ECOMPRESS;
  *out = sc->z[slot];
  *outlen = zn;
  return CAIRN_OK;
}

int cairn_db_chunk_encode(const void *data, size_t n, size_t es, int delta, void **out,
                          size_t *outlen) {
  cairn_db_scratch sc;
  memset(&sc, 0, sizeof sc);
  const void *z;
  int rc = cairn_db_chunk_encode_into(&sc, 0, data, n, es, delta, &z, outlen);
  if (rc == CAIRN_OK) {
    *out = sc.z[0]; /* handed over */
    sc.z[0] = NULL;
  }
  cairn_db_scratch_free(&sc);
  return rc;
}

int cairn_db_chunk_decode(const void *blob, size_t bloblen, size_t n, size_t es, int delta,
                          void *dst) {
  size_t raw = n * es;
  unsigned long long csize = ZSTD_getFrameContentSize(blob, bloblen);
  if (csize != raw)
    return CAIRN_ECORRUPT;
  uint8_t *sh = malloc(raw ? raw : 1);
  if (!sh)
    return CAIRN_ENOMEM;
  size_t got = ZSTD_decompress(sh, raw, blob, bloblen);
  if (ZSTD_isError(got) || got != raw) {
    free(sh);
    return CAIRN_ECORRUPT;
  }
  unshuffle(sh, dst, n, es);
  free(sh);
  if (delta && es == 8) {
    int64_t *d = dst, acc = 0;
    for (size_t i = 0; i < n; i++) {
      acc = (int64_t)((uint64_t)acc + (uint64_t)d[i]);
      d[i] = acc;
    }
  }
  return CAIRN_OK;
}

void cairn_db_series_free(cairn_db_series *s) {
  free(s->step);
  free(s->count);
  free(s->sum);
  free(s->sumsq);
  free(s->min);
  free(s->max);
  free(s->rank_min);
  free(s->rank_max);
  free(s->values);
  free(s->samples);
  memset(s, 0, sizeof *s);
}

static size_t field_size(int f) {
  return f == CAIRN_DB_F_COUNT || f == CAIRN_DB_F_RANK_MIN || f == CAIRN_DB_F_RANK_MAX ? 4 : 8;
}

static void **field_ptr(cairn_db_series *s, int f) {
  switch (f) {
  case CAIRN_DB_F_STEP: return (void **)&s->step;
  case CAIRN_DB_F_COUNT: return (void **)&s->count;
  case CAIRN_DB_F_SUM: return (void **)&s->sum;
  case CAIRN_DB_F_SUMSQ: return (void **)&s->sumsq;
  case CAIRN_DB_F_MIN: return (void **)&s->min;
  case CAIRN_DB_F_MAX: return (void **)&s->max;
  case CAIRN_DB_F_RANK_MIN: return (void **)&s->rank_min;
  default: return (void **)&s->rank_max;
  }
}

/* Grows an array to `rows` elements of es bytes. */
static int grow_to(void **p, size_t rows, size_t es) {
  void *q = realloc(*p, (rows ? rows : 1) * es);
  if (!q)
    return CAIRN_ENOMEM;
  *p = q;
  return CAIRN_OK;
}

/* Finds which steps of a chunk fall in [lo, hi]: [*a, *b). */
static void clip(const int64_t *step, size_t n, int64_t lo, int64_t hi, size_t *a, size_t *b) {
  size_t i = 0, j = n;
  while (i < n && step[i] < lo)
    i++;
  while (j > i && step[j - 1] > hi)
    j--;
  *a = i;
  *b = j;
}

/* Decodes a chunk blob of n elements and keeps elements [a, b) at dst.
 * Decodes in place when the whole chunk is kept (the common case of a
 * full-range query), through scratch otherwise. */
static int decode_range(const void *blob, size_t bl, size_t n, size_t es, int delta, size_t a,
                        size_t b, uint8_t *dst, uint8_t **scratch, size_t *scap) {
  if (a == 0 && b == n)
    return cairn_db_chunk_decode(blob, bl, n, es, delta, dst);
  if (*scap < n * es) {
    uint8_t *t = realloc(*scratch, n * es);
    if (!t)
      return CAIRN_ENOMEM;
    *scratch = t;
    *scap = n * es;
  }
  int rc = cairn_db_chunk_decode(blob, bl, n, es, delta, *scratch);
  if (!rc && b > a)
    memcpy(dst, *scratch + a * es, (b - a) * es);
  return rc;
}

int cairn_db_series_load(sqlite3 *db, int64_t metric_id, int64_t lo, int64_t hi, int rank,
                         unsigned fields, cairn_db_series *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  if (rank >= 0)
    fields = 0;
  fields |= 1u << CAIRN_DB_F_STEP;
  sqlite3_stmt *st = NULL, *fs = NULL;
  int rc = CAIRN_OK;
  uint8_t *scratch = NULL;
  size_t scap = 0, cap = 0;
  /* The step field drives the chunks: one row per chunk overlapping the range. */
  if (sqlite3_prepare_v2(db,
                         "SELECT step_lo, n, data FROM cairn_series_chunk WHERE metric_id=?1"
                         " AND field=0 AND step_hi >= ?2 AND step_lo <= ?3 ORDER BY step_lo",
                         -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         rank < 0 ? "SELECT data FROM cairn_series_chunk WHERE metric_id=?1 AND"
                                    " field=?2 AND step_lo=?3"
                                  : "SELECT vals, samples FROM cairn_rank_chunk WHERE"
                                    " metric_id=?1 AND rank=?2 AND step_lo=?3",
                         -1, &fs, NULL) != SQLITE_OK) {
    cairn__fmt(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return CAIRN_EIO;
  }
  sqlite3_bind_int64(st, 1, metric_id);
  sqlite3_bind_int64(st, 2, lo);
  sqlite3_bind_int64(st, 3, hi);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    int64_t slo = sqlite3_column_int64(st, 0);
    size_t n = (size_t)sqlite3_column_int64(st, 1);
    /* Room for the whole chunk; the steps are decoded straight into place. */
    if (s->n + n > cap) {
      cap = (s->n + n) * 2;
      for (int f = 0; f < CAIRN_DB_NFIELDS && !rc; f++)
        if ((fields >> f) & 1u)
          rc = grow_to(field_ptr(s, f), cap, field_size(f));
      if (!rc && rank >= 0)
        rc = grow_to((void **)&s->values, cap, 8);
      if (!rc && rank >= 0)
        rc = grow_to((void **)&s->samples, cap, 4);
      if (rc)
        break;
    }
    int64_t *steps = s->step + s->n;
    if (cairn_db_chunk_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), n,
                              8, 1, steps)) {
      cairn__fmt(err, errlen, "metric %lld: step chunk at %lld is corrupt",
                 (long long)metric_id, (long long)slo);
      rc = CAIRN_ECORRUPT;
      break;
    }
    size_t a, b;
    clip(steps, n, lo, hi, &a, &b);
    if (a)
      memmove(steps, steps + a, (b - a) * 8);
    for (int f = 1; rank < 0 && f < CAIRN_DB_NFIELDS && !rc; f++) {
      if (!((fields >> f) & 1u))
        continue;
      sqlite3_reset(fs);
      sqlite3_bind_int64(fs, 1, metric_id);
      sqlite3_bind_int(fs, 2, f);
      sqlite3_bind_int64(fs, 3, slo);
      size_t es = field_size(f);
      if (sqlite3_step(fs) != SQLITE_ROW ||
          decode_range(sqlite3_column_blob(fs, 0), (size_t)sqlite3_column_bytes(fs, 0), n, es, 0,
                       a, b, (uint8_t *)*field_ptr(s, f) + s->n * es, &scratch, &scap)) {
        cairn__fmt(err, errlen, "metric %lld: field %d chunk at step %lld missing or corrupt",
                   (long long)metric_id, f, (long long)slo);
        rc = CAIRN_ECORRUPT;
      }
    }
    if (rank >= 0 && !rc) {
      sqlite3_reset(fs);
      sqlite3_bind_int64(fs, 1, metric_id);
      sqlite3_bind_int(fs, 2, rank);
      sqlite3_bind_int64(fs, 3, slo);
      if (sqlite3_step(fs) != SQLITE_ROW) {
        cairn__fmt(err, errlen,
                   "metric %lld: no per-rank values of rank %d (detail off, or no such rank)",
                   (long long)metric_id, rank);
        rc = CAIRN_ENOTFOUND;
      } else if (decode_range(sqlite3_column_blob(fs, 0), (size_t)sqlite3_column_bytes(fs, 0), n,
                              8, 0, a, b, (uint8_t *)(s->values + s->n), &scratch, &scap) ||
                 decode_range(sqlite3_column_blob(fs, 1), (size_t)sqlite3_column_bytes(fs, 1), n,
                              4, 0, a, b, (uint8_t *)(s->samples + s->n), &scratch, &scap)) {
        cairn__fmt(err, errlen, "metric %lld: rank %d chunk at step %lld is corrupt",
                   (long long)metric_id, rank, (long long)slo);
        rc = CAIRN_ECORRUPT;
      }
    }
    if (!rc)
      s->n += b - a;
  }
  free(scratch);
  sqlite3_finalize(st);
  sqlite3_finalize(fs);
  if (rc)
    cairn_db_series_free(s);
  return rc;
}
