/*
 * stress_channel.c — the node shared-memory channel between a rank's writer
 * and its aggregator, under a producer that keeps it full, without
 * Criterion so that it runs under ThreadSanitizer (Criterion's runner maps
 * memory at addresses TSan reserves).
 *
 * One producer thread sends messages of every length (some larger than the
 * channel, so in fragments) through a 4 KiB channel; one consumer thread
 * reassembles them and checks each whole and in order, and now and then
 * stops reading for a while, as a niced aggregator does, so that the
 * producer finds the channel full and sleeps on its futex until the
 * consumer has freed half of it. The recheck interval is set to 60 s, so a
 * lost wake-up shows as a hang (ctest's timeout), not as a slow pass.
 * Exits 0 on success, 1 with a message on the first failed check.
 *
 * usage: stress_channel [MESSAGES]   (default 20000)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "shm_channel.h"
#include "wal_records.h"

#define CAP 4096u
#define MAXLEN (3 * CAP)

#define STRESS_NAME "stress_channel"
#include "stress_check.h"

typedef struct {
  cairn_shm_channel *c;
  long n;
} job;

static size_t msg_len(long i) { return (size_t)((i * 7919) % MAXLEN); }

static void fill(uint8_t *p, size_t n, long seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed * 131 + (long)i * 7);
}

static void *produce(void *p) {
  job *j = p;
  static uint8_t msg[MAXLEN];
  for (long i = 0; i < j->n; i++) {
    size_t n = msg_len(i);
    fill(msg, n, i);
    CHECK(cairn__chan_send(j->c, msg, n) == CAIRN_OK, "message %ld", i);
  }
  return NULL;
}

static void *consume(void *p) {
  job *j = p;
  static uint8_t ref[MAXLEN];
  cairn_buf b = {0};
  long i = 0;
  unsigned pause = 0;
  while (i < j->n) {
    const void *f;
    size_t n;
    int more;
    int rc = cairn__chan_peek(j->c, &f, &n, &more);
    CHECK(rc >= 0, "peek at message %ld returned %d", i, rc);
    if (rc == 0)
      continue;
    CHECK(cairn__buf_append(&b, f, n) == 0, "out of memory");
    cairn__chan_pop(j->c);
    if (more)
      continue;
    size_t want = msg_len(i);
    fill(ref, want, i);
    CHECK(b.len == want, "message %ld: %zu bytes, expected %zu", i, b.len, want);
    CHECK(want == 0 || memcmp(b.data, ref, want) == 0, "message %ld differs", i);
    cairn__buf_reset(&b);
    i++;
    if (++pause % 97 == 0) {
      /* a slow consumer: the producer fills the channel and sleeps */
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
  }
  cairn__buf_free(&b);
  return NULL;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
  CHECK(n > 0, "usage: stress_channel [MESSAGES]");
  cairn__chan_recheck_ns = 60ull * 1000000000u;
  cairn_shm_channel *c = aligned_alloc(64, cairn__chan_footprint(CAP));
  CHECK(c != NULL, "out of memory");
  memset(c, 0, cairn__chan_footprint(CAP));
  cairn__chan_init(c, CAP, 0);
  job j = {c, n};
  pthread_t prod, cons;
  pthread_create(&cons, NULL, consume, &j);
  pthread_create(&prod, NULL, produce, &j);
  pthread_join(prod, NULL);
  pthread_join(cons, NULL);
  CHECK(atomic_load(&c->sent) == (uint64_t)n, "sent %llu of %ld",
        (unsigned long long)atomic_load(&c->sent), n);
  printf("stress_channel: %ld messages whole and in order; the producer was woken %u times\n",
         n, atomic_load(&c->space_seq));
  CHECK(atomic_load(&c->space_seq) > 0, "the producer never had to wait for space");
  free(c);
  return 0;
}
