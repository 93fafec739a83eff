/*
 * wal.c — the write-ahead log: a writer that appends framed, zstd-compressed,
 * CRC32C-checked blocks to rotating segment files, and a reader that returns
 * every intact block of a segment and steps over damage without failing.
 * The byte layout is in wal_format.h and docs/format.md.
 */
#include "wal.h"

#include "cairn.h"
#include "util.h"
#include "config.h"
#include "crc32c.h"
#include "wal_format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif


static uint64_t clock_ns(clockid_t id)
{
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ====================================================================== */
/* Writer                                                                  */
/* ====================================================================== */

struct cairn_wal_writer {
  /* options, copied */
  char *dir;
  uint8_t run_id[16];
  uint32_t rank;
  int level;
  int sync_policy;
  uint64_t sync_interval_ns;
  uint64_t segment_bytes;

  /* current segment */
  int fd;
  uint32_t seg_seq;
  uint64_t seg_size;     /* bytes in the segment file, header included */
  uint64_t seg_blocks;   /* blocks in the segment                      */
  bool must_rotate;      /* a failed append could not be truncated away */
  uint64_t last_sync_ns; /* CLOCK_MONOTONIC of the last fdatasync     */

  uint64_t next_block_seq; /* monotonic across segments */
  uint64_t bytes_written;  /* over all segments          */

  /* compression scratch, reused across appends */
  ZSTD_CCtx *cctx;
  uint8_t *cbuf;
  size_t cbuf_cap;
};

/*
 * Writes the iovecs at `off`, retrying on EINTR and short writes. pwritev
 * rather than write: the file offset never matters, so a failed append can
 * be truncated away without an lseek. Returns 0, or -1 with errno set.
 */
static int pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off)
{
  while (iovcnt > 0) {
    ssize_t n = pwritev(fd, iov, iovcnt, off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (n == 0) { /* cannot happen for regular files; never spin */
      errno = EIO;
      return -1;
    }
    off += n;
    size_t done = (size_t)n;
    while (iovcnt > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      iov++;
      iovcnt--;
    }
    if (iovcnt > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + done;
      iov->iov_len -= done;
    }
  }
  return 0;
}

/*
 * Makes a new directory entry durable. Some file systems refuse fsync on a
 * directory (EINVAL); their entries are durable by other means, so that is
 * not an error.
 */
static int fsync_dir(const char *dir)
{
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -1;
  int rc = fsync(dfd);
  int saved = errno;
  close(dfd);
  if (rc != 0 && saved != EINVAL && saved != ENOTSUP) {
    errno = saved;
    return -1;
  }
  return 0;
}

static void encode_segment_header(uint8_t h[CAIRN_WAL_HEADER_SIZE],
                                  const cairn_wal_writer *w, uint32_t seq)
{
  memset(h, 0, CAIRN_WAL_HEADER_SIZE);
  memcpy(h + CAIRN_WAL_HDR_MAGIC, CAIRN_WAL_MAGIC, CAIRN_WAL_MAGIC_LEN);
  cairn__wal_put32(h + CAIRN_WAL_HDR_VERSION, CAIRN_WAL_VERSION);
  cairn__wal_put32(h + CAIRN_WAL_HDR_SIZE, CAIRN_WAL_HEADER_SIZE);
  memcpy(h + CAIRN_WAL_HDR_RUN_ID, w->run_id, 16);
  cairn__wal_put32(h + CAIRN_WAL_HDR_RANK, w->rank);
  cairn__wal_put32(h + CAIRN_WAL_HDR_SEGMENT, seq);
  cairn__wal_put64(h + CAIRN_WAL_HDR_CREATED_NS, clock_ns(CLOCK_REALTIME));
  cairn__wal_put32(h + CAIRN_WAL_HDR_CRC,
                   cairn__crc32c(0, h, CAIRN_WAL_HDR_CRC));
}

/*
 * Creates segment `seq` with its header, durable according to the policy,
 * and returns its descriptor (or -1 with a message in err; nothing is left
 * behind on failure). The writer's current segment is not touched.
 */
static int segment_create(const cairn_wal_writer *w, uint32_t seq, char *err,
                          size_t errlen)
{
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/" CAIRN_WAL_NAME_FMT, w->dir, w->rank,
                   seq);
  if (n < 0 || (size_t)n >= sizeof path) {
    cairn__fmt(err, errlen, "%s: write-ahead log path too long", w->dir);
    return -1;
  }
  /* O_EXCL: never append to, or clobber, a segment another writer owns. */
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    cairn__fmt(err, errlen, "%s: cannot create write-ahead log segment: %s", path,
            strerror(errno));
    return -1;
  }
  uint8_t h[CAIRN_WAL_HEADER_SIZE];
  encode_segment_header(h, w, seq);
  struct iovec iov = {h, sizeof h};
  const char *what = NULL;
  if (pwritev_all(fd, &iov, 1, 0) != 0)
    what = "cannot write segment header";
  else if (w->sync_policy != CAIRN_SYNC_NONE && fdatasync(fd) != 0)
    what = "cannot sync segment header";
  /* The directory entry is synced under every policy: it happens once per
   * segment, and without it a crash can lose a whole synced segment. */
  else if (fsync_dir(w->dir) != 0)
    what = "cannot sync the directory entry of segment";
  if (what != NULL) {
    cairn__fmt(err, errlen, "%s: %s: %s", path, what, strerror(errno));
    close(fd);
    unlink(path);
    return -1;
  }
  return fd;
}

