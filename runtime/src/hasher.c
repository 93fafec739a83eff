/* hasher.c — the background hasher thread of cairn_artifact: a queue of
 * paths, one thread that hashes them (cairn-merkle-sha256-v1) and records
 * the result, or the reason it could not. */
#include "hasher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "hash/hash.h"
#include "lifecycle.h"
#include "util.h"

typedef struct request {
  struct request *next;
  uint64_t id, t_ns, exec;
  uint8_t kind, role;
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
    record(r);
    free(r);
    pthread_mutex_lock(&lock);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

int cairn__hasher_submit(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                         uint64_t t_ns, const char *path, size_t len) {
  request *r = malloc(sizeof *r + len + 1);
  if (!r)
    return CAIRN_ENOMEM;
  r->next = NULL;
  r->id = id;
  r->t_ns = t_ns;
  r->kind = kind;
  r->role = role;
  r->exec = exec;
  memcpy(r->path, path, len);
  r->path[len] = '\0';
  pthread_mutex_lock(&lock);
  if (!running) {
    stopping = 0;
    if (cairn__thread_create(&thread, hasher_main, NULL) != 0) {
      pthread_mutex_unlock(&lock);
      free(r);
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
