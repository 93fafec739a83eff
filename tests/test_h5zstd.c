/*
 * test_h5zstd.c — tests of the zstd HDF5 filter (id 32015): exact round trips
 * through shuffle + zstd with the in-process registration, the stored chunks
 * decoded with libzstd alone (the community plugin's format), independent
 * readers (h5dump, h5py) through the dynamic plugin, corrupt chunks, and the
 * plugin's entry points and link hygiene.
 */
#include <criterion/criterion.h>

#include "cairn.h"
#include "h5zstd.h"

#include <hdf5.h>
#include <zstd.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Fixture: a 60 x 40 float64 dataset in 16 x 16 chunks                    */
/* ---------------------------------------------------------------------- */

/* 4 x 3 chunks; the last row and column of chunks are partial, as real
 * metric tables usually are. */
#define NROWS 60
#define NCOLS 40
#define CROWS 16
#define CCOLS 16
#define NCHUNKS (((NROWS + CROWS - 1) / CROWS) * ((NCOLS + CCOLS - 1) / CCOLS))
#define CHUNK_BYTES ((size_t)CROWS * CCOLS * sizeof(double))

static char tmpdir[PATH_MAX / 2]; /* leaves room for file names in PATH_MAX */
static char h5path[PATH_MAX];
static double expected[NROWS][NCOLS];

static uint64_t splitmix64(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* A smooth field plus noise in the low mantissa bits (exact binary
 * fractions): the shape of real metrics, and enough entropy that the zstd
 * level makes a difference to the bytes. */
static void fill_expected(void)
{
  uint64_t seed = 42;
  for (int i = 0; i < NROWS; i++)
    for (int j = 0; j < NCOLS; j++)
      expected[i][j] = 1000.0 + i * 0.5 - j * 0.125 +
                       (double)(splitmix64(&seed) % 4096u) / 1048576.0;
}

static void setup(void)
{
  /* In-process tests must exercise cairn__h5zstd_register, not a plugin HDF5
   * might find on an inherited HDF5_PLUGIN_PATH: "::" disables plugin
   * loading. Child processes get their own environment (run_child). */
  setenv("HDF5_PLUGIN_PRELOAD", "::", 1);
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/cairn-h5zstd-XXXXXX", base && *base ? base : "/tmp");
  cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
  snprintf(h5path, sizeof h5path, "%s/zstd.h5", tmpdir);
  fill_expected();
}

static void teardown(void)
{
  char p[PATH_MAX + 16];
  unlink(h5path);
  snprintf(p, sizeof p, "%s/empty", tmpdir);
  rmdir(p);
  rmdir(tmpdir);
}

TestSuite(h5zstd, .init = setup, .fini = teardown, .timeout = 60);

/*
 * Creates h5path with /data (shuffle, then zstd with cd_nelmts values from
 * cd) and /ref (the same values, contiguous, unfiltered), and optionally
 * /data3 with the default level (cd_nelmts == 0).
 */
static void write_file(size_t cd_nelmts, const unsigned *cd, int with_default_level)
{
  cr_assert_eq(cairn__h5zstd_register(), CAIRN_OK);
  hid_t file = H5Fcreate(h5path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  cr_assert_geq(file, 0);
  hsize_t dims[2] = {NROWS, NCOLS}, chunk[2] = {CROWS, CCOLS};
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  cr_assert_geq(H5Pset_chunk(dcpl, 2, chunk), 0);
  cr_assert_geq(H5Pset_shuffle(dcpl), 0);
  cr_assert_geq(H5Pset_filter(dcpl, CAIRN_H5Z_FILTER_ZSTD, H5Z_FLAG_OPTIONAL, cd_nelmts, cd), 0);

  hid_t d = H5Dcreate2(file, "/data", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  cr_assert_geq(d, 0);
  cr_assert_geq(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, expected), 0);
  H5Dclose(d);

  if (with_default_level) {
    hid_t dcpl3 = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl3, 2, chunk);
    H5Pset_shuffle(dcpl3);
    cr_assert_geq(H5Pset_filter(dcpl3, CAIRN_H5Z_FILTER_ZSTD, H5Z_FLAG_OPTIONAL, 0, NULL), 0);
    d = H5Dcreate2(file, "/data3", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl3, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, expected), 0);
    H5Dclose(d);
    H5Pclose(dcpl3);
  }

  d = H5Dcreate2(file, "/ref", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  cr_assert_geq(d, 0);
  cr_assert_geq(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, expected), 0);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  cr_assert_geq(H5Fclose(file), 0);
}

