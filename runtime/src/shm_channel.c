/* shm_channel.c — the SPSC byte channel in node shared memory between a
 * rank's writer thread and its aggregator. */
#include "shm_channel.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "cairn.h"

#define WRAP_MARK UINT32_MAX
#define MORE_BIT 0x80000000u

static inline uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

size_t cairn__chan_footprint(uint64_t capacity) {
  size_t n = sizeof(cairn_shm_channel) + capacity;
  return (n + CAIRN_CACHELINE - 1) & ~(size_t)(CAIRN_CACHELINE - 1);
}

void cairn__chan_init(cairn_shm_channel *c, uint64_t capacity, uint32_t rank) {
  atomic_init(&c->head, 0);
  atomic_init(&c->tail, 0);
  atomic_init(&c->producer_pid, 0);
  atomic_init(&c->closed, 0);
  atomic_init(&c->sent, 0);
  atomic_init(&c->acked, 0);
  atomic_init(&c->term_flushed, 0);
  atomic_init(&c->consumer_pid, 0);
  atomic_init(&c->space_wait, 0);
  atomic_init(&c->space_seq, 0);
  atomic_init(&c->ack_wait, 0);
  atomic_init(&c->ack_seq, 0);
  c->capacity = capacity;
  c->rank = rank;
}

uint64_t cairn__chan_recheck_ns = 10000000u;

/* Sleeps until *word moves from `seq` (the other side's wake_waiter) or
 * `ns` pass. Not FUTEX_PRIVATE: the two sides are different processes. */
static void futex_sleep(_Atomic uint32_t *word, uint32_t seq, uint64_t ns) {
#ifdef __linux__
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  syscall(SYS_futex, word, FUTEX_WAIT, seq, &ts, NULL, 0);
#else
  (void)word;
  (void)seq;
  struct timespec ts = {0, ns < 1000000u ? (long)ns : 1000000};
  nanosleep(&ts, NULL);
#endif
}

/* Clears *flag (the sleeper's "I am waiting") and wakes it from futex_sleep. */
static void wake_waiter(_Atomic uint32_t *flag, _Atomic uint32_t *seq) {
  atomic_store_explicit(flag, 0, memory_order_relaxed);
  atomic_fetch_add(seq, 1);
#ifdef __linux__
  syscall(SYS_futex, seq, FUTEX_WAKE, 1, NULL, NULL, 0);
#endif
}

/* Waits until `need` bytes from head h (plus `wrap` skipped) are free. A
 * full channel means the aggregator is behind (it may be niced): polling
 * it would cost a context switch every few microseconds, so the producer
 * sleeps until the consumer has freed half the buffer. The flag and the
 * tail are checked in opposite orders by the two sides, all sequentially
 * consistent, so a wake-up cannot be missed: either the consumer sees the
 * flag after its pop, or the producer sees the pop before it sleeps. */
static void wait_for_space(cairn_shm_channel *c, uint64_t h, uint64_t need) {
  const uint64_t cap = c->capacity;
  for (;;) {
    /* acquire: the consumer has finished reading the bytes it released. */
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire);
    if (h + need - t <= cap)
      return;
    uint32_t seq = atomic_load(&c->space_seq);
    atomic_store(&c->space_wait, 1);
    t = atomic_load(&c->tail);
    if (h + need - t <= cap) {
      atomic_store_explicit(&c->space_wait, 0, memory_order_relaxed);
      return;
    }
    futex_sleep(&c->space_seq, seq, cairn__chan_recheck_ns);
  }
}

/* Consumer, after moving the tail: wakes a producer waiting for space once
 * half the buffer is free (an emptied channel always is). */
static void wake_producer(cairn_shm_channel *c, uint64_t t) {
  if (!atomic_load(&c->space_wait))
    return;
  uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire);
  if (h - t > c->capacity / 2)
    return;
  wake_waiter(&c->space_wait, &c->space_seq);
}

uint64_t cairn__chan_hot_bytes(uint64_t capacity) {
  return capacity / 4 < CAIRN_CHAN_HOT_MAX ? capacity / 4 : CAIRN_CHAN_HOT_MAX;
}

