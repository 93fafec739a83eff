/*
 * test_wal.c — tests of the write-ahead log and CRC32C: round trips across
 * segment rotation, torn tails, bit flips, foreign files, fuzzed damage,
 * sync policies and failed writes.
 */
#include <criterion/criterion.h>

#include "cairn.h"
#include "crc32c.h"
#include "wal.h"
#include "wal_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

typedef struct {
  uint16_t type;
  size_t len;
  uint8_t *data;
} block;

typedef struct {
  block *v;
  size_t n, cap;
} block_list;

static void list_push(block_list *l, uint16_t type, const void *data,
                      size_t len)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    cr_assert_not_null(l->v);
  }
  block *b = &l->v[l->n++];
  b->type = type;
  b->len = len;
  b->data = malloc(len + 1);
  cr_assert_not_null(b->data);
  if (len > 0)
    memcpy(b->data, data, len);
}

static void list_free(block_list *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].data);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static bool block_eq(const block *b, uint16_t type, const void *data,
                     size_t len)
{
  return b->type == type && b->len == len &&
         (len == 0 || memcmp(b->data, data, len) == 0);
}

/*
 * Block number i of a deterministic stream. Even blocks are compressible
 * (4-letter alphabet with runs), odd ones random bytes; lengths lie in
 * [minlen, maxlen], mostly small with an occasional large one.
 */
static size_t gen_block(uint64_t stream, uint64_t i, uint8_t *buf,
                        size_t minlen, size_t maxlen, uint16_t *type)
{
  static const uint16_t types[] = {CAIRN_WAL_BLOCK_DATA, 2, 9, 0xFFFF};
  uint64_t s = stream * 0x2545F4914F6CDD1Du ^ (i + 1) * 0x9E3779B97F4A7C15u;
  uint64_t r = splitmix64(&s);
  size_t span = maxlen - minlen;
  size_t small = span < 4096 ? span : 4096;
  size_t pick = r % 8 == 0 ? span : small;
  size_t len = minlen + (size_t)(splitmix64(&s) % (pick + 1));
  *type = types[r % 4];
  if (i % 2 == 0) {
    for (size_t j = 0; j < len;) {
      uint64_t x = splitmix64(&s);
      size_t run = 1 + (size_t)(x % 16);
      for (size_t k = 0; k < run && j < len; k++)
        buf[j++] = (uint8_t)('a' + ((x >> 8) % 4));
    }
  } else {
    for (size_t j = 0; j < len; j += 8) {
      uint64_t x = splitmix64(&s);
      memcpy(buf + j, &x, len - j < 8 ? len - j : 8);
    }
  }
  return len;
}

static void make_tmpdir(char *dir, size_t n)
{
  snprintf(dir, n, "/tmp/cairn-test-wal-XXXXXX");
  cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(const char *dir)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static cairn_wal_options test_options(const char *dir)
{
  cairn_wal_options o;
  memset(&o, 0, sizeof o);
  o.dir = dir;
  for (int i = 0; i < 16; i++)
    o.run_id[i] = (uint8_t)(0xA0 + i);
  o.rank = 3;
  o.compression_level = 3;
  o.sync_policy = 0;
  o.sync_interval_ms = 10;
  o.segment_bytes = (uint64_t)1 << 30;
  return o;
}

static void seg_path(char *out, size_t n, const char *dir, uint32_t rank,
                     uint32_t seq)
{
  snprintf(out, n, "%s/" CAIRN_WAL_NAME_FMT, dir, rank, seq);
}

static uint8_t *slurp(const char *path, size_t *size)
{
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)n + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static void spit(const char *path, const void *data, size_t n)
{
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
  cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
  cr_assert_eq(write(fd, data, n), (ssize_t)n);
  close(fd);
}

/*
 * Reads every block of one segment into *out. Returns the reader_open code;
 * `err` keeps the damage messages of all calls, joined by " | ".
 */
static int read_segment(const char *path, block_list *out,
                        cairn_wal_segment_info *info, cairn_wal_damage *dmg,
                        char *err, size_t errlen)
{
  cairn_wal_reader *r = NULL;
  err[0] = '\0';
  int rc = cairn__wal_reader_open(&r, path, info, err, errlen);
  if (rc != CAIRN_OK) {
    cr_assert_null(r);
    return rc;
  }
  char msg[1024];
  for (int guard = 0;; guard++) {
    cr_assert_lt(guard, 1000000, "reader does not terminate");
    uint16_t type;
    const void *p;
    size_t len;
    int n = cairn__wal_reader_next(r, &type, &p, &len, msg, sizeof msg);
    cr_assert_geq(n, 0, "hard error %d on %s", n, path);
    if (msg[0] != '\0' && strlen(err) + strlen(msg) + 4 < errlen) {
      if (err[0] != '\0')
        strcat(err, " | ");
      strcat(err, msg);
    }
    if (n == 0)
      break;
    list_push(out, type, p, len);
  }
  cairn__wal_reader_damage(r, dmg);
  cairn__wal_reader_close(r);
  return CAIRN_OK;
}

/* A single-segment file of n blocks from `stream`; records the offset at
 * which each frame starts (starts[n] is the file size). */
static void write_segment(const char *dir, uint64_t stream, size_t n,
                          size_t minlen, size_t maxlen, block_list *orig,
                          uint64_t *starts)
{
  cairn_wal_options o = test_options(dir);
  cairn_wal_writer *w = NULL;
  char err[512];
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);
  uint8_t *buf = malloc(maxlen + 1);
  for (size_t i = 0; i < n; i++) {
    uint16_t type;
    size_t len = gen_block(stream, i, buf, minlen, maxlen, &type);
    starts[i] = cairn__wal_bytes_written(w);
    cr_assert_eq(cairn__wal_append(w, type, buf, len), CAIRN_OK);
    list_push(orig, type, buf, len);
  }
  starts[n] = cairn__wal_bytes_written(w);
  free(buf);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);
}