static void write_level5(void)
{
  const unsigned level = 5;
  write_file(1, &level, 0);
}

/* Asserts that a whole read of `name` in h5path gives `expected` bit for bit. */
static void assert_reads_back(const char *name)
{
  static double got[NROWS][NCOLS];
  hid_t file = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(file, 0);
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  cr_assert_geq(d, 0);
  memset(got, 0, sizeof got);
  cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, got), 0);
  cr_assert_eq(memcmp(got, expected, sizeof got), 0, "%s does not read back exactly", name);
  H5Dclose(d);
  H5Fclose(file);
}

/* Undoes HDF5's shuffle of 8-byte elements: byte b of element e is stored at
 * b * n + e. */
static void unshuffle8(const unsigned char *in, unsigned char *out, size_t nbytes)
{
  size_t n = nbytes / 8;
  for (size_t e = 0; e < n; e++)
    for (size_t b = 0; b < 8; b++)
      out[e * 8 + b] = in[b * n + e];
}

/* What the filter must store for `n` bytes at `level`: one frame with content
 * size and checksum, compressed independently of the filter. Returns its
 * length; `out` holds ZSTD_compressBound(n) bytes. */
static size_t reference_frame(int level, const void *src, size_t n, void *out)
{
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  cr_assert_not_null(cctx);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  size_t z = ZSTD_compress2(cctx, out, ZSTD_compressBound(n), src, n);
  cr_assert(!ZSTD_isError(z), "%s", ZSTD_getErrorName(z));
  ZSTD_freeCCtx(cctx);
  return z;
}

/* ---------------------------------------------------------------------- */
/* Registration and in-process round trips                                */
/* ---------------------------------------------------------------------- */

Test(h5zstd, register_makes_filter_available_and_is_idempotent)
{
  /* Plugins are disabled (setup), so availability is our registration. */
  cr_assert_eq(H5Zfilter_avail(CAIRN_H5Z_FILTER_ZSTD), 0);
  cr_assert_eq(cairn__h5zstd_register(), CAIRN_OK);
  cr_assert_gt(H5Zfilter_avail(CAIRN_H5Z_FILTER_ZSTD), 0);
  cr_assert_eq(cairn__h5zstd_register(), CAIRN_OK);
  cr_assert_eq(cairn__h5zstd_register(), CAIRN_OK);
  unsigned info = 0;
  cr_assert_geq(H5Zget_filter_info(CAIRN_H5Z_FILTER_ZSTD, &info), 0);
  cr_assert(info & H5Z_FILTER_CONFIG_ENCODE_ENABLED);
  cr_assert(info & H5Z_FILTER_CONFIG_DECODE_ENABLED);
}

