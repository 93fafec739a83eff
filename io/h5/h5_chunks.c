/* h5_chunks.c — shuffles and zstd-compresses the chunks of the serial
 * writer's filtered datasets on a few threads and writes them directly
 * (H5Dwrite_chunk). See h5_chunks.h. */
#include "h5_chunks.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "h5_format.h"
#include "util.h"

/* Chunks compressed or being compressed but not yet written: bounds the
 * memory held (each holds one compressed chunk of at most about
 * CAIRN_H5_CHUNK_BYTES) while keeping every thread busy. */
#define MAXJOBS 32u
#define MAXWORKERS 7u
/* Chunks of at most this many bytes are compressed by the caller when no
 * other chunk waits for a worker. */
#define INLINE_CHUNK_BYTES 16384u

enum { J_QUEUED, J_BUSY, J_DONE, J_FAILED };

typedef struct {
  size_t set;              /* index into sets                                */
  hsize_t off[2];          /* chunk origin in the dataset                    */
  const unsigned char *src;/* first source element of the chunk              */
  size_t src_stride;       /* source bytes between rows                      */
  size_t rows, cols;       /* valid part of the chunk                        */
  size_t crows, ccols;     /* chunk shape (ccols = 1 for 1-D datasets)       */
  size_t esize;            /* bytes per element in the file                  */
  int cvt;                 /* source doubles -> float32                      */
  int skip;                /* not stored if every element equals `fill`      */
  unsigned char fill[8];
  int state;
  void *out;
  size_t outlen;
} job;

typedef struct {
  hid_t d;
  size_t pending;          /* chunks not yet written                         */
} dset;

/* What one compressing thread owns. */
typedef struct {
  ZSTD_CCtx *cctx;
  unsigned char *gather, *shuf;
  size_t cap;
} scratch;

struct cairn_h5_chunks {
  int level;
  pthread_mutex_t mu;
  pthread_cond_t work;     /* a job was queued, or stop                      */
  pthread_cond_t done;     /* a job finished                                 */
  pthread_t threads[MAXWORKERS];
  unsigned nthreads;
  int stop;
  job jobs[MAXJOBS];
  uint64_t head, take, tail; /* queued, taken by a compressor, written       */
  dset *sets;
  size_t nsets, capsets;
  void *pool[MAXJOBS + MAXWORKERS + 1]; /* spare output buffers              */
  size_t npool, bufsize;
  scratch own;             /* the caller's                                    */
  int failed;
  char err[512];
};

unsigned cairn__h5_chunks_default_workers(void) {
  unsigned n = cairn__usable_cpus() - 1;
  return n > MAXWORKERS ? MAXWORKERS : n;
}

static int scratch_fit(scratch *s, size_t bytes, int level) {
  if (!s->cctx) {
    s->cctx = ZSTD_createCCtx();
    if (!s->cctx ||
        ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1)))
      return -1;
  }
  if (bytes > s->cap) {
    unsigned char *g = realloc(s->gather, bytes), *h = g ? realloc(s->shuf, bytes) : NULL;
    if (g)
      s->gather = g;
    if (h)
      s->shuf = h;
    if (!g || !h)
      return -1;
    s->cap = bytes;
  }
  return 0;
}

static void scratch_free(scratch *s) {
  ZSTD_freeCCtx(s->cctx);
  free(s->gather);
  free(s->shuf);
}

/* Swaps the `bits`-wide blocks selected by mask m between a (shifted) and b:
 * one step of a byte-matrix transpose in 64-bit registers. */
#define SWAP(a, b, bits, m)                                                                \
  do {                                                                                     \
    uint64_t t_ = (((a) >> (bits)) ^ (b)) & (m);                                           \
    (b) ^= t_;                                                                             \
    (a) ^= t_ << (bits);                                                                   \
  } while (0)

/* HDF5's shuffle: byte k of element i goes to k * n + i. Eight elements at
 * a time are transposed as an 8×8 (or, for 4-byte elements, two 4×4) byte
 * matrix in registers; byte k is taken little-endian, which is the file's
 * order (the caller only sends datasets whose memory and file types are the
 * same, and those are little-endian here). */