/* Asserts that `got` is `orig` without the block at index `skip` (or with
 * nothing skipped when skip >= orig->n). */
static void assert_all_but(const block_list *got, const block_list *orig,
                           size_t skip)
{
  size_t expect = orig->n - (skip < orig->n ? 1 : 0);
  cr_assert_eq(got->n, expect, "got %zu blocks, expected %zu", got->n, expect);
  for (size_t i = 0, j = 0; i < orig->n; i++) {
    if (i == skip)
      continue;
    const block *b = &orig->v[i];
    cr_assert(block_eq(&got->v[j], b->type, b->data, b->len),
              "block %zu differs", i);
    j++;
  }
}

/* ---------------------------------------------------------------------- */
/* CRC32C                                                                  */
/* ---------------------------------------------------------------------- */

Test(crc32c, matches_published_test_vectors)
{
  cr_assert_eq(cairn__crc32c(0, "123456789", 9), 0xE3069283u);
  cr_assert_eq(cairn__crc32c_sw(0, "123456789", 9), 0xE3069283u);
  cr_assert_eq(cairn__crc32c(0, NULL, 0), 0u);
  cr_assert_eq(cairn__crc32c(0, "a", 1), 0xC1D04330u);

  /* RFC 3720 (iSCSI), appendix B.4 */
  uint8_t buf[32];
  memset(buf, 0, sizeof buf);
  cr_assert_eq(cairn__crc32c(0, buf, 32), 0x8A9136AAu);
  memset(buf, 0xFF, sizeof buf);
  cr_assert_eq(cairn__crc32c(0, buf, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++)
    buf[i] = (uint8_t)i;
  cr_assert_eq(cairn__crc32c(0, buf, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++)
    buf[i] = (uint8_t)(31 - i);
  cr_assert_eq(cairn__crc32c(0, buf, 32), 0x113FDB5Cu);
}

Test(crc32c, hardware_and_software_agree_and_chain_at_every_alignment)
{
  uint8_t buf[1100];
  uint64_t s = 42;
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)splitmix64(&s);
  for (size_t off = 0; off < 16; off++) {
    for (size_t len = 0; len < 1024; len += 1 + len / 8) {
      uint32_t sw = cairn__crc32c_sw(0, buf + off, len);
      cr_assert_eq(cairn__crc32c(0, buf + off, len), sw, "off %zu len %zu", off,
                   len);
      size_t cut = len / 3;
      uint32_t chained = cairn__crc32c(cairn__crc32c(0, buf + off, cut),
                                       buf + off + cut, len - cut);
      cr_assert_eq(chained, sw, "off %zu len %zu", off, len);
    }
  }
}

/* ---------------------------------------------------------------------- */
/* Round trips and rotation                                                */
/* ---------------------------------------------------------------------- */

Test(wal, round_trips_5000_blocks_across_segment_rotation)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  o.segment_bytes = 1 << 20;
  cairn_wal_writer *w = NULL;
  char err[2048];
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);

  const size_t nblocks = 5000;
  uint8_t *buf = malloc(65536 + 1);
  for (size_t i = 0; i < nblocks; i++) {
    uint16_t type;
    size_t len = gen_block(1, i, buf, 0, 65536, &type);
    if (i % 97 == 0)
      len = 0;
    cr_assert_eq(cairn__wal_append(w, type, buf, len), CAIRN_OK, "block %zu",
                 i);
  }
  uint64_t written = cairn__wal_bytes_written(w);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);

  size_t got = 0, segments = 0;
  uint64_t file_bytes = 0, next_seq = 0;
  for (uint32_t seq = 0;; seq++) {
    char path[256];
    seg_path(path, sizeof path, dir, o.rank, seq);
    struct stat st;
    if (stat(path, &st) != 0)
      break;
    segments++;
    file_bytes += (uint64_t)st.st_size;
    cr_assert_leq((uint64_t)st.st_size, o.segment_bytes, "%s too big", path);

    block_list blocks = {0};
    cairn_wal_segment_info info;
    cairn_wal_damage dmg;
    cr_assert_eq(read_segment(path, &blocks, &info, &dmg, err, sizeof err),
                 CAIRN_OK, "%s", err);
    cr_assert_str_empty(err);
    cr_assert_eq(info.version, CAIRN_WAL_VERSION);
    cr_assert_eq(info.rank, o.rank);
    cr_assert_eq(info.segment, seq);
    cr_assert_arr_eq(info.run_id, o.run_id, 16);
    cr_assert_gt(info.created_ns, (uint64_t)1500000000 * 1000000000u);
    cr_assert_eq(dmg.blocks_ok, blocks.n);
    cr_assert_eq(dmg.corrupt_regions, 0);
    cr_assert_eq(dmg.bytes_skipped, 0);
    cr_assert_eq(dmg.torn_tail, 0);
    cr_assert_gt(blocks.n, 0, "segment %u is empty", seq);

    for (size_t k = 0; k < blocks.n; k++, got++) {
      uint16_t type;
      size_t len = gen_block(1, got, buf, 0, 65536, &type);
      if (got % 97 == 0)
        len = 0;
      cr_assert(block_eq(&blocks.v[k], type, buf, len),
                "block %zu (segment %u #%zu) differs: type %u len %zu, "
                "expected type %u len %zu",
                got, seq, k, blocks.v[k].type, blocks.v[k].len, type, len);
    }

    /* Walk the raw frames: block seqs continue across segments, and the
     * codec is zstd exactly when it saved space. */
    size_t size;
    uint8_t *data = slurp(path, &size);
    size_t pos = CAIRN_WAL_HEADER_SIZE;
    for (size_t k = 0; k < blocks.n; k++) {
      const uint8_t *f = data + pos;
      cr_assert_eq(cairn__wal_get32(f + CAIRN_WAL_FRM_MAGIC),
                   CAIRN_WAL_FRAME_MAGIC);
      cr_assert_eq(cairn__wal_get64(f + CAIRN_WAL_FRM_SEQ), next_seq++);
      uint16_t codec = cairn__wal_get16(f + CAIRN_WAL_FRM_CODEC);
      uint32_t stored = cairn__wal_get32(f + CAIRN_WAL_FRM_STORED_LEN);
      uint32_t raw = cairn__wal_get32(f + CAIRN_WAL_FRM_RAW_LEN);
      cr_assert_eq(raw, blocks.v[k].len);
      if (codec == CAIRN_WAL_CODEC_RAW)
        cr_assert_eq(stored, raw);
      else
        cr_assert(codec == CAIRN_WAL_CODEC_ZSTD && stored < raw);
      size_t global = got - blocks.n + k;
      if (global % 2 == 1) /* random bytes never compress */
        cr_assert_eq(codec, CAIRN_WAL_CODEC_RAW, "block %zu", global);
      else if (raw >= 256)
        cr_assert_eq(codec, CAIRN_WAL_CODEC_ZSTD, "block %zu", global);
      pos += CAIRN_WAL_FRAME_SIZE + stored;
    }
    cr_assert_eq(pos, size);
    free(data);
    list_free(&blocks);
  }
  cr_assert_eq(got, nblocks);
  cr_assert_geq(segments, 3, "only %zu segments", segments);
  cr_assert_eq(file_bytes, written);
  free(buf);
  remove_tmpdir(dir);
}

