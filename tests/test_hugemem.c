/* test_hugemem.c — the huge-page pool for the run view's arrays: which
 * requests it takes, contents across realloc, zeroed calloc of a reused
 * block, blocks of a region of their own, and every region given back when
 * nothing is live; cairn__mem_prefault maps exactly the whole pages of its
 * range (mincore) and changes no byte. Under AddressSanitizer the pool is
 * off (everything goes to malloc) and only the malloc-compatible behaviour
 * is checked. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "hugemem.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOLED 0
#endif
#endif
#ifndef POOLED
#define POOLED 1
#endif

/* The pool is off until enabled (mpi.aggregator_huge_pages). */
static void on(void) { cairn__huge_enable(1); }

static size_t mapped(void) {
  size_t m;
  cairn__huge_stats(&m, NULL);
  return m;
}

static size_t live(void) {
  size_t l;
  cairn__huge_stats(NULL, &l);
  return l;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(i * 31u + seed);
}

static int same(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(i * 31u + seed))
      return 0;
  return 1;
}

Test(hugemem, small_requests_go_to_malloc_large_ones_to_the_pool, .init = on) {
  void *s = cairn__huge_malloc(CAIRN_HUGEMEM_MIN - 1);
  cr_assert_not_null(s);
  cr_assert_eq(mapped(), 0, "a small request maps nothing");
  unsigned char *b = cairn__huge_malloc(CAIRN_HUGEMEM_MIN);
  cr_assert_not_null(b);
  cr_assert_eq((uintptr_t)b % 16, 0, "16-byte aligned");
  if (POOLED) {
    cr_assert_geq(mapped(), (size_t)64 << 20, "a 64 MiB region");
    cr_assert_geq(live(), CAIRN_HUGEMEM_MIN);
  }
  fill(b, CAIRN_HUGEMEM_MIN, 1);
  cr_assert(same(b, CAIRN_HUGEMEM_MIN, 1));
  cairn__huge_free(s); /* a malloc pointer is released by free */
  cairn__huge_free(b);
  cr_assert_eq(mapped(), 0, "nothing live: every region given back");
  cr_assert_eq(live(), 0);
  cairn__huge_free(NULL);
}

Test(hugemem, realloc_keeps_contents_and_keeps_the_block_when_it_fits, .init = on) {
  size_t n = 100000;
  unsigned char *p = cairn__huge_malloc(n);
  fill(p, n, 7);
  unsigned char *q = cairn__huge_realloc(p, n / 2);
  if (POOLED)
    cr_assert_eq(q, p, "a smaller size keeps the block");
  cr_assert(same(q, n / 2, 7));
  unsigned char *r = cairn__huge_realloc(q, 10 * n);
  cr_assert_not_null(r);
  cr_assert(same(r, n / 2, 7), "grown: the contents moved with it");
  fill(r, 10 * n, 9);
  /* From malloc into the pool. */
  unsigned char *m = malloc(1000);
  fill(m, 1000, 3);
  unsigned char *g = cairn__huge_realloc(m, 3 * CAIRN_HUGEMEM_MIN);
  cr_assert_not_null(g);
  cr_assert(same(g, 1000, 3));
  cr_assert(same(r, 10 * n, 9), "other blocks untouched");
  cr_assert_null(cairn__huge_realloc(g, 0), "size 0 frees, as realloc does");
  cairn__huge_free(r);
  cr_assert_eq(mapped(), 0);
}

Test(hugemem, calloc_zeroes_a_reused_block, .init = on) {
  size_t n = 50000;
  void *keep = cairn__huge_malloc(n); /* keeps the pool alive */
  unsigned char *a = cairn__huge_malloc(n);
  memset(a, 0xab, n);
  cairn__huge_free(a);
  unsigned char *z = cairn__huge_calloc(n / 8, 8);
  if (POOLED)
    cr_assert_eq(z, a, "the freed block of that class is reused");
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(z[i], 0, "byte %zu", i);
  cr_assert_null(cairn__huge_calloc(SIZE_MAX / 2, 4), "n * size overflows: NULL");
  cairn__huge_free(z);
  cairn__huge_free(keep);
  cr_assert_eq(mapped(), 0);
}