/* Ends the current segment: durable unless the policy is "none". */
static int segment_finish(cairn_wal_writer *w)
{
  int rc = CAIRN_OK;
  if (w->fd < 0)
    return rc;
  if (w->sync_policy != CAIRN_SYNC_NONE && fdatasync(w->fd) != 0)
    rc = CAIRN_EIO;
  if (close(w->fd) != 0 && errno != EINTR)
    rc = CAIRN_EIO;
  w->fd = -1;
  return rc;
}

/* Switches to segment seq+1. The new segment is created first so that a
 * failure leaves the writer on its old, still usable segment. */
static int segment_rotate(cairn_wal_writer *w)
{
  int fd = segment_create(w, w->seg_seq + 1, NULL, 0);
  if (fd < 0)
    return CAIRN_EIO;
  int rc = segment_finish(w);
  w->fd = fd;
  w->seg_seq++;
  w->seg_size = CAIRN_WAL_HEADER_SIZE;
  w->seg_blocks = 0;
  w->must_rotate = false;
  w->last_sync_ns = clock_ns(CLOCK_MONOTONIC);
  w->bytes_written += CAIRN_WAL_HEADER_SIZE;
  return rc;
}

int cairn__wal_open(cairn_wal_writer **out, const cairn_wal_options *opt,
                    char *err, size_t errlen)
{
  if (out == NULL || opt == NULL || opt->dir == NULL || opt->dir[0] == '\0') {
    cairn__fmt(err, errlen, "write-ahead log: no directory given");
    return CAIRN_EINVAL;
  }
  *out = NULL;
  if (opt->sync_policy < CAIRN_SYNC_NONE ||
      opt->sync_policy > CAIRN_SYNC_ALWAYS) {
    cairn__fmt(err, errlen, "write-ahead log: unknown sync policy %d",
            opt->sync_policy);
    return CAIRN_EINVAL;
  }
  if (opt->segment_bytes == 0) {
    cairn__fmt(err, errlen, "write-ahead log: segment size must be positive");
    return CAIRN_EINVAL;
  }

  cairn_wal_writer *w = calloc(1, sizeof *w);
  if (w == NULL || (w->dir = strdup(opt->dir)) == NULL ||
      (w->cctx = ZSTD_createCCtx()) == NULL) {
    if (w != NULL)
      free(w->dir);
    free(w);
    cairn__fmt(err, errlen, "write-ahead log: out of memory");
    return CAIRN_ENOMEM;
  }
  memcpy(w->run_id, opt->run_id, 16);
  w->rank = opt->rank;
  w->level = opt->compression_level;
  w->sync_policy = opt->sync_policy;
  w->sync_interval_ns = (uint64_t)opt->sync_interval_ms * 1000000u;
  w->segment_bytes = opt->segment_bytes;

  w->fd = segment_create(w, 0, err, errlen);
  if (w->fd < 0) {
    ZSTD_freeCCtx(w->cctx);
    free(w->dir);
    free(w);
    return CAIRN_EIO;
  }
  w->seg_seq = 0;
  w->seg_size = CAIRN_WAL_HEADER_SIZE;
  w->bytes_written = CAIRN_WAL_HEADER_SIZE;
  w->last_sync_ns = clock_ns(CLOCK_MONOTONIC);
  *out = w;
  return CAIRN_OK;
}

