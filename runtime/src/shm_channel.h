/*
 * shm_channel.h — private to cairn. A single-producer/single-consumer byte
 * channel of length-prefixed messages in node shared memory: a rank's writer
 * thread sends its encoded blocks to its aggregator through it. The layout is
 * position-independent (offsets, no pointers), so each process maps the
 * segment wherever mmap puts it.
 *
 * A message travels as one or more fragments of at most a quarter of the
 * buffer each, so a block of any size fits through a small channel. A
 * fragment is a u32 word (bits 0-30 length, bit 31 "more fragments follow")
 * and a u32 pad, then its bytes, padded to 8 bytes. When a fragment does not
 * fit before the end of the buffer, the producer writes a wrap marker (word
 * UINT32_MAX) and starts again at offset 0; it also wraps early, once past
 * the first cairn__chan_hot_bytes(capacity) bytes, when the consumer has
 * read far enough for the fragment to fit at offset 0 without waiting, so
 * that a channel whose consumer keeps up uses (and maps) only its first
 * pages. The consumer reassembles.
 */
#ifndef CAIRN_SHM_CHANNEL_H
#define CAIRN_SHM_CHANNEL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct {
  alignas(CAIRN_CACHELINE) _Atomic uint64_t head; /* bytes produced (free-running) */
  _Atomic uint32_t producer_pid;                   /* 0 until attached       */
  _Atomic uint32_t closed;                         /* producer finished      */
  _Atomic uint64_t sent;                           /* messages sent          */
  _Atomic uint32_t term_flushed;                   /* SIGTERM flush acked    */
  _Atomic uint32_t space_wait;   /* producer asleep until half the buffer is free */
  _Atomic uint32_t ack_wait;     /* producer asleep until a message is acked  */
  alignas(CAIRN_CACHELINE) _Atomic uint64_t tail;  /* bytes consumed         */
  _Atomic uint64_t acked;        /* messages the consumer has written out     */
  _Atomic uint32_t consumer_pid; /* the aggregator's pid                      */
  _Atomic uint32_t space_seq;    /* futex word: bumped when the consumer wakes */
                                 /* a waiting producer                        */
  _Atomic uint32_t ack_seq;      /* futex word: bumped at an ack with a waiter */
  alignas(CAIRN_CACHELINE) uint64_t capacity;      /* bytes in data[], 2^k   */
  uint32_t rank;                                   /* producer's world rank  */
  uint32_t reserved;
  alignas(CAIRN_CACHELINE) uint8_t data[];
} cairn_shm_channel;

/* Bytes a channel of `capacity` data bytes occupies (a cache-line multiple). */
size_t cairn__chan_footprint(uint64_t capacity);

/* The part of a channel that a producer whose consumer keeps up writes to:
 * a quarter of the buffer, at most CAIRN_CHAN_HOT_MAX (1 MiB). */
#define CAIRN_CHAN_HOT_MAX ((uint64_t)1 << 20)
uint64_t cairn__chan_hot_bytes(uint64_t capacity);

/* Initialises a channel in zeroed memory. capacity: power of two >= 4096. */
void cairn__chan_init(cairn_shm_channel *c, uint64_t capacity, uint32_t rank);

/* Producer: sends one message of any length (in fragments), waiting while
 * the channel is full: it sleeps on a process-shared futex until the
 * consumer has freed half the buffer (and re-checks every 10 ms, so a
 * consumer that died cannot leave it asleep for good; nothing is sent then
 * anyway). Returns CAIRN_OK, or CAIRN_EINVAL for a message of 2 GiB or
 * more. */
int cairn__chan_send(cairn_shm_channel *c, const void *msg, size_t len);

/* How long a producer waiting for space or for an ack sleeps before it
 * looks again without being woken (10 ms). Tests lengthen it to see the
 * wake-up alone. */
extern uint64_t cairn__chan_recheck_ns;

/* Producer: waits until the consumer has written out message number `seq`
 * (1-based, as counted by `sent`), asleep on a process-shared futex that
 * cairn__chan_ack wakes (re-checking every cairn__chan_recheck_ns whether
 * the consumer process is still there). Returns CAIRN_OK, or CAIRN_EIO if the consumer
 * process is gone or `timeout_ns` passed. */
int cairn__chan_wait_acked(cairn_shm_channel *c, uint64_t seq, uint64_t timeout_ns);

/* Consumer: counts one more message as written out, and wakes a producer
 * waiting for it. */
void cairn__chan_ack(cairn_shm_channel *c);

/* Consumer: if a fragment is available, points frag and len at it (valid
 * until cairn__chan_pop), sets *more when further fragments of the same
 * message follow, and returns 1; 0 if empty. Returns CAIRN_ECORRUPT if the
 * length word is impossible (a producer killed mid-write cannot cause this:
 * the head is published only after a fragment is complete). */
int cairn__chan_peek(cairn_shm_channel *c, const void **frag, size_t *len, int *more);
void cairn__chan_pop(cairn_shm_channel *c);

#endif /* CAIRN_SHM_CHANNEL_H */
