/*
 * hash.c — content hashes of files (scheme cairn-merkle-sha256-v1, see
 * hash.h and docs/format.md): leaf hashing with pread, the Merkle
 * combination, and the multi-threaded whole-file hash.
 */
#include "hash/hash.h"

#include "cairn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>

/* Bytes read per pread. Large enough that system-call cost vanishes beside
 * SHA-256 (~1-2 GB/s per core), small enough to stay in L2 while hashed. */
#define READ_CHUNK (UINT64_C(1) << 20)

/* Work is handed to threads in grabs of about this many bytes: a few leaves
 * when they are small, one when they are large, so the shared counter is
 * touched rarely and the tail of the file is still spread across threads. */
#define GRAB_BYTES (UINT64_C(4) << 20)

/* A bound on threads per file: beyond it a caller's typo would only cost
 * stacks, never speed (hashing is bound by cores and I/O). */
#define MAX_THREADS 1024u

static cairn_hash_test_hook test_hook;
static void *test_hook_arg;

void cairn__hash_set_test_hook(cairn_hash_test_hook fn, void *arg) {
  test_hook = fn;
  test_hook_arg = arg;
}

int cairn__hash_leaf_size_ok(uint64_t leaf_bytes) {
  return leaf_bytes >= CAIRN_HASH_MIN_LEAF && leaf_bytes <= CAIRN_HASH_MAX_LEAF &&
         (leaf_bytes & (leaf_bytes - 1)) == 0;
}

uint64_t cairn__hash_nleaves(uint64_t size, uint64_t leaf_bytes) {
  if (size <= leaf_bytes)
    return 1; /* includes the empty file: one (empty) leaf */
  return size / leaf_bytes + (size % leaf_bytes != 0);
}

void cairn__hash_to_hex(const uint8_t digest[CAIRN_HASH_DIGEST_LEN],
                        char hex[CAIRN_HASH_HEX_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < CAIRN_HASH_DIGEST_LEN; i++) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 15];
  }
  hex[CAIRN_HASH_HEX_LEN] = '\0';
}

