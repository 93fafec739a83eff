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
 *   - the cursor (next slot, stop, limit = cached tail + capacity) is
 *     touched on every push by the producer alone;
 *   - pub_head/pub_dropped are written once per batch of
 *     CAIRN_RING_PUBLISH_BATCH records (or at a step boundary / flush), and
 *     read by the drain when it drains;
 *   - tail is written by the drain after it consumed records and read by the
 *     producer only when its cached copy says the ring is full.
 * The common-case push is therefore one comparison, four plain stores into a
 * slot and one into the cursor: no atomic read-modify-write, no fence on
 * x86, no syscall.
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

/*
 * Storage of a ring: one segment, or a chain of them while the drain is
 * behind. Every segment has the ring's capacity and maps free-running index
 * i to slots[i & (capacity - 1)]. The producer writes into its segment until
 * it is full; then, instead of dropping (or waiting), it may chain an
 * overflow segment: it sets the full one's `count` and `next` and goes on at
 * the same index in the new one. The drain reads in index order and moves to
 * `next` when it has read `count` records of a segment; the segment it leaves becomes the ring's
 * spare (or is freed). Bounded by ring.overflow_bytes per ring.
 */
typedef struct cairn_ring_seg {
  /* Set by the producer when it moves on, before it publishes any record at
   * beyond this segment; read by the drain after acquiring pub_head. */
  _Atomic(struct cairn_ring_seg *) next;
  /* Records written here, set when the producer moves on; UINT64_MAX while
   * it is still filling this segment (relative, not an end index: indices
   * are free-running and may take any value). */
  _Atomic uint64_t count;
  uint64_t start;           /* index of the first record written here         */
  uint64_t capacity;        /* records, a power of two                        */
  alignas(CAIRN_CACHELINE) cairn_rec slots[];
} cairn_ring_seg;

typedef struct cairn_ring {
  /* --- published by the producer, read by the drain ---------------------- */
  alignas(CAIRN_CACHELINE) _Atomic uint64_t pub_head;
  _Atomic uint64_t pub_dropped;

  /* --- consumer line ------------------------------------------------------ */
  alignas(CAIRN_CACHELINE) _Atomic uint64_t tail;
  cairn_ring_seg *cseg; /* the segment the drain reads (drain only)          */

  /* --- the producer's slow path ------------------------------------------ */
  alignas(CAIRN_CACHELINE) cairn_ring_seg *pseg; /* segment it writes (producer only) */
  /* Set while the producer's slow path moves its cursor, whose fields do not
   * give the head until it is done; a signal handler of the producer thread
   * that publishes (SIGTERM) then takes slow_head, the head at its entry.
   * Written and read by the producer thread only (and its handlers). */
  _Atomic int in_slow;
  _Atomic uint64_t slow_head;
  /* A segment ready for the next overflow: left there by the drain (a
   * segment it finished reading, or one it allocated when the ring ran
   * high), taken by the producer with an exchange. */
  _Atomic(cairn_ring_seg *) spare;
  _Atomic uint32_t nsegs;       /* segments allocated, spare included      */
  uint32_t max_segs;            /* 1: no overflow                          */
  _Atomic uint64_t overflows;   /* overflow segments chained (statistics)  */

  /* --- bookkeeping, touched at registration and thread exit -------------- */
  alignas(CAIRN_CACHELINE) _Atomic int orphaned; /* owner thread exited     */
  uint32_t thread_index;                         /* order of registration  */
  uint64_t generation;                           /* run generation         */
  uint64_t capacity;                             /* records per segment    */
  uint64_t high_water;                           /* fill that wakes the drain */
  int block;                                     /* ring.policy == block   */
} cairn_ring;

/*
 * The producer's private cursor (cairn__cursor in cairn.h). It lives with
 * the producing thread (in its thread-local storage), not in the shared
 * ring, so the hot path reads only memory the thread owns. A push stores
 * into *next and advances next, until next reaches stop; stop is the
 * nearest of the last record of the publication batch (CAIRN_RING_PUBLISH_
 * BATCH records, at multiples of it; the last slot of the array is always
 * one) and `limit`, the cached tail plus the capacity (the ring is full as
 * far as the producer knows). One comparison per push covers all three. The
 * free-running index of *next is lap + (next - slots). `gen` is the API's
 * business.
 */
