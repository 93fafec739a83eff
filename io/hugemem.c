/* hugemem.c — the run view's large arrays in huge-page-advised regions.
 * See hugemem.h. */
#include "hugemem.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HUGEMEM_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HUGEMEM_OFF 1
#endif
#endif

#ifdef HUGEMEM_OFF
enum { POOL_ON = 0 };
#else
enum { POOL_ON = 1 };
#endif

#define HUGE_PAGE ((size_t)2 << 20)
#define REGION ((size_t)64 << 20)
#define HEADER ((size_t)16)
#define MAGIC 0x6875676du /* "hugm" */
/* Four classes per power of two from 4 KiB; the largest pooled class is
 * 16 MiB (4 << 22). Bigger blocks get a region of their own. */
#define NCLASS 49
#define SINGLE UINT32_MAX

typedef struct {
  uint32_t magic;
  uint32_t cls; /* class, or SINGLE: the block is its region */
  uint64_t len; /* block bytes, header included */
} header;

typedef struct {
  unsigned char *base;
  size_t len;
} region;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int enabled; /* cairn__huge_enable; off: malloc only */
static region *regions;
static size_t nregions, capregions;
/* 0 while no region is mapped: then no pointer is a block of ours, and
 * free, realloc and usable go to libc without taking mu (the pool is off
 * by default). A block's region outlives the block, so a caller holding a
 * block always sees 1. */
static _Atomic int any_region;
static unsigned char *cur, *end; /* the bump range of the newest region   */
static void *freelist[NCLASS];   /* freed blocks, linked through their data */
static size_t live_blocks, live_bytes, mapped_bytes;

/* fork() while another thread holds mu (an aggregator growing its view)
 * would leave the child's copy locked forever: hold it across fork, as
 * malloc does with its own locks. */
static void atfork_prepare(void) { pthread_mutex_lock(&mu); }
/* parent and child: the forking thread holds it */
static void atfork_release(void) { pthread_mutex_unlock(&mu); }

