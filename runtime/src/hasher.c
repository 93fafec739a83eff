/* hasher.c — the background hasher pool of cairn_artifact: a queue of
 * paths and lineage.hasher_threads threads that take one file each, hash it
 * (cairn-merkle-sha256-v1) with the help of the pool's idle threads, and
 * record the result, or the reason it could not. A file's hash never
 * depends on which thread, or how many, did it. */
#include "hasher.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "cairn.h"
#include "hash/hash.h"
#include "lifecycle.h"
#include "state.h"
#include "util.h"

typedef struct request {
  struct request *next;
  uint64_t id, t_ns, exec;
  uint8_t kind, role;
  char **members; /* a dataslice: its member paths (path[] is its name) */
  size_t nmembers;
  char *props;    /* typed properties (JSON object text), NUL-terminated */
  size_t props_len;
  char path[];    /* the path, then (props points here) the properties */
} request;

#define MAX_THREADS 256u /* lineage.hasher_threads' maximum */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static request *head, *tail;
static int stopping;
static unsigned owners;   /* pool threads hashing a file they took from the */
                          /* queue (it may publish leaves to help with)     */
static unsigned nthreads; /* started; 0 = the pool is not running */
static pthread_t threads[MAX_THREADS];
/* Pool threads hashing now (a file or a helped leaf), and the most at once
 * since the pool started (tests check that the pool really works in
 * parallel). */
static _Atomic unsigned busy, peak_busy;

/* lineage.hasher_threads; 0 means min(2, cores this process may run on). */
static unsigned pool_size(void) {
  unsigned n = cairn__g.cfg.hasher_threads;
  if (n == 0)
    n = cairn__usable_cpus() >= 2 ? 2 : 1;
  return n > MAX_THREADS ? MAX_THREADS : n;
}

/* ---- one large file, hashed by several pool threads ------------------------
 * The thread that takes a file of several leaves from the queue owns it: it
 * opens it, publishes a job, and hashes leaves; pool threads that find the
 * queue empty help by claiming leaves of a published job. Each leaf hash
 * lands at its index, so the identity is the same whoever hashed what. The
 * job's counters are guarded by `lock`; leaves[i] is written only by the
 * thread that claimed leaf i, and read by the owner after every claimed
 * leaf is done (the lock orders the two). */

typedef struct file_job {
  struct file_job *next; /* in `jobs` while leaves are left to claim */
  int fd;
  uint64_t size, nleaves;
  uint64_t next_leaf;    /* first leaf not claimed; nleaves = no more claims */
  uint64_t claimed, done;
  int status;            /* the first failure of a leaf */
  char err[CAIRN_HASH_REASON_LEN];
  uint8_t (*leaves)[CAIRN_HASH_DIGEST_LEN];
} file_job;

static file_job *jobs;                                    /* guarded by lock */
static pthread_cond_t job_done = PTHREAD_COND_INITIALIZER; /* a leaf finished */

static void unlink_job(file_job *j) {
  for (file_job **l = &jobs; *l; l = &(*l)->next)
    if (*l == j) {
      *l = j->next;
      break;
    }
}

/* With lock held: claims the next leaf of j (and unpublishes j when it was
 * the last one). Returns 1 with *leaf set, or 0 when none is left. */
static int claim_leaf(file_job *j, uint64_t *leaf) {
  if (j->next_leaf >= j->nleaves)
    return 0;
  *leaf = j->next_leaf++;
  j->claimed++;
  if (j->next_leaf == j->nleaves)
    unlink_job(j);
  return 1;
}

_Atomic unsigned cairn__hasher_test_leaf_delay_us;
_Atomic unsigned cairn__hasher_test_publish_delay_us;