typedef cairn__cursor cairn_ring_producer;

/* The producer's free-running head: the index of the next record. */
static inline uint64_t cairn__ring_head(const cairn_ring_producer *p) {
  return p->lap + (uint64_t)(p->next - p->slots);
}

/* Allocates a ring of `capacity` (power of two, >= CAIRN_RING_PUBLISH_BATCH)
 * records, without overflow. Returns NULL when out of memory or for a bad
 * capacity. high_water is a fraction of capacity in (0, 1]. */
cairn_ring *cairn__ring_create(uint64_t capacity, double high_water, int block);
/* Frees the ring and every segment it holds. */
void cairn__ring_destroy(cairn_ring *r);

/* Lets the ring grow by up to `bytes` of overflow segments (each of the
 * ring's capacity) when full; 0 (the default of a new ring) disables it.
 * Call before the first push. */
void cairn__ring_set_overflow(cairn_ring *r, uint64_t bytes);

/* Drain side: gives the ring a pre-faulted spare segment if it has none and
 * may grow, so that the producer's next overflow costs no allocation. */
void cairn__ring_provision_spare(cairn_ring *r);

/* Points a producer cursor at a fresh ring (head = tail = 0). */
void cairn__ring_producer_init(cairn_ring_producer *p, cairn_ring *r);

/* Slow path of push, out of line: the cursor reached its stop. When the ring
 * is full as far as the cached tail says, re-reads it, then chains an
 * overflow segment if allowed, else drops and counts, or waits under the
 * block policy; stores the record, and publishes its batch when the record
 * completes one; moves from the end of the slot array to its start. Returns
 * like cairn__ring_push_spsc. */
int cairn__ring_push_slow(cairn_ring_producer *p, uint32_t id, int64_t step, double v);
/* Makes the records before head visible to the drain (and wakes it when the
 * ring runs high). Async-signal-safe for the owner thread's own handlers:
 * in the middle of the slow path it takes the head at the slow path's
 * entry, it never moves a published head back, and it never moves the
 * cursor. */
void cairn__ring_publish(cairn_ring_producer *p);
/* Out of line part of publishing: the ring runs high at head h. */
void cairn__ring_publish_high(cairn_ring_producer *p, uint64_t h);

/* Drain side: the drain reached the end of its segment; moves to the next
 * one and retires the finished one. Returns the new segment. */
cairn_ring_seg *cairn__ring_next_seg(cairn_ring *r);

/* Stores one record at the cursor and advances it (the caller checked that
 * next is not stop, or owns the slot at stop). */
static inline void cairn__ring_store(cairn_ring_producer *p, uint32_t id, int64_t step,
                                     double v) {
  cairn_rec *s = p->next;
  /* Ask for the line a few records ahead now: the drain, on another core,
   * read it last, and fetching it for writing takes a cross-core transfer.
   * A hint only: no fault, no effect on correctness, also past the end. */
  __builtin_prefetch((const void *)((uintptr_t)s + 8 * sizeof *s), 1, 3);
  s->id = id;
  s->kind = CAIRN_REC_METRIC;
  s->step = step;
  s->value = v;
  /* The record is complete before next covers it, also for a signal handler
   * of this thread that publishes (a compiler barrier, no instruction). */
  atomic_signal_fence(memory_order_release);
  p->next = s + 1;
}

/* The stop of a cursor whose next is at index h: the last record of h's
 * publication batch (the slow path stores that one and publishes the
 * batch), or limit, whichever comes first. Capacities are multiples of the
 * batch, so the array's last slot ends a batch. cairn__ring_cursor_at also
 * puts next (and lap) at index h of the segment it writes. */
static inline void cairn__ring_set_stop(cairn_ring_producer *p, uint64_t h) {
  uint64_t room = p->limit - h;
  uint64_t to_last = (CAIRN_RING_PUBLISH_BATCH - 1) - (h & (CAIRN_RING_PUBLISH_BATCH - 1));
  p->stop = p->next + (room < to_last ? room : to_last);
}

static inline void cairn__ring_cursor_at(cairn_ring_producer *p, uint64_t h) {
  uint64_t mask = p->ring->capacity - 1;
  p->lap = h & ~mask;
  p->next = p->slots + (h & mask);
  cairn__ring_set_stop(p, h);
}

