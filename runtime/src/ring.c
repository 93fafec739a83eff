/* ring.c — the out-of-line parts of the per-thread SPSC metric ring:
 * allocation, publication of a batch, and the ring-full policies. */
#include "ring.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "drain.h"

cairn_ring *cairn__ring_create(uint64_t capacity, double high_water, int block) {
  if (capacity < CAIRN_RING_PUBLISH_BATCH || (capacity & (capacity - 1)) != 0)
    return NULL;
  size_t bytes = sizeof(cairn_ring) + capacity * sizeof(cairn_rec);
  bytes = (bytes + CAIRN_CACHELINE - 1) & ~(size_t)(CAIRN_CACHELINE - 1);
  cairn_ring *r = aligned_alloc(CAIRN_CACHELINE, bytes);
  if (!r)
    return NULL;
  /* Touch every page now, on the registration path: otherwise the first
   * pass over the ring takes a page fault (a kernel entry) every 170
   * records on the hot path. */
  memset(r, 0, bytes);
  r->capacity = capacity;
  uint64_t hw = (uint64_t)(high_water * (double)capacity);
  r->high_water = hw < CAIRN_RING_PUBLISH_BATCH ? CAIRN_RING_PUBLISH_BATCH : hw;
  r->block = block;
  atomic_init(&r->pub_head, 0);
  atomic_init(&r->pub_dropped, 0);
  atomic_init(&r->tail, 0);
  atomic_init(&r->orphaned, 0);
  return r;
}

void cairn__ring_destroy(cairn_ring *r) { free(r); }

void cairn__ring_producer_init(cairn_ring_producer *p, cairn_ring *r) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  p->head = atomic_load_explicit(&r->pub_head, memory_order_relaxed);
  p->limit = t + r->capacity;
  p->mask = r->capacity - 1;
  p->slots = r->slots;
  p->dropped = atomic_load_explicit(&r->pub_dropped, memory_order_relaxed);
  p->ring = r;
}

/* Re-reads the consumer's tail. */
static inline void refresh_limit(cairn_ring_producer *p) {
  /* acquire: pairs with the drain's release store of tail, so the slots it
   * gave back are no longer being read when we overwrite them. */
  p->limit = atomic_load_explicit(&p->ring->tail, memory_order_acquire) + p->ring->capacity;
}

void cairn__ring_publish(cairn_ring_producer *p) {
  cairn_ring *r = p->ring;
  uint64_t h = p->head;
  atomic_store_explicit(&r->pub_dropped, p->dropped, memory_order_relaxed);
  /* release: the slot stores (and pub_dropped) above become visible to the
   * drain no later than the new head it acquires. */
  atomic_store_explicit(&r->pub_head, h, memory_order_release);
  /* fill = h - tail = h - (limit - capacity) */
  if (CAIRN_UNLIKELY(h + r->capacity - p->limit >= r->high_water)) {
    refresh_limit(p);
    if (h + r->capacity - p->limit >= r->high_water)
      cairn__drain_wake(); /* rare: one futex wake, only if not yet woken */
  }
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

int cairn__ring_push_full(cairn_ring_producer *p, uint32_t id, int64_t step, double v) {
  refresh_limit(p);
  if (p->head != p->limit)
    return cairn__ring_push_spsc(p, id, step, v);
  if (!p->ring->block) {
    p->dropped++;
    cairn__ring_publish(p); /* the drain must learn about drops, and drain */
    return CAIRN_EDROPPED;
  }
  /* Block policy: make everything visible, wake the drain and wait for it
   * to give slots back. Only this policy ever makes the producer wait. */
  cairn__ring_publish(p);
  for (unsigned spins = 0; p->head == p->limit; spins++) {
    cairn__drain_wake();
    backoff(spins);
    refresh_limit(p);
  }
  return cairn__ring_push_spsc(p, id, step, v);
}