__attribute__((constructor)) static void hugemem_ctor(void) {
  pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

static size_t class_size(unsigned c) { return (size_t)(4u + c % 4u) << (c / 4u + 10u); }

static unsigned class_of(size_t bytes) {
  unsigned c = 0;
  while (class_size(c) < bytes)
    c++;
  return c;
}

/* Maps len bytes (a multiple of HUGE_PAGE) at a 2 MiB boundary, advised for
 * huge pages. NULL if the kernel refuses. */
static unsigned char *map_region(size_t len) {
  size_t over = len + HUGE_PAGE;
  unsigned char *m = mmap(NULL, over, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  uintptr_t a = ((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
  unsigned char *b = (unsigned char *)a;
  if (b > m)
    munmap(m, (size_t)(b - m));
  if (b + len < m + over)
    munmap(b + len, (size_t)(m + over - (b + len)));
#ifdef MADV_HUGEPAGE
  madvise(b, len, MADV_HUGEPAGE); /* advice: without THP, 4 KiB pages */
#endif
  return b;
}

/* Under mu. */
static int add_region(unsigned char *base, size_t len) {
  if (nregions == capregions) {
    size_t nc = capregions ? capregions * 2 : 16;
    region *nr = realloc(regions, nc * sizeof *nr);
    if (!nr)
      return -1;
    regions = nr;
    capregions = nc;
  }
  regions[nregions++] = (region){base, len};
  atomic_store_explicit(&any_region, 1, memory_order_relaxed);
  mapped_bytes += len;
  return 0;
}

/* Under mu: the region holding p, or -1. */
static long find_region(const void *p) {
  const unsigned char *q = p;
  for (size_t i = 0; i < nregions; i++)
    if (q >= regions[i].base && q < regions[i].base + regions[i].len)
      return (long)i;
  return -1;
}

/* Under mu: nothing is live any more; give every region back. */
static void release_all(void) {
  for (size_t i = 0; i < nregions; i++)
    munmap(regions[i].base, regions[i].len);
  free(regions);
  regions = NULL;
  nregions = capregions = 0;
  atomic_store_explicit(&any_region, 0, memory_order_relaxed);
  cur = end = NULL;
  memset(freelist, 0, sizeof freelist);
  mapped_bytes = 0;
}

/* A block of at least `bytes` data bytes from the pool; *fresh is 1 if
 * its memory was never handed out (zero). NULL if no region could be
 * mapped. */
static void *pool_alloc(size_t bytes, int *fresh) {
  size_t total = bytes + HEADER;
  if (total < bytes)
    return NULL;
  header *h = NULL;
  pthread_mutex_lock(&mu);
  if (total > class_size(NCLASS - 1)) {
    size_t len = (total + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    unsigned char *b = len >= total ? map_region(len) : NULL;
    if (b && add_region(b, len) == 0) {
      h = (header *)b;
      *h = (header){MAGIC, SINGLE, len};
      *fresh = 1;
    } else if (b) {
      munmap(b, len);
    }
  } else {
    unsigned c = class_of(total);
    size_t sz = class_size(c);
    if (freelist[c]) {
      unsigned char *data = freelist[c];
      memcpy(&freelist[c], data, sizeof(void *));
      h = (header *)(data - HEADER);
      *fresh = 0;
    } else {
      if ((size_t)(end - cur) < sz) {
        unsigned char *b = map_region(REGION);
        if (b && add_region(b, REGION) != 0) {
          munmap(b, REGION);
          b = NULL;
        }
        if (b) {
          cur = b;
          end = b + REGION;
        }
      }
      if ((size_t)(end - cur) >= sz) {
        h = (header *)cur;
        cur += sz;
        *fresh = 1;
      }
    }
    if (h)
      *h = (header){MAGIC, c, sz};
  }
  if (h) {
    live_blocks++;
    live_bytes += h->len;
  }
  pthread_mutex_unlock(&mu);
  return h ? (unsigned char *)h + HEADER : NULL;
}

void *cairn__huge_malloc(size_t bytes) {
  if (POOL_ON && bytes >= CAIRN_HUGEMEM_MIN && atomic_load_explicit(&enabled, memory_order_relaxed)) {
    int fresh;
    void *p = pool_alloc(bytes, &fresh);
    if (p)
      return p;
  }
  return malloc(bytes);
}

void *cairn__huge_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  size_t bytes = n * size;
  if (POOL_ON && bytes >= CAIRN_HUGEMEM_MIN && atomic_load_explicit(&enabled, memory_order_relaxed)) {
    int fresh;
    void *p = pool_alloc(bytes, &fresh);
    if (p) {
      if (!fresh)
        memset(p, 0, bytes);
      return p;
    }
  }
  return calloc(n, size);
}

/* Data bytes of a pool block, or 0 if p is not one. */
static size_t pool_usable(const void *p) {
  if (!atomic_load_explicit(&any_region, memory_order_relaxed))
    return 0;
  pthread_mutex_lock(&mu);
  long r = find_region(p);
  pthread_mutex_unlock(&mu);
  if (r < 0)
    return 0;
  const header *h = (const header *)((const unsigned char *)p - HEADER);
  return h->len - HEADER;
}

void cairn__huge_free(void *p) {
  if (!p)
    return;
  if (!atomic_load_explicit(&any_region, memory_order_relaxed)) {
    free(p);
    return;
  }
  pthread_mutex_lock(&mu);
  long r = find_region(p);
  if (r < 0) {
    pthread_mutex_unlock(&mu);
    free(p);
    return;
  }
  header *h = (header *)((unsigned char *)p - HEADER);
  if (h->magic != MAGIC) {
    pthread_mutex_unlock(&mu);
    abort(); /* not a block of ours: memory corruption or a bad pointer */
  }
  live_blocks--;
  live_bytes -= h->len;
  if (h->cls == SINGLE) {
    region g = regions[r];
    regions[r] = regions[--nregions];
    mapped_bytes -= g.len;
    munmap(g.base, g.len);
  } else {
    memcpy(p, &freelist[h->cls], sizeof(void *));
    freelist[h->cls] = p;
  }
  if (live_blocks == 0)
    release_all();
  pthread_mutex_unlock(&mu);
}

void *cairn__huge_realloc(void *p, size_t bytes) {
  if (!p)
    return cairn__huge_malloc(bytes);
  if (bytes == 0) {
    cairn__huge_free(p);
    return NULL;
  }
  size_t have = pool_usable(p);
  if (have) {
    if (bytes <= have)
      return p;
  } else {
    if (!POOL_ON || bytes < CAIRN_HUGEMEM_MIN ||
        !atomic_load_explicit(&enabled, memory_order_relaxed))
      return realloc(p, bytes);
    have = malloc_usable_size(p);
  }
  /* A block that grows is likely to grow again (the view's arrays grow by
   * a quarter at a time, one class up): take twice the old size, so the
   * data is copied about once in all, not at every step. */
  size_t want = bytes;
  if (have >= CAIRN_HUGEMEM_MIN && want < 2 * have && 2 * have > have)
    want = 2 * have;
  void *q = cairn__huge_malloc(want);
  if (!q)
    return NULL; /* p is left as it was, as realloc does */
  memcpy(q, p, have < bytes ? have : bytes);
  cairn__huge_free(p);
  return q;
}

void cairn__huge_enable(int on) { atomic_store_explicit(&enabled, on != 0, memory_order_relaxed); }

size_t cairn__huge_usable(const void *p) {
  if (!p)
    return 0;
  size_t n = pool_usable(p);
  return n ? n : malloc_usable_size((void *)p);
}

void cairn__huge_stats(size_t *mapped, size_t *live) {
  pthread_mutex_lock(&mu);
  if (mapped)
    *mapped = mapped_bytes;
  if (live)
    *live = live_bytes;
  pthread_mutex_unlock(&mu);
}

#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23 /* <linux/mman.h>, Linux 5.14; older glibc lacks it */
#endif

static _Atomic int prefault_off; /* the kernel refused once: stop asking */

void cairn__mem_prefault(void *p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  if (!p || bytes < CAIRN_PREFAULT_MIN ||
      atomic_load_explicit(&prefault_off, memory_order_relaxed))
    return;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  if (page == 0 || (page & (page - 1)) != 0)
    return;
  uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t e = ((uintptr_t)p + bytes) & ~(page - 1);
  if (e <= a)
    return;
  /* EINVAL: a kernel before 5.14; ENOMEM/EFAULT: nothing to gain now
   * either. The pages then fault in as they are written. */
  if (madvise((void *)a, e - a, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
    atomic_store_explicit(&prefault_off, 1, memory_order_relaxed);
#else
  (void)p;
  (void)bytes;
#endif
}
