/* test_ring.c — the per-thread SPSC metric ring on its own: empty, full,
 * wrap-around of the free-running counters, drop accounting, and a two-thread
 * stress whose consumer checks every record (run under TSan in CI). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>

#include "cairn.h"
#include "ring.h"

#define CAP 1024u

static uint64_t drain_all(cairn_ring *r, uint64_t *sum_ids, int64_t *last_step) {
  uint64_t t, n = cairn__ring_peek_spsc(r, &t);
  for (uint64_t k = 0; k < n; k++) {
    const cairn_rec *rec = cairn__ring_slot(r, t + k);
    if (sum_ids)
      *sum_ids += rec->id;
    if (last_step)
      *last_step = rec->step;
  }
  cairn__ring_release_spsc(r, t + n);
  return n;
}

Test(ring, new_ring_is_empty) {
  cairn_ring *r = cairn__ring_create(CAP, 0.5, 0);
  cr_assert_not_null(r);
  uint64_t t;
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), 0);
  cr_assert_eq(t, 0);
  cr_assert_eq(r->capacity, CAP);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  cr_assert_eq(cairn__ring_head(&p), 0);
  cr_assert_eq(p.limit, CAP);
  cairn__ring_destroy(r);
}

Test(ring, rejects_capacity_that_is_not_a_power_of_two) {
  cr_assert_null(cairn__ring_create(1000, 0.5, 0));
  cr_assert_null(cairn__ring_create(0, 0.5, 0));
}

Test(ring, records_become_visible_per_batch_and_on_publish) {
  cairn_ring *r = cairn__ring_create(CAP, 0.5, 0);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  uint64_t t;
  for (uint32_t i = 0; i < CAIRN_RING_PUBLISH_BATCH - 1; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, i, i, 1.0), CAIRN_OK);
  /* Not yet a whole batch: invisible to the consumer. */
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), 0);
  cairn__ring_push_spsc(&p, 99, 99, 1.0);
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), CAIRN_RING_PUBLISH_BATCH);
  cairn__ring_push_spsc(&p, 7, 7, 2.5);
  cairn__ring_publish(&p);
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), CAIRN_RING_PUBLISH_BATCH + 1);
  const cairn_rec *last = cairn__ring_slot(r, t + CAIRN_RING_PUBLISH_BATCH);
  cr_assert_eq(last->id, 7);
  cr_assert_eq(last->step, 7);
  cr_assert_float_eq(last->value, 2.5, 0);
  cairn__ring_destroy(r);
}

Test(ring, full_ring_drops_and_counts_exactly) {
  cairn_ring *r = cairn__ring_create(CAP, 1.0, 0);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  for (uint32_t i = 0; i < CAP; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 1, i, (double)i), CAIRN_OK);
  for (int i = 0; i < 10; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 1, 0, 0.0), CAIRN_EDROPPED);
  cr_assert_eq(p.dropped, 10);
  cr_assert_eq(atomic_load(&r->pub_dropped), 10, "drops are published at once");
  int64_t last = -1;
  cr_assert_eq(drain_all(r, NULL, &last), CAP);
  cr_assert_eq(last, CAP - 1, "the oldest records are kept, the new ones dropped");
  /* Space again: the next push succeeds. */
  cr_assert_eq(cairn__ring_push_spsc(&p, 2, 5000, 1.0), CAIRN_OK);
  cairn__ring_destroy(r);
}

Test(ring, wraps_around_the_64_bit_counter_limit_without_loss) {
  cairn_ring *r = cairn__ring_create(CAP, 0.5, 0);
  /* Start 100 records before the counters overflow. */
  uint64_t start = UINT64_MAX - 100;
  atomic_store(&r->pub_head, start);
  atomic_store(&r->tail, start);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  cr_assert_eq(cairn__ring_head(&p), start);
  uint64_t expect_sum = 0, got_sum = 0, got = 0;
  for (uint32_t round = 0; round < 20; round++) {
    for (uint32_t i = 0; i < CAP; i++) {
      cr_assert_eq(cairn__ring_push_spsc(&p, i, round, 0.0), CAIRN_OK);
      expect_sum += i;
    }
    cairn__ring_publish(&p);
    got += drain_all(r, &got_sum, NULL);
  }
  cr_assert_eq(got, 20u * CAP);
  cr_assert_eq(got_sum, expect_sum);
  cr_assert_lt(cairn__ring_head(&p), start, "head wrapped past 2^64");
  cr_assert_eq(p.dropped, 0);
  cairn__ring_destroy(r);
}