Test(wal, block_larger_than_a_segment_gets_a_segment_of_its_own)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  o.segment_bytes = 256;
  cairn_wal_writer *w = NULL;
  char err[512];
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);
  uint8_t buf[1000];
  for (int b = 0; b < 3; b++) {
    uint64_t s = (uint64_t)b;
    for (size_t i = 0; i < sizeof buf; i++)
      buf[i] = (uint8_t)splitmix64(&s);
    cr_assert_eq(cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, buf, sizeof buf),
                 CAIRN_OK);
  }
  /* random bytes are stored raw: header + 3 x (frame header + 1000) + 2
   * more segment headers */
  cr_assert_eq(cairn__wal_bytes_written(w),
               3 * (CAIRN_WAL_HEADER_SIZE + CAIRN_WAL_FRAME_SIZE + 1000));
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);
  for (uint32_t seq = 0; seq < 4; seq++) {
    char path[256];
    seg_path(path, sizeof path, dir, o.rank, seq);
    struct stat st;
    if (seq == 3) {
      cr_assert_neq(stat(path, &st), 0, "no empty trailing segment expected");
      break;
    }
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    cr_assert_eq(st.st_size,
                 CAIRN_WAL_HEADER_SIZE + CAIRN_WAL_FRAME_SIZE + 1000);
  }
  remove_tmpdir(dir);
}