static void shuffle(unsigned char *out, const unsigned char *in, size_t n, size_t esize) {
  size_t i = 0;
  if (esize == 8) {
    for (; i + 8 <= n; i += 8) {
      uint64_t r[8];
      memcpy(r, in + i * 8, sizeof r);
      SWAP(r[0], r[1], 8, 0x00ff00ff00ff00ffull);
      SWAP(r[2], r[3], 8, 0x00ff00ff00ff00ffull);
      SWAP(r[4], r[5], 8, 0x00ff00ff00ff00ffull);
      SWAP(r[6], r[7], 8, 0x00ff00ff00ff00ffull);
      SWAP(r[0], r[2], 16, 0x0000ffff0000ffffull);
      SWAP(r[1], r[3], 16, 0x0000ffff0000ffffull);
      SWAP(r[4], r[6], 16, 0x0000ffff0000ffffull);
      SWAP(r[5], r[7], 16, 0x0000ffff0000ffffull);
      SWAP(r[0], r[4], 32, 0x00000000ffffffffull);
      SWAP(r[1], r[5], 32, 0x00000000ffffffffull);
      SWAP(r[2], r[6], 32, 0x00000000ffffffffull);
      SWAP(r[3], r[7], 32, 0x00000000ffffffffull);
      for (size_t k = 0; k < 8; k++)
        memcpy(out + k * n + i, &r[k], 8);
    }
  } else if (esize == 4) {
    for (; i + 8 <= n; i += 8) {
      uint32_t x[8];
      memcpy(x, in + i * 4, sizeof x);
      uint64_t r[4];
      for (size_t k = 0; k < 4; k++)
        r[k] = (uint64_t)x[k] | (uint64_t)x[k + 4] << 32;
      SWAP(r[0], r[1], 8, 0x00ff00ff00ff00ffull);
      SWAP(r[2], r[3], 8, 0x00ff00ff00ff00ffull);
      SWAP(r[0], r[2], 16, 0x0000ffff0000ffffull);
      SWAP(r[1], r[3], 16, 0x0000ffff0000ffffull);
      /* r[k]: byte k of elements i..i+3, then of i+4..i+7 */
      for (size_t k = 0; k < 4; k++)
        memcpy(out + k * n + i, &r[k], 8);
    }
  }
  for (; i < n; i++)
    for (size_t k = 0; k < esize; k++)
      out[k * n + i] = in[i * esize + k];
}

/* 1 if every element of the chunk inside the dataset equals j->fill.
 * Samples chunks are mostly all fill, so each row is scanned whole with
 * word compares the compiler can vectorize (no call per element). */
#define ROW_DIFFERS(T)                                                                     \
  do {                                                                                     \
    T f_, x_, d_ = 0;                                                                      \
    memcpy(&f_, j->fill, sizeof f_);                                                       \
    for (size_t k = 0; k < j->cols; k++) {                                                 \
      memcpy(&x_, p + k * sizeof x_, sizeof x_);                                           \
      d_ |= x_ ^ f_;                                                                       \
    }                                                                                      \
    if (d_)                                                                                \
      return 0;                                                                            \
  } while (0)
static int all_fill(const job *j) {
  for (size_t r = 0; r < j->rows; r++) {
    const unsigned char *p = j->src + r * j->src_stride;
    switch (j->esize) {
    case 4:
      ROW_DIFFERS(uint32_t);
      break;
    case 8:
      ROW_DIFFERS(uint64_t);
      break;
    default:
      for (size_t k = 0; k < j->cols; k++)
        if (memcmp(p + k * j->esize, j->fill, j->esize) != 0)
          return 0;
    }
  }
  return 1;
}
#undef ROW_DIFFERS

static int compress_out(const cairn_h5_chunks *c, job *j, const void *in, size_t bytes,
                        scratch *s) {
  size_t z = ZSTD_compress2(s->cctx, j->out, c->bufsize, in, bytes);
  if (ZSTD_isError(z))
    return -1;
  j->outlen = z;
  return 0;
}

/* Gathers, shuffles and compresses one chunk into j->out (a buffer of
 * c->bufsize bytes). Needs no lock: reads the caller's data only. */
static int compress_job(const cairn_h5_chunks *c, job *j, scratch *s) {
  size_t n = j->crows * j->ccols, bytes = n * j->esize;
  if (!j->out || scratch_fit(s, bytes, c->level) != 0)
    return -1;
  size_t selem = j->cvt ? sizeof(double) : j->esize;
  int whole = j->cols == j->ccols && j->src_stride == j->cols * selem;
  if (j->skip && all_fill(j)) {
    j->outlen = 0; /* reads as the fill value */
    return 0;
  }
  if (whole && !j->cvt && j->rows == j->crows && j->esize > 1) {
    /* a full chunk of one contiguous run: shuffled straight from it */
    shuffle(s->shuf, j->src, n, j->esize);
    return compress_out(c, j, s->shuf, bytes, s);
  }
  unsigned char *g = s->gather;
  /* Elements outside the dataset (edge chunks) are written as zeros. */
  if (j->rows < j->crows || j->cols < j->ccols)
    memset(g, 0, bytes);
  /* Full-width chunks (every 1-D chunk, and 2-D ones with all columns)
   * are one contiguous run of the source. */
  size_t runs = whole ? 1 : j->rows, run = whole ? j->rows * j->cols : j->cols;
  for (size_t r = 0; r < runs; r++) {
    const unsigned char *from = j->src + r * j->src_stride;
    unsigned char *to = g + r * j->ccols * j->esize;
    if (j->cvt) {
      for (size_t k = 0; k < run; k++) {
        double x;
        memcpy(&x, from + k * sizeof x, sizeof x);
        float f = (float)x;
        memcpy(to + k * sizeof f, &f, sizeof f);
      }
    } else {
      memcpy(to, from, run * j->esize);
    }
  }
  const unsigned char *in = g;
  if (j->esize > 1) {
    shuffle(s->shuf, g, n, j->esize);
    in = s->shuf;
  }
  return compress_out(c, j, in, bytes, s);
}