Test(ring, full_ring_exactly_at_the_counter_limit_still_detects_full) {
  cairn_ring *r = cairn__ring_create(CAP, 1.0, 0);
  uint64_t start = UINT64_MAX - CAP / 2;
  atomic_store(&r->pub_head, start);
  atomic_store(&r->tail, start);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  for (uint32_t i = 0; i < CAP; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 0, 0, 0.0), CAIRN_OK);
  cr_assert_eq(cairn__ring_push_spsc(&p, 0, 0, 0.0), CAIRN_EDROPPED);
  cr_assert_eq(drain_all(r, NULL, NULL), CAP);
  cairn__ring_destroy(r);
}

Test(ring, full_in_the_middle_of_a_batch_then_batches_publish_at_their_boundaries) {
  cairn_ring *r = cairn__ring_create(CAP, 1.0, 0);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  for (uint32_t i = 0; i < CAP; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 1, i, 0.0), CAIRN_OK);
  uint64_t t;
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), CAP, "the last record completed a batch");
  /* The drain gives back 5 slots: the ring is full again 5 records into the
   * next batch, where the cursor must stop. */
  cairn__ring_release_spsc(r, t + 5);
  for (uint32_t i = 0; i < 5; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 1, CAP + i, 0.0), CAIRN_OK);
  cr_assert_eq(cairn__ring_head(&p), CAP + 5);
  cr_assert_eq(cairn__ring_push_spsc(&p, 1, -1, 0.0), CAIRN_EDROPPED);
  cr_assert_eq(cairn__ring_head(&p), CAP + 5, "a dropped record does not move the cursor");
  cr_assert_eq(atomic_load(&r->pub_head), CAP + 5, "a drop publishes what is there");
  int64_t last = -1;
  cr_assert_eq(drain_all(r, NULL, &last), CAP);
  cr_assert_eq(last, CAP + 4);
  /* Room again: the rest of the batch stays private until its last record,
   * which makes the batch visible, and the next one starts private again. */
  const uint32_t rest = CAIRN_RING_PUBLISH_BATCH - 5;
  for (uint32_t i = 0; i < rest - 1; i++) {
    cr_assert_eq(cairn__ring_push_spsc(&p, 2, CAP + 5 + i, 0.0), CAIRN_OK);
    cr_assert_eq(cairn__ring_peek_spsc(r, &t), 0, "record %u published early", i);
  }
  cr_assert_eq(cairn__ring_push_spsc(&p, 2, CAP + 4 + rest, 0.0), CAIRN_OK);
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), rest);
  cr_assert_eq(cairn__ring_push_spsc(&p, 3, 0, 0.0), CAIRN_OK);
  cr_assert_eq(cairn__ring_peek_spsc(r, &t), rest);
  for (uint64_t k = 0; k < rest; k++) {
    const cairn_rec *rec = cairn__ring_slot(r, t + k);
    cr_assert_eq(rec->step, (int64_t)(CAP + 5 + k), "record %llu", (unsigned long long)k);
  }
  cr_assert_eq(p.dropped, 1);
  cairn__ring_destroy(r);
}

/* ---- overflow segments ---------------------------------------------------- */

Test(ring, full_ring_chains_overflow_segments_up_to_the_bound_in_order) {
  cairn_ring *r = cairn__ring_create(CAP, 1.0, 0);
  /* Room for two overflow segments. */
  cairn__ring_set_overflow(r, 2 * CAP * sizeof(cairn_rec));
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  for (uint32_t i = 0; i < 3 * CAP; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 1, i, (double)i), CAIRN_OK, "record %u", i);
  cr_assert_eq(atomic_load(&r->overflows), 2);
  cr_assert_eq(atomic_load(&r->nsegs), 3);
  /* At the bound: drops, counted. */
  cr_assert_eq(cairn__ring_push_spsc(&p, 1, 0, 0.0), CAIRN_EDROPPED);
  cr_assert_eq(p.dropped, 1);
  /* The drain reads all three segments in index order. */
  uint64_t t, n = cairn__ring_peek_spsc(r, &t);
  cr_assert_eq(n, 3 * CAP);
  for (uint64_t k = 0; k < n; k++) {
    const cairn_rec *rec = cairn__ring_slot(r, t + k);
    cr_assert_eq(rec->step, (int64_t)k);
    cr_assert_float_eq(rec->value, (double)k, 0);
  }
  cairn__ring_release_spsc(r, t + n);
  /* Two segments were left behind: one is kept as the spare, one freed. */
  cr_assert_not_null(atomic_load(&r->spare));
  cr_assert_eq(atomic_load(&r->nsegs), 2);
  /* The producer's segment has room again; the next overflow takes the
   * spare instead of allocating. */
  for (uint32_t i = 0; i < 2 * CAP; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 2, 3 * CAP + i, 0.0), CAIRN_OK);
  cr_assert_null(atomic_load(&r->spare));
  cr_assert_eq(atomic_load(&r->nsegs), 2);
  cr_assert_eq(drain_all(r, NULL, NULL), 2 * CAP);
  cairn__ring_destroy(r);
}