Test(wal, compressible_block_shrinks_on_disk)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  cairn_wal_writer *w = NULL;
  char err[512];
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);
  static uint8_t buf[65536];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)("loss=0.125 step="[i % 16]);
  cr_assert_eq(cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, buf, sizeof buf),
               CAIRN_OK);
  uint64_t n = cairn__wal_bytes_written(w) - CAIRN_WAL_HEADER_SIZE;
  cr_assert_lt(n, 1024, "64 KiB of a repeated pattern took %" PRIu64 " bytes",
               n);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);

  char path[256];
  seg_path(path, sizeof path, dir, o.rank, 0);
  block_list got = {0};
  cairn_wal_damage dmg;
  cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err), CAIRN_OK);
  cr_assert_eq(got.n, 1);
  cr_assert(block_eq(&got.v[0], CAIRN_WAL_BLOCK_DATA, buf, sizeof buf));
  list_free(&got);
  remove_tmpdir(dir);
}

/* ---------------------------------------------------------------------- */
/* Torn tails                                                              */
/* ---------------------------------------------------------------------- */

Test(wal, truncated_tail_returns_every_complete_block)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  enum { N = 20 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 7, N, 100, 3000, &orig, starts);
  char path[256], err[2048];
  seg_path(path, sizeof path, dir, 3, 0);
  size_t size;
  uint8_t *data = slurp(path, &size);
  cr_assert_eq(size, starts[N]);

  const size_t victims[] = {0, 9, N - 1};
  for (size_t v = 0; v < sizeof victims / sizeof *victims; v++) {
    size_t k = victims[v];
    uint64_t s = starts[k], e = starts[k + 1];
    const uint64_t cuts[] = {s + 1,  s + 16,      s + 31, s + 32,
                             s + 33, (s + e) / 2, e - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
      spit(path, data, cuts[c]);
      block_list got = {0};
      cairn_wal_damage dmg;
      cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err),
                   CAIRN_OK, "%s", err);
      cr_assert_eq(got.n, k, "cut at %" PRIu64 ": %zu blocks, expected %zu",
                   cuts[c], got.n, k);
      for (size_t i = 0; i < k; i++)
        cr_assert(
            block_eq(&got.v[i], orig.v[i].type, orig.v[i].data, orig.v[i].len));
      cr_assert_eq(dmg.torn_tail, 1);
      cr_assert_eq(dmg.corrupt_regions, 0);
      cr_assert_eq(dmg.blocks_ok, k);
      cr_assert_eq(dmg.bytes_skipped, cuts[c] - s);
      char expect[512];
      snprintf(expect, sizeof expect,
               "%s: offset %" PRIu64 ": torn tail, %" PRIu64
               " bytes of an incomplete block ignored",
               path, s, cuts[c] - s);
      cr_assert_str_eq(err, expect);
      list_free(&got);
    }
  }
  free(data);
  list_free(&orig);
  remove_tmpdir(dir);
}

Test(wal, cut_at_a_block_boundary_is_a_clean_end)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  enum { N = 12 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 8, N, 0, 2000, &orig, starts);
  char path[256], err[2048];
  seg_path(path, sizeof path, dir, 3, 0);
  size_t size;
  uint8_t *data = slurp(path, &size);
  for (size_t k = 0; k <= N; k++) {
    spit(path, data, starts[k]);
    block_list got = {0};
    cairn_wal_damage dmg;
    cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err),
                 CAIRN_OK);
    cr_assert_eq(got.n, k);
    cr_assert_eq(dmg.torn_tail, 0);
    cr_assert_eq(dmg.bytes_skipped, 0);
    cr_assert_str_empty(err);
    list_free(&got);
  }
  free(data);
  list_free(&orig);
  remove_tmpdir(dir);
}

Test(wal, zero_filled_tail_is_a_torn_tail_not_corruption)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  enum { N = 5 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 9, N, 10, 500, &orig, starts);
  char path[256], err[2048];
  seg_path(path, sizeof path, dir, 3, 0);
  /* What a crash after the size update but before the data can leave. */
  cr_assert_eq(truncate(path, (off_t)starts[N] + 4096), 0);
  block_list got = {0};
  cairn_wal_damage dmg;
  cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err), CAIRN_OK);
  assert_all_but(&got, &orig, SIZE_MAX);
  cr_assert_eq(dmg.torn_tail, 1);
  cr_assert_eq(dmg.corrupt_regions, 0);
  cr_assert_eq(dmg.bytes_skipped, 4096);
  cr_assert(strstr(err, "torn tail, 4096 bytes") != NULL, "%s", err);
  list_free(&got);
  list_free(&orig);
  remove_tmpdir(dir);
}

/* ---------------------------------------------------------------------- */
/* Bit flips                                                               */
/* ---------------------------------------------------------------------- */