static void *worker(void *arg) {
  cairn_h5_chunks *c = arg;
  scratch s = {0};
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->stop && c->take == c->head)
      pthread_cond_wait(&c->work, &c->mu);
    if (c->take == c->head)
      break; /* stop, and nothing left */
    job *j = &c->jobs[c->take++ % MAXJOBS];
    j->state = J_BUSY;
    pthread_mutex_unlock(&c->mu);
    int rc = compress_job(c, j, &s);
    pthread_mutex_lock(&c->mu);
    j->state = rc == 0 ? J_DONE : J_FAILED;
    pthread_cond_broadcast(&c->done);
  }
  pthread_mutex_unlock(&c->mu);
  scratch_free(&s);
  return NULL;
}

static void fail(cairn_h5_chunks *c, const char *what, const hsize_t off[2]) {
  if (!c->failed)
    snprintf(c->err, sizeof c->err, "%s the chunk at (%llu, %llu)", what,
             (unsigned long long)off[0], (unsigned long long)off[1]);
  c->failed = 1;
}

/* One step of progress for the caller, under the lock: write the oldest
 * chunk if it is compressed, else compress a queued chunk itself, else
 * wait for a worker. HDF5 calls are made without the lock held. */
static void progress(cairn_h5_chunks *c) {
  job *t = &c->jobs[c->tail % MAXJOBS];
  if (c->tail < c->take && (t->state == J_DONE || t->state == J_FAILED)) {
    dset *ds = &c->sets[t->set];
    pthread_mutex_unlock(&c->mu);
    if (t->state == J_FAILED)
      fail(c, "cannot compress", t->off);
    else if (t->outlen && H5Dwrite_chunk(ds->d, H5P_DEFAULT, 0, t->off, t->outlen, t->out) < 0)
      fail(c, "cannot write", t->off);
    if (--ds->pending == 0) {
      if (H5Dclose(ds->d) < 0)
        fail(c, "cannot close the dataset after", t->off);
      ds->d = -1;
    }
    pthread_mutex_lock(&c->mu);
    if (t->out)
      c->pool[c->npool++] = t->out;
    t->out = NULL;
    c->tail++;
    return;
  }
  if (c->take < c->head) {
    job *j = &c->jobs[c->take++ % MAXJOBS];
    j->state = J_BUSY;
    pthread_mutex_unlock(&c->mu);
    int rc = compress_job(c, j, &c->own);
    pthread_mutex_lock(&c->mu);
    j->state = rc == 0 ? J_DONE : J_FAILED;
    return;
  }
  pthread_cond_wait(&c->done, &c->mu);
}

cairn_h5_chunks *cairn__h5_chunks_new(int level, unsigned workers) {
  cairn_h5_chunks *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->level = level;
  /* Every chunk the writer makes holds at most CAIRN_H5_CHUNK_BYTES, or one
   * row of at most CAIRN_H5_CHUNK_MAX_COLS 8-byte elements. */
  size_t most = CAIRN_H5_CHUNK_BYTES > CAIRN_H5_CHUNK_MAX_COLS * 8u ? CAIRN_H5_CHUNK_BYTES
                                                                   : CAIRN_H5_CHUNK_MAX_COLS * 8u;
  c->bufsize = ZSTD_compressBound(most);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->work, NULL);
  pthread_cond_init(&c->done, NULL);
  if (workers > MAXWORKERS)
    workers = MAXWORKERS;
  for (unsigned i = 0; i < workers; i++) {
    if (pthread_create(&c->threads[i], NULL, worker, c) != 0) {
      cairn__h5_chunks_free(c);
      return NULL;
    }
    c->nthreads++;
  }
  return c;
}

