/*
 * test_hash.c — content hashes (io/hash): small files against sha256sum,
 * multi-leaf roots against a root built independently from sha256sum over
 * dd slices, the documented test vectors, thread-count independence, and
 * the failure shapes (missing, directory, unreadable, FIFO, changing file).
 */
#include "hash/hash.h"

#include "cairn.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MiB (UINT64_C(1) << 20)

static char dir[64];

static void setup(void) {
  strcpy(dir, "/tmp/cairn-hash-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  chmod(dir, 0755); /* the unreadable-file test drops to another user */
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(hash, .init = setup, .fini = teardown, .timeout = 60);

static void path_in(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", dir, name);
}

/* The documented test pattern: byte i is i mod 251 (kind 0), or bytes of
 * a xorshift64 stream (kind 1) for files with no structure at all. */
static void write_file(const char *path, uint64_t n, int kind) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (uint64_t i = 0; i < n; i++) {
    int b;
    if (kind == 0) {
      b = (int)(i % 251);
    } else {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      b = (int)(x >> 56);
    }
    cr_assert_neq(putc(b, f), EOF);
  }
  cr_assert_eq(fclose(f), 0);
}

/* Runs a shell command and returns the first 64 characters it prints (the
 * hex digest of sha256sum), lowercase. */
static void run_hex(const char *cmd, char hex[65]) {
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen %s", cmd);
  size_t got = fread(hex, 1, 64, p);
  hex[got] = '\0';
  int st = pclose(p);
  cr_assert_eq(got, 64, "%s printed %zu bytes", cmd, got);
  cr_assert_eq(st, 0, "%s failed", cmd);
}

static void sha256sum_file(const char *path, char hex[65]) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
  run_hex(cmd, hex);
}

/* sha256sum over bytes given in memory (written to a scratch file). */
static void sha256sum_bytes(const uint8_t *b, size_t n, char hex[65]) {
  char p[128];
  path_in(p, sizeof p, "node.bin");
  FILE *f = fopen(p, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(b, 1, n, f), n);
  cr_assert_eq(fclose(f), 0);
  sha256sum_file(p, hex);
}

