/*
 * crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82F63B78): a
 * portable slicing-by-8 implementation and, on x86-64, the SSE4.2 crc32
 * instruction chosen at run time.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CAIRN_CRC32C_HAVE_SSE42 1
#include <nmmintrin.h>
#endif

#define CRC32C_POLY_REFLECTED 0x82F63B78u

typedef uint32_t (*crc32c_fn)(uint32_t crc, const uint8_t *p, size_t len);

/* table[k][b]: the CRC of byte b followed by k zero bytes. Slicing-by-8 folds
 * eight input bytes per step with eight independent lookups. */
static uint32_t crc_table[8][256];
static crc32c_fn crc_impl;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* Loads 32 bits little-endian whatever the host order (compilers turn this
 * into one load on little-endian machines). */
static inline uint32_t load_le32(const uint8_t *p)
{
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

/* `crc` is the running register, already inverted by the caller. */
static uint32_t crc32c_slice8(uint32_t crc, const uint8_t *p, size_t len)
{
  while (len >= 8) {
    uint32_t lo = crc ^ load_le32(p);
    uint32_t hi = load_le32(p + 4);
    crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
          crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
          crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
          crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len--)
    crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

#ifdef CAIRN_CRC32C_HAVE_SSE42
/* The target attribute lets this one function use SSE4.2 without compiling
 * the whole library for it; it is only called after the CPU check. */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8); /* unaligned-safe; x86 is little-endian */
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (len--)
    c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

static void crc32c_init(void)
{
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
    crc_table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = crc_table[0][n];
    for (int k = 1; k < 8; k++) {
      c = crc_table[0][c & 0xFF] ^ (c >> 8);
      crc_table[k][n] = c;
    }
  }
  crc_impl = crc32c_slice8;
#ifdef CAIRN_CRC32C_HAVE_SSE42
  __builtin_cpu_init(); /* may run before constructors in a preloaded lib */
  if (__builtin_cpu_supports("sse4.2"))
    crc_impl = crc32c_sse42;
#endif
}

uint32_t cairn__crc32c(uint32_t crc, const void *buf, size_t len)
{
  /* pthread_once also publishes the tables and crc_impl to this thread. */
  pthread_once(&crc_once, crc32c_init);
  if (len == 0)
    return crc;
  return ~crc_impl(~crc, buf, len);
}

uint32_t cairn__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
  pthread_once(&crc_once, crc32c_init);
  if (len == 0)
    return crc;
  return ~crc32c_slice8(~crc, buf, len);
}
