/*
 * wal.h — private to cairn (shared by the runtime and the tools). The
 * write-ahead log: append-only segment files of framed, zstd-compressed,
 * checksummed blocks. This layer frames opaque payloads; what a payload holds
 * is defined in wal_records.h. The byte layout is documented in
 * docs/format.md and defined once in wal_format.h.
 */
#ifndef CAIRN_WAL_H
#define CAIRN_WAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct cairn_wal_writer cairn_wal_writer;

typedef struct {
  const char *dir;          /* existing run directory                      */
  uint8_t run_id[16];       /* binary UUID written into every segment      */
  uint32_t rank;            /* writer's rank (0 standalone)                */
  int compression_level;    /* zstd level                                  */
  int sync_policy;          /* cairn_sync_policy from config.h             */
  uint32_t sync_interval_ms;/* for CAIRN_SYNC_INTERVAL                     */
  uint64_t segment_bytes;   /* rotate to a new segment beyond this size    */
} cairn_wal_options;

/*
 * Opens a writer: creates the first segment <dir>/wal-r<rank>-<seq>.cwal
 * (mode 0600, seq = 000000) and writes its header. Returns CAIRN_OK and sets
 * *out, or CAIRN_EIO / CAIRN_ENOMEM / CAIRN_EINVAL with a message in err.
 */
int cairn__wal_open(cairn_wal_writer **out, const cairn_wal_options *opt,
                    char *err, size_t errlen);

/*
 * Compresses `len` bytes of payload, frames them as one block of type
 * `block_type` and appends it with a single write; rotates to a new segment
 * first when the current one would exceed segment_bytes; syncs according to
 * the policy. Returns CAIRN_OK, CAIRN_ECOMPRESS, CAIRN_EIO (the block was not
 * written; the segment is truncated back so no torn block remains when
 * possible). Not thread-safe: one writer, one thread.
 */
int cairn__wal_append(cairn_wal_writer *w, uint16_t block_type,
                      const void *payload, size_t len);

/* fdatasync the current segment. Returns CAIRN_OK or CAIRN_EIO. */
int cairn__wal_sync(cairn_wal_writer *w);

/* Syncs and closes; frees w (NULL is a no-op). Returns CAIRN_OK or CAIRN_EIO.
 * Under CAIRN_SYNC_NONE the final fdatasync is skipped, as at rotation: that
 * policy leaves write-back to the OS (call cairn__wal_sync first if needed). */
int cairn__wal_close(cairn_wal_writer *w);

/* Bytes written so far over all segments (headers and frames). */
uint64_t cairn__wal_bytes_written(const cairn_wal_writer *w);

/* ---------------------------------------------------------------------- */

typedef struct cairn_wal_reader cairn_wal_reader;

typedef struct {
  uint32_t version;    /* format version from the header */
  uint8_t run_id[16];
  uint32_t rank;
  uint32_t segment;    /* sequence number of the segment */
  uint64_t created_ns; /* CLOCK_REALTIME at creation     */
} cairn_wal_segment_info;

/*
 * Opens one segment file for reading and validates its header. Returns
 * CAIRN_OK; CAIRN_EFOREIGN (not a cairn WAL: bad magic), CAIRN_EVERSION,
 * CAIRN_ETRUNCATED (shorter than a header), CAIRN_ECORRUPT (header checksum),
 * CAIRN_EIO, with a message naming the file in err.
 */
int cairn__wal_reader_open(cairn_wal_reader **out, const char *path,
                           cairn_wal_segment_info *info, char *err,
                           size_t errlen);

/*
 * Returns the next intact block: 1 and sets *type, *payload (owned by the
 * reader, valid until the next call) and *len; 0 at a clean end of file.
 * A damaged region is reported, never fatal: on a checksum mismatch, a bad
 * frame or a failed decompression the reader writes a message (file, byte
 * offset, what is wrong) into err, counts it, resynchronises on the next
 * valid frame and returns that block (the message stays in err; check
 * cairn__wal_reader_damage()). A torn tail (an incomplete last frame) ends the
 * iteration with 0 and is reported the same way.
 * Negative returns are hard I/O errors (CAIRN_EIO, CAIRN_ENOMEM).
 */
int cairn__wal_reader_next(cairn_wal_reader *r, uint16_t *type,
                           const void **payload, size_t *len, char *err,
                           size_t errlen);

typedef struct {
  uint64_t blocks_ok;       /* intact blocks returned               */
  uint64_t corrupt_regions; /* damaged regions skipped              */
  uint64_t bytes_skipped;   /* bytes in damaged regions and torn tail */
  int torn_tail;            /* 1 if the file ended inside a frame   */
} cairn_wal_damage;

void cairn__wal_reader_damage(const cairn_wal_reader *r, cairn_wal_damage *d);
void cairn__wal_reader_close(cairn_wal_reader *r);

#endif /* CAIRN_WAL_H */