/*
 * Compresses into the writer's scratch buffer. Sets *stored, *stored_len,
 * *codec to the zstd frame if it is smaller than the payload, else to the
 * payload itself (also when scratch memory is short: storing raw is always
 * correct, so that is no reason to lose the block).
 */
static int compress_payload(cairn_wal_writer *w, const void *payload,
                            size_t len, const void **stored, size_t *stored_len,
                            uint16_t *codec)
{
  *stored = payload;
  *stored_len = len;
  *codec = CAIRN_WAL_CODEC_RAW;
  if (len == 0)
    return CAIRN_OK;
  size_t bound = ZSTD_compressBound(len);
  if (bound > w->cbuf_cap) {
    uint8_t *nb = realloc(w->cbuf, bound);
    if (nb == NULL)
      return CAIRN_OK;
    w->cbuf = nb;
    w->cbuf_cap = bound;
  }
  size_t c =
      ZSTD_compressCCtx(w->cctx, w->cbuf, w->cbuf_cap, payload, len, w->level);
  if (ZSTD_isError(c))
    return CAIRN_ECOMPRESS;
  if (c < len) {
    *stored = w->cbuf;
    *stored_len = c;
    *codec = CAIRN_WAL_CODEC_ZSTD;
  }
  return CAIRN_OK;
}

static int sync_after_append(cairn_wal_writer *w)
{
  if (w->sync_policy == CAIRN_SYNC_NONE)
    return CAIRN_OK;
  uint64_t now = clock_ns(CLOCK_MONOTONIC);
  if (w->sync_policy == CAIRN_SYNC_INTERVAL &&
      now - w->last_sync_ns < w->sync_interval_ns)
    return CAIRN_OK;
  if (fdatasync(w->fd) != 0)
    return CAIRN_EIO;
  w->last_sync_ns = now;
  return CAIRN_OK;
}

int cairn__wal_append(cairn_wal_writer *w, uint16_t block_type,
                      const void *payload, size_t len)
{
  if (w == NULL || block_type == CAIRN_WAL_BLOCK_INVALID ||
      (payload == NULL && len > 0) || len > CAIRN_WAL_MAX_BLOCK)
    return CAIRN_EINVAL;
  if (w->fd < 0)
    return CAIRN_EIO; /* a rotation failed earlier and left no segment */

  const void *stored;
  size_t stored_len;
  uint16_t codec;
  int rc = compress_payload(w, payload, len, &stored, &stored_len, &codec);
  if (rc != CAIRN_OK)
    return rc;

  uint64_t frame_len = CAIRN_WAL_FRAME_SIZE + (uint64_t)stored_len;
  /* A block larger than a whole segment still goes into an empty one:
   * rotating would only leave an empty segment behind. */
  if (w->must_rotate ||
      (w->seg_blocks > 0 && w->seg_size + frame_len > w->segment_bytes)) {
    rc = segment_rotate(w);
    if (rc != CAIRN_OK)
      return rc;
  }

  uint8_t f[CAIRN_WAL_FRAME_SIZE];
  cairn__wal_put32(f + CAIRN_WAL_FRM_MAGIC, CAIRN_WAL_FRAME_MAGIC);
  cairn__wal_put16(f + CAIRN_WAL_FRM_TYPE, block_type);
  cairn__wal_put16(f + CAIRN_WAL_FRM_CODEC, codec);
  cairn__wal_put32(f + CAIRN_WAL_FRM_STORED_LEN, (uint32_t)stored_len);
  cairn__wal_put32(f + CAIRN_WAL_FRM_RAW_LEN, (uint32_t)len);
  cairn__wal_put64(f + CAIRN_WAL_FRM_SEQ, w->next_block_seq);
  cairn__wal_put32(f + CAIRN_WAL_FRM_PAYLOAD_CRC,
                   cairn__crc32c(0, stored, stored_len));
  cairn__wal_put32(f + CAIRN_WAL_FRM_HEADER_CRC,
                   cairn__crc32c(0, f, CAIRN_WAL_FRM_HEADER_CRC));

  /* One pwritev for frame and payload: a crash leaves at most one partial
   * frame at the end, which readers recognise as a torn tail. */
  struct iovec iov[2] = {{f, sizeof f}, {(void *)stored, stored_len}};
  if (pwritev_all(w->fd, iov, stored_len > 0 ? 2 : 1, (off_t)w->seg_size) !=
      0) {
    if (ftruncate(w->fd, (off_t)w->seg_size) != 0)
      w->must_rotate = true; /* the torn bytes stay; start afresh next time */
    return CAIRN_EIO;
  }
  w->seg_size += frame_len;
  w->seg_blocks++;
  w->next_block_seq++;
  w->bytes_written += frame_len;
  /* The block is in the file; a failed sync is still reported, since the
   * caller asked for durability and did not get it. */
  return sync_after_append(w);
}