static void unhex(const char *hex, uint8_t out[32]) {
  for (int i = 0; i < 32; i++) {
    unsigned v;
    cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
}

static cairn_hash_result hash_ok(const char *path, uint64_t leaf, unsigned threads) {
  cairn_hash_result r;
  int rc = cairn__hash_file(path, leaf, threads, &r);
  cr_assert_eq(rc, CAIRN_OK, "%s: %s (%s)", path, cairn_err_name(rc), r.reason);
  cr_assert_eq(r.status, CAIRN_OK);
  cr_assert_str_empty(r.reason);
  cr_assert_eq(strlen(r.hex), 64);
  return r;
}

/* ---------------------------------------------------------------------- */
/* Agreement with independent tools and the documented vectors             */
/* ---------------------------------------------------------------------- */

Test(hash, small_files_equal_sha256sum) {
  static const struct {
    const char *name;
    uint64_t size, leaf;
    int kind;
  } cases[] = {
      {"empty", 0, 0, 0},
      {"one-byte", 1, 0, 1},
      {"page", 4096, 4096, 1},                   /* exactly one leaf */
      {"odd", 123457, 0, 1},
      {"one-leaf", 1 * MiB, 1 * MiB, 0},         /* size == leaf: still plain */
      {"default-leaf", 4 * MiB, 0, 1},           /* size == 4 MiB default */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char p[128], want[65];
    path_in(p, sizeof p, cases[i].name);
    write_file(p, cases[i].size, cases[i].kind);
    sha256sum_file(p, want);
    cairn_hash_result r = hash_ok(p, cases[i].leaf, 2);
    cr_expect_str_eq(r.hex, want, "%s", cases[i].name);
    cr_expect_eq(r.size, cases[i].size);
    cr_expect_eq(r.nleaves, 1);
    cr_expect_eq(r.leaf_bytes, cases[i].leaf ? cases[i].leaf : CAIRN_HASH_DEFAULT_LEAF);
  }
}

/* The vectors printed in docs/format.md, computed there with hashlib. */
Test(hash, documented_test_vectors) {
  static const struct {
    uint64_t size, leaf, nleaves;
    const char *hex;
  } v[] = {
      {0, 4 * MiB, 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {4 * MiB, 4 * MiB, 1, "a117210941a0b00dcb2d8577e680d84b6fa0eaf760d2afc654c953b9859d54fa"},
      {4 * MiB + 1, 4 * MiB, 2,
       "e86500f6e745d08e7c4f725314b37bf2b2d8458c39c72567ba56738d2511fa52"},
      {10 * MiB, 4 * MiB, 3, "0568ced922542eb11a32b652188ad4c3ae6c91c82a558da2ab1602d352875a65"},
      {10 * MiB, 1 * MiB, 10, "4d5f224521e1a353f7d95ea584e2cc87a745aef35e576d8828f42650ec8d739a"},
      {10000, 4096, 3, "6bb95f1512bf86be99e4e27bb60c8fd7781824f7c528c4e921f97473d8c317c9"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char p[128];
    path_in(p, sizeof p, "vector");
    write_file(p, v[i].size, 0);
    cairn_hash_result r = hash_ok(p, v[i].leaf, 3);
    cr_expect_str_eq(r.hex, v[i].hex, "size %llu leaf %llu", (unsigned long long)v[i].size,
                     (unsigned long long)v[i].leaf);
    cr_expect_eq(r.nleaves, v[i].nleaves);
  }
}

/*
 * The identity of a multi-leaf file rebuilt without cairn or OpenSSL: leaf
 * hashes are sha256sum over "\0" + a dd slice, the tree is combined level by
 * level (pairs left to right, an unpaired last node promoted — the second
 * description in docs/format.md), nodes and the final binding hashed by
 * sha256sum too. Then cairn must agree with 1, 2, 4 and 7 threads.
 */
Test(hash, multi_leaf_root_equals_sha256sum_over_dd_slices, .timeout = 120) {
  const uint64_t leaf = 1 * MiB, size = 20 * MiB + 12345; /* 21 leaves */
  const uint64_t n = 21;
  char p[128], cmd[512], hex[65];
  path_in(p, sizeof p, "big");
  write_file(p, size, 1);

  uint8_t level[21][32];
  for (uint64_t i = 0; i < n; i++) {
    snprintf(cmd, sizeof cmd,
             "{ printf '\\000'; dd if='%s' bs=%llu skip=%llu count=1 status=none; } | sha256sum",
             p, (unsigned long long)leaf, (unsigned long long)i);
    run_hex(cmd, hex);
    unhex(hex, level[i]);
  }
  uint64_t width = n;
  while (width > 1) {
    uint64_t w = 0;
    for (uint64_t i = 0; i < width; i += 2) {
      if (i + 1 == width) { /* unpaired: promoted unchanged */
        memcpy(level[w++], level[i], 32);
        continue;
      }
      uint8_t in[65];
      in[0] = 0x01;
      memcpy(in + 1, level[i], 32);
      memcpy(in + 33, level[i + 1], 32);
      sha256sum_bytes(in, sizeof in, hex);
      unhex(hex, level[w++]);
    }
    width = w;
  }
  uint8_t fin[49];
  fin[0] = 0x02;
  for (int i = 0; i < 8; i++) {
    fin[1 + i] = (uint8_t)(size >> (8 * i));
    fin[9 + i] = (uint8_t)(leaf >> (8 * i));
  }
  memcpy(fin + 17, level[0], 32);
  char want[65];
  sha256sum_bytes(fin, sizeof fin, want);

  static const unsigned threads[] = {1, 2, 4, 7};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    cairn_hash_result r = hash_ok(p, leaf, threads[t]);
    cr_expect_str_eq(r.hex, want, "%u threads", threads[t]);
    cr_expect_eq(r.nleaves, n);
    cr_expect_eq(r.size, size);
  }
  /* Not sha256sum of the whole file: a different leaf size is a different
   * identity, and the leaf size is recorded with it. */
  sha256sum_file(p, hex);
  cr_expect_str_neq(want, hex);
}

/* Every tree shape from 1 to 40 leaves, against the level-by-level
 * description (SHA-256 from OpenSSL's one-shot call here, already checked
 * against sha256sum above). */
static void sha(const void *b, size_t n, uint8_t out[32]) {
  cr_assert_eq(EVP_Digest(b, n, out, NULL, EVP_sha256(), NULL), 1);
}

Test(hash, every_tree_shape_matches_level_by_level_description) {
  const uint64_t leaf = 4096;
  char p[128];
  path_in(p, sizeof p, "shapes");
  write_file(p, 40 * leaf, 1);
  int fd = open(p, O_RDONLY);
  cr_assert_geq(fd, 0);
  uint8_t *buf = malloc(40 * leaf);
  cr_assert_eq(pread(fd, buf, 40 * leaf, 0), (ssize_t)(40 * leaf));
  for (uint64_t n = 2; n <= 40; n++) {
    uint64_t size = (n - 1) * leaf + 1 + n; /* a short last leaf */
    uint8_t level[40][32], in[1 + 4096];
    for (uint64_t i = 0; i < n; i++) {
      uint64_t len = i + 1 < n ? leaf : size - i * leaf;
      in[0] = 0x00;
      memcpy(in + 1, buf + i * leaf, len);
      sha(in, 1 + len, level[i]);
    }
    uint8_t got_leaves[40][32];
    char err[256];
    cr_assert_eq(cairn__hash_leaves(fd, size, leaf, 0, n, got_leaves, err, sizeof err), CAIRN_OK,
                 "%s", err);
    cr_assert_eq(memcmp(got_leaves, level, n * 32), 0, "leaf hashes, n=%llu",
                 (unsigned long long)n);
    for (uint64_t width = n; width > 1;) {
      uint64_t w = 0;
      for (uint64_t i = 0; i < width; i += 2) {
        if (i + 1 == width) {
          memcpy(level[w++], level[i], 32);
          continue;
        }
        uint8_t node[65] = {0x01};
        memcpy(node + 1, level[i], 32);
        memcpy(node + 33, level[i + 1], 32);
        sha(node, sizeof node, level[w++]);
      }
      width = w;
    }
    uint8_t fin[49] = {0x02}, want[32], got[32];
    for (int i = 0; i < 8; i++) {
      fin[1 + i] = (uint8_t)(size >> (8 * i));
      fin[9 + i] = (uint8_t)(leaf >> (8 * i));
    }
    memcpy(fin + 17, level[0], 32);
    sha(fin, sizeof fin, want);
    cr_assert_eq(cairn__hash_combine((const uint8_t (*)[32])got_leaves, n, size, leaf, got),
                 CAIRN_OK);
    cr_expect_eq(memcmp(got, want, 32), 0, "n=%llu", (unsigned long long)n);
  }
  free(buf);
  close(fd);
}

/* ---------------------------------------------------------------------- */
/* Independence from the number of threads and of workers                  */
/* ---------------------------------------------------------------------- */

Test(hash, same_identity_with_1_2_4_7_threads_and_all_cores) {
  const uint64_t leaf = 64 * 1024, size = 37 * leaf + 123;
  char p[128];
  path_in(p, sizeof p, "threads");
  write_file(p, size, 1);
  cairn_hash_result one = hash_ok(p, leaf, 1);
  cr_assert_eq(one.nleaves, 38);
  static const unsigned threads[] = {2, 4, 7, 0, 64};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    cairn_hash_result r = hash_ok(p, leaf, threads[t]);
    cr_expect_str_eq(r.hex, one.hex, "%u threads", threads[t]);
    cr_expect_eq(memcmp(r.digest, one.digest, 32), 0);
  }
}

/* What ranks do in the collective variant: disjoint ranges hashed
 * separately, combined once, equal the whole-file hash. */
Test(hash, leaf_ranges_hashed_apart_combine_to_the_file_identity) {
  const uint64_t leaf = 4096, size = 29 * leaf + 7;
  char p[128];
  path_in(p, sizeof p, "ranges");
  write_file(p, size, 0);
  cairn_hash_result whole = hash_ok(p, leaf, 3);
  int fd = open(p, O_RDONLY);
  cr_assert_geq(fd, 0);
  uint8_t leaves[30][32], root[32];
  char err[256];
  static const uint64_t cuts[] = {0, 1, 7, 8, 8, 20, 30}; /* an empty range too */
  for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
    cr_assert_eq(cairn__hash_leaves(fd, size, leaf, cuts[c], cuts[c + 1] - cuts[c],
                                    leaves + cuts[c], err, sizeof err),
                 CAIRN_OK, "%s", err);
  cr_assert_eq(cairn__hash_combine((const uint8_t (*)[32])leaves, 30, size, leaf, root),
               CAIRN_OK);
  cr_expect_eq(memcmp(root, whole.digest, 32), 0);
  /* A range beyond the file is refused, not read. */
  cr_expect_eq(cairn__hash_leaves(fd, size, leaf, 29, 2, leaves, err, sizeof err), CAIRN_EINVAL);
  close(fd);
}

Test(hash, bad_arguments_are_refused) {
  char p[128];
  path_in(p, sizeof p, "args");
  write_file(p, 10, 0);
  cairn_hash_result r;
  cr_expect_eq(cairn__hash_file(p, 3000, 1, &r), CAIRN_EINVAL); /* not a power of two */
  cr_expect_eq(r.status, CAIRN_EINVAL);
  cr_expect_str_empty(r.hex);
  cr_expect_eq(cairn__hash_file(p, 2048, 1, &r), CAIRN_EINVAL); /* below 4 KiB */
  cr_expect_eq(cairn__hash_file(p, UINT64_C(2) << 30, 1, &r), CAIRN_EINVAL); /* above 1 GiB */
  cr_expect_eq(cairn__hash_file(NULL, 0, 1, &r), CAIRN_EINVAL);
  cr_expect_eq(cairn__hash_file(p, 0, 1, NULL), CAIRN_EINVAL);
  uint8_t leaves[2][32] = {{0}}, root[32];
  /* A leaf count that does not fit the size. */
  cr_expect_eq(cairn__hash_combine((const uint8_t (*)[32])leaves, 2, 4096, 4096, root),
               CAIRN_EINVAL);
  cr_expect_eq(cairn__hash_combine((const uint8_t (*)[32])leaves, 1, 4097, 4096, root),
               CAIRN_EINVAL);
}

/* ---------------------------------------------------------------------- */
/* Failed artifacts                                                        */
/* ---------------------------------------------------------------------- */

static void expect_failed(const cairn_hash_result *r, int status, const char *reason_part) {
  cr_expect_eq(r->status, status, "status %s, reason \"%s\"", cairn_err_name(r->status),
               r->reason);
  cr_expect_not_null(strstr(r->reason, reason_part), "reason \"%s\" lacks \"%s\"", r->reason,
                     reason_part);
  cr_expect_str_empty(r->hex);
  static const uint8_t zero[32];
  cr_expect_eq(memcmp(r->digest, zero, 32), 0);
}

Test(hash, missing_file_is_a_failed_artifact) {
  char p[128];
  path_in(p, sizeof p, "no/such/file");
  cairn_hash_result r;
  cr_expect_eq(cairn__hash_file(p, 0, 4, &r), CAIRN_ENOTFOUND);
  expect_failed(&r, CAIRN_ENOTFOUND, "no such file");
  path_in(p, sizeof p, "absent");
  cr_expect_eq(cairn__hash_file(p, 0, 4, &r), CAIRN_ENOTFOUND);
  expect_failed(&r, CAIRN_ENOTFOUND, "no such file");
}

Test(hash, directory_is_a_failed_artifact) {
  cairn_hash_result r;
  cr_expect_eq(cairn__hash_file(dir, 0, 1, &r), CAIRN_EINVAL);
  expect_failed(&r, CAIRN_EINVAL, "is a directory");
}

/* Opening a FIFO for reading would wait for a writer; the job must not. */
Test(hash, fifo_is_refused_without_blocking, .timeout = 10) {
  char p[128];
  path_in(p, sizeof p, "fifo");
  cr_assert_eq(mkfifo(p, 0644), 0);
  cairn_hash_result r;
  cr_expect_eq(cairn__hash_file(p, 0, 1, &r), CAIRN_EINVAL);
  expect_failed(&r, CAIRN_EINVAL, "not a regular file");
}

/* Root reads anything, so as root the test reads as user "nobody". */
Test(hash, unreadable_file_is_a_failed_artifact) {
  char p[128];
  path_in(p, sizeof p, "secret");
  write_file(p, 100, 0);
  cr_assert_eq(chmod(p, 0), 0);
  int was_root = geteuid() == 0;
  if (was_root)
    cr_assert_eq(seteuid(65534), 0, "seteuid: %s", strerror(errno));
  cairn_hash_result r;
  int rc = cairn__hash_file(p, 0, 2, &r);
  if (was_root)
    cr_assert_eq(seteuid(0), 0); /* the saved set-user-ID is still 0 */
  cr_expect_eq(rc, CAIRN_EIO);
  expect_failed(&r, CAIRN_EIO, "permission denied");
}

/* The test hook runs after the first fstat and before any read. */
static void append_bytes(int fd, void *arg) {
  (void)fd;
  FILE *f = fopen(arg, "ab");
  cr_assert_not_null(f);
  fputs("grown", f);
  fclose(f);
}

static void rewrite_first_byte(int fd, void *arg) {
  (void)fd;
  int w = open(arg, O_WRONLY);
  cr_assert_geq(w, 0);
  cr_assert_eq(pwrite(w, "X", 1, 0), 1);
  close(w);
}

static void truncate_half(int fd, void *arg) {
  (void)fd;
  struct stat st;
  cr_assert_eq(stat(arg, &st), 0);
  cr_assert_eq(truncate(arg, st.st_size / 2), 0);
}

Test(hash, file_changed_while_hashed_is_not_given_an_identity) {
  char p[128];
  path_in(p, sizeof p, "changing");
  struct {
    cairn_hash_test_hook fn;
    const char *reason;
  } shapes[] = {
      {append_bytes, "changed while hashed: size/mtime/ctime differed"},
      {rewrite_first_byte, "changed while hashed: size/mtime/ctime differed"},
      {truncate_half, "changed while hashed: the file ended"},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    write_file(p, 8 * 4096 + 5, 1);
    /* Age the timestamps, so a rewrite within the file system's timestamp
     * granularity (a few ms) of the creation still changes mtime. */
    struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    cr_assert_eq(utimensat(AT_FDCWD, p, old, 0), 0);
    cairn__hash_set_test_hook(shapes[i].fn, p);
    cairn_hash_result r;
    int rc = cairn__hash_file(p, 4096, 2, &r);
    cairn__hash_set_test_hook(NULL, NULL);
    cr_expect_eq(rc, CAIRN_ECORRUPT, "shape %zu: %s", i, cairn_err_name(rc));
    expect_failed(&r, CAIRN_ECORRUPT, shapes[i].reason);
    cr_expect_eq(r.size, 8 * 4096 + 5); /* the size at open is reported */
  }
  /* Left alone, the same file hashes fine. */
  hash_ok(p, 4096, 2);
}
