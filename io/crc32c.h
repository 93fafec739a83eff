/*
 * crc32c.h — private to cairn: CRC32C (Castagnoli), the checksum of the
 * write-ahead log, with the same conventions as iSCSI, ext4 and Btrfs.
 */
#ifndef CAIRN_CRC32C_H
#define CAIRN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extends `crc` over `len` bytes of `buf` and returns the new value. Start
 * with crc = 0; the pre- and post-inversion (init 0xFFFFFFFF, final xor
 * 0xFFFFFFFF) happen inside, so calls chain like zlib's crc32():
 * cairn__crc32c(cairn__crc32c(0, a, n), b, m) == CRC of a followed by b.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a table-driven
 * (slicing-by-8) software version. buf may be NULL when len is 0.
 * Thread-safe: the tables are built once, under pthread_once.
 */
uint32_t cairn__crc32c(uint32_t crc, const void *buf, size_t len);

/* The software implementation alone, same contract; for tests that check
 * the hardware path against it. */
uint32_t cairn__crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* CAIRN_CRC32C_H */
