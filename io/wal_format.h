/*
 * wal_format.h — private to cairn: the byte layout of write-ahead log segment
 * files, defined once here for the writer, the reader and the tools, and
 * described for humans in docs/format.md ("Write-ahead log (WAL) segments").
 *
 * Every integer on disk is little-endian and encoded byte by byte with the
 * helpers below, never by dumping a struct, so the files are identical on
 * every host and compiler. Changing anything in this file changes the format:
 * bump CAIRN_WAL_VERSION and update docs/format.md in the same commit.
 */
#ifndef CAIRN_WAL_FORMAT_H
#define CAIRN_WAL_FORMAT_H

#include <inttypes.h> /* PRIu32 in CAIRN_WAL_NAME_FMT */
#include <stdint.h>

/* ---------------------------------------------------------------------- */
/* Segment files                                                           */
/* ---------------------------------------------------------------------- */

/* <dir>/wal-r<rank>-<seq>.cwal, both numbers zero-padded to 6 digits (more
 * digits appear only beyond 999999, so names still sort within a rank). */
#define CAIRN_WAL_NAME_FMT "wal-r%06" PRIu32 "-%06" PRIu32 ".cwal"

#define CAIRN_WAL_MAGIC "CAIRNWAL" /* 8 bytes, no terminator on disk */
#define CAIRN_WAL_MAGIC_LEN 8u
#define CAIRN_WAL_VERSION 2u /* the newest version this code reads/writes */

/*
 * Segment header: written once at offset 0 of every segment. A version-1
 * header is exactly 64 bytes; the size field lets a later version grow the
 * header while its readers still locate the frames of older files. The CRC
 * occupies the last 4 bytes and covers everything before it.
 */
#define CAIRN_WAL_HEADER_SIZE 64u

#define CAIRN_WAL_HDR_MAGIC 0u       /* u8[8]  "CAIRNWAL"                */
#define CAIRN_WAL_HDR_VERSION 8u     /* u32    format version             */
#define CAIRN_WAL_HDR_SIZE 12u       /* u32    header size in bytes (64)  */
#define CAIRN_WAL_HDR_RUN_ID 16u     /* u8[16] binary run UUID            */
#define CAIRN_WAL_HDR_RANK 32u       /* u32    writer's rank              */
#define CAIRN_WAL_HDR_SEGMENT 36u    /* u32    segment sequence number    */
#define CAIRN_WAL_HDR_CREATED_NS 40u /* u64    CLOCK_REALTIME, ns         */
#define CAIRN_WAL_HDR_RESERVED 48u   /* u8[12] zero                       */
#define CAIRN_WAL_HDR_CRC 60u        /* u32    CRC32C of bytes [0, 60)    */

/* ---------------------------------------------------------------------- */
/* Block frames                                                            */
/* ---------------------------------------------------------------------- */

/*
 * Frame magic. Chosen to be unlikely in text and in zstd output (whose own
 * magic is 0xFD2FB528): on disk it reads C5 10 1B CA. A reader that lost
 * its place scans for it and accepts a candidate only if the frame header
 * CRC also matches, so a false match needs a 32-bit collision as well.
 */
#define CAIRN_WAL_FRAME_MAGIC 0xCA1B10C5u
#define CAIRN_WAL_FRAME_SIZE 32u

#define CAIRN_WAL_FRM_MAGIC 0u        /* u32 CAIRN_WAL_FRAME_MAGIC           */
#define CAIRN_WAL_FRM_TYPE 4u         /* u16 block type                      */
#define CAIRN_WAL_FRM_CODEC 6u        /* u16 codec of the stored payload     */
#define CAIRN_WAL_FRM_STORED_LEN 8u   /* u32 payload length as stored        */
#define CAIRN_WAL_FRM_RAW_LEN 12u     /* u32 payload length uncompressed     */
#define CAIRN_WAL_FRM_SEQ 16u         /* u64 block seq, monotonic per writer */
#define CAIRN_WAL_FRM_PAYLOAD_CRC 24u /* u32 CRC32C of the stored payload   */
#define CAIRN_WAL_FRM_HEADER_CRC 28u  /* u32 CRC32C of frame bytes [0, 28)   */

/*
 * Block types. 0 is never written (a zeroed region must not look like a
 * block). cairn's own kinds take small numbers; everything else is reserved
 * for later versions, and consumers skip types they do not know.
 */
#define CAIRN_WAL_BLOCK_INVALID 0u
#define CAIRN_WAL_BLOCK_DATA 1u /* records, see io/wal_records.h */
/* 2..0xFFFF reserved */

/* Codecs of the stored payload. */
#define CAIRN_WAL_CODEC_RAW 0u  /* stored as is; stored_len == raw_len   */
#define CAIRN_WAL_CODEC_ZSTD 1u /* one zstd frame, content size recorded */

/*
 * Largest payload in one block, uncompressed and as stored. The writer only
 * stores a zstd frame when it is smaller than the raw payload, so both
 * lengths share one bound; it keeps a reader's allocation for a damaged
 * length field modest.
 */
#define CAIRN_WAL_MAX_BLOCK ((uint32_t)64 * 1024 * 1024)

/* ---------------------------------------------------------------------- */
/* Little-endian encoding                                                  */
/* ---------------------------------------------------------------------- */

static inline void cairn__wal_put16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static inline void cairn__wal_put32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static inline void cairn__wal_put64(uint8_t *p, uint64_t v)
{
  cairn__wal_put32(p, (uint32_t)v);
  cairn__wal_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t cairn__wal_get16(const uint8_t *p)
{
  return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t cairn__wal_get32(const uint8_t *p)
{
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

static inline uint64_t cairn__wal_get64(const uint8_t *p)
{
  return (uint64_t)cairn__wal_get32(p) |
         ((uint64_t)cairn__wal_get32(p + 4) << 32);
}

#endif /* CAIRN_WAL_FORMAT_H */