int cairn__h5_chunks_put(cairn_h5_chunks *c, hid_t d, hid_t dcpl, const hsize_t *dims,
                         size_t esize, const void *src, int f64_to_f32, const void *skip_fill) {
  if (skip_fill && (f64_to_f32 || esize > 8))
    return -1;
  hid_t own = dcpl < 0 ? H5Dget_create_plist(d) : -1;
  if (dcpl < 0 && own < 0)
    return -1;
  hid_t pl = dcpl >= 0 ? dcpl : own;
  hsize_t cd[2] = {1, 1};
  int rank = H5Pget_layout(pl) == H5D_CHUNKED ? H5Pget_chunk(pl, 2, cd) : -1;
  if (own >= 0)
    H5Pclose(own);
  size_t rowbytes = rank == 2 ? (size_t)cd[1] * esize : esize;
  if ((rank != 1 && rank != 2) || cd[0] == 0 || (size_t)cd[0] * rowbytes > c->bufsize)
    return -1;
  hsize_t nrows = dims[0], ncols = rank == 2 ? dims[1] : 1, ccols = rank == 2 ? cd[1] : 1;
  if (nrows == 0 || ncols == 0)
    return -1;
  size_t selem = f64_to_f32 ? sizeof(double) : esize;

  pthread_mutex_lock(&c->mu);
  if (c->nsets == c->capsets) {
    size_t nc = c->capsets ? c->capsets * 2 : 64;
    dset *ns = realloc(c->sets, nc * sizeof *ns);
    if (!ns) {
      pthread_mutex_unlock(&c->mu);
      return -1;
    }
    c->sets = ns;
    c->capsets = nc;
  }
  size_t si = c->nsets++;
  hsize_t nchunks = ((nrows + cd[0] - 1) / cd[0]) * ((ncols + ccols - 1) / ccols);
  c->sets[si] = (dset){d, (size_t)nchunks};
  for (hsize_t r0 = 0; r0 < nrows; r0 += cd[0]) {
    for (hsize_t c0 = 0; c0 < ncols; c0 += ccols) {
      while (c->head - c->tail == MAXJOBS)
        progress(c);
      void *out = c->npool ? c->pool[--c->npool] : malloc(c->bufsize);
      job *j = &c->jobs[c->head % MAXJOBS];
      *j = (job){.set = si,
                 .off = {r0, rank == 2 ? c0 : 0},
                 .src = (const unsigned char *)src + (r0 * ncols + c0) * selem,
                 .src_stride = (size_t)ncols * selem,
                 .rows = (size_t)(nrows - r0 < cd[0] ? nrows - r0 : cd[0]),
                 .cols = (size_t)(ncols - c0 < ccols ? ncols - c0 : ccols),
                 .crows = (size_t)cd[0],
                 .ccols = (size_t)ccols,
                 .esize = esize,
                 .cvt = f64_to_f32,
                 .skip = skip_fill != NULL,
                 .state = J_QUEUED,
                 .out = out}; /* NULL (out of memory): compressing it fails */
      if (skip_fill)
        memcpy(j->fill, skip_fill, esize);
      c->head++;
      if (c->take + 1 == c->head && j->crows * j->ccols * esize <= INLINE_CHUNK_BYTES) {
        /* A small chunk with nothing queued before it: compressing it here
         * costs less than waking a worker for it (a futex call, and on a
         * busy node a context switch), which was a tenth of the time of a
         * file of 10,000 metrics of 20 steps. */
        c->take++;
        j->state = J_BUSY;
        pthread_mutex_unlock(&c->mu);
        int rc = compress_job(c, j, &c->own);
        pthread_mutex_lock(&c->mu);
        j->state = rc == 0 ? J_DONE : J_FAILED;
      } else {
        pthread_cond_signal(&c->work);
      }
    }
  }
  pthread_mutex_unlock(&c->mu);
  return 0;
}

int cairn__h5_chunks_finish(cairn_h5_chunks *c, char *err, size_t errlen) {
  pthread_mutex_lock(&c->mu);
  while (c->tail < c->head)
    progress(c);
  pthread_mutex_unlock(&c->mu);
  if (c->failed && err)
    snprintf(err, errlen, "%s", c->err);
  return c->failed ? -1 : 0;
}

void cairn__h5_chunks_free(cairn_h5_chunks *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_broadcast(&c->work);
  pthread_mutex_unlock(&c->mu);
  for (unsigned i = 0; i < c->nthreads; i++)
    pthread_join(c->threads[i], NULL);
  for (uint64_t t = c->tail; t < c->head; t++)
    free(c->jobs[t % MAXJOBS].out);
  for (size_t i = 0; i < c->nsets; i++)
    if (c->sets[i].pending)
      H5Dclose(c->sets[i].d);
  for (size_t i = 0; i < c->npool; i++)
    free(c->pool[i]);
  free(c->sets);
  scratch_free(&c->own);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->work);
  pthread_cond_destroy(&c->done);
  free(c);
}