Test(ring, overflow_across_the_64_bit_counter_limit_keeps_order) {
  cairn_ring *r = cairn__ring_create(CAP, 1.0, 0);
  cairn__ring_set_overflow(r, 8 * CAP * sizeof(cairn_rec));
  uint64_t start = UINT64_MAX - CAP - CAP / 2;
  atomic_store(&r->pub_head, start);
  atomic_store(&r->tail, start);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  uint64_t sum = 0, expect = 0;
  for (uint32_t i = 0; i < 4 * CAP; i++) {
    cr_assert_eq(cairn__ring_push_spsc(&p, i % 1000, 0, 0.0), CAIRN_OK);
    expect += i % 1000;
  }
  cairn__ring_publish(&p);
  cr_assert_eq(drain_all(r, &sum, NULL), 4 * CAP);
  cr_assert_eq(sum, expect);
  cr_assert_eq(p.dropped, 0);
  cairn__ring_destroy(r);
}

Test(ring, spare_provisioned_by_the_drain_is_used_and_bounded) {
  cairn_ring *r = cairn__ring_create(CAP, 0.5, 0);
  cairn__ring_provision_spare(r);
  cr_assert_null(atomic_load(&r->spare), "no overflow allowed: no spare");
  cairn__ring_set_overflow(r, CAP * sizeof(cairn_rec));
  cairn__ring_provision_spare(r);
  cr_assert_not_null(atomic_load(&r->spare));
  cairn__ring_provision_spare(r); /* already has one: no second */
  cr_assert_eq(atomic_load(&r->nsegs), 2);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, r);
  for (uint32_t i = 0; i < 2 * CAP; i++)
    cr_assert_eq(cairn__ring_push_spsc(&p, 1, i, 0.0), CAIRN_OK);
  cr_assert_eq(cairn__ring_push_spsc(&p, 1, 0, 0.0), CAIRN_EDROPPED);
  cr_assert_eq(drain_all(r, NULL, NULL), 2 * CAP);
  cairn__ring_destroy(r);
}

/* ---- two-thread stress --------------------------------------------------- */

#define STRESS_N 4000000ull

typedef struct {
  cairn_ring *r;
  _Atomic int done;
  uint64_t consumed, out_of_order, gaps, ok, next_expected, bad_heads;
} stress;

static void *consumer(void *p) {
  stress *s = p;
  uint64_t expect = 0, seen = 0;
  uint64_t most = s->r->capacity * s->r->max_segs; /* records a ring can hold */
  for (;;) {
    int done = atomic_load_explicit(&s->done, memory_order_acquire);
    uint64_t t, n = cairn__ring_peek_spsc(s->r, &t);
    /* A published head never moves back, nor past what the ring holds. */
    if (n > most || (int64_t)(t + n - seen) < 0) {
      s->bad_heads++;
      break;
    }
    seen = t + n;
    for (uint64_t k = 0; k < n; k++) {
      const cairn_rec *rec = cairn__ring_slot(s->r, t + k);
      uint64_t seq = (uint64_t)rec->step;
      /* value mirrors step: a torn record would disagree with itself */
      if ((double)seq != rec->value || rec->id != (uint32_t)(seq & 0xffff))
        s->out_of_order++;
      if (seq < expect)
        s->out_of_order++;
      else
        s->gaps += seq - expect; /* dropped records leave gaps */
      expect = seq + 1;
    }
    cairn__ring_release_spsc(s->r, t + n);
    if (n >= s->r->high_water)
      cairn__ring_provision_spare(s->r); /* as the drain does */
    s->consumed += n;
    if (done && n == 0)
      break;
  }
  s->next_expected = expect;
  return NULL;
}

/* A signal handler of the producing thread publishes its cursor, as the
 * SIGTERM handler does (cairn__publish_self), at any instruction of a push. */