Test(hugemem, blocks_across_many_regions_and_one_of_its_own, .init = on) {
  enum { N = 300 };
  static unsigned char *b[N];
  size_t sz = 700000; /* 300 x 700 kB: several 64 MiB regions */
  for (unsigned i = 0; i < N; i++) {
    b[i] = cairn__huge_malloc(sz);
    cr_assert_not_null(b[i]);
    fill(b[i], sz, i);
  }
  if (POOLED)
    cr_assert_geq(mapped(), (size_t)3 * (64 << 20));
  size_t before = mapped();
  unsigned char *big = cairn__huge_malloc((size_t)40 << 20); /* over the largest class */
  cr_assert_not_null(big);
  if (POOLED)
    cr_assert_geq(mapped() - before, (size_t)40 << 20, "a region of its own");
  fill(big, (size_t)40 << 20, 5);
  for (unsigned i = 0; i < N; i++)
    cr_assert(same(b[i], sz, i), "block %u intact", i);
  cr_assert(same(big, (size_t)40 << 20, 5));
  cairn__huge_free(big);
  cr_assert_eq(mapped(), before, "its region is unmapped at once");
  for (unsigned i = 0; i < N; i += 2)
    cairn__huge_free(b[i]);
  /* Freed blocks are reused: no new region for the same sizes. */
  for (unsigned i = 0; i < N; i += 2) {
    b[i] = cairn__huge_malloc(sz);
    fill(b[i], sz, i + 1);
  }
  cr_assert_eq(mapped(), before);
  for (unsigned i = 0; i < N; i++)
    cr_assert(same(b[i], sz, i % 2 ? i : i + 1));
  for (unsigned i = 0; i < N; i++)
    cairn__huge_free(b[i]);
  cr_assert_eq(mapped(), 0);
  cr_assert_eq(live(), 0);
}

Test(hugemem, a_growing_block_doubles_so_quarter_steps_rarely_copy, .init = on) {
  size_t n = 100000;
  void *keep = cairn__huge_malloc(n);
  unsigned char *p = cairn__huge_malloc(n);
  size_t have = cairn__huge_usable(p);
  cr_assert_geq(have, n);
  unsigned char *q = cairn__huge_realloc(p, have + 1);
  size_t got = cairn__huge_usable(q);
  if (POOLED) {
    cr_assert_geq(got, 2 * have, "a moved block takes twice the old size");
    /* The next quarter-size growths fit without a move. */
    cr_assert_eq(cairn__huge_realloc(q, have + have / 4), q);
    cr_assert_eq(cairn__huge_realloc(q, have + have / 2), q);
  } else {
    cr_assert_geq(got, have + 1);
  }
  void *m = malloc(100);
  cr_assert_geq(cairn__huge_usable(m), 100, "a malloc pointer: malloc_usable_size");
  cr_assert_eq(cairn__huge_usable(NULL), 0);
  free(m);
  cairn__huge_free(q);
  cairn__huge_free(keep);
}

Test(hugemem, off_by_default_and_blocks_outlive_turning_it_off) {
  void *a = cairn__huge_malloc(1 << 20);
  cr_assert_eq(mapped(), 0, "off by default: malloc");
  cairn__huge_free(a);
  cairn__huge_enable(1);
  unsigned char *b = cairn__huge_malloc(1 << 20);
  if (POOLED)
    cr_assert_gt(mapped(), 0);
  cairn__huge_enable(0);
  fill(b, 1 << 20, 4);
  unsigned char *c = cairn__huge_realloc(b, 4 << 20); /* off: leaves the pool */
  cr_assert(same(c, 1 << 20, 4));
  cr_assert_eq(mapped(), 0, "the pool block was freed into the pool, which is now empty");
  cairn__huge_free(c);
}

/* Pages of a fresh anonymous mapping that are resident (mincore). */
static size_t resident(const unsigned char *base, size_t pages, size_t page, unsigned char *vec) {
  cr_assert_eq(mincore((void *)base, pages * page, vec), 0);
  size_t n = 0;
  for (size_t i = 0; i < pages; i++)
    n += vec[i] & 1;
  return n;
}

Test(hugemem, prefault_maps_the_whole_pages_inside_the_range_and_keeps_contents) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = 64;
  unsigned char *base = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(base, MAP_FAILED);
#ifdef MADV_NOHUGEPAGE
  madvise(base, pages * page, MADV_NOHUGEPAGE); /* one 4 KiB page per fault */
