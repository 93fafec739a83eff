/* ring.c — the out-of-line parts of the per-thread SPSC metric ring:
 * allocation, publication of a batch, and the ring-full policies. */
#include "ring.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "drain.h"

/* A segment of `capacity` records starting at index `start`. prefault:
 * touch every page now (on the drain or at registration), so that the
 * producer's first pass over it takes no page fault. */
static cairn_ring_seg *seg_alloc(uint64_t capacity, uint64_t start, int prefault) {
  size_t bytes = sizeof(cairn_ring_seg) + capacity * sizeof(cairn_rec);
  bytes = (bytes + CAIRN_CACHELINE - 1) & ~(size_t)(CAIRN_CACHELINE - 1);
  cairn_ring_seg *s = aligned_alloc(CAIRN_CACHELINE, bytes);
  if (!s)
    return NULL;
  if (prefault)
    memset(s, 0, bytes);
  atomic_init(&s->next, NULL);
  atomic_init(&s->count, UINT64_MAX);
  s->start = start;
  s->capacity = capacity;
  return s;
}

/* Counts one more segment against the ring's bound; 0 if at the bound. */
static int seg_reserve(cairn_ring *r) {
  uint32_t n = atomic_load_explicit(&r->nsegs, memory_order_relaxed);
  do {
    if (n >= r->max_segs)
      return 0;
  } while (!atomic_compare_exchange_weak_explicit(&r->nsegs, &n, n + 1, memory_order_relaxed,
                                                  memory_order_relaxed));
  return 1;
}

cairn_ring *cairn__ring_create(uint64_t capacity, double high_water, int block) {
  if (capacity < CAIRN_RING_PUBLISH_BATCH || (capacity & (capacity - 1)) != 0)
    return NULL;
  cairn_ring *r = aligned_alloc(CAIRN_CACHELINE, sizeof *r);
  if (!r)
    return NULL;
  memset(r, 0, sizeof *r);
  /* Touch every page now, on the registration path: otherwise the first
   * pass over the ring takes a page fault (a kernel entry) every 170
   * records on the hot path. */
  r->cseg = r->pseg = seg_alloc(capacity, 0, 1);
  if (!r->cseg) {
    free(r);
    return NULL;
  }
  r->capacity = capacity;
  uint64_t hw = (uint64_t)(high_water * (double)capacity);
  r->high_water = hw < CAIRN_RING_PUBLISH_BATCH ? CAIRN_RING_PUBLISH_BATCH : hw;
  r->block = block;
  r->max_segs = 1;
  atomic_init(&r->pub_head, 0);
  atomic_init(&r->pub_dropped, 0);
  atomic_init(&r->tail, 0);
  atomic_init(&r->orphaned, 0);
  atomic_init(&r->spare, NULL);
  atomic_init(&r->nsegs, 1);
  atomic_init(&r->overflows, 0);
  atomic_init(&r->in_slow, 0);
  atomic_init(&r->slow_head, 0);
  return r;
}

void cairn__ring_destroy(cairn_ring *r) {
  if (!r)
    return;
  for (cairn_ring_seg *s = r->cseg, *n; s; s = n) {
    n = atomic_load_explicit(&s->next, memory_order_acquire);
    free(s);
  }
  free(atomic_load_explicit(&r->spare, memory_order_acquire));
  free(r);
}

void cairn__ring_set_overflow(cairn_ring *r, uint64_t bytes) {
  uint64_t seg = r->capacity * sizeof(cairn_rec);
  uint64_t extra = bytes / seg;
  r->max_segs = extra >= UINT32_MAX - 1 ? UINT32_MAX : (uint32_t)(1 + extra);
}

void cairn__ring_provision_spare(cairn_ring *r) {
  if (atomic_load_explicit(&r->spare, memory_order_relaxed) || !seg_reserve(r))
    return;
  cairn_ring_seg *s = seg_alloc(r->capacity, 0, 1);
  cairn_ring_seg *none = NULL;
  /* release: the segment's initialisation is visible to the producer that
   * takes it (acquire exchange). The slot was empty and only the drain fills
   * it, so the exchange cannot fail; be defensive anyway. */
  if (!s || !atomic_compare_exchange_strong_explicit(&r->spare, &none, s,
                                                      memory_order_release,
                                                      memory_order_relaxed)) {
    free(s);
    atomic_fetch_sub_explicit(&r->nsegs, 1, memory_order_relaxed);
  }
}

cairn_ring_seg *cairn__ring_next_seg(cairn_ring *r) {
  cairn_ring_seg *old = r->cseg;
  /* relaxed, like `count`: stored before it, and covered by the acquire of
   * pub_head that made the first index past `old` available to us. */
  cairn_ring_seg *n = atomic_load_explicit(&old->next, memory_order_relaxed);
  r->cseg = n;
  /* The producer left `old` for good and we have read all of it: keep it
   * as the spare for the next overflow, or free it. */
  cairn_ring_seg *none = NULL;
  if (!atomic_compare_exchange_strong_explicit(&r->spare, &none, old, memory_order_release,
                                               memory_order_relaxed)) {
    free(old);
    atomic_fetch_sub_explicit(&r->nsegs, 1, memory_order_relaxed);
  }
  return n;
}

