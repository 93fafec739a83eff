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