Test(h5zstd, shuffle_then_zstd_round_trip_is_exact)
{
  write_level5();
  assert_reads_back("/data");

  hid_t file = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(file, "/data", H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(d);
  cr_assert_eq(H5Pget_nfilters(dcpl), 2);

  unsigned flags, cd[4] = {0};
  size_t nelmts = 4;
  char name[64];
  cr_assert_eq(H5Pget_filter2(dcpl, 0, &flags, &nelmts, cd, sizeof name, name, NULL),
               H5Z_FILTER_SHUFFLE, "shuffle must run before zstd");
  nelmts = 4;
  memset(cd, 0, sizeof cd);
  cr_assert_eq(H5Pget_filter2(dcpl, 1, &flags, &nelmts, cd, sizeof name, name, NULL),
               CAIRN_H5Z_FILTER_ZSTD);
  cr_assert_eq(nelmts, 1);
  cr_assert_eq(cd[0], 5);
  cr_assert(flags & H5Z_FLAG_OPTIONAL);

  /* The smooth part of the field must have compressed: shuffle groups the
   * near-constant sign/exponent bytes. */
  hsize_t stored = H5Dget_storage_size(d);
  cr_assert_gt(stored, 0);
  cr_assert_lt(stored, (hsize_t)NCHUNKS * CHUNK_BYTES * 2 / 3,
               "stored %llu bytes for %zu raw", (unsigned long long)stored,
               (size_t)NCHUNKS * CHUNK_BYTES);
  H5Pclose(dcpl);
  H5Dclose(d);
  H5Fclose(file);
}

Test(h5zstd, partial_reads_cross_chunk_boundaries)
{
  write_level5();
  hid_t file = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(file, "/data", H5P_DEFAULT);
  /* rows 10..49, cols 7..38: touches every chunk, partial ones included */
  hsize_t start[2] = {10, 7}, count[2] = {40, 32};
  hid_t fspace = H5Dget_space(d);
  cr_assert_geq(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL), 0);
  hid_t mspace = H5Screate_simple(2, count, NULL);
  static double got[40][32];
  cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, got), 0);
  for (int i = 0; i < 40; i++)
    for (int j = 0; j < 32; j++)
      cr_assert_eq(memcmp(&got[i][j], &expected[10 + i][7 + j], sizeof(double)), 0,
                   "element (%d,%d): %.17g != %.17g", 10 + i, 7 + j, got[i][j],
                   expected[10 + i][7 + j]);
  H5Sclose(mspace);
  H5Sclose(fspace);
  H5Dclose(d);
  H5Fclose(file);
}

/* ---------------------------------------------------------------------- */
/* The stored bytes: one zstd frame per chunk, readable by libzstd alone   */
/* ---------------------------------------------------------------------- */

/*
 * For every chunk of `name`: the filter mask says every filter ran; the raw
 * bytes are exactly one zstd frame whose header records the chunk's
 * uncompressed size (what the community plugin sizes its buffer from);
 * decoding with libzstd and unshuffling gives the expected values; and
 * compressing the decoded bytes again at `level` (with content size and
 * checksum) reproduces the stored bytes, so the level was honoured.
 */
static void check_chunks(const char *name, int level)
{
  hid_t file = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t fspace = H5Dget_space(d);
  hsize_t nchunks = 0;
  cr_assert_geq(H5Dget_num_chunks(d, fspace, &nchunks), 0);
  cr_assert_eq(nchunks, NCHUNKS);

  unsigned char *raw = malloc(2 * CHUNK_BYTES);
  unsigned char *plain = malloc(CHUNK_BYTES);
  unsigned char *values = malloc(CHUNK_BYTES);
  unsigned char *again = malloc(ZSTD_compressBound(CHUNK_BYTES));
  cr_assert(raw && plain && values && again);

  for (hsize_t c = 0; c < nchunks; c++) {
    hsize_t off[2];
    unsigned mask = 99;
    haddr_t addr;
    hsize_t size = 0;
    cr_assert_geq(H5Dget_chunk_info(d, fspace, c, off, &mask, &addr, &size), 0);
    cr_assert_eq(mask, 0, "chunk %llu skipped a filter", (unsigned long long)c);
    cr_assert(size > 4 && size <= 2 * CHUNK_BYTES);

    uint32_t filters = 99;
    cr_assert_geq(H5Dread_chunk(d, H5P_DEFAULT, off, &filters, raw), 0);
    cr_assert_eq(filters, 0);
    cr_assert_eq(raw[0], 0x28); /* ZSTD_MAGICNUMBER 0xFD2FB528, little-endian */
    cr_assert_eq(raw[1], 0xB5);
    cr_assert_eq(raw[2], 0x2F);
    cr_assert_eq(raw[3], 0xFD);
    cr_assert_eq(ZSTD_getFrameContentSize(raw, size), (unsigned long long)CHUNK_BYTES);
    cr_assert_eq(ZSTD_findFrameCompressedSize(raw, size), (size_t)size, "not exactly one frame");
    cr_assert_eq(ZSTD_decompress(plain, CHUNK_BYTES, raw, size), CHUNK_BYTES);

    unshuffle8(plain, values, CHUNK_BYTES);
    for (int r = 0; r < CROWS; r++)
      for (int k = 0; k < CCOLS; k++) {
        hsize_t i = off[0] + (hsize_t)r, j = off[1] + (hsize_t)k;
        if (i >= NROWS || j >= NCOLS)
          continue; /* padding of an edge chunk */
        cr_assert_eq(memcmp(values + ((size_t)r * CCOLS + (size_t)k) * 8, &expected[i][j], 8), 0,
                     "chunk at (%llu,%llu) element (%d,%d)", (unsigned long long)off[0],
                     (unsigned long long)off[1], r, k);
      }

    size_t n = reference_frame(level, plain, CHUNK_BYTES, again);
    cr_assert(n == size && memcmp(again, raw, n) == 0,
              "chunk %llu was not compressed at level %d", (unsigned long long)c, level);
  }
  free(raw);
  free(plain);
  free(values);
  free(again);
  H5Sclose(fspace);
  H5Dclose(d);
  H5Fclose(file);
}