int cairn__wal_sync(cairn_wal_writer *w)
{
  if (w == NULL)
    return CAIRN_EINVAL;
  if (w->fd < 0 || fdatasync(w->fd) != 0)
    return CAIRN_EIO;
  w->last_sync_ns = clock_ns(CLOCK_MONOTONIC);
  return CAIRN_OK;
}

int cairn__wal_close(cairn_wal_writer *w)
{
  if (w == NULL)
    return CAIRN_OK;
  int rc = segment_finish(w);
  ZSTD_freeCCtx(w->cctx);
  free(w->cbuf);
  free(w->dir);
  free(w);
  return rc;
}

uint64_t cairn__wal_bytes_written(const cairn_wal_writer *w)
{
  return w != NULL ? w->bytes_written : 0;
}

/* ====================================================================== */
/* Reader                                                                  */
/* ====================================================================== */

struct cairn_wal_reader {
  char *path;
  uint8_t *data; /* the whole file */
  size_t size;
  size_t pos; /* offset of the next frame to look at */
  bool done;
  ZSTD_DCtx *dctx;
  uint8_t *out; /* decompressed payload of the last block */
  size_t out_cap;
  cairn_wal_damage dmg;
};

/* Reads the whole file: segments are bounded in size, and a private copy
 * cannot change under us (an mmap would SIGBUS if the file shrank). */
static int read_file(const char *path, uint8_t **data, size_t *size, char *err,
                     size_t errlen)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    cairn__fmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return CAIRN_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    cairn__fmt(err, errlen, "%s: not a regular file", path);
    close(fd);
    return CAIRN_EIO;
  }
  size_t cap = (size_t)st.st_size;
  uint8_t *buf = malloc(cap + 1); /* +1: never malloc(0) */
  if (buf == NULL) {
    cairn__fmt(err, errlen, "%s: out of memory reading %zu bytes", path, cap);
    close(fd);
    return CAIRN_ENOMEM;
  }
  size_t got = 0;
  while (got < cap) {
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      cairn__fmt(err, errlen, "%s: read error: %s", path, strerror(errno));
      free(buf);
      close(fd);
      return CAIRN_EIO;
    }
    if (n == 0)
      break; /* shrank since fstat: read what is there */
    got += (size_t)n;
  }
  close(fd);
  *data = buf;
  *size = got;
  return CAIRN_OK;
}