/* Sends one fragment of at most capacity / 4 bytes. */
static void send_fragment(cairn_shm_channel *c, const uint8_t *frag, size_t len, int more) {
  const uint64_t cap = c->capacity;
  uint64_t need = 8 + pad8(len);
  uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
  uint64_t off = h & (cap - 1);
  uint64_t wrap = (cap - off < need) ? cap - off : 0; /* bytes skipped to wrap */
  if (!wrap && off >= cairn__chan_hot_bytes(cap)) {
    /* Past the hot part: start again at offset 0 if the consumer has read
     * far enough that the fragment fits there without waiting (the usual
     * case: an aggregator that keeps up). The bytes in use then stay in
     * the first pages, which are mapped and warm in the caches, instead of
     * moving through the whole buffer: each of its pages would take a
     * page fault in both processes on the first lap. */
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire);
    if (h + (cap - off) + need - t <= cap)
      wrap = cap - off;
  }
  wait_for_space(c, h, wrap + need);
  if (wrap) {
    uint32_t mark = WRAP_MARK;
    memcpy(c->data + off, &mark, 4);
    h += wrap;
    off = 0;
  }
  uint32_t word = (uint32_t)len | (more ? MORE_BIT : 0);
  memcpy(c->data + off, &word, 4);
  memcpy(c->data + off + 8, frag, len);
  /* release: the fragment's bytes are in place before the consumer can see
   * the new head. A producer killed before this store leaves nothing torn. */
  atomic_store_explicit(&c->head, h + need, memory_order_release);
}

int cairn__chan_send(cairn_shm_channel *c, const void *msg, size_t len) {
  if (len >= MORE_BIT)
    return CAIRN_EINVAL;
  const uint8_t *p = msg;
  size_t max = (size_t)(c->capacity / 4);
  do {
    size_t n = len < max ? len : max;
    send_fragment(c, p, n, len > n);
    p += n;
    len -= n;
  } while (len);
  atomic_fetch_add_explicit(&c->sent, 1, memory_order_relaxed);
  return CAIRN_OK;
}

int cairn__chan_peek(cairn_shm_channel *c, const void **msg, size_t *len, int *more) {
  const uint64_t cap = c->capacity;
  uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire);
  uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
  for (;;) {
    if (t == h)
      return 0;
    uint64_t off = t & (cap - 1);
    uint32_t l32 = WRAP_MARK;
    if (cap - off >= 4)
      memcpy(&l32, c->data + off, 4);
    if (l32 == WRAP_MARK || cap - off < 8) {
      t += cap - off; /* skip to the start of the buffer */
      atomic_store(&c->tail, t);
      wake_producer(c, t);
      continue;
    }
    *more = (l32 & MORE_BIT) != 0;
    l32 &= ~MORE_BIT;
    if (l32 > cap / 4 || off + 8 + l32 > cap || h - t < 8 + pad8(l32))
      return CAIRN_ECORRUPT;
    *msg = c->data + off + 8;
    *len = l32;
    return 1;
  }
}

void cairn__chan_pop(cairn_shm_channel *c) {
  const uint64_t cap = c->capacity;
  uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
  uint32_t l32;
  memcpy(&l32, c->data + (t & (cap - 1)), 4);
  l32 &= ~MORE_BIT;
  /* seq_cst (at least release): our reads of the message are done before
   * the producer reuses the bytes, and the store is ordered before the
   * load of space_wait in wake_producer. */
  t += 8 + pad8(l32);
  atomic_store(&c->tail, t);
  wake_producer(c, t);
}

/* The waiter stores ack_wait and then loads acked; cairn__chan_ack adds to
 * acked and then loads ack_wait; all sequentially consistent, so one of
 * them sees the other and no wake-up is lost. */
int cairn__chan_wait_acked(cairn_shm_channel *c, uint64_t seq, uint64_t timeout_ns) {
  uint64_t deadline = cairn__now_mono_ns() + timeout_ns;
  for (;;) {
    if (atomic_load_explicit(&c->acked, memory_order_acquire) >= seq)
      return CAIRN_OK;
    pid_t pid = (pid_t)atomic_load_explicit(&c->consumer_pid, memory_order_relaxed);
    uint64_t now = cairn__now_mono_ns();
    if ((pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) || now > deadline)
      return CAIRN_EIO;
    uint32_t s = atomic_load(&c->ack_seq);
    atomic_store(&c->ack_wait, 1);
    if (atomic_load(&c->acked) >= seq) {
      atomic_store_explicit(&c->ack_wait, 0, memory_order_relaxed);
      return CAIRN_OK;
    }
    futex_sleep(&c->ack_seq, s,
                deadline - now < cairn__chan_recheck_ns ? deadline - now
                                                        : cairn__chan_recheck_ns);
  }
}

void cairn__chan_ack(cairn_shm_channel *c) {
  /* seq_cst (at least release): a rank waiting in cairn_flush learns its
   * block is out. */
  atomic_fetch_add(&c->acked, 1);
  if (atomic_load(&c->ack_wait))
    wake_waiter(&c->ack_wait, &c->ack_seq);
}