Test(h5zstd, stored_chunks_are_single_zstd_frames_with_content_size)
{
  write_level5();
  check_chunks("/data", 5);
}

Test(h5zstd, level_defaults_to_3_and_cd_values_level_is_honoured)
{
  const unsigned level = 19;
  write_file(1, &level, 1);
  assert_reads_back("/data3");
  check_chunks("/data3", CAIRN_H5ZSTD_DEFAULT_LEVEL);
  check_chunks("/data", 19);

  /* The check discriminates: levels 3 and 19 store different bytes here. */
  hid_t file = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d3 = H5Dopen2(file, "/data3", H5P_DEFAULT);
  hid_t d19 = H5Dopen2(file, "/data", H5P_DEFAULT);
  cr_assert_neq(H5Dget_storage_size(d3), H5Dget_storage_size(d19));
  hid_t dcpl = H5Dget_create_plist(d3);
  size_t nelmts = 4;
  unsigned flags, cd[4];
  cr_assert_eq(H5Pget_filter2(dcpl, 1, &flags, &nelmts, cd, 0, NULL, NULL), CAIRN_H5Z_FILTER_ZSTD);
  cr_assert_eq(nelmts, 0, "the default level is the filter's, not stored in the file");
  H5Pclose(dcpl);
  H5Dclose(d3);
  H5Dclose(d19);
  H5Fclose(file);
}

/* ---------------------------------------------------------------------- */
/* Corrupt chunks                                                          */
/* ---------------------------------------------------------------------- */

/* Replaces the stored bytes of the chunk at (r, c) (in chunk units) without
 * running the pipeline; filter mask 0 claims shuffle and zstd were applied. */
static void put_raw_chunk(hid_t d, int r, int c, const void *bytes, size_t n)
{
  hsize_t off[2] = {(hsize_t)r * CROWS, (hsize_t)c * CCOLS};
  cr_assert_geq(H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, n, bytes), 0);
}

static size_t get_raw_chunk(hid_t d, int r, int c, unsigned char *out)
{
  hsize_t off[2] = {(hsize_t)r * CROWS, (hsize_t)c * CCOLS}, size = 0;
  uint32_t filters;
  cr_assert_geq(H5Dget_chunk_storage_size(d, off, &size), 0);
  cr_assert_geq(H5Dread_chunk(d, H5P_DEFAULT, off, &filters, out), 0);
  return (size_t)size;
}

/* Reads the part of the dataset covered by chunk (r, c); returns H5Dread's
 * result and, on success, checks the values. */