static int check_header(cairn_wal_reader *r, cairn_wal_segment_info *info,
                        char *err, size_t errlen)
{
  const uint8_t *h = r->data;
  size_t n = r->size;
  /* Magic first, even on a short file: "this is not ours" is the more useful
   * diagnosis for a foreign file than "too short". */
  size_t m = n < CAIRN_WAL_MAGIC_LEN ? n : CAIRN_WAL_MAGIC_LEN;
  if (memcmp(h, CAIRN_WAL_MAGIC, m) != 0) {
    cairn__fmt(err, errlen, "%s: not a cairn write-ahead log (bad magic)",
            r->path);
    return CAIRN_EFOREIGN;
  }
  if (n < CAIRN_WAL_HEADER_SIZE) {
    cairn__fmt(err, errlen,
            "%s: truncated: %zu bytes, shorter than the %u-byte segment header",
            r->path, n, CAIRN_WAL_HEADER_SIZE);
    return CAIRN_ETRUNCATED;
  }
  /* The version is checked before the CRC: a newer version may lay its
   * header out differently, and "too new" is then the right answer. */
  uint32_t version = cairn__wal_get32(h + CAIRN_WAL_HDR_VERSION);
  if (version > CAIRN_WAL_VERSION) {
    cairn__fmt(err, errlen,
            "%s: write-ahead log format version %" PRIu32
            " is newer than the supported version %u",
            r->path, version, CAIRN_WAL_VERSION);
    return CAIRN_EVERSION;
  }
  /* Version 1 fixes the size; a damaged size field must not be mistaken
   * for a truncated file, nor move where the CRC is looked for. */
  uint32_t hsize = cairn__wal_get32(h + CAIRN_WAL_HDR_SIZE);
  if (hsize != CAIRN_WAL_HEADER_SIZE) {
    cairn__fmt(err, errlen,
            "%s: corrupt segment header (header size %" PRIu32 ", expected %u)",
            r->path, hsize, CAIRN_WAL_HEADER_SIZE);
    return CAIRN_ECORRUPT;
  }
  uint32_t stored = cairn__wal_get32(h + CAIRN_WAL_HDR_CRC);
  uint32_t computed = cairn__crc32c(0, h, CAIRN_WAL_HDR_CRC);
  if (stored != computed) {
    cairn__fmt(err, errlen,
            "%s: segment header checksum mismatch (stored 0x%08" PRIx32
            ", computed 0x%08" PRIx32 ")",
            r->path, stored, computed);
    return CAIRN_ECORRUPT;
  }
  if (version == 0) {
    cairn__fmt(err, errlen, "%s: corrupt segment header (format version 0)",
            r->path);
    return CAIRN_ECORRUPT;
  }
  if (info != NULL) {
    info->version = version;
    memcpy(info->run_id, h + CAIRN_WAL_HDR_RUN_ID, 16);
    info->rank = cairn__wal_get32(h + CAIRN_WAL_HDR_RANK);
    info->segment = cairn__wal_get32(h + CAIRN_WAL_HDR_SEGMENT);
    info->created_ns = cairn__wal_get64(h + CAIRN_WAL_HDR_CREATED_NS);
  }
  r->pos = hsize;
  return CAIRN_OK;
}

int cairn__wal_reader_open(cairn_wal_reader **out, const char *path,
                           cairn_wal_segment_info *info, char *err,
                           size_t errlen)
{
  if (out == NULL || path == NULL) {
    cairn__fmt(err, errlen, "write-ahead log reader: no path given");
    return CAIRN_EINVAL;
  }
  *out = NULL;
  cairn_wal_reader *r = calloc(1, sizeof *r);
  if (r == NULL || (r->path = strdup(path)) == NULL ||
      (r->dctx = ZSTD_createDCtx()) == NULL) {
    if (r != NULL)
      free(r->path);
    free(r);
    cairn__fmt(err, errlen, "%s: out of memory", path);
    return CAIRN_ENOMEM;
  }
  int rc = read_file(path, &r->data, &r->size, err, errlen);
  if (rc == CAIRN_OK)
    rc = check_header(r, info, err, errlen);
  if (rc != CAIRN_OK) {
    cairn__wal_reader_close(r);
    return rc;
  }
  *out = r;
  return CAIRN_OK;
}

/* What sits at an offset, judged from the frame header alone. */
typedef enum {
  FRAME_OK,       /* header intact, payload within the file            */
  FRAME_SHORT,    /* fewer bytes left than a frame header               */
  FRAME_PAST_EOF, /* header intact, payload runs past the end of file   */
  FRAME_BAD       /* not a frame header (magic, checksum or limits)     */
} frame_state;

typedef struct {
  uint16_t type, codec;
  uint32_t stored_len, raw_len, payload_crc;
  uint64_t seq;
} frame_hdr;

/* Never reads outside [0, r->size). `why` (may be NULL) receives a short
 * description for FRAME_BAD. */
