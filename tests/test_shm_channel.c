/* test_shm_channel.c — the node shared-memory channel between a rank and its
 * aggregator: messages of every size cross it intact and in order (split
 * into fragments and reassembled), across wrap-around, with a concurrent
 * consumer; a producer that finds the channel full sleeps until the
 * consumer has freed half of it and is woken then; a producer waiting for
 * its message to be written out sleeps until the consumer's ack wakes it,
 * and gives up on a consumer that is gone or too slow; a producer whose
 * consumer keeps up stays in the channel's first pages; a garbled length
 * word is reported, not followed. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "shm_channel.h"
#include "wal_records.h"

#define CAP 4096u

static cairn_shm_channel *make(void) {
  cairn_shm_channel *c = aligned_alloc(64, cairn__chan_footprint(CAP));
  memset(c, 0, cairn__chan_footprint(CAP));
  cairn__chan_init(c, CAP, 5);
  return c;
}

/* Appends fragments to b until a message is complete (returns 1; the caller
 * resets b after using it) or the channel is empty (returns 0, b keeps the
 * fragments received so far, as the aggregator does). */
static int recv_msg(cairn_shm_channel *c, cairn_buf *b) {
  for (;;) {
    const void *f;
    size_t n;
    int more;
    int rc = cairn__chan_peek(c, &f, &n, &more);
    cr_assert_geq(rc, 0);
    if (rc == 0)
      return 0;
    cairn__buf_append(b, f, n);
    cairn__chan_pop(c);
    if (!more)
      return 1;
  }
}

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed * 31 + i * 7);
}

Test(shm_channel, empty_channel_has_nothing) {
  cairn_shm_channel *c = make();
  const void *f;
  size_t n;
  int more;
  cr_assert_eq(cairn__chan_peek(c, &f, &n, &more), 0);
  free(c);
}

Test(shm_channel, small_and_large_messages_round_trip_in_order) {
  cairn_shm_channel *c = make();
  cairn_buf b = {0};
  static uint8_t msg[3 * CAP + 17], ref[3 * CAP + 17];
  size_t sizes[] = {0, 1, 7, 8, 100, CAP / 4, CAP / 4 + 1, CAP - 3, 3 * CAP + 17};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    /* Messages larger than the free space need a concurrent reader: the
     * next test covers them. */
    if (sizes[k] > CAP / 2)
      continue;
    fill(msg, sizes[k], (unsigned)k);
    cr_assert_eq(cairn__chan_send(c, msg, sizes[k]), CAIRN_OK);
    cr_assert(recv_msg(c, &b));
    fill(ref, sizes[k], (unsigned)k);
    cr_assert_eq(b.len, sizes[k]);
    cr_assert(sizes[k] == 0 || memcmp(b.data, ref, sizes[k]) == 0);
    cairn__buf_reset(&b);
  }
  cairn__buf_free(&b);
  free(c);
}

typedef struct {
  cairn_shm_channel *c;
  int n;
  int bad;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  cairn_buf b = {0};
  static uint8_t ref[5 * CAP];
  for (int i = 0; i < a->n;) {
    if (!recv_msg(a->c, &b))
      continue; /* a partial message stays in b: keep reading fragments */
    size_t want = (size_t)(i * 37) % (5 * CAP);
    fill(ref, want, (unsigned)i);
    if (b.len != want || (want && memcmp(b.data, ref, want) != 0))
      a->bad++;
    cairn__buf_reset(&b);
    i++;
  }
  cairn__buf_free(&b);
  return NULL;
}

Test(shm_channel, concurrent_messages_larger_than_the_channel_arrive_whole, .timeout = 60) {
  cairn_shm_channel *c = make();
  reader_arg a = {c, 2000, 0};
  pthread_t th;
  pthread_create(&th, NULL, reader, &a);
  static uint8_t msg[5 * CAP];
  for (int i = 0; i < a.n; i++) {
    size_t n = (size_t)(i * 37) % (5 * CAP);
    fill(msg, n, (unsigned)i);
    cr_assert_eq(cairn__chan_send(c, msg, n), CAIRN_OK);
  }
  pthread_join(th, NULL);
  cr_assert_eq(a.bad, 0);
  cr_assert_eq(atomic_load(&c->sent), 2000);
  free(c);
}