Test(wal, flipped_payload_bit_loses_only_that_block)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  enum { N = 21 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 10, N, 500, 3000, &orig, starts);
  char path[256], err[2048];
  seg_path(path, sizeof path, dir, 3, 0);
  size_t size;
  uint8_t *data = slurp(path, &size);

  /* block 10 is compressible (zstd), block 11 random (raw) */
  for (size_t k = 10; k <= 11; k++) {
    uint16_t codec = cairn__wal_get16(data + starts[k] + CAIRN_WAL_FRM_CODEC);
    cr_assert_eq(codec, k == 10 ? CAIRN_WAL_CODEC_ZSTD : CAIRN_WAL_CODEC_RAW);
    uint64_t flip_at =
        starts[k] + CAIRN_WAL_FRAME_SIZE + (starts[k + 1] - starts[k] - 32) / 2;
    data[flip_at] ^= 0x10;
    spit(path, data, size);
    data[flip_at] ^= 0x10;

    block_list got = {0};
    cairn_wal_damage dmg;
    cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err),
                 CAIRN_OK);
    assert_all_but(&got, &orig, k);
    cr_assert_eq(dmg.corrupt_regions, 1);
    cr_assert_eq(dmg.torn_tail, 0);
    cr_assert_eq(dmg.blocks_ok, N - 1);
    cr_assert_eq(dmg.bytes_skipped, starts[k + 1] - starts[k]);
    char expect[512];
    snprintf(expect, sizeof expect,
             "%s: offset %" PRIu64
             ": payload checksum mismatch in block seq %zu",
             path, starts[k], k);
    cr_assert_str_eq(err, expect);
    list_free(&got);
  }
  free(data);
  list_free(&orig);
  remove_tmpdir(dir);
}

Test(wal, flipped_frame_header_bit_loses_only_that_block)
{
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  enum { N = 21 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 11, N, 500, 3000, &orig, starts);
  char path[256], err[2048];
  seg_path(path, sizeof path, dir, 3, 0);
  size_t size;
  uint8_t *data = slurp(path, &size);

  const struct {
    unsigned byte;
    const char *what;
  } cases[] = {
      {CAIRN_WAL_FRM_MAGIC, "bad frame magic"},
      {CAIRN_WAL_FRM_TYPE, "frame header checksum mismatch"},
      {CAIRN_WAL_FRM_CODEC, "frame header checksum mismatch"},
      {CAIRN_WAL_FRM_STORED_LEN + 1, "frame header checksum mismatch"},
      {CAIRN_WAL_FRM_RAW_LEN + 3, "frame header checksum mismatch"},
      {CAIRN_WAL_FRM_SEQ, "frame header checksum mismatch"},
      {CAIRN_WAL_FRM_PAYLOAD_CRC + 2, "frame header checksum mismatch"},
      {CAIRN_WAL_FRM_HEADER_CRC, "frame header checksum mismatch"},
  };
  const size_t k = 10;
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    uint64_t flip_at = starts[k] + cases[c].byte;
    data[flip_at] ^= 0x04;
    spit(path, data, size);
    data[flip_at] ^= 0x04;

    block_list got = {0};
    cairn_wal_damage dmg;
    cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err),
                 CAIRN_OK);
    assert_all_but(&got, &orig, k);
    cr_assert_eq(dmg.corrupt_regions, 1, "byte %u", cases[c].byte);
    cr_assert_eq(dmg.torn_tail, 0);
    cr_assert_eq(dmg.bytes_skipped, starts[k + 1] - starts[k]);
    char expect[512];
    snprintf(expect, sizeof expect, "%s: offset %" PRIu64 ": %s", path,
             starts[k], cases[c].what);
    cr_assert(strncmp(err, expect, strlen(expect)) == 0, "byte %u: %s",
              cases[c].byte, err);
    char resume[64];
    snprintf(resume, sizeof resume, "resuming at offset %" PRIu64,
             starts[k + 1]);
    cr_assert(strstr(err, resume) != NULL, "%s", err);
    list_free(&got);
  }
  free(data);
  list_free(&orig);
  remove_tmpdir(dir);
}

/* ---------------------------------------------------------------------- */
/* Rejected files                                                          */
/* ---------------------------------------------------------------------- */

static int open_expect_fail(const char *path, char *err, size_t errlen)
{
  cairn_wal_reader *r = (cairn_wal_reader *)&r; /* must be reset to NULL */
  cairn_wal_segment_info info;
  int rc = cairn__wal_reader_open(&r, path, &info, err, errlen);
  cr_assert_null(r);
  cr_assert(strstr(err, path) != NULL, "message '%s' does not name %s", err,
            path);
  return rc;
}