/* Publishes head h: the records before it are complete. */
static inline void cairn__ring_publish_at(cairn_ring_producer *p, uint64_t h) {
  cairn_ring *r = p->ring;
  atomic_store_explicit(&r->pub_dropped, p->dropped, memory_order_relaxed);
  /* release: the slot stores (and pub_dropped) above become visible to the
   * drain no later than the new head it acquires. */
  atomic_store_explicit(&r->pub_head, h, memory_order_release);
  /* fill = h - tail = h - (limit - capacity). A fresher limit only lets the
   * cursor's next stop lie further on; the stop it has stays valid. */
  if (CAIRN_UNLIKELY(h + r->capacity - p->limit >= r->high_water))
    cairn__ring_publish_high(p, h);
}

/* The cursor is at its stop, at index h, the last record of a batch, and
 * the ring has room there. Stores the record, publishes the batch, and
 * sets the next stop. Only `stop` moves (lap and next stay consistent for
 * a signal handler that publishes): after the array's last slot, the stop
 * stays where next is, and the slow path takes the cursor to the start. */
static inline int cairn__ring_push_batch_end(cairn_ring_producer *p, uint64_t h, uint32_t id,
                                             int64_t step, double v) {
  cairn__ring_store(p, id, step, v);
  cairn__ring_publish_at(p, h + 1);
  if (((h + 1) & (p->ring->capacity - 1)) == 0)
    p->stop = p->next;
  else
    cairn__ring_set_stop(p, h + 1);
  return 0;
}

/* The cursor is at its stop: the end of a batch (the common case, handled
 * inline), or the end of the slot array or a full ring (out of line). */
static inline int cairn__ring_push_at_stop(cairn_ring_producer *p, uint32_t id, int64_t step,
                                           double v) {
  uint64_t h = cairn__ring_head(p);
  if (CAIRN_LIKELY(h != p->limit &&
                   (h & (CAIRN_RING_PUBLISH_BATCH - 1)) == CAIRN_RING_PUBLISH_BATCH - 1))
    return cairn__ring_push_batch_end(p, h, id, step, v);
  return cairn__ring_push_slow(p, id, step, v);
}

/*
 * Pushes one record. Returns CAIRN_OK or CAIRN_EDROPPED (ring full under the
 * drop policy; the record is counted in p->dropped). Producer thread only.
 */
static inline int cairn__ring_push_spsc(cairn_ring_producer *p, uint32_t id, int64_t step,
                                        double v) {
  if (CAIRN_UNLIKELY(p->next == p->stop))
    return cairn__ring_push_at_stop(p, id, step, v);
  cairn__ring_store(p, id, step, v);
  return 0;
}

/*
 * Consumer side: the range of published records is [tail, avail). Returns
 * the number of records available; *first is the tail. The drain reads
 * them in order with cairn__ring_slot and then calls cairn__ring_release_spsc.
 */
static inline uint64_t cairn__ring_peek_spsc(cairn_ring *r, uint64_t *first) {
  /* acquire: pairs with the producer's release store of pub_head; the slot
   * contents written before it are visible after it. */
  uint64_t avail = atomic_load_explicit(&r->pub_head, memory_order_acquire);
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  *first = t;
  return avail - t;
}

/* Drain side: record i, for i = first, first + 1, ... in order (the drain
 * moves to the next segment when i reaches the end of its own). */
static inline const cairn_rec *cairn__ring_slot(cairn_ring *r, uint64_t i) {
  cairn_ring_seg *s = r->cseg;
  /* relaxed: `count` was stored before the pub_head the caller acquired
   * covered index i, so it is visible whenever i is past the segment. */
  if (CAIRN_UNLIKELY(i - s->start == atomic_load_explicit(&s->count, memory_order_relaxed)))
    s = cairn__ring_next_seg(r);
  return &s->slots[i & (s->capacity - 1)];
}

static inline void cairn__ring_release_spsc(cairn_ring *r, uint64_t new_tail) {
  /* release: our reads of the slots happen before the producer may reuse
   * them (it acquires tail). */
  atomic_store_explicit(&r->tail, new_tail, memory_order_release);
}

#endif /* CAIRN_RING_H */