static void *send_one(void *p) {
  static uint8_t msg[1000];
  fill(msg, sizeof msg, 99);
  cr_assert_eq(cairn__chan_send(p, msg, sizeof msg), CAIRN_OK);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Four 1000-byte messages (1008 bytes each with their word) fill the 4096
 * bytes; a fifth waits. With the recheck interval at 60 s, only the
 * consumer's wake-up can let it through: not after the first pop (3024
 * bytes still used, more than half), but at the second (2016). */
Test(shm_channel, a_full_channel_wakes_its_producer_once_half_is_free, .timeout = 30) {
  cairn__chan_recheck_ns = 60ull * 1000000000u;
  cairn_shm_channel *c = make();
  static uint8_t msg[1000];
  for (int i = 0; i < 4; i++) {
    fill(msg, sizeof msg, (unsigned)i);
    cr_assert_eq(cairn__chan_send(c, msg, sizeof msg), CAIRN_OK);
  }
  pthread_t th;
  pthread_create(&th, NULL, send_one, c);
  double t0 = now_s();
  while (!atomic_load(&c->space_wait)) {
    cr_assert_lt(now_s() - t0, 10.0, "the producer never waited for space");
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  cr_assert_eq(atomic_load(&c->space_seq), 0);
  cairn_buf b = {0};
  cr_assert(recv_msg(c, &b));
  cr_assert_eq(atomic_load(&c->space_seq), 0, "woken with more than half still used");
  cr_assert_eq(atomic_load(&c->space_wait), 1);
  cairn__buf_reset(&b);
  cr_assert(recv_msg(c, &b));
  cr_assert_eq(atomic_load(&c->space_seq), 1, "not woken once half was free");
  double t1 = now_s();
  pthread_join(th, NULL);
  cr_assert_lt(now_s() - t1, 5.0, "the producer slept past its wake-up");
  /* the two left and the one that waited, intact and in order */
  static uint8_t ref[1000];
  for (unsigned k = 2; k < 5; k++) {
    cairn__buf_reset(&b);
    cr_assert(recv_msg(c, &b));
    fill(ref, sizeof ref, k < 4 ? k : 99);
    cr_assert_eq(b.len, sizeof ref);
    cr_assert_eq(memcmp(b.data, ref, sizeof ref), 0, "message %u", k);
  }
  cr_assert_eq(atomic_load(&c->sent), 5);
  cairn__buf_free(&b);
  free(c);
  cairn__chan_recheck_ns = 10000000u;
}

typedef struct {
  cairn_shm_channel *c;
  int rc;
} ack_arg;

static void *wait_first(void *p) {
  ack_arg *a = p;
  a->rc = cairn__chan_wait_acked(a->c, 1, 120ull * 1000000000u);
  return NULL;
}

/* With the recheck interval at 60 s, only cairn__chan_ack can wake the
 * waiter in time. */
Test(shm_channel, an_ack_wakes_the_producer_waiting_for_it, .timeout = 30) {
  cairn__chan_recheck_ns = 60ull * 1000000000u;
  cairn_shm_channel *c = make();
  atomic_store(&c->consumer_pid, (uint32_t)getpid());
  uint8_t msg[16] = {0};
  cr_assert_eq(cairn__chan_send(c, msg, sizeof msg), CAIRN_OK);
  ack_arg a = {c, -1};
  pthread_t th;
  pthread_create(&th, NULL, wait_first, &a);
  double t0 = now_s();
  while (!atomic_load(&c->ack_wait)) {
    cr_assert_lt(now_s() - t0, 10.0, "the producer never waited for its ack");
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  cairn__chan_ack(c);
  cr_assert_eq(atomic_load(&c->ack_seq), 1, "the ack did not see the waiter");
  double t1 = now_s();
  pthread_join(th, NULL);
  cr_assert_eq(a.rc, CAIRN_OK);
  cr_assert_lt(now_s() - t1, 5.0, "the producer slept past its wake-up");
  /* an ack nobody waits for wakes nobody */
  cairn__chan_ack(c);
  cr_assert_eq(atomic_load(&c->ack_seq), 1);
  cr_assert_eq(atomic_load(&c->acked), 2);
  free(c);
  cairn__chan_recheck_ns = 10000000u;
}

Test(shm_channel, a_producer_gives_up_on_a_gone_or_slow_consumer) {
  cairn_shm_channel *c = make();
  uint8_t msg[16] = {0};
  cr_assert_eq(cairn__chan_send(c, msg, sizeof msg), CAIRN_OK);
  /* no consumer yet: the timeout */
  double t0 = now_s();
  cr_assert_eq(cairn__chan_wait_acked(c, 1, 30000000u), CAIRN_EIO);
  double took = now_s() - t0;
  cr_assert(took >= 0.029 && took < 5.0, "gave up after %.3f s", took);
  /* a consumer process that has exited: at the next recheck, long before
   * the timeout */
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  cr_assert_gt(pid, 0);
  waitpid(pid, NULL, 0);
  atomic_store(&c->consumer_pid, (uint32_t)pid);
  t0 = now_s();
  cr_assert_eq(cairn__chan_wait_acked(c, 1, 60ull * 1000000000u), CAIRN_EIO);
  cr_assert_lt(now_s() - t0, 5.0);
  free(c);
}

/* A consumer that keeps up keeps the producer in the channel's first
 * cairn__chan_hot_bytes (a quarter of CAP here): the head's offset never
 * passes it by more than one fragment, and every message arrives intact. */
Test(shm_channel, a_producer_whose_consumer_keeps_up_stays_in_the_hot_part) {
  cairn_shm_channel *c = make();
  const uint64_t hot = cairn__chan_hot_bytes(CAP);
  cr_assert_eq(hot, CAP / 4);
  cr_assert_eq(cairn__chan_hot_bytes(64ull << 20), CAIRN_CHAN_HOT_MAX);
  cairn_buf b = {0};
  static uint8_t msg[300], ref[300];
  uint64_t top = 0;
  for (unsigned i = 0; i < 1000; i++) {
    size_t n = 1 + (i * 53) % sizeof msg;
    fill(msg, n, i);
    cr_assert_eq(cairn__chan_send(c, msg, n), CAIRN_OK);
    uint64_t end = atomic_load(&c->head) & (CAP - 1);
    top = end > top ? end : top;
    cr_assert_leq(end ? end : CAP, hot + 8 + 304, "message %u ends at offset %llu", i,
                  (unsigned long long)end);
    cr_assert(recv_msg(c, &b));
    fill(ref, n, i);
    cr_assert_eq(b.len, n);
    cr_assert_eq(memcmp(b.data, ref, n), 0, "message %u", i);
    cairn__buf_reset(&b);
  }
  cr_assert_gt(top, hot, "never reached the end of the hot part");
  cairn__buf_free(&b);
  free(c);
}

/* The early wrap waits for nothing: with the consumer behind, the producer
 * goes on past the hot part; once the consumer has read far enough for the
 * next fragment to fit at offset 0, it goes there, and the consumer still
 * gets every message in order. */
Test(shm_channel, the_early_wrap_happens_only_when_offset_0_is_free) {
  cairn_shm_channel *c = make();
  static uint8_t msg[1000], ref[1000];
  for (unsigned i = 0; i < 3; i++) {
    fill(msg, sizeof msg, i);
    cr_assert_eq(cairn__chan_send(c, msg, sizeof msg), CAIRN_OK);
  }
  cr_assert_eq(atomic_load(&c->head), 3 * 1008, "wrapped although nothing was read");
  cairn_buf b = {0};
  cr_assert(recv_msg(c, &b)); /* tail 1008: [0, 1008) is free, the fragment fits */
  cairn__buf_reset(&b);
  fill(msg, sizeof msg, 3);
  cr_assert_eq(cairn__chan_send(c, msg, sizeof msg), CAIRN_OK);
  cr_assert_eq(atomic_load(&c->head), CAP + 1008, "did not wrap early to offset 0");
  for (unsigned k = 1; k < 4; k++) {
    cr_assert(recv_msg(c, &b));
    fill(ref, sizeof ref, k);
    cr_assert_eq(b.len, sizeof ref);
    cr_assert_eq(memcmp(b.data, ref, sizeof ref), 0, "message %u", k);
    cairn__buf_reset(&b);
  }
  cr_assert_eq(atomic_load(&c->tail), atomic_load(&c->head));
  cairn__buf_free(&b);
  free(c);
}

Test(shm_channel, garbled_length_word_is_reported) {
  cairn_shm_channel *c = make();
  uint8_t msg[64] = {1, 2, 3};
  cairn__chan_send(c, msg, sizeof msg);
  uint32_t bogus = CAP; /* longer than any fragment can be */
  memcpy(c->data, &bogus, 4);
  const void *f;
  size_t n;
  int more;
  cr_assert_eq(cairn__chan_peek(c, &f, &n, &more), CAIRN_ECORRUPT);
  free(c);
}
