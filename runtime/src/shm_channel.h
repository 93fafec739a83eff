/*
 * shm_channel.h — private to cairn. A single-producer/single-consumer byte
 * channel of length-prefixed messages in node shared memory: a rank's writer
 * thread sends its encoded blocks to its aggregator through it. The layout is
 * position-independent (offsets, no pointers), so each process maps the
 * segment wherever mmap puts it.
 *
 * A message is a u32 length followed by its bytes, padded to 8 bytes. When
 * a message does not fit before the end of the buffer, the producer writes a
 * wrap marker (length UINT32_MAX) and starts again at offset 0.
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
  alignas(CAIRN_CACHELINE) _Atomic uint64_t tail;  /* bytes consumed         */
  alignas(CAIRN_CACHELINE) uint64_t capacity;      /* bytes in data[], 2^k   */
  uint32_t rank;                                   /* producer's world rank  */
  uint32_t reserved;
  alignas(CAIRN_CACHELINE) uint8_t data[];
} cairn_shm_channel;

/* Bytes a channel of `capacity` data bytes occupies (a cache-line multiple). */
size_t cairn__chan_footprint(uint64_t capacity);

/* Initialises a channel in zeroed memory. capacity: power of two >= 4096. */
void cairn__chan_init(cairn_shm_channel *c, uint64_t capacity, uint32_t rank);

/* Producer: sends one message. Returns CAIRN_OK, CAIRN_EINVAL if it can never
 * fit (len > capacity / 2), or CAIRN_EDROPPED (would block) when nonblocking
 * and full. Blocking mode waits (sleeping briefly) for the consumer. */
int cairn__chan_send(cairn_shm_channel *c, const void *msg, size_t len, int nonblocking);

/* Consumer: if a message is available, points msg and len at it (valid until
 * cairn__chan_pop) and returns 1; 0 if empty. Returns CAIRN_ECORRUPT if the
 * length word is impossible (a producer died mid-write cannot cause this:
 * the head is published only after the message is complete). */
int cairn__chan_peek(cairn_shm_channel *c, const void **msg, size_t *len);
void cairn__chan_pop(cairn_shm_channel *c);

#endif /* CAIRN_SHM_CHANNEL_H */
