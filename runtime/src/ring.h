/*
 * ring.h — private to cairn. The single-producer/single-consumer ring of
 * fixed-size metric records that every logging thread owns.
 *
 * Contract (the "_spsc" in the names): exactly one thread pushes, exactly one
 * thread (the drain) pops. Capacity is a power of two; head and tail are
 * free-running 64-bit counters compared by difference, so wrap-around of the
 * slot index is a mask and wrap-around of the counters themselves (after 2^64
 * records) is harmless arithmetic modulo 2^64.
 *
 * Layout: the producer's private cursor (cairn_ring_producer, kept in the
 * producing thread's own storage), the fields the producer publishes, and
 * the consumer's fields are on separate cache lines, so the two threads only
 * exchange a line when one of them actually needs the other's progress:
 *   - head and limit (cached tail + capacity) are touched on every push by
 *     the producer alone;
 *   - pub_head/pub_dropped are written once per batch of
 *     CAIRN_RING_PUBLISH_BATCH records (or at a step boundary / flush), and
 *     read by the drain when it drains;
 *   - tail is written by the drain after it consumed records and read by the
 *     producer only when its cached copy says the ring is full.
 * The common-case push is therefore four plain stores into a slot and one
 * into head: no atomic read-modify-write, no fence on x86, no syscall.
 */
#ifndef CAIRN_RING_H
#define CAIRN_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cairn.h"
#include "util.h"

/* One metric sample, 24 bytes. The record, the producer cursor and the
 * publication batch are defined in cairn.h: the inline fast path there
 * fills rings directly (their layout is ABI). */
typedef cairn__rec cairn_rec;
enum { CAIRN_REC_METRIC = CAIRN__REC_METRIC };

/* Records are made visible to the drain in batches of this many (a power of
 * two), and at step boundaries, cairn_flush and thread exit. */
#define CAIRN_RING_PUBLISH_BATCH CAIRN__PUBLISH_BATCH

typedef struct cairn_ring {
  /* --- published by the producer, read by the drain ---------------------- */
  alignas(CAIRN_CACHELINE) _Atomic uint64_t pub_head;
  _Atomic uint64_t pub_dropped;

  /* --- consumer line ------------------------------------------------------ */
  alignas(CAIRN_CACHELINE) _Atomic uint64_t tail;

  /* --- bookkeeping, touched at registration and thread exit -------------- */
  alignas(CAIRN_CACHELINE) _Atomic int orphaned; /* owner thread exited     */
  uint32_t thread_index;                         /* order of registration  */
  uint64_t generation;                           /* run generation         */
  uint64_t capacity;
  uint64_t high_water;                           /* fill that wakes the drain */
  int block;                                     /* ring.policy == block   */

  alignas(CAIRN_CACHELINE) cairn_rec slots[];
} cairn_ring;

/*
 * The producer's private cursor (cairn__cursor in cairn.h). It lives with
 * the producing thread (in its thread-local storage), not in the shared
 * ring, so the hot path reads only memory the thread owns: no pointer chase
 * through the ring to find head. `limit` is the cached tail plus the
 * capacity: the ring is full, as far as the producer knows, when head
 * reaches it — one comparison per push. `gen` is the API's business.
 */
typedef cairn__cursor cairn_ring_producer;

/* Allocates a ring of `capacity` (power of two, >= CAIRN_RING_PUBLISH_BATCH)
 * records. Returns NULL when out of memory or for a bad capacity.
 * high_water is a fraction of capacity in (0, 1]. */
cairn_ring *cairn__ring_create(uint64_t capacity, double high_water, int block);
void cairn__ring_destroy(cairn_ring *r);

/* Points a producer cursor at a fresh ring (head = tail = 0). */
void cairn__ring_producer_init(cairn_ring_producer *p, cairn_ring *r);

/* Slow paths of push, out of line: the ring is full as far as the cached
 * tail says (re-read it; then drop and count, or wait under the block
 * policy); a batch boundary (publish, maybe wake the drain). */
int cairn__ring_push_full(cairn_ring_producer *p, uint32_t id, int64_t step, double v);
void cairn__ring_publish(cairn_ring_producer *p);

/*
 * Pushes one record. Returns CAIRN_OK or CAIRN_EDROPPED (ring full under the
 * drop policy; the record is counted in p->dropped). Producer thread only.
 */
static inline int cairn__ring_push_spsc(cairn_ring_producer *p, uint32_t id, int64_t step,
                                        double v) {
  uint64_t h = p->head;
  if (CAIRN_UNLIKELY(h == p->limit))
    return cairn__ring_push_full(p, id, step, v);
  cairn_rec *s = &p->slots[h & p->mask];
  /* Ask for the line a few records ahead now: the drain, on another core,
   * read it last, and fetching it for writing takes a cross-core transfer.
   * A hint only: no fault, no effect on correctness. */
  __builtin_prefetch(&p->slots[(h + 8) & p->mask], 1, 3);
  s->id = id;
  s->kind = CAIRN_REC_METRIC;
  s->step = step;
  s->value = v;
  /* The record is complete before head covers it, also for a signal handler
   * of this thread that publishes head (a compiler barrier, no instruction). */
  atomic_signal_fence(memory_order_release);
  p->head = ++h;
  if (CAIRN_UNLIKELY((h & (CAIRN_RING_PUBLISH_BATCH - 1)) == 0))
    cairn__ring_publish(p);
  return 0;
}

/*
 * Consumer side: the range of published records is [tail, avail). Returns
 * the number of records available; *first is the tail. The drain reads
 * slots[(first + i) & (capacity - 1)] and then calls cairn__ring_release_spsc.
 */
static inline uint64_t cairn__ring_peek_spsc(cairn_ring *r, uint64_t *first) {
  /* acquire: pairs with the producer's release store of pub_head; the slot
   * contents written before it are visible after it. */
  uint64_t avail = atomic_load_explicit(&r->pub_head, memory_order_acquire);
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  *first = t;
  return avail - t;
}

static inline const cairn_rec *cairn__ring_slot(const cairn_ring *r, uint64_t i) {
  return &r->slots[i & (r->capacity - 1)];
}

static inline void cairn__ring_release_spsc(cairn_ring *r, uint64_t new_tail) {
  /* release: our reads of the slots happen before the producer may reuse
   * them (it acquires tail). */
  atomic_store_explicit(&r->tail, new_tail, memory_order_release);
}

#endif /* CAIRN_RING_H */