static cairn_ring_producer *signalled;
static volatile uint64_t handled;    /* signals handled                  */
static volatile uint64_t pushed;     /* records the producer has pushed     */
static volatile uint64_t wrong_heads; /* publications that were not right */
static void publish_from_handler(int sig) {
  (void)sig;
  cairn__ring_publish(signalled);
  handled++;
  /* What it published covers every record pushed before the signal and at
   * most the one being pushed when it came. */
  uint64_t h = atomic_load_explicit(&signalled->ring->pub_head, memory_order_relaxed);
  if (h < pushed || h > pushed + 1)
    wrong_heads++;
}

static void run_stress_with(uint64_t cap, int block, uint64_t overflow_bytes, int signals) {
  stress s = {.r = cairn__ring_create(cap, 0.5, block)};
  cairn__ring_set_overflow(s.r, overflow_bytes);
  cairn_ring_producer p;
  cairn__ring_producer_init(&p, s.r);
  atomic_init(&s.done, 0);
  pthread_t th;
  timer_t timer;
  pushed = 0;
  wrong_heads = 0;
  handled = 0;
  if (signals) {
    /* A high-resolution timer aimed at this thread: its signals arrive at
     * whatever instruction the thread is running (a hardware interrupt). */
    signalled = &p;
    struct sigaction sa = {.sa_handler = publish_from_handler};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1};
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid); /* sigev_notify_thread_id */
    cr_assert_eq(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
    struct itimerspec every = {{0, 25000}, {0, 25000}};
    cr_assert_eq(timer_settime(timer, 0, &every, NULL), 0);
  }
  pthread_create(&th, NULL, consumer, &s);
  for (uint64_t i = 0; i < STRESS_N; i++) {
    int rc = cairn__ring_push_spsc(&p, (uint32_t)(i & 0xffff), (int64_t)i, (double)i);
    if (rc == CAIRN_OK)
      pushed = ++s.ok;
    else
      cr_assert_eq(rc, CAIRN_EDROPPED);
  }
  if (signals) {
    timer_delete(timer);
    signal(SIGUSR1, SIG_IGN);
    cr_assert_gt(handled, 1000, "the producer was interrupted often (%llu times)",
                 (unsigned long long)handled);
    cr_assert_eq(wrong_heads, 0, "a handler published a head that was not the cursor's");
  }
  cairn__ring_publish(&p);
  atomic_store_explicit(&s.done, 1, memory_order_release);
  pthread_join(th, NULL);
  cr_assert_eq(s.bad_heads, 0, "a published head moved back or past the ring");
  cr_assert_eq(s.out_of_order, 0, "every record arrives whole and in order");
  cr_assert_eq(s.consumed, s.ok);
  cr_assert_eq(s.ok + p.dropped, STRESS_N, "logged = written + dropped");
  /* Drops after the last accepted record leave no gap; count them too. */
  cr_assert_eq(s.gaps + (STRESS_N - s.next_expected), p.dropped,
               "every missing record is a counted drop");
  if (block)
    cr_assert_eq(p.dropped, 0, "the block policy never drops");
  cairn__ring_destroy(s.r);
}

static void run_stress(int block, uint64_t overflow_bytes) {
  run_stress_with(CAP, block, overflow_bytes, 0);
}

Test(ring, stress_drop_policy_accounts_for_every_record, .timeout = 120) { run_stress(0, 0); }

Test(ring, stress_block_policy_loses_nothing, .timeout = 120) { run_stress(1, 0); }

/* The consumer provisions spares and retires segments while the producer
 * chains them: every record arrives once, in order, or is a counted drop. */
Test(ring, stress_overflow_segments_account_for_every_record, .timeout = 120) {
  run_stress(0, 4 * CAP * sizeof(cairn_rec));
}

Test(ring, stress_block_policy_with_overflow_loses_nothing, .timeout = 120) {
  run_stress(1, 2 * CAP * sizeof(cairn_rec));
}

/* The smallest ring (one batch: every push that ends a batch also wraps)
 * and a small one that overflows, while another thread keeps interrupting
 * the producer with a handler that publishes: whatever instruction of the
 * slow path a signal lands on, the head it publishes covers only whole
 * records and never moves back. */
Test(ring, stress_publishing_from_a_signal_handler_mid_push, .timeout = 120) {
  run_stress_with(CAIRN_RING_PUBLISH_BATCH, 0, 0, 1);
}

Test(ring, stress_publishing_from_a_signal_handler_mid_overflow, .timeout = 120) {
  run_stress_with(2 * CAIRN_RING_PUBLISH_BATCH, 0, 4 * 2 * CAIRN_RING_PUBLISH_BATCH * sizeof(cairn_rec), 1);
}