static void put_u64le(uint8_t *p, uint64_t v) {
  for (unsigned i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int cairn__hash_fail(cairn_hash_result *out, int status, const char *fmt, ...) {
  if (out == NULL)
    return status;
  out->status = status;
  memset(out->digest, 0, sizeof out->digest);
  out->hex[0] = '\0';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->reason, sizeof out->reason, fmt, ap);
  va_end(ap);
  return status;
}

/* ---------------------------------------------------------------------- */
/* SHA-256 through EVP                                                     */
/* ---------------------------------------------------------------------- */

/*
 * OpenSSL 3 looks the algorithm up in its provider store on every
 * EVP_DigestInit_ex(EVP_sha256()) (an "implicit fetch", which takes a
 * lock); fetching once per context keeps thousands of small node hashes and
 * many threads from paying for it. OpenSSL 1.1 has no fetch.
 */
typedef struct {
  EVP_MD_CTX *ctx;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  EVP_MD *md;
#else
  const EVP_MD *md;
#endif
} sha256_ctx;

static int sha_open(sha256_ctx *s) {
  s->ctx = EVP_MD_CTX_new();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  s->md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
  s->md = EVP_sha256();
#endif
  if (s->ctx == NULL || s->md == NULL) {
    EVP_MD_CTX_free(s->ctx);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(s->md);
#endif
    s->ctx = NULL;
    s->md = NULL;
    return CAIRN_ENOMEM;
  }
  return CAIRN_OK;
}

static void sha_close(sha256_ctx *s) {
  EVP_MD_CTX_free(s->ctx);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  EVP_MD_free(s->md);
#endif
}

/* SHA-256(prefix || a || b) for the small inputs of the tree; prefix < 0
 * means none. OpenSSL's SHA-256 fails only when it cannot allocate. */
static int sha_small(sha256_ctx *s, int prefix, const void *a, size_t alen, const void *b,
                     size_t blen, uint8_t md[CAIRN_HASH_DIGEST_LEN]) {
  uint8_t p = (uint8_t)prefix;
  if (EVP_DigestInit_ex(s->ctx, s->md, NULL) != 1 ||
      (prefix >= 0 && EVP_DigestUpdate(s->ctx, &p, 1) != 1) ||
      EVP_DigestUpdate(s->ctx, a, alen) != 1 ||
      (blen > 0 && EVP_DigestUpdate(s->ctx, b, blen) != 1) ||
      EVP_DigestFinal_ex(s->ctx, md, NULL) != 1)
    return CAIRN_ENOMEM;
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Leaves                                                                  */
/* ---------------------------------------------------------------------- */

/* One thread's (or rank's) reusable state for hashing leaves. */
typedef struct {
  sha256_ctx sha;
  uint8_t *buf;
  size_t buflen;
} leaf_hasher;

static int hasher_open(leaf_hasher *h, uint64_t leaf_bytes) {
  h->buflen = (size_t)(leaf_bytes < READ_CHUNK ? leaf_bytes : READ_CHUNK);
  h->buf = malloc(h->buflen);
  if (h->buf == NULL)
    return CAIRN_ENOMEM;
  if (sha_open(&h->sha) != CAIRN_OK) {
    free(h->buf);
    return CAIRN_ENOMEM;
  }
  return CAIRN_OK;
}

static void hasher_close(leaf_hasher *h) {
  sha_close(&h->sha);
  free(h->buf);
}

/* Hashes leaf i of a file of size bytes. pread only, so threads share fd. */
static int hash_one_leaf(leaf_hasher *h, int fd, uint64_t size, uint64_t leaf_bytes,
                         uint64_t i, uint8_t md[CAIRN_HASH_DIGEST_LEN], char *err,
                         size_t errlen) {
  uint64_t off = i * leaf_bytes;
  uint64_t end = size - off < leaf_bytes ? size : off + leaf_bytes;
  /* A file of one leaf is hashed plainly, so it matches sha256sum. */
  int multi = size > leaf_bytes;
  EVP_MD_CTX *ctx = h->sha.ctx;
  uint8_t prefix = CAIRN_HASH_PREFIX_LEAF;

  if (EVP_DigestInit_ex(ctx, h->sha.md, NULL) != 1 ||
      (multi && EVP_DigestUpdate(ctx, &prefix, 1) != 1)) {
    set_err(err, errlen, "SHA-256 initialisation failed (out of memory)");
    return CAIRN_ENOMEM;
  }
  while (off < end) {
    size_t want = end - off < h->buflen ? (size_t)(end - off) : h->buflen;
    ssize_t got = pread(fd, h->buf, want, (off_t)off);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      set_err(err, errlen, "read error at byte %llu: %s", (unsigned long long)off,
              strerror(errno));
      return CAIRN_EIO;
    }
    if (got == 0) {
      set_err(err, errlen,
              "changed while hashed: the file ended at byte %llu, before its size at "
              "open (%llu)",
              (unsigned long long)off, (unsigned long long)size);
      return CAIRN_ECORRUPT;
    }
    if (EVP_DigestUpdate(ctx, h->buf, (size_t)got) != 1) {
      set_err(err, errlen, "SHA-256 update failed");
      return CAIRN_ENOMEM;
    }
    off += (uint64_t)got;
  }
  if (EVP_DigestFinal_ex(ctx, md, NULL) != 1) {
    set_err(err, errlen, "SHA-256 finalisation failed");
    return CAIRN_ENOMEM;
  }
  return CAIRN_OK;
}

int cairn__hash_leaves(int fd, uint64_t size, uint64_t leaf_bytes, uint64_t first_leaf,
                       uint64_t nleaves, uint8_t (*out)[CAIRN_HASH_DIGEST_LEN], char *err,
                       size_t errlen) {
  if (fd < 0 || !cairn__hash_leaf_size_ok(leaf_bytes) || (nleaves > 0 && out == NULL)) {
    set_err(err, errlen, "invalid argument");
    return CAIRN_EINVAL;
  }
  uint64_t total = cairn__hash_nleaves(size, leaf_bytes);
  if (first_leaf > total || nleaves > total - first_leaf) {
    set_err(err, errlen, "leaves [%llu, +%llu) beyond the file's %llu",
            (unsigned long long)first_leaf, (unsigned long long)nleaves,
            (unsigned long long)total);
    return CAIRN_EINVAL;
  }
  if (nleaves == 0)
    return CAIRN_OK;
  leaf_hasher h;
  if (hasher_open(&h, leaf_bytes) != CAIRN_OK) {
    set_err(err, errlen, "out of memory");
    return CAIRN_ENOMEM;
  }
  int rc = CAIRN_OK;
  for (uint64_t i = 0; i < nleaves && rc == CAIRN_OK; i++)
    rc = hash_one_leaf(&h, fd, size, leaf_bytes, first_leaf + i, out[i], err, errlen);
  hasher_close(&h);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The tree                                                                */
/* ---------------------------------------------------------------------- */

/*
 * RFC 6962's Merkle Tree Hash over leaf hashes: split n > 1 at k, the
 * largest power of two below n; node = SHA-256(0x01 || left || right).
 * Equivalent to pairing left to right level by level and promoting an
 * unpaired last node unchanged. Recursion depth is at most 64, so no
 * allocation is needed and the function cannot fail on memory beyond
 * OpenSSL's context.
 */
static int merkle(sha256_ctx *s, const uint8_t (*leaves)[CAIRN_HASH_DIGEST_LEN], uint64_t n,
                  uint8_t md[CAIRN_HASH_DIGEST_LEN]) {
  if (n == 1) {
    memcpy(md, leaves[0], CAIRN_HASH_DIGEST_LEN);
    return CAIRN_OK;
  }
  uint64_t k = UINT64_C(1) << (63 - __builtin_clzll(n - 1));
  uint8_t lr[2 * CAIRN_HASH_DIGEST_LEN];
  int rc = merkle(s, leaves, k, lr);
  if (rc == CAIRN_OK)
    rc = merkle(s, leaves + k, n - k, lr + CAIRN_HASH_DIGEST_LEN);
  if (rc == CAIRN_OK)
    rc = sha_small(s, CAIRN_HASH_PREFIX_NODE, lr, sizeof lr, NULL, 0, md);
  return rc;
}

int cairn__hash_combine(const uint8_t (*leaves)[CAIRN_HASH_DIGEST_LEN], uint64_t nleaves,
                        uint64_t size, uint64_t leaf_bytes, uint8_t root[CAIRN_HASH_DIGEST_LEN]) {
  if (leaves == NULL || root == NULL || !cairn__hash_leaf_size_ok(leaf_bytes) ||
      nleaves != cairn__hash_nleaves(size, leaf_bytes))
    return CAIRN_EINVAL;
  if (size <= leaf_bytes) {
    memcpy(root, leaves[0], CAIRN_HASH_DIGEST_LEN); /* plain SHA-256 */
    return CAIRN_OK;
  }
  sha256_ctx s;
  if (sha_open(&s) != CAIRN_OK)
    return CAIRN_ENOMEM;
  /* Final binding: 0x02 || u64le size || u64le leaf_bytes || tree root. The
   * size and leaf size make the identity unambiguous across leaf sizes. */
  uint8_t tail[16 + CAIRN_HASH_DIGEST_LEN];
  put_u64le(tail, size);
  put_u64le(tail + 8, leaf_bytes);
  int rc = merkle(&s, leaves, nleaves, tail + 16);
  if (rc == CAIRN_OK)
    rc = sha_small(&s, CAIRN_HASH_PREFIX_FINAL, tail, sizeof tail, NULL, 0, root);
  sha_close(&s);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Opening and change detection                                            */
/* ---------------------------------------------------------------------- */

static int open_errno_status(int e, char *reason, size_t len) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    set_err(reason, len, "no such file");
    return CAIRN_ENOTFOUND;
  case EACCES:
  case EPERM:
    set_err(reason, len, "permission denied");
    return CAIRN_EIO;
  case EISDIR:
    set_err(reason, len, "is a directory");
    return CAIRN_EINVAL;
  case ENOMEM:
    set_err(reason, len, "out of memory");
    return CAIRN_ENOMEM;
  default:
    set_err(reason, len, "cannot open: %s", strerror(e));
    return CAIRN_EIO;
  }
}

int cairn__hash_open(const char *path, int *fd, struct stat *st, char *reason, size_t len) {
  *fd = -1;
  /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
   * writer, i.e. block the job on an artifact path. Regular files ignore it. */
  int f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (f < 0)
    return open_errno_status(errno, reason, len);
  if (fstat(f, st) != 0) {
    int e = errno;
    close(f);
    set_err(reason, len, "cannot stat: %s", strerror(e));
    return CAIRN_EIO;
  }
  if (S_ISDIR(st->st_mode)) {
    close(f);
    set_err(reason, len, "is a directory");
    return CAIRN_EINVAL;
  }
  if (!S_ISREG(st->st_mode)) {
    close(f);
    set_err(reason, len, "not a regular file");
    return CAIRN_EINVAL;
  }
  *fd = f;
  return CAIRN_OK;
}

int cairn__hash_unchanged(const struct stat *a, const struct stat *b) {
  return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
         a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* ---------------------------------------------------------------------- */
/* The threaded whole-file hash                                            */
/* ---------------------------------------------------------------------- */

/* Shared by the threads hashing one file. Each leaf hash goes to its own
 * slot, so the order in which threads finish cannot affect the result. */
typedef struct {
  int fd;
  uint64_t size, leaf_bytes, nleaves, grab;
  uint8_t (*leaves)[CAIRN_HASH_DIGEST_LEN];
  /* Next leaf to hand out. Relaxed: the counter only partitions the work;
   * the leaf hashes are published to the caller by pthread_join. */
  _Atomic uint64_t next;
  _Atomic int stop; /* set on the first error so the others stop early */
  pthread_mutex_t lock; /* guards status and err */
  int status;
  char err[CAIRN_HASH_REASON_LEN];
} file_job;

static void job_work(file_job *job) {
  leaf_hasher h;
  char err[CAIRN_HASH_REASON_LEN] = "";
  int rc = hasher_open(&h, job->leaf_bytes);
  if (rc != CAIRN_OK) {
    snprintf(err, sizeof err, "out of memory");
  } else {
    while (rc == CAIRN_OK && !atomic_load_explicit(&job->stop, memory_order_relaxed)) {
      uint64_t first = atomic_fetch_add_explicit(&job->next, job->grab, memory_order_relaxed);
      if (first >= job->nleaves)
        break;
      uint64_t last = job->nleaves - first < job->grab ? job->nleaves : first + job->grab;
      for (uint64_t i = first; i < last && rc == CAIRN_OK; i++)
        rc = hash_one_leaf(&h, job->fd, job->size, job->leaf_bytes, i, job->leaves[i], err,
                           sizeof err);
    }
    hasher_close(&h);
  }
  if (rc != CAIRN_OK) {
    atomic_store_explicit(&job->stop, 1, memory_order_relaxed);
    pthread_mutex_lock(&job->lock);
    if (job->status == CAIRN_OK) { /* keep the first error reported */
      job->status = rc;
      memcpy(job->err, err, sizeof err);
    }
    pthread_mutex_unlock(&job->lock);
  }
}

static void *job_thread(void *arg) {
  job_work(arg);
  return NULL;
}

static unsigned pick_threads(unsigned nthreads, uint64_t nleaves) {
  if (nthreads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n > 0 ? (unsigned)n : 1u;
  }
  if (nthreads > MAX_THREADS)
    nthreads = MAX_THREADS;
  if ((uint64_t)nthreads > nleaves)
    nthreads = (unsigned)nleaves;
  return nthreads;
}

/* Hashes all leaves of the open file with up to nthreads threads, the
 * caller being one of them. Returns a status, message in job->err. */
static int hash_all_leaves(file_job *job, unsigned nthreads) {
  pthread_t *tids = NULL;
  unsigned started = 0;
  if (nthreads > 1)
    tids = malloc(sizeof *tids * (nthreads - 1));
  if (tids != NULL) {
    /* Workers block every signal, so the application's handlers keep
     * running on its own threads; they inherit the mask at creation. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned t = 0; t + 1 < nthreads; t++) {
      /* A thread that cannot start is not an error: the others (at least
       * the caller) take its share, and the result is the same. */
      if (pthread_create(&tids[started], NULL, job_thread, job) == 0)
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  job_work(job);
  for (unsigned t = 0; t < started; t++)
    pthread_join(tids[t], NULL);
  free(tids);
  return job->status;
}

int cairn__hash_file(const char *path, uint64_t leaf_bytes, unsigned nthreads,
                     cairn_hash_result *out) {
  if (out == NULL)
    return CAIRN_EINVAL;
  memset(out, 0, sizeof *out);
  if (leaf_bytes == 0)
    leaf_bytes = CAIRN_HASH_DEFAULT_LEAF;
  out->leaf_bytes = leaf_bytes;
  if (path == NULL || path[0] == '\0')
    return cairn__hash_fail(out, CAIRN_EINVAL, "empty path");
  if (!cairn__hash_leaf_size_ok(leaf_bytes))
    return cairn__hash_fail(out, CAIRN_EINVAL,
                            "leaf size %llu is not a power of two in [4 KiB, 1 GiB]",
                            (unsigned long long)leaf_bytes);

  int fd;
  struct stat before, after;
  char why[CAIRN_HASH_REASON_LEN];
  int rc = cairn__hash_open(path, &fd, &before, why, sizeof why);
  if (rc != CAIRN_OK)
    return cairn__hash_fail(out, rc, "%s", why);
  if (test_hook != NULL)
    test_hook(fd, test_hook_arg);

  out->size = (uint64_t)before.st_size;
  out->nleaves = cairn__hash_nleaves(out->size, leaf_bytes);
  file_job job = {.fd = fd, .size = out->size, .leaf_bytes = leaf_bytes,
                  .nleaves = out->nleaves, .status = CAIRN_OK};
  job.grab = leaf_bytes >= GRAB_BYTES ? 1 : GRAB_BYTES / leaf_bytes;
  atomic_init(&job.next, 0);
  atomic_init(&job.stop, 0);
  job.leaves = calloc(out->nleaves, sizeof *job.leaves);
  if (job.leaves == NULL || pthread_mutex_init(&job.lock, NULL) != 0) {
    free(job.leaves);
    close(fd);
    return cairn__hash_fail(out, CAIRN_ENOMEM, "out of memory for %llu leaf hashes",
                            (unsigned long long)out->nleaves);
  }
  if (out->size > leaf_bytes) /* one leaf of sequential reads gains nothing */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  rc = hash_all_leaves(&job, pick_threads(nthreads, out->nleaves));
  if (rc == CAIRN_OK && fstat(fd, &after) != 0) {
    rc = CAIRN_EIO;
    snprintf(job.err, sizeof job.err, "cannot stat after reading: %s", strerror(errno));
  }
  if (rc == CAIRN_OK && !cairn__hash_unchanged(&before, &after)) {
    rc = CAIRN_ECORRUPT;
    snprintf(job.err, sizeof job.err,
             "changed while hashed: size/mtime/ctime differed before and after "
             "(size %llu -> %llu)",
             (unsigned long long)before.st_size, (unsigned long long)after.st_size);
  }
  if (rc == CAIRN_OK) {
    rc = cairn__hash_combine((const uint8_t (*)[CAIRN_HASH_DIGEST_LEN])job.leaves, out->nleaves,
                             out->size, leaf_bytes, out->digest);
    if (rc != CAIRN_OK)
      snprintf(job.err, sizeof job.err, "SHA-256 failed (out of memory)");
  }
  pthread_mutex_destroy(&job.lock);
  free(job.leaves);
  close(fd);
  if (rc != CAIRN_OK)
    return cairn__hash_fail(out, rc, "%s", job.err);
  cairn__hash_to_hex(out->digest, out->hex);
  out->status = CAIRN_OK;
  return CAIRN_OK;
}
