/*
 * stress_threads.c — the ring and accounting stress without Criterion, so it
 * can run under ThreadSanitizer (Criterion's runner maps memory at addresses
 * TSan reserves). Two parts:
 *   1. one producer and one consumer thread on a bare SPSC ring, the consumer
 *      checking every record whole and in order and every gap a counted drop;
 *   2. four logging threads through the public API with the real drain and
 *      WAL writer, then logged == written + dropped per thread, read back
 *      from disk.
 * Exits 0 on success, 1 with a message on the first failed check.
 * usage: stress_threads [RECORDS_PER_THREAD]   (default 200000)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"
#include "ring.h"
#include "run_model.h"

#define STRESS_NAME "stress_threads"
#include "stress_check.h"

typedef struct {
  cairn_ring *r;
  _Atomic int done;
  uint64_t consumed, bad, gaps, next;
} spsc;

static void *consume(void *p) {
  spsc *s = p;
  for (;;) {
    int done = atomic_load_explicit(&s->done, memory_order_acquire);
    uint64_t t, n = cairn__ring_peek_spsc(s->r, &t);
    for (uint64_t k = 0; k < n; k++) {
      const cairn_rec *rec = cairn__ring_slot(s->r, t + k);
      uint64_t seq = (uint64_t)rec->step;
      if ((double)seq != rec->value || seq < s->next)
        s->bad++;
      else
        s->gaps += seq - s->next;
      s->next = seq + 1;
    }
    cairn__ring_release_spsc(s->r, t + n);
    s->consumed += n;
    if (done && n == 0)
      return NULL;
  }
}

static void ring_part(uint64_t n, int block) {
  spsc s = {.r = cairn__ring_create(1024, 0.5, block)};
  cairn_ring_producer prod;
  cairn__ring_producer_init(&prod, s.r);
  atomic_init(&s.done, 0);
  pthread_t th;
  pthread_create(&th, NULL, consume, &s);
  uint64_t ok = 0;
  for (uint64_t i = 0; i < n; i++)
    ok += cairn__ring_push_spsc(&prod, 1, (int64_t)i, (double)i) == CAIRN_OK;
  cairn__ring_publish(&prod);
  atomic_store_explicit(&s.done, 1, memory_order_release);
  pthread_join(th, NULL);
  CHECK(s.bad == 0, "%llu torn or reordered records", (unsigned long long)s.bad);
  CHECK(s.consumed == ok, "consumed %llu, accepted %llu", (unsigned long long)s.consumed,
        (unsigned long long)ok);
  CHECK(ok + prod.dropped == n, "accepted + dropped != pushed");
  CHECK(s.gaps + (n - s.next) == prod.dropped, "gaps are not all counted drops");
  CHECK(!block || prod.dropped == 0, "block policy dropped");
  printf("ring %s: %llu pushed, %llu dropped, consistent\n", block ? "block" : "drop",
         (unsigned long long)n, (unsigned long long)prod.dropped);
  cairn__ring_destroy(s.r);
}

typedef struct {
  int id;
  uint64_t n, ok, dropped;
} worker;

static void *work(void *p) {
  worker *w = p;
  for (uint64_t i = 0; i < w->n; i++) {
    int rc = cairn_metric_at(w->id, (int64_t)i, 1.0);
    w->ok += rc == CAIRN_OK;
    w->dropped += rc == CAIRN_EDROPPED;
    if ((i & 4095) == 0)
      cairn_step((int64_t)i);
  }
  return NULL;
}

static void api_part(uint64_t n, const char *policy) {
  setenv("CAIRN_RING_CAPACITY", "1024", 1);
  setenv("CAIRN_RING_POLICY", policy, 1);
  CHECK(cairn_init(NULL) == CAIRN_OK, "cairn_init: %s", cairn_last_error());
  worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    char name[8];
    snprintf(name, sizeof name, "t%d", i);
    w[i] = (worker){.id = cairn_metric_id(name), .n = n};
    pthread_create(&th[i], NULL, work, &w[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  cairn_run_info info;
  cairn_get_run_info(&info);
  CHECK(cairn_finalize() == CAIRN_OK, "finalize");
  cairn_counters c;
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  run_model m;
  CHECK(rm_read(&m, info.run_dir) == CAIRN_OK, "read back %s", info.run_dir);
  uint64_t ok = 0, dropped = 0;
  for (int i = 0; i < 4; i++) {
    CHECK(m.samples[w[i].id] == w[i].ok, "thread %d: %llu on disk, %llu accepted", i,
          (unsigned long long)m.samples[w[i].id], (unsigned long long)w[i].ok);
    ok += w[i].ok;
    dropped += w[i].dropped;
  }
  CHECK(c.logged == 4 * n && c.written == ok && c.dropped == dropped,
        "counters %llu/%llu/%llu", (unsigned long long)c.logged,
        (unsigned long long)c.written, (unsigned long long)c.dropped);
  printf("api %s: logged %llu = written %llu + dropped %llu\n", policy,
         (unsigned long long)c.logged, (unsigned long long)c.written,
         (unsigned long long)c.dropped);
  rm_free(&m);
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
  CHECK(rm_tempdir() != NULL, "mkdtemp");
  setenv("CAIRN_LOG_LEVEL", "error", 1);
  ring_part(n * 4, 0);
  ring_part(n, 1);
  api_part(n, "drop");
  api_part(n / 2, "block");
  return 0;
}