Test(wal, reader_rejects_foreign_files_with_bad_magic)
{
  char dir[64], path[256], err[1024];
  make_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/random.bin", dir);
  uint8_t buf[4096];
  uint64_t s = 5;
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)splitmix64(&s);
  buf[0] = 'X'; /* never a "C" by chance */
  spit(path, buf, sizeof buf);
  cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_EFOREIGN);
  char expect[512];
  snprintf(expect, sizeof expect, "%s: not a cairn write-ahead log (bad magic)",
           path);
  cr_assert_str_eq(err, expect);

  snprintf(path, sizeof path, "%s/hdf5.h5", dir);
  memcpy(buf, "\x89HDF\r\n\x1a\n", 8);
  spit(path, buf, 512);
  cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_EFOREIGN);

  snprintf(path, sizeof path, "%s/short.txt", dir);
  spit(path, "hi", 2);
  cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_EFOREIGN);

  snprintf(path, sizeof path, "%s/does-not-exist.cwal", dir);
  cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_EIO);
  remove_tmpdir(dir);
}

Test(wal, reader_rejects_empty_and_short_files_as_truncated)
{
  char dir[64], path[256], err[1024];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  cairn_wal_writer *w = NULL;
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);
  char seg[256];
  seg_path(seg, sizeof seg, dir, o.rank, 0);
  size_t size;
  uint8_t *data = slurp(seg, &size);
  cr_assert_eq(size, CAIRN_WAL_HEADER_SIZE);

  snprintf(path, sizeof path, "%s/empty.cwal", dir);
  spit(path, "", 0);
  cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_ETRUNCATED);
  cr_assert(strstr(err, "0 bytes") != NULL, "%s", err);

  const size_t cuts[] = {3, 8, 40, CAIRN_WAL_HEADER_SIZE - 1};
  for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
    spit(path, data, cuts[c]);
    cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_ETRUNCATED,
                 "cut %zu: %s", cuts[c], err);
  }

  /* A header with no blocks is a valid, empty segment. */
  block_list got = {0};
  cairn_wal_damage dmg;
  cr_assert_eq(read_segment(seg, &got, NULL, &dmg, err, sizeof err), CAIRN_OK);
  cr_assert_eq(got.n, 0);
  cr_assert_str_empty(err);
  free(data);
  remove_tmpdir(dir);
}

Test(wal, reader_rejects_newer_version_and_damaged_header)
{
  char dir[64], err[1024];
  make_tmpdir(dir, sizeof dir);
  enum { N = 2 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 12, N, 10, 100, &orig, starts);
  char path[256];
  seg_path(path, sizeof path, dir, 3, 0);
  size_t size;
  uint8_t *data = slurp(path, &size);

  /* version 99 with a fixed-up CRC */
  cairn__wal_put32(data + CAIRN_WAL_HDR_VERSION, 99);
  cairn__wal_put32(data + CAIRN_WAL_HDR_CRC,
                   cairn__crc32c(0, data, CAIRN_WAL_HDR_CRC));
  spit(path, data, size);
  cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_EVERSION);
  cr_assert(strstr(err, "version 99") != NULL, "%s", err);
  cairn__wal_put32(data + CAIRN_WAL_HDR_VERSION, CAIRN_WAL_VERSION);
  cairn__wal_put32(data + CAIRN_WAL_HDR_CRC,
                   cairn__crc32c(0, data, CAIRN_WAL_HDR_CRC));

  /* any single bit flip past the magic and version is caught by the CRC */
  for (size_t byte = CAIRN_WAL_HDR_SIZE; byte < CAIRN_WAL_HEADER_SIZE; byte++) {
    data[byte] ^= 0x01;
    spit(path, data, size);
    data[byte] ^= 0x01;
    cr_assert_eq(open_expect_fail(path, err, sizeof err), CAIRN_ECORRUPT,
                 "byte %zu: %s", byte, err);
  }
  spit(path, data, size);
  block_list got = {0};
  cairn_wal_damage dmg;
  cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err), CAIRN_OK);
  assert_all_but(&got, &orig, SIZE_MAX);
  list_free(&got);
  list_free(&orig);
  free(data);
  remove_tmpdir(dir);
}

/* ---------------------------------------------------------------------- */
/* Fuzzing                                                                 */
/* ---------------------------------------------------------------------- */