#endif
  unsigned char vec[64];
  cr_assert_eq(resident(base, pages, page, vec), 0, "a fresh mapping has no pages yet");
  /* Written data in the first page stays; the kernel may lack the call. */
  base[10] = 0x5a;
  errno = 0;
  if (madvise(base + 40 * page, page, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
    cr_skip_test("MADV_POPULATE_WRITE needs Linux 5.14");
  cr_assert_eq(resident(base, pages, page, vec), 2);

  /* Shorter than the minimum (a page), even page-aligned: nothing. */
  cairn__mem_prefault(base + 2 * page, CAIRN_PREFAULT_MIN - 1);
  cr_assert_eq(resident(base, pages, page, vec), 2, "a range below the minimum maps no page");
  /* An unaligned range: only the pages wholly inside it. */
  unsigned char *from = base + 8 * page + 100;
  size_t len = 20 * page;
  cairn__mem_prefault(from, len);
  resident(base, pages, page, vec);
  cr_assert_eq(vec[8] & 1, 0, "the partial first page is not touched");
  for (size_t i = 9; i < 28; i++)
    cr_assert_eq(vec[i] & 1, 1, "page %zu inside the range is mapped", i);
  cr_assert_eq(vec[28] & 1, 0, "the partial last page is not touched");
  cr_assert_eq(resident(base, pages, page, vec), 2 + 19);
  for (size_t i = 9 * page; i < 28 * page; i++)
    cr_assert_eq(base[i], 0, "populated pages read as zeros");
  cr_assert_eq(base[10], 0x5a);
  cairn__mem_prefault(NULL, 1 << 20); /* no-op */
  munmap(base, pages * page);
}

static size_t singles(size_t *bytes) {
  size_t n;
  cairn__huge_single_stats(&n, bytes, NULL);
  return n;
}

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* The pool off (the default): malloc and calloc go to libc; a block that
 * realloc grows to CAIRN_HUGEMEM_MAP_MIN or more moves into a mapping of
 * its own (a page multiple) and grows there: contents kept, and the pages
 * already written are not faulted in again (a copy into fresh memory would
 * fault every page of the new block), within its reservation and past it. */
Test(hugemem, with_the_pool_off_growing_blocks_get_mappings_that_grow_without_a_copy) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes;
  unsigned char *small = cairn__huge_malloc(CAIRN_HUGEMEM_MAP_MIN - 1);
  unsigned char *big = cairn__huge_malloc(4u << 20);
  unsigned char *z = cairn__huge_calloc(1, 4u << 20);
  cr_assert_eq(singles(NULL), 0, "malloc and calloc: libc");
  cairn__huge_free(big);
  cairn__huge_free(z);
  fill(small, CAIRN_HUGEMEM_MAP_MIN - 1, 3);
  unsigned char *a = cairn__huge_realloc(small, CAIRN_HUGEMEM_MAP_MIN + 1);
  cr_assert_not_null(a);
  cr_assert(same(a, CAIRN_HUGEMEM_MAP_MIN - 1, 3), "contents kept moving into a mapping");
  if (!POOLED) { /* AddressSanitizer: everything from malloc */
    cr_assert_eq(singles(NULL), 0);
    cairn__huge_free(a);
    return;
  }
  cr_assert_eq(singles(&bytes), 1);
  size_t n = (CAIRN_HUGEMEM_MAP_MIN + 1 + page - 1) & ~(page - 1);
  cr_assert_eq(bytes, n, "a page multiple");
  cr_assert_eq(cairn__huge_usable(a), n);
  cr_assert_eq((uintptr_t)a % page, 0);
  /* grow it to its reservation (1 MiB: CAIRN_HUGEMEM_RESERVE_MIN), write all
   * of it, then past the reservation (mremap) and on by a quarter at a time */
  cr_assert_eq(CAIRN_HUGEMEM_RESERVE_MIN, 1u << 20);
  a = cairn__huge_realloc(a, 1u << 20);
  cr_assert_not_null(a);
  cr_assert(same(a, CAIRN_HUGEMEM_MAP_MIN - 1, 3));
  fill(a, 1u << 20, 7);
  long f0 = minor_faults();
  n = 1u << 20;
  for (int k = 0; k < 8; k++) {
    n = k ? n + n / 4 : 2u << 20;
    a = cairn__huge_realloc(a, n);
    cr_assert_not_null(a);
  }
  long faults = minor_faults() - f0;
  cr_assert_lt(faults, 64, "%ld page faults growing a written 1 MiB block (a copy: >= 256)",
               faults);
  cr_assert(same(a, 1u << 20, 7), "contents kept across the remaps");
  n = (n + page - 1) & ~(page - 1);
  cr_assert_eq(cairn__huge_usable(a), n, "the page multiple of the last size");
  cr_assert_eq(singles(&bytes), 1);
  cr_assert_eq(bytes, n);
  /* shrinking keeps the block */
  cr_assert_eq(cairn__huge_realloc(a, 1u << 20), a);
  cairn__huge_free(a);
  cr_assert_eq(singles(&bytes), 0);
  cr_assert_eq(bytes, 0);
}

