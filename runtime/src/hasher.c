/* hasher.c — the background hasher thread of cairn_artifact: a queue of
 * paths, one thread that hashes them (cairn-merkle-sha256-v1) and records
 * the result, or the reason it could not. */
#include "hasher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "cairn.h"
#include "hash/hash.h"
#include "lifecycle.h"
#include "util.h"

typedef struct request {
  struct request *next;
  uint64_t id, t_ns, exec;
  uint8_t kind, role;
  char **members; /* a dataslice: its member paths (path[] is its name) */
  size_t nmembers;
  char path[];
} request;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static request *head, *tail;
static int running, stopping;
static pthread_t thread;

static void record(const request *r) {
  cairn_hash_result res;
  /* One thread: the hasher shares the node with the application; a large
   * checkpoint is hashed leaf by leaf without taking every core. */
  cairn__hash_file(r->path, 0, 1, &res);
  char hash[CAIRN_HASH_REASON_LEN + 64];
  if (res.status == CAIRN_OK)
    snprintf(hash, sizeof hash, "cairn-merkle-sha256-v1:%s", res.hex);
  else
    snprintf(hash, sizeof hash, "error: %s", res.reason[0] ? res.reason
                                                          : cairn_strerror(res.status));
  if (cairn__ctl_push_artifact(r->id, r->kind, r->role, r->exec,
                               res.status == CAIRN_OK ? res.size : 0,
                               r->t_ns, r->path, strlen(r->path), hash,
                               strlen(hash)) != CAIRN_OK)
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
    cairn__hash_file(r->members[i], 0, 1, &res);
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
                             strlen(r->members[i]), mh, strlen(mh));
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
                           r->path, strlen(r->path), hash, strlen(hash));
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
    while (!head && !stopping)
      pthread_cond_wait(&work, &lock);
    request *r = head;
    if (!r)
      break; /* stopping, and the queue is empty */
    head = r->next;
    if (!head)
      tail = NULL;
    pthread_mutex_unlock(&lock);
    if (r->members)
      record_slice(r);
    else
      record(r);
    free_request(r);
    pthread_mutex_lock(&lock);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

static request *new_request(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                            uint64_t t_ns, const char *path, size_t len) {
  request *r = malloc(sizeof *r + len + 1);
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
  return r;
}

static int enqueue(request *r);

int cairn__hasher_submit(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                         uint64_t t_ns, const char *path, size_t len) {
  request *r = new_request(id, kind, role, exec, t_ns, path, len);
  return r ? enqueue(r) : CAIRN_ENOMEM;
}

int cairn__hasher_submit_slice(uint64_t id, uint8_t role, uint64_t exec, uint64_t t_ns,
                               const char *name, char **paths, size_t n) {
  request *r = new_request(id, CAIRN_ARTIFACT_DATASLICE, role, exec, t_ns, name, strlen(name));
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
  if (!running) {
    stopping = 0;
    if (cairn__thread_create(&thread, hasher_main, NULL) != 0) {
      pthread_mutex_unlock(&lock);
      free_request(r);
      return CAIRN_ETHREAD;
    }
    running = 1;
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

void cairn__hasher_stop(void) {
  pthread_mutex_lock(&lock);
  if (!running) {
    pthread_mutex_unlock(&lock);
    return;
  }
  stopping = 1;
  pthread_cond_signal(&work);
  pthread_mutex_unlock(&lock);
  pthread_join(thread, NULL);
  pthread_mutex_lock(&lock);
  running = 0;
  stopping = 0;
  pthread_mutex_unlock(&lock);
}