Test(wal, reader_survives_2000_random_corruptions)
{
  char dir[64], err[8192];
  make_tmpdir(dir, sizeof dir);
  enum { N = 40 };
  block_list orig = {0};
  uint64_t starts[N + 1];
  write_segment(dir, 13, N, 0, 2000, &orig, starts);
  char path[256];
  seg_path(path, sizeof path, dir, 3, 0);
  size_t size;
  uint8_t *base = slurp(path, &size);
  uint8_t *data = malloc(size);
  uint64_t s = 0xF00D;

  for (int iter = 0; iter < 2000; iter++) {
    memcpy(data, base, size);
    size_t n = size;
    int mode = (int)(splitmix64(&s) % 4);
    size_t flip = 0, cut = 0;
    if (mode == 0) { /* one bit flip after the segment header */
      flip = CAIRN_WAL_HEADER_SIZE +
             (size_t)(splitmix64(&s) % (size - CAIRN_WAL_HEADER_SIZE));
      data[flip] ^= (uint8_t)(1u << (splitmix64(&s) % 8));
    } else if (mode == 1) { /* truncation anywhere */
      cut = (size_t)(splitmix64(&s) % (size + 1));
      n = cut;
    } else { /* many flips, overwritten runs, copied regions, a cut */
      int edits = 1 + (int)(splitmix64(&s) % 16);
      for (int e = 0; e < edits; e++) {
        size_t at = (size_t)(splitmix64(&s) % n);
        switch (splitmix64(&s) % 4) {
        case 0:
          data[at] ^= (uint8_t)(1u << (splitmix64(&s) % 8));
          break;
        case 1:
          for (size_t j = at; j < n && j < at + 64; j++)
            data[j] = (uint8_t)splitmix64(&s);
          break;
        case 2: { /* duplicate a stretch: frames may appear twice */
          size_t from = (size_t)(splitmix64(&s) % n);
          size_t len = (size_t)(splitmix64(&s) % 4096);
          if (len > n - at)
            len = n - at;
          if (len > n - from)
            len = n - from;
          memmove(data + at, data + from, len);
          break;
        }
        default:
          if (mode == 3)
            n = at;
          break;
        }
        if (n == 0)
          break;
      }
    }
    spit(path, data, n);

    block_list got = {0};
    cairn_wal_damage dmg;
    int rc = read_segment(path, &got, NULL, &dmg, err, sizeof err);
    if (rc != CAIRN_OK) {
      cr_assert(rc == CAIRN_ETRUNCATED || rc == CAIRN_EFOREIGN ||
                    rc == CAIRN_ECORRUPT || rc == CAIRN_EVERSION,
                "iter %d: rc %d", iter, rc);
      cr_assert(mode != 0, "iter %d: a flip at %zu broke the header", iter,
                flip);
      cr_assert(mode != 1 || cut < CAIRN_WAL_HEADER_SIZE, "iter %d", iter);
      continue;
    }
    cr_assert_eq(dmg.blocks_ok, got.n);
    /* Whatever comes back was written: never a fabricated block. */
    for (size_t i = 0; i < got.n; i++) {
      bool found = false;
      for (size_t j = 0; j < orig.n && !found; j++)
        found =
            block_eq(&got.v[i], orig.v[j].type, orig.v[j].data, orig.v[j].len);
      cr_assert(found, "iter %d mode %d: block %zu (len %zu) was never written",
                iter, mode, i, got.v[i].len);
    }
    if (mode == 0) {
      size_t k = 0;
      while (starts[k + 1] <= flip)
        k++;
      assert_all_but(&got, &orig, k);
      cr_assert_eq(dmg.corrupt_regions, 1, "iter %d: flip at %zu", iter, flip);
      cr_assert_eq(dmg.torn_tail, 0);
    } else if (mode == 1) {
      size_t k = 0;
      while (k < N && starts[k + 1] <= cut)
        k++;
      cr_assert_eq(got.n, k, "iter %d: cut at %zu", iter, cut);
      for (size_t i = 0; i < k; i++)
        cr_assert(
            block_eq(&got.v[i], orig.v[i].type, orig.v[i].data, orig.v[i].len));
      cr_assert_eq(dmg.torn_tail, starts[k] != cut);
      cr_assert_eq(dmg.corrupt_regions, 0);
    }
    list_free(&got);
  }
  free(data);
  free(base);
  list_free(&orig);
  remove_tmpdir(dir);
}

/* ---------------------------------------------------------------------- */
/* Writer: durability and failures                                         */
/* ---------------------------------------------------------------------- */

Test(wal, every_sync_policy_writes_readable_0600_segments)
{
  for (int policy = 0; policy <= 2; policy++) {
    char dir[64], err[1024];
    make_tmpdir(dir, sizeof dir);
    cairn_wal_options o = test_options(dir);
    o.sync_policy = policy;
    o.sync_interval_ms = 1;
    o.segment_bytes = 16384;
    o.rank = 12345;
    cairn_wal_writer *w = NULL;
    cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);
    block_list orig = {0};
    uint8_t buf[4097];
    for (size_t i = 0; i < 40; i++) {
      uint16_t type;
      size_t len = gen_block(20 + (uint64_t)policy, i, buf, 0, 4096, &type);
      cr_assert_eq(cairn__wal_append(w, type, buf, len), CAIRN_OK);
      list_push(&orig, type, buf, len);
      if (i % 10 == 0) {
        struct timespec ts = {0, 2 * 1000 * 1000}; /* cross the interval */
        nanosleep(&ts, NULL);
      }
    }
    cr_assert_eq(cairn__wal_sync(w), CAIRN_OK);
    cr_assert_eq(cairn__wal_close(w), CAIRN_OK);

    block_list got = {0};
    uint32_t seq = 0;
    for (;; seq++) {
      char path[256];
      seg_path(path, sizeof path, dir, o.rank, seq);
      struct stat st;
      if (stat(path, &st) != 0)
        break;
      cr_assert_eq(st.st_mode & 07777, 0600, "%s has mode %o", path,
                   (unsigned)(st.st_mode & 07777));
      cairn_wal_damage dmg;
      cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err),
                   CAIRN_OK, "%s", err);
      cr_assert_str_empty(err);
    }
    cr_assert_geq(seq, 2, "policy %d: no rotation", policy);
    assert_all_but(&got, &orig, SIZE_MAX);
    list_free(&got);
    list_free(&orig);
    remove_tmpdir(dir);
  }
}