/* Many blocks: the table by address grows, finds every block after others
 * were freed in between (deletion moves entries back), and ends empty. */
Test(hugemem, many_own_mappings_are_found_after_others_are_freed) {
  if (!POOLED)
    cr_skip_test("AddressSanitizer: blocks come from malloc");
  enum { N = 1500 };
  static unsigned char *b[N];
  for (unsigned i = 0; i < N; i++) {
    b[i] = cairn__huge_realloc(cairn__huge_malloc(64), CAIRN_HUGEMEM_MAP_MIN);
    cr_assert_not_null(b[i]);
    fill(b[i], 64, i);
  }
  cr_assert_eq(singles(NULL), N);
  for (unsigned i = 0; i < N; i += 3)
    cairn__huge_free(b[i]);
  cr_assert_eq(singles(NULL), N - N / 3);
  for (unsigned i = 0; i < N; i++) {
    if (i % 3 == 0)
      continue;
    cr_assert_eq(cairn__huge_usable(b[i]), CAIRN_HUGEMEM_MAP_MIN, "block %u", i);
    b[i] = cairn__huge_realloc(b[i], 2 * CAIRN_HUGEMEM_MAP_MIN);
    cr_assert(same(b[i], 64, i), "block %u", i);
  }
  size_t bytes;
  cr_assert_eq(singles(&bytes), N - N / 3);
  cr_assert_eq(bytes, (size_t)(N - N / 3) * 2 * CAIRN_HUGEMEM_MAP_MIN);
  for (unsigned i = 0; i < N; i++)
    if (i % 3)
      cairn__huge_free(b[i]);
  cr_assert_eq(singles(NULL), 0);
  /* a pointer that is not a block of ours still goes to free() */
  void *p = malloc(100);
  cairn__huge_free(p);
}

/* vm.overcommit_memory = 2 ignores MAP_NORESERVE: a block then maps only
 * what it holds (no reservation taking the application's commit charge)
 * and grows by mremap, still without a copy. */
Test(hugemem, under_strict_overcommit_a_block_reserves_nothing_extra) {
  if (!POOLED)
    cr_skip_test("AddressSanitizer: blocks come from malloc");
  size_t page = (size_t)sysconf(_SC_PAGESIZE), reserved, bytes;
  unsigned char *a = cairn__huge_realloc(cairn__huge_malloc(64), CAIRN_HUGEMEM_MAP_MIN);
  cairn__huge_single_stats(NULL, &bytes, &reserved);
  cr_assert_eq(bytes, CAIRN_HUGEMEM_MAP_MIN);
  cr_assert_eq(reserved, CAIRN_HUGEMEM_RESERVE_MIN, "room to grow in place by default");
  cairn__huge_free(a);
  cairn__huge_set_strict_commit(1);
  a = cairn__huge_realloc(cairn__huge_malloc(64), CAIRN_HUGEMEM_MAP_MIN);
  cairn__huge_single_stats(NULL, &bytes, &reserved);
  cr_assert_eq(reserved, bytes, "strict: exactly what it holds");
  a = cairn__huge_realloc(a, 1u << 20);
  fill(a, 1u << 20, 9);
  long f0 = minor_faults();
  a = cairn__huge_realloc(a, 4u << 20);
  long faults = minor_faults() - f0;
  cr_assert_lt(faults, 64, "%ld faults: grown by mremap, not copied (a copy: >= 256)", faults);
  cr_assert(same(a, 1u << 20, 9));
  cairn__huge_single_stats(NULL, &bytes, &reserved);
  cr_assert_eq(bytes, 4u << 20);
  cr_assert_eq(reserved, bytes);
  cr_assert_eq(bytes % page, 0);
  cairn__huge_free(a);
  cairn__huge_set_strict_commit(0);
}