static frame_state frame_check(const cairn_wal_reader *r, size_t pos,
                               frame_hdr *fh, char *why, size_t whylen)
{
  if (r->size - pos < CAIRN_WAL_FRAME_SIZE)
    return FRAME_SHORT;
  const uint8_t *f = r->data + pos;
  uint32_t magic = cairn__wal_get32(f + CAIRN_WAL_FRM_MAGIC);
  if (magic != CAIRN_WAL_FRAME_MAGIC) {
    cairn__fmt(why, whylen, "bad frame magic 0x%08" PRIx32, magic);
    return FRAME_BAD;
  }
  uint32_t stored = cairn__wal_get32(f + CAIRN_WAL_FRM_HEADER_CRC);
  uint32_t computed = cairn__crc32c(0, f, CAIRN_WAL_FRM_HEADER_CRC);
  if (stored != computed) {
    cairn__fmt(why, whylen, "frame header checksum mismatch");
    return FRAME_BAD;
  }
  fh->type = cairn__wal_get16(f + CAIRN_WAL_FRM_TYPE);
  fh->codec = cairn__wal_get16(f + CAIRN_WAL_FRM_CODEC);
  fh->stored_len = cairn__wal_get32(f + CAIRN_WAL_FRM_STORED_LEN);
  fh->raw_len = cairn__wal_get32(f + CAIRN_WAL_FRM_RAW_LEN);
  fh->seq = cairn__wal_get64(f + CAIRN_WAL_FRM_SEQ);
  fh->payload_crc = cairn__wal_get32(f + CAIRN_WAL_FRM_PAYLOAD_CRC);
  /* A checksummed header with absurd lengths comes from a broken writer,
   * not from bit rot; refuse it rather than allocate for it. */
  if (fh->stored_len > CAIRN_WAL_MAX_BLOCK ||
      fh->raw_len > CAIRN_WAL_MAX_BLOCK) {
    cairn__fmt(why, whylen,
            "block seq %" PRIu64 " length exceeds the %" PRIu32 "-byte limit",
            fh->seq, CAIRN_WAL_MAX_BLOCK);
    return FRAME_BAD;
  }
  if (fh->stored_len > r->size - pos - CAIRN_WAL_FRAME_SIZE)
    return FRAME_PAST_EOF;
  return FRAME_OK;
}

/* Offset of the next complete, header-valid frame after `from`, or
 * r->size if there is none. */
static size_t resync(const cairn_wal_reader *r, size_t from)
{
  const uint8_t first = (uint8_t)(CAIRN_WAL_FRAME_MAGIC & 0xFF);
  size_t p = from;
  while (p < r->size && r->size - p >= CAIRN_WAL_FRAME_SIZE) {
    const uint8_t *hit = memchr(r->data + p, first, r->size - p);
    if (hit == NULL)
      break;
    p = (size_t)(hit - r->data);
    frame_hdr fh;
    if (frame_check(r, p, &fh, NULL, 0) == FRAME_OK)
      return p;
    p++;
  }
  return r->size;
}

static bool all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

/* Adds one damage report to err; several in one call are joined by "; ". */
__attribute__((format(printf, 3, 4))) static void
report(char *err, size_t errlen, const char *fmt, ...)
{
  if (err == NULL || errlen == 0)
    return;
  size_t used = strnlen(err, errlen);
  if (used > 0 && used + 2 < errlen) {
    memcpy(err + used, "; ", 3);
    used += 2;
  }
  if (used + 1 >= errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + used, errlen - used, fmt, ap);
  va_end(ap);
}

static void torn_tail(cairn_wal_reader *r, size_t pos, char *err, size_t errlen)
{
  size_t k = r->size - pos;
  report(err, errlen,
         "%s: offset %zu: torn tail, %zu bytes of an incomplete block ignored",
         r->path, pos, k);
  r->dmg.torn_tail = 1;
  r->dmg.bytes_skipped += k;
  r->pos = r->size;
  r->done = true;
}

/*
 * Checks and, if needed, decompresses the payload of an intact frame.
 * Returns 1 with the block, 0 if the payload is damaged (`why` says how),
 * or CAIRN_ENOMEM.
 */
static int decode_payload(cairn_wal_reader *r, size_t pos, const frame_hdr *fh,
                          const void **payload, char *why, size_t whylen)
{
  const uint8_t *src = r->data + pos + CAIRN_WAL_FRAME_SIZE;
  if (cairn__crc32c(0, src, fh->stored_len) != fh->payload_crc) {
    cairn__fmt(why, whylen, "payload checksum mismatch in block seq %" PRIu64,
            fh->seq);
    return 0;
  }
  if (fh->codec == CAIRN_WAL_CODEC_RAW) {
    if (fh->stored_len != fh->raw_len) {
      cairn__fmt(why, whylen,
              "raw block seq %" PRIu64 " has stored length %" PRIu32
              " but raw length %" PRIu32,
              fh->seq, fh->stored_len, fh->raw_len);
      return 0;
    }
    *payload = src;
    return 1;
  }
  if (fh->codec != CAIRN_WAL_CODEC_ZSTD) {
    cairn__fmt(why, whylen, "unknown codec %u in block seq %" PRIu64,
            (unsigned)fh->codec, fh->seq);
    return 0;
  }
  unsigned long long content = ZSTD_getFrameContentSize(src, fh->stored_len);
  size_t frame = ZSTD_findFrameCompressedSize(src, fh->stored_len);
  if (content != fh->raw_len || ZSTD_isError(frame) ||
      frame != fh->stored_len) {
    cairn__fmt(why, whylen,
            "block seq %" PRIu64 " is not one zstd frame of %" PRIu32 " bytes",
            fh->seq, fh->raw_len);
    return 0;
  }
  size_t need = fh->raw_len > 0 ? fh->raw_len : 1;
  if (need > r->out_cap) {
    uint8_t *nb = realloc(r->out, need);
    if (nb == NULL)
      return CAIRN_ENOMEM;
    r->out = nb;
    r->out_cap = need;
  }
  size_t d =
      ZSTD_decompressDCtx(r->dctx, r->out, fh->raw_len, src, fh->stored_len);
  if (ZSTD_isError(d) || d != fh->raw_len) {
    cairn__fmt(why, whylen, "decompression failed in block seq %" PRIu64 ": %s",
            fh->seq, ZSTD_isError(d) ? ZSTD_getErrorName(d) : "short output");
    return 0;
  }
  *payload = r->out;
  return 1;
}