Test(wal, failed_append_is_truncated_away_and_writer_recovers)
{
  char dir[64], err[1024];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  cairn_wal_writer *w = NULL;
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);

  /* A file size limit makes the kernel fail the write part-way through, as
   * a full disk would. */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 20000;
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

  block_list orig = {0};
  uint8_t buf[3000];
  uint64_t s = 77, before = 0;
  int rc = CAIRN_OK;
  for (int i = 0; i < 20 && rc == CAIRN_OK; i++) {
    for (size_t j = 0; j < sizeof buf; j++)
      buf[j] = (uint8_t)splitmix64(&s);
    before = cairn__wal_bytes_written(w);
    rc = cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, buf, sizeof buf);
    if (rc == CAIRN_OK)
      list_push(&orig, CAIRN_WAL_BLOCK_DATA, buf, sizeof buf);
  }
  cr_assert_eq(rc, CAIRN_EIO);
  cr_assert_eq(orig.n, 6); /* 64 + 6 * 3032 = 18256 <= 20000 < 21288 */
  cr_assert_eq(cairn__wal_bytes_written(w), before);
  char path[256];
  seg_path(path, sizeof path, dir, o.rank, 0);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq((uint64_t)st.st_size, before, "torn block left behind");

  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
  cr_assert_eq(cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, buf, sizeof buf),
               CAIRN_OK);
  list_push(&orig, CAIRN_WAL_BLOCK_DATA, buf, sizeof buf);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);

  block_list got = {0};
  cairn_wal_damage dmg;
  cr_assert_eq(read_segment(path, &got, NULL, &dmg, err, sizeof err), CAIRN_OK);
  cr_assert_str_empty(err);
  assert_all_but(&got, &orig, SIZE_MAX);
  list_free(&got);
  list_free(&orig);
  remove_tmpdir(dir);
}

Test(wal, open_refuses_an_existing_segment_and_a_missing_directory)
{
  char dir[64], err[1024];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  o.rank = 7;
  cairn_wal_writer *w = NULL, *w2 = NULL;
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(cairn__wal_open(&w2, &o, err, sizeof err), CAIRN_EIO);
  cr_assert_null(w2);
  cr_assert(strstr(err, "wal-r000007-000000.cwal") != NULL, "%s", err);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);
  cr_assert_eq(cairn__wal_close(NULL), CAIRN_OK);

  char missing[128];
  snprintf(missing, sizeof missing, "%s/nope", dir);
  o.dir = missing;
  cr_assert_eq(cairn__wal_open(&w2, &o, err, sizeof err), CAIRN_EIO);
  cr_assert(strstr(err, missing) != NULL, "%s", err);

  o.dir = dir;
  o.sync_policy = 3;
  cr_assert_eq(cairn__wal_open(&w2, &o, err, sizeof err), CAIRN_EINVAL);
  remove_tmpdir(dir);
}

Test(wal, append_rejects_oversized_and_type_zero_blocks_without_writing)
{
  char dir[64], err[1024];
  make_tmpdir(dir, sizeof dir);
  cairn_wal_options o = test_options(dir);
  cairn_wal_writer *w = NULL;
  cr_assert_eq(cairn__wal_open(&w, &o, err, sizeof err), CAIRN_OK, "%s", err);
  size_t big = (size_t)CAIRN_WAL_MAX_BLOCK + 1;
  uint8_t *buf = calloc(1, big);
  cr_assert_not_null(buf);
  cr_assert_eq(cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, buf, big),
               CAIRN_EINVAL);
  cr_assert_eq(cairn__wal_append(w, CAIRN_WAL_BLOCK_INVALID, buf, 10),
               CAIRN_EINVAL);
  cr_assert_eq(cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, NULL, 10),
               CAIRN_EINVAL);
  cr_assert_eq(cairn__wal_bytes_written(w), CAIRN_WAL_HEADER_SIZE);
  cr_assert_eq(cairn__wal_close(w), CAIRN_OK);
  free(buf);
  remove_tmpdir(dir);
}