static herr_t read_chunk_region(hid_t d, int r, int c)
{
  hsize_t start[2] = {(hsize_t)r * CROWS, (hsize_t)c * CCOLS};
  hsize_t count[2] = {CROWS, CCOLS};
  if (start[0] + count[0] > NROWS)
    count[0] = NROWS - start[0];
  if (start[1] + count[1] > NCOLS)
    count[1] = NCOLS - start[1];
  hid_t fspace = H5Dget_space(d);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t mspace = H5Screate_simple(2, count, NULL);
  double got[CROWS * CCOLS];
  herr_t rc = H5Dread(d, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, got);
  if (rc >= 0)
    for (hsize_t i = 0; i < count[0]; i++)
      for (hsize_t j = 0; j < count[1]; j++)
        cr_assert_eq(memcmp(&got[i * count[1] + j], &expected[start[0] + i][start[1] + j], 8), 0);
  H5Sclose(mspace);
  H5Sclose(fspace);
  return rc;
}

Test(h5zstd, corrupt_chunks_fail_the_read_cleanly)
{
  write_level5();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the failures below are expected */

  hid_t file = H5Fopen(h5path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(file, "/data", H5P_DEFAULT);
  cr_assert_geq(d, 0);
  unsigned char *good = malloc(2 * CHUNK_BYTES), *bad = malloc(2 * CHUNK_BYTES + 16);
  cr_assert(good && bad);

  /* (0,0) garbage: not a zstd frame at all. */
  memset(bad, 0xA5, 200);
  put_raw_chunk(d, 0, 0, bad, 200);

  /* (0,1) a real frame with one payload byte flipped: caught by the
   * frame checksum if not by the decoder. */
  size_t n = get_raw_chunk(d, 0, 1, good);
  memcpy(bad, good, n);
  bad[n / 2] ^= 0xFF;
  put_raw_chunk(d, 0, 1, bad, n);

  /* (0,2) a real frame, truncated. */
  n = get_raw_chunk(d, 0, 2, good);
  put_raw_chunk(d, 0, 2, good, n - 7);

  /* (1,0) a real frame followed by trailing bytes. */
  n = get_raw_chunk(d, 1, 0, good);
  memcpy(bad, good, n);
  memset(bad + n, 0, 16);
  put_raw_chunk(d, 1, 0, bad, n + 16);

  /* (1,1) a valid frame of the right bytes, but without a content size
   * (as a streaming compressor writes): the format requires the size. */
  n = get_raw_chunk(d, 1, 1, good);
  unsigned char *plain = malloc(CHUNK_BYTES);
  cr_assert_eq(ZSTD_decompress(plain, CHUNK_BYTES, good, n), CHUNK_BYTES);
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  size_t m = ZSTD_compress2(cctx, bad, 2 * CHUNK_BYTES, plain, CHUNK_BYTES);
  cr_assert(!ZSTD_isError(m));
  cr_assert_eq(ZSTD_getFrameContentSize(bad, m), ZSTD_CONTENTSIZE_UNKNOWN);
  put_raw_chunk(d, 1, 1, bad, m);
  ZSTD_freeCCtx(cctx);
  free(plain);

  /* (1,2) a frame header claiming 8 GiB of content: refused before any
   * allocation. Magic, descriptor (8-byte size, single segment), size 2^33,
   * then an empty last raw block. */
  static const unsigned char huge[] = {0x28, 0xB5, 0x2F, 0xFD, 0xE0, 0, 0, 0, 0,
                                       2,    0,    0,    0,    1,    0, 0};
  cr_assert_eq(ZSTD_getFrameContentSize(huge, sizeof huge), 1ull << 33);
  put_raw_chunk(d, 1, 2, huge, sizeof huge);

  H5Dclose(d);
  H5Fclose(file);

  file = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  d = H5Dopen2(file, "/data", H5P_DEFAULT);
  static const int corrupt[][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}};
  for (size_t k = 0; k < sizeof corrupt / sizeof corrupt[0]; k++)
    cr_assert_lt(read_chunk_region(d, corrupt[k][0], corrupt[k][1]), 0,
                 "corrupt chunk (%d,%d) was read", corrupt[k][0], corrupt[k][1]);
  /* The rest of the dataset is unaffected. */
  for (int r = 2; r < 4; r++)
    for (int c = 0; c < 3; c++)
      cr_assert_geq(read_chunk_region(d, r, c), 0, "intact chunk (%d,%d) failed", r, c);
  /* A whole-dataset read fails rather than returning partial garbage. */
  static double all[NROWS][NCOLS];
  cr_assert_lt(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, all), 0);
  H5Dclose(d);
  H5Fclose(file);
  free(good);
  free(bad);
}