int cairn__wal_reader_next(cairn_wal_reader *r, uint16_t *type,
                           const void **payload, size_t *len, char *err,
                           size_t errlen)
{
  if (err != NULL && errlen > 0)
    err[0] = '\0'; /* non-empty on return <=> this call met damage */
  if (r == NULL || type == NULL || payload == NULL || len == NULL)
    return CAIRN_EINVAL;

  while (!r->done) {
    size_t pos = r->pos;
    if (pos >= r->size) {
      r->done = true;
      break;
    }
    char why[160] = "";
    frame_hdr fh;
    switch (frame_check(r, pos, &fh, why, sizeof why)) {
    case FRAME_OK: {
      int rc = decode_payload(r, pos, &fh, payload, why, sizeof why);
      if (rc < 0)
        return rc;
      size_t frame_len = CAIRN_WAL_FRAME_SIZE + (size_t)fh.stored_len;
      r->pos = pos + frame_len;
      if (rc == 1) {
        *type = fh.type;
        *len = fh.raw_len;
        r->dmg.blocks_ok++;
        return 1;
      }
      /* The header is intact, so the frame's extent is known: skip exactly
       * it rather than scan its payload for something frame-like. */
      report(err, errlen, "%s: offset %zu: %s", r->path, pos, why);
      r->dmg.corrupt_regions++;
      r->dmg.bytes_skipped += frame_len;
      break;
    }
    case FRAME_SHORT:
      torn_tail(r, pos, err, errlen);
      break;
    case FRAME_PAST_EOF: {
      size_t next = resync(r, pos + 1);
      if (next == r->size) {
        torn_tail(r, pos, err, errlen);
        break;
      }
      report(err, errlen,
             "%s: offset %zu: block seq %" PRIu64
             " runs past the end of the file; resuming at offset %zu",
             r->path, pos, fh.seq, next);
      r->dmg.corrupt_regions++;
      r->dmg.bytes_skipped += next - pos;
      r->pos = next;
      break;
    }
    case FRAME_BAD: {
      size_t next = resync(r, pos + 1);
      /* A crash can leave the file longer than what reached the disk, the
       * gap reading back as zeros: that is a torn tail, not corruption. */
      if (next == r->size && all_zero(r->data + pos, r->size - pos)) {
        torn_tail(r, pos, err, errlen);
        break;
      }
      if (next == r->size)
        report(err, errlen, "%s: offset %zu: %s; no valid block follows",
               r->path, pos, why);
      else
        report(err, errlen, "%s: offset %zu: %s; resuming at offset %zu",
               r->path, pos, why, next);
      r->dmg.corrupt_regions++;
      r->dmg.bytes_skipped += next - pos;
      r->pos = next;
      break;
    }
    }
  }
  *payload = NULL;
  *len = 0;
  return 0;
}

void cairn__wal_reader_damage(const cairn_wal_reader *r, cairn_wal_damage *d)
{
  if (d == NULL)
    return;
  if (r == NULL) {
    memset(d, 0, sizeof *d);
    return;
  }
  *d = r->dmg;
}

void cairn__wal_reader_close(cairn_wal_reader *r)
{
  if (r == NULL)
    return;
  ZSTD_freeDCtx(r->dctx);
  free(r->out);
  free(r->data);
  free(r->path);
  free(r);
}