void cairn__ring_producer_init(cairn_ring_producer *p, cairn_ring *r) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  uint64_t h = atomic_load_explicit(&r->pub_head, memory_order_relaxed);
  p->limit = t + r->capacity;
  p->slots = r->pseg->slots;
  p->dropped = atomic_load_explicit(&r->pub_dropped, memory_order_relaxed);
  p->ring = r;
  cairn__ring_cursor_at(p, h);
  /* A ring's first segment starts where its counters start (tests start
   * them near 2^64). */
  r->pseg->start = h;
}

/* Re-reads the consumer's tail. */
static inline void refresh_limit(cairn_ring_producer *p) {
  /* acquire: pairs with the drain's release store of tail, so the slots it
   * gave back are no longer being read when we overwrite them. */
  uint64_t t = atomic_load_explicit(&p->ring->tail, memory_order_acquire);
  /* While the drain is still in an earlier segment (tail before this one's
   * start), all of this segment that is not written yet is free. */
  uint64_t s = p->ring->pseg->start;
  if ((int64_t)(t - s) < 0)
    t = s;
  p->limit = t + p->ring->capacity;
}

/* The producer's segment is full at index h: go on in an overflow segment,
 * if the ring may grow. Returns 1 if the cursor now has room. */
static int chain_segment(cairn_ring_producer *p, uint64_t h) {
  cairn_ring *r = p->ring;
  if (r->max_segs <= 1)
    return 0;
  /* acquire: pairs with the drain's release of the spare. */
  cairn_ring_seg *n = atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
  if (!n) {
    if (!seg_reserve(r))
      return 0;
    /* No spare ready: allocate here, rarely (the drain leaves a spare once a
     * ring ran high), and without touching the pages now. */
    n = seg_alloc(r->capacity, 0, 0);
    if (!n) {
      atomic_fetch_sub_explicit(&r->nsegs, 1, memory_order_relaxed);
      return 0;
    }
  }
  n->start = h;
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  atomic_store_explicit(&n->count, UINT64_MAX, memory_order_relaxed);
  cairn_ring_seg *old = r->pseg;
  /* relaxed: the drain reads these only for indices >= h, which it sees
   * through our next release store of pub_head. */
  atomic_store_explicit(&old->count, h - old->start, memory_order_relaxed);
  atomic_store_explicit(&old->next, n, memory_order_relaxed);
  r->pseg = n;
  p->slots = n->slots;
  p->limit = h + n->capacity;
  atomic_fetch_add_explicit(&r->overflows, 1, memory_order_relaxed);
  cairn__drain_wake(); /* it is behind: tell it now */
  return 1;
}

void cairn__ring_publish_high(cairn_ring_producer *p, uint64_t h) {
  refresh_limit(p);
  if (h + p->ring->capacity - p->limit >= p->ring->high_water)
    cairn__drain_wake(); /* rare: one futex wake, only if not yet woken */
}

void cairn__ring_publish(cairn_ring_producer *p) {
  cairn_ring *r = p->ring;
  /* relaxed, with signal fences on the writer's side: written by this
   * thread, possibly the one this handler interrupted. */
  uint64_t h = atomic_load_explicit(&r->in_slow, memory_order_relaxed)
                   ? atomic_load_explicit(&r->slow_head, memory_order_relaxed)
                   : cairn__ring_head(p);
  uint64_t published = atomic_load_explicit(&r->pub_head, memory_order_relaxed);
  if ((int64_t)(h - published) < 0)
    h = published; /* the slow path already published further */
  cairn__ring_publish_at(p, h);
}

static void backoff(unsigned spins) {
  if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else if (spins < 1024) {
    sched_yield();
  } else {
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
}

int cairn__ring_push_slow(cairn_ring_producer *p, uint32_t id, int64_t step, double v) {
  cairn_ring *r = p->ring;
  uint64_t h = cairn__ring_head(p);
  /* From here until the cursor is consistent again, a handler that
   * publishes takes h (every record before it is complete). */
  atomic_store_explicit(&r->slow_head, h, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&r->in_slow, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  int rc = CAIRN_OK;
  if (h == p->limit) {
    refresh_limit(p);
    if (h == p->limit && !chain_segment(p, h)) {
      if (!r->block) {
        p->dropped++;
        cairn__ring_publish_at(p, h); /* the drain must learn about drops, and drain */
        rc = CAIRN_EDROPPED;
        goto out;
      }
      /* Block policy: make everything visible, wake the drain and wait for
       * it to give slots back. Only this policy ever makes the producer
       * wait. */
      cairn__ring_publish_at(p, h);
      for (unsigned spins = 0; h == p->limit && !chain_segment(p, h); spins++) {
        cairn__drain_wake();
        backoff(spins);
        refresh_limit(p);
      }
    }
  }
  cairn__ring_cursor_at(p, h); /* also from the end of the array to its start */
  if (p->next != p->stop)
    cairn__ring_store(p, id, step, v);
  else
    cairn__ring_push_batch_end(p, h, id, step, v); /* room, so a batch's last record */
out:
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&r->in_slow, 0, memory_order_relaxed);
  return rc;
}