/* ---------------------------------------------------------------------- */
/* Independent readers through the dynamic plugin                          */
/* ---------------------------------------------------------------------- */

typedef struct {
  int status; /* exit status, or 128 + signal */
  char *out;  /* stdout and stderr, NUL-terminated */
  size_t len;
} child_result;

/*
 * Runs argv (argv[0] a path) with HDF5_PLUGIN_PATH set to plugin_path and
 * plugin loading otherwise untouched, capturing stdout and stderr.
 */
static child_result run_child(char *const argv[], const char *plugin_path)
{
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    unsetenv("HDF5_PLUGIN_PRELOAD");
    setenv("HDF5_PLUGIN_PATH", plugin_path, 1);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  child_result r = {0, NULL, 0};
  size_t cap = 0;
  for (;;) {
    if (cap - r.len < 4096) {
      cap = cap ? cap * 2 : 65536;
      r.out = realloc(r.out, cap);
      cr_assert_not_null(r.out);
    }
    ssize_t got = read(fds[0], r.out + r.len, cap - r.len - 1);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    r.len += (size_t)got;
  }
  r.out[r.len] = '\0';
  close(fds[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    cr_assert_eq(errno, EINTR);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

static const char *empty_plugin_dir(void)
{
  static char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/empty", tmpdir);
  cr_assert(mkdir(p, 0700) == 0 || errno == EEXIST);
  return p;
}

/* The text of h5dump's DATA block, which is the same for any two 2-D
 * float64 datasets at the root that hold the same values. */
static const char *data_block(const char *dump)
{
  const char *p = strstr(dump, "DATA {");
  cr_assert_not_null(p, "no DATA block in:\n%s", dump);
  return p;
}

Test(h5zstd, h5dump_reads_through_the_plugin)
{
  if (CAIRN_H5DUMP[0] == '\0')
    cr_skip_test("h5dump was not found at configure time");
  write_level5();
  char *dump_data[] = {CAIRN_H5DUMP, "-p", "-d", "/data", h5path, NULL};
  char *dump_ref[] = {CAIRN_H5DUMP, "-d", "/ref", h5path, NULL};
  child_result got = run_child(dump_data, CAIRN_H5ZSTD_PLUGIN_DIR);
  child_result ref = run_child(dump_ref, CAIRN_H5ZSTD_PLUGIN_DIR);
  cr_assert_eq(got.status, 0, "h5dump failed:\n%s", got.out);
  cr_assert_eq(ref.status, 0, "h5dump failed:\n%s", ref.out);
  cr_assert_not_null(strstr(got.out, "PREPROCESSING SHUFFLE"), "%s", got.out);
  cr_assert_not_null(strstr(got.out, "FILTER_ID 32015"), "%s", got.out);
  cr_assert_not_null(strstr(got.out, "PARAMS { 5 }"), "%s", got.out);
  cr_assert_str_eq(data_block(got.out), data_block(ref.out));
  free(got.out);
  free(ref.out);
}

Test(h5zstd, h5dump_cannot_read_the_data_without_the_plugin)
{
  if (CAIRN_H5DUMP[0] == '\0')
    cr_skip_test("h5dump was not found at configure time");
  write_level5();
  /* An empty plugin directory rather than an unset variable: HDF5's
   * default directory might hold some other 32015 plugin. */
  char *dump_data[] = {CAIRN_H5DUMP, "-d", "/data", h5path, NULL};
  char *dump_ref[] = {CAIRN_H5DUMP, "-d", "/ref", h5path, NULL};
  child_result got = run_child(dump_data, empty_plugin_dir());
  child_result ref = run_child(dump_ref, empty_plugin_dir());
  cr_assert_eq(ref.status, 0, "h5dump of the unfiltered copy failed:\n%s", ref.out);
  cr_assert_neq(got.status, 0, "h5dump read zstd data without a zstd filter:\n%s", got.out);
  /* Not one value line of the reference made it out. */
  const char *first = strstr(data_block(ref.out), "(0,0)");
  cr_assert_not_null(first);
  char line[64];
  snprintf(line, sizeof line, "%.*s", (int)strcspn(first, ","), first);
  cr_assert_null(strstr(got.out, line), "%s", got.out);
  free(got.out);
  free(ref.out);
}

Test(h5zstd, h5py_reads_through_the_plugin, .timeout = 60)
{
  if (access(CAIRN_H5PY_PYTHON, X_OK) != 0)
    cr_skip_test("%s not found: cannot run the h5py reader", CAIRN_H5PY_PYTHON);
  write_level5();
  char *argv[] = {CAIRN_H5PY_PYTHON, CAIRN_SOURCE_DIR "/tests/h5zstd_read.py", h5path,
                  "/data", "/ref", NULL};
  child_result r = run_child(argv, CAIRN_H5ZSTD_PLUGIN_DIR);
  if (r.status == 77)
    cr_skip_test("%s", r.out);
  cr_assert_eq(r.status, 0, "h5py reader failed (%d):\n%s", r.status, r.out);
  cr_assert_not_null(strstr(r.out, "filter 0: id=2 values=[8]"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "filter 1: id=32015 values=[5]"), "%s", r.out);
  cr_assert_not_null(strstr(r.out, "OK 60x40"), "%s", r.out);
  free(r.out);

  /* And h5py fails too without the plugin. */
  r = run_child(argv, empty_plugin_dir());
  cr_assert_eq(r.status, 2, "h5py without the plugin (%d):\n%s", r.status, r.out);
  free(r.out);
}

/* ---------------------------------------------------------------------- */
/* The plugin library itself                                               */
/* ---------------------------------------------------------------------- */

Test(h5zstd, plugin_entry_points_describe_a_working_filter)
{
  void *lib = dlopen(CAIRN_H5ZSTD_PLUGIN_FILE, RTLD_NOW | RTLD_LOCAL);
  cr_assert_not_null(lib, "dlopen: %s", dlerror());
  H5PL_type_t (*type_fn)(void) = (H5PL_type_t(*)(void))dlsym(lib, "H5PLget_plugin_type");
  const void *(*info_fn)(void) = (const void *(*)(void))dlsym(lib, "H5PLget_plugin_info");
  cr_assert(type_fn && info_fn);
  cr_assert_null(dlsym(lib, "cairn__h5zstd_register"), "the plugin exports cairn internals");
  cr_assert_eq(type_fn(), H5PL_TYPE_FILTER);
  const H5Z_class2_t *cls = info_fn();
  cr_assert_eq(cls->version, H5Z_CLASS_T_VERS);
  cr_assert_eq(cls->id, CAIRN_H5Z_FILTER_ZSTD);
  cr_assert(cls->encoder_present && cls->decoder_present && cls->filter);
  cr_assert_null(cls->can_apply);
  cr_assert_null(cls->set_local);

  /* Round trip through the plugin's own filter function at a negative
   * (fast) level, stored in cd_values[0] in two's complement. */
  const size_t n = sizeof expected;
  size_t size = n;
  void *buf = malloc(n);
  memcpy(buf, expected, n);
  const unsigned cd[1] = {(unsigned)-5};
  void *ref = malloc(ZSTD_compressBound(n));
  cr_assert_not_null(ref);
  size_t z = cls->filter(0, 1, cd, n, &size, &buf);
  cr_assert_gt(z, 0);
  cr_assert_eq(ZSTD_getFrameContentSize(buf, z), (unsigned long long)n);
  cr_assert(z == reference_frame(-5, expected, n, ref) && memcmp(buf, ref, z) == 0,
            "cd_values[0] = (unsigned)-5 did not compress at level -5");
  size_t back = cls->filter(H5Z_FLAG_REVERSE, 1, cd, z, &size, &buf);
  cr_assert_eq(back, n);
  cr_assert_eq(memcmp(buf, expected, n), 0);

  /* A level beyond zstd's maximum is clamped, not an error. */
  const unsigned too_high[1] = {1000};
  z = cls->filter(0, 1, too_high, n, &size, &buf);
  cr_assert_gt(z, 0);
  cr_assert(z == reference_frame(ZSTD_maxCLevel(), expected, n, ref) && memcmp(buf, ref, z) == 0);
  cr_assert_eq(cls->filter(H5Z_FLAG_REVERSE, 1, too_high, z, &size, &buf), n);
  cr_assert_eq(memcmp(buf, expected, n), 0);

  /* A failed decode returns 0 and leaves the caller's buffer alone. */
  memset(buf, 0x5A, 64);
  size_t before = size;
  cr_assert_eq(cls->filter(H5Z_FLAG_REVERSE, 0, NULL, 64, &size, &buf), 0);
  cr_assert_eq(size, before);
  cr_assert_eq(((unsigned char *)buf)[63], 0x5A);
  free(buf);
  free(ref);
  dlclose(lib);
}

/* Runs readelf and returns its output (caller frees). */
static char *readelf(const char *opt)
{
  char *argv[] = {CAIRN_READELF, (char *)opt, "-W", CAIRN_H5ZSTD_PLUGIN_FILE, NULL};
  child_result r = run_child(argv, "");
  cr_assert_eq(r.status, 0, "readelf %s failed:\n%s", opt, r.out);
  return r.out;
}

Test(h5zstd, plugin_links_zstd_but_not_hdf5_and_exports_only_its_entry_points)
{
  if (CAIRN_READELF[0] == '\0')
    cr_skip_test("readelf was not found at configure time");
  char *dyn = readelf("-d");
  cr_assert_not_null(strstr(dyn, "(NEEDED)"), "%s", dyn);
  cr_assert_not_null(strstr(dyn, "libzstd"), "%s", dyn);
  cr_assert_null(strstr(dyn, "libhdf5"), "the plugin depends on libhdf5:\n%s", dyn);
  cr_assert_null(strstr(dyn, "libmpi"), "the plugin depends on MPI:\n%s", dyn);
  free(dyn);

  /* Symbol table lines: "Num: Value Size Type Bind Vis Ndx Name". */
  char *syms = readelf("--dyn-syms");
  int exported = 0;
  for (char *line = strtok(syms, "\n"); line; line = strtok(NULL, "\n")) {
    char type[32], bind[32], vis[32], ndx[32], name[256];
    if (sscanf(line, "%*s %*s %*s %31s %31s %31s %31s %255s", type, bind, vis, ndx, name) != 5)
      continue;
    char *at = strchr(name, '@');
    if (at)
      *at = '\0';
    if (strcmp(ndx, "UND") == 0) {
      cr_assert_neq(strncmp(name, "H5", 2), 0, "the plugin needs HDF5 symbol %s", name);
      continue;
    }
    if (strcmp(bind, "GLOBAL") != 0 && strcmp(bind, "WEAK") != 0)
      continue;
    cr_assert(strcmp(name, "H5PLget_plugin_type") == 0 || strcmp(name, "H5PLget_plugin_info") == 0,
              "unexpected exported symbol %s", name);
    exported++;
  }
  cr_assert_eq(exported, 2);
  free(syms);
}