static void test_delay(_Atomic unsigned *us) {
  unsigned d = atomic_load_explicit(us, memory_order_relaxed);
  if (CAIRN_UNLIKELY(d)) {
    struct timespec ts = {(time_t)(d / 1000000u), (long)(d % 1000000u) * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Without lock: hashes one claimed leaf, then records it done. */
static void hash_claimed_leaf(file_job *j, uint64_t leaf) {
  char err[CAIRN_HASH_REASON_LEN] = "";
  int rc = cairn__hash_leaves(j->fd, j->size, CAIRN_HASH_DEFAULT_LEAF, leaf, 1, &j->leaves[leaf],
                              err, sizeof err);
  test_delay(&cairn__hasher_test_leaf_delay_us);
  pthread_mutex_lock(&lock);
  if (rc != CAIRN_OK && j->status == CAIRN_OK) {
    j->status = rc;
    snprintf(j->err, sizeof j->err, "%s", err);
    if (j->next_leaf < j->nleaves) { /* stop the others claiming */
      j->next_leaf = j->nleaves;
      unlink_job(j);
    }
  }
  j->done++;
  if (j->done == j->claimed && j->next_leaf >= j->nleaves)
    pthread_cond_broadcast(&job_done);
  pthread_mutex_unlock(&lock);
}

static void busy_enter(void) {
  /* relaxed: statistics for tests; they order nothing. */
  unsigned now = atomic_fetch_add_explicit(&busy, 1, memory_order_relaxed) + 1;
  unsigned peak = atomic_load_explicit(&peak_busy, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&peak_busy, &peak, now,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
    ;
}

static void busy_leave(void) { atomic_fetch_sub_explicit(&busy, 1, memory_order_relaxed); }

/* Hashes path as cairn__hash_file(path, 0, ...) does — same identity, same
 * failures and reasons — with the pool's idle threads helping. */
static void pool_hash_file(const char *path, cairn_hash_result *out) {
  int fd;
  struct stat before, after;
  char why[CAIRN_HASH_REASON_LEN];
  int rc = cairn__hash_open(path, &fd, &before, why, sizeof why);
  if (rc != CAIRN_OK) {
    memset(out, 0, sizeof *out);
    out->leaf_bytes = CAIRN_HASH_DEFAULT_LEAF;
    cairn__hash_fail(out, rc, "%s", why);
    return;
  }
  uint64_t size = (uint64_t)before.st_size;
  uint64_t n = cairn__hash_nleaves(size, CAIRN_HASH_DEFAULT_LEAF);
  file_job j = {.fd = fd, .size = size, .nleaves = n, .status = CAIRN_OK};
  j.leaves = n > 1 ? calloc(n, sizeof *j.leaves) : NULL;
  if (!j.leaves) { /* one leaf (nothing to share), or no memory to share */
    close(fd);
    cairn__hash_file(path, 0, 1, out);
    return;
  }
  test_delay(&cairn__hasher_test_publish_delay_us);
  pthread_mutex_lock(&lock);
  j.next = jobs;
  jobs = &j;
  pthread_cond_broadcast(&work); /* idle threads: leaves to take */
  uint64_t leaf;
  while (claim_leaf(&j, &leaf)) {
    pthread_mutex_unlock(&lock);
    hash_claimed_leaf(&j, leaf);
    pthread_mutex_lock(&lock);
  }
  /* No claim is left; wait for the helpers' leaves in flight. After this,
   * no helper touches j (it is out of `jobs`, every claim is done). */
  while (j.done < j.claimed)
    pthread_cond_wait(&job_done, &lock);
  pthread_mutex_unlock(&lock);

  memset(out, 0, sizeof *out);
  out->leaf_bytes = CAIRN_HASH_DEFAULT_LEAF;
  out->size = size;
  out->nleaves = n;
  rc = j.status;
  if (rc == CAIRN_OK && fstat(fd, &after) != 0) {
    rc = CAIRN_EIO;
    snprintf(j.err, sizeof j.err, "cannot stat after reading: %s", strerror(errno));
  }
  if (rc == CAIRN_OK && !cairn__hash_unchanged(&before, &after)) {
    rc = CAIRN_ECORRUPT;
    snprintf(j.err, sizeof j.err,
             "changed while hashed: size/mtime/ctime differed before and after "
             "(size %llu -> %llu)",
             (unsigned long long)before.st_size, (unsigned long long)after.st_size);
  }
  if (rc == CAIRN_OK) {
    rc = cairn__hash_combine((const uint8_t (*)[CAIRN_HASH_DIGEST_LEN])j.leaves, n, size,
                             CAIRN_HASH_DEFAULT_LEAF, out->digest);
    if (rc != CAIRN_OK)
      snprintf(j.err, sizeof j.err, "SHA-256 failed (out of memory)");
  }
  free(j.leaves);
  close(fd);
  if (rc != CAIRN_OK) {
    cairn__hash_fail(out, rc, "%s", j.err);
    return;
  }
  cairn__hash_to_hex(out->digest, out->hex);
  out->status = CAIRN_OK;
}

static void record(const request *r) {
  cairn_hash_result res;
  /* The thread that took the file hashes it, helped by idle pool threads
   * (never more than the pool: it shares the node with the application). */
  pool_hash_file(r->path, &res);
  char hash[CAIRN_HASH_REASON_LEN + 64];
  if (res.status == CAIRN_OK)
    snprintf(hash, sizeof hash, "cairn-merkle-sha256-v1:%s", res.hex);
  else
    snprintf(hash, sizeof hash, "error: %s", res.reason[0] ? res.reason
                                                          : cairn_strerror(res.status));
  if (cairn__ctl_push_artifact(r->id, r->kind, r->role, r->exec,
                               res.status == CAIRN_OK ? res.size : 0,
                               r->t_ns, r->path, strlen(r->path), hash, strlen(hash),
                               r->props, r->props_len) != CAIRN_OK)
    cairn__log(CAIRN_LOG_ERROR, "out of memory recording artifact %s", r->path);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A dataslice: every member is hashed and recorded as an artifact of its
 * own; the slice's identity is "cairn-dataslice-sha256-v1:" + SHA-256 of its
 * members' hex hashes sorted and each followed by '\n' — the same whatever
 * order the members were added in. A member that cannot be hashed makes
 * the slice "error: member <path>: <reason>".
 */
static void record_slice(const request *r) {
  char **hex = calloc(r->nmembers ? r->nmembers : 1, sizeof *hex);
  char hash[CAIRN_HASH_REASON_LEN + 4200] = "";
  uint64_t total = 0;
  size_t ok = 0;
  for (size_t i = 0; hex && i < r->nmembers; i++) {
    cairn_hash_result res;
    pool_hash_file(r->members[i], &res);
    char mh[CAIRN_HASH_REASON_LEN + 64];
    if (res.status == CAIRN_OK) {
      snprintf(mh, sizeof mh, "cairn-merkle-sha256-v1:%s", res.hex);
      hex[ok++] = strdup(res.hex);
      total += res.size;
    } else {
      snprintf(mh, sizeof mh, "error: %s", res.reason[0] ? res.reason : cairn_strerror(res.status));
      if (!hash[0])
        snprintf(hash, sizeof hash, "error: member %s: %s", r->members[i],
                 res.reason[0] ? res.reason : cairn_strerror(res.status));
    }
    cairn__ctl_push_artifact(cairn__lineage_next_id(), CAIRN_ARTIFACT_DATASET, r->role, r->exec,
                             res.status == CAIRN_OK ? res.size : 0, r->t_ns, r->members[i],
                             strlen(r->members[i]), mh, strlen(mh), "", 0);
  }
  if (!hex) {
    snprintf(hash, sizeof hash, "error: out of memory");
  } else if (!hash[0]) {
    qsort(hex, ok, sizeof *hex, cmp_str);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int dlen = 0;
    int good = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; good && i < ok; i++)
      good = EVP_DigestUpdate(md, hex[i], strlen(hex[i])) == 1 &&
             EVP_DigestUpdate(md, "\n", 1) == 1;
    good = good && EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 32;
    EVP_MD_CTX_free(md);
    if (good) {
      int o = snprintf(hash, sizeof hash, "cairn-dataslice-sha256-v1:");
      for (int i = 0; i < 32; i++)
        o += snprintf(hash + o, sizeof hash - (size_t)o, "%02x", digest[i]);
    } else {
      snprintf(hash, sizeof hash, "error: SHA-256 unavailable");
    }
  }
  for (size_t i = 0; hex && i < ok; i++)
    free(hex[i]);
  free(hex);
  cairn__ctl_push_artifact(r->id, CAIRN_ARTIFACT_DATASLICE, r->role, r->exec, total, r->t_ns,
                           r->path, strlen(r->path), hash, strlen(hash), "", 0);
}

static void free_request(request *r) {
  for (size_t i = 0; i < r->nmembers; i++)
    free(r->members[i]);
  free(r->members);
  free(r);
}

static void *hasher_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "cairn-hasher");
  pthread_mutex_lock(&lock);
  for (;;) {
    /* New files first (several files hash at once), then leaves of a
     * file another thread is hashing. */
    request *r = head;
    if (r) {
      head = r->next;
      if (!head)
        tail = NULL;
      owners++;
      pthread_mutex_unlock(&lock);
      busy_enter();
      if (r->members)
        record_slice(r);
      else
        record(r);
      busy_leave();
      free_request(r);
      pthread_mutex_lock(&lock);
      if (--owners == 0 && stopping)
        pthread_cond_broadcast(&work); /* helpers waiting for leaves may go */
      continue;
    }
    uint64_t leaf;
    file_job *j = jobs;
    if (j && claim_leaf(j, &leaf)) {
      pthread_mutex_unlock(&lock);
      busy_enter();
      hash_claimed_leaf(j, leaf);
      busy_leave();
      pthread_mutex_lock(&lock);
      continue;
    }
    /* At stop a thread leaves once the queue is empty and no file is being
     * hashed: a thread that has just taken a large file has not published
     * its leaves yet, and the others would otherwise be gone by then. */
    if (stopping && owners == 0)
      break;
    pthread_cond_wait(&work, &lock);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

static request *new_request(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                            uint64_t t_ns, const char *path, size_t len, const char *props,
                            size_t props_len) {
  request *r = malloc(sizeof *r + len + 1 + props_len + 1);
  if (!r)
    return NULL;
  r->next = NULL;
  r->id = id;
  r->t_ns = t_ns;
  r->kind = kind;
  r->role = role;
  r->exec = exec;
  r->members = NULL;
  r->nmembers = 0;
  memcpy(r->path, path, len);
  r->path[len] = '\0';
  r->props = r->path + len + 1;
  r->props_len = props_len;
  if (props_len)
    memcpy(r->props, props, props_len);
  r->props[props_len] = '\0';
  return r;
}

static int enqueue(request *r);

int cairn__hasher_submit(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                         uint64_t t_ns, const char *path, size_t len, const char *props,
                         size_t props_len) {
  request *r = new_request(id, kind, role, exec, t_ns, path, len, props, props_len);
  return r ? enqueue(r) : CAIRN_ENOMEM;
}

int cairn__hasher_submit_slice(uint64_t id, uint8_t role, uint64_t exec, uint64_t t_ns,
                               const char *name, char **paths, size_t n) {
  request *r =
      new_request(id, CAIRN_ARTIFACT_DATASLICE, role, exec, t_ns, name, strlen(name), NULL, 0);
  if (!r) {
    for (size_t i = 0; i < n; i++)
      free(paths[i]);
    free(paths);
    return CAIRN_ENOMEM;
  }
  r->members = paths;
  r->nmembers = n;
  if (!paths) { /* an empty slice: still a slice */
    r->members = calloc(1, sizeof *r->members);
    if (!r->members) {
      free(r);
      return CAIRN_ENOMEM;
    }
  }
  return enqueue(r);
}

static int enqueue(request *r) {
  pthread_mutex_lock(&lock);
  if (!nthreads) {
    stopping = 0;
    atomic_store_explicit(&peak_busy, 0, memory_order_relaxed);
    unsigned want = pool_size();
    while (nthreads < want && cairn__thread_create(&threads[nthreads], hasher_main, NULL) == 0)
      nthreads++;
    if (!nthreads) {
      pthread_mutex_unlock(&lock);
      free_request(r);
      return CAIRN_ETHREAD;
    }
    if (nthreads < want)
      cairn__log(CAIRN_LOG_WARN, "hasher: started %u of %u threads", nthreads, want);
  }
  if (tail)
    tail->next = r;
  else
    head = r;
  tail = r;
  pthread_cond_signal(&work);
  pthread_mutex_unlock(&lock);
  return CAIRN_OK;
}

unsigned cairn__hasher_peak_busy(void) {
  return atomic_load_explicit(&peak_busy, memory_order_relaxed);
}

unsigned cairn__hasher_threads(void) {
  pthread_mutex_lock(&lock);
  unsigned n = nthreads;
  pthread_mutex_unlock(&lock);
  return n;
}

void cairn__hasher_stop(void) {
  pthread_mutex_lock(&lock);
  unsigned n = nthreads;
  if (!n) {
    pthread_mutex_unlock(&lock);
    return;
  }
  stopping = 1;
  pthread_cond_broadcast(&work);
  pthread_mutex_unlock(&lock);
  /* Each thread leaves once the queue is empty: everything queued is
   * hashed and recorded before this returns. */
  for (unsigned i = 0; i < n; i++)
    pthread_join(threads[i], NULL);
  pthread_mutex_lock(&lock);
  nthreads = 0;
  stopping = 0;
  pthread_mutex_unlock(&lock);
}
