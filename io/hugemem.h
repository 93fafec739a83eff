/*
 * hugemem.h — private to cairn. Memory for the run view's large arrays
 * (per-rank cells, per-step statistics), carved from regions advised for
 * transparent huge pages.
 *
 * Off unless enabled (mpi.aggregator_huge_pages): the pool trades memory
 * for page faults — a block that grows takes twice its old size and freed
 * blocks stay in the pool — and measured 1.5–2.1x the aggregator rank's
 * peak RSS for 40–55% less aggregator CPU per record in bench_aggregator,
 * 9–16% less of cairn's CPU in the 8-rank training bench (bench/README.md).
 *
 * Why: a node aggregator fills its run view with memory that is new to the
 * process at every step of the job, and each first touch of a 4 KiB page is
 * a page fault; where a fault is expensive (virtual machines: 11–14 µs a
 * page measured on one guest) that was half of the aggregator's CPU per
 * record. glibc's arenas cannot be asked for huge pages per allocation, and
 * each of the view's arrays is far below 2 MiB, so the arrays are packed
 * into 64 MiB regions, 2 MiB aligned and madvise(MADV_HUGEPAGE)d: with THP
 * at `madvise` or `always`, one fault then maps 2 MiB. With THP off, the
 * regions fault in 4 KiB pages as malloc's memory would.
 *
 * Blocks come in size classes (four per power of two, at least 4 KiB) with
 * a free list each; a freed block is reused by the next request of its
 * class; realloc of a block to a larger size takes at least twice the old
 * size, so an array that grows a quarter at a time is copied about once in
 * all. Requests below CAIRN_HUGEMEM_MIN go to malloc. When the last live
 * block is freed, every region is unmapped. Thread-safe (one mutex: the
 * calls are per array, not per record). Under AddressSanitizer everything
 * goes to malloc, so the sanitizer keeps watching these arrays.
 */
#ifndef CAIRN_HUGEMEM_H
#define CAIRN_HUGEMEM_H

#include <stddef.h>

/* Turns the pool on or off for later requests (off by default: then every
 * call is its libc namesake). Blocks already in the pool stay valid and
 * are freed into it either way. mpi.aggregator_huge_pages sets it. */
void cairn__huge_enable(int on);

/* Requests smaller than this go to malloc. */
#define CAIRN_HUGEMEM_MIN ((size_t)16384)

/* malloc, calloc, realloc and free over the pool. free and realloc accept
 * any pointer from malloc as well (they tell the two apart by address), so
 * arrays of either origin can be released the same way. realloc to a size
 * that still fits the block keeps the block (no copy). NULL when out of
 * memory, as their libc namesakes. */
void *cairn__huge_malloc(size_t bytes);
void *cairn__huge_calloc(size_t n, size_t size);
void *cairn__huge_realloc(void *p, size_t bytes);
void cairn__huge_free(void *p);

/* Bytes p can hold (its block's data bytes, or malloc_usable_size for a
 * malloc pointer); 0 for NULL. What a memory bound should count. */
size_t cairn__huge_usable(const void *p);

/* Maps the pages of [p, p + bytes) that are not mapped yet, writable, in
 * one call (madvise MADV_POPULATE_WRITE, Linux 5.14) instead of one page
 * fault per 4 KiB page when they are first written — for memory about to
 * be written through, such as the part an array just grew by. Only whole
 * pages inside the range are touched (a range shorter than
 * CAIRN_PREFAULT_MIN, one page, holds none and costs no call). Contents
 * are unchanged. Best effort: where the kernel lacks it,
 * or the memory is short, the pages fault in on first write as before
 * (the first refusal turns it off for the process). Thread-safe.
 *
 * Why: on the virtual machine this was measured on, a first write to a
 * page cost 10.4 µs and a populated page 0.7 µs plus 5.2 µs at its first
 * write (the hypervisor's own mapping); the run view's cells fault in a
 * page per 300 records, so this took the view's cost per record in
 * bench_aggregator from 77 to 66 ns with 16 ranks x 100 metrics (arrays
 * that grow by hundreds of KiB), and changed nothing with 8 ranks x 1,000
 * metrics (small arrays that realloc mostly moves: the copy into fresh
 * memory faults before this call could map it). On bare metal the
 * saving is smaller (faults cost about 0.2 µs) but one call still costs
 * less than the faults it replaces. */
void cairn__mem_prefault(void *p, size_t bytes);

#define CAIRN_PREFAULT_MIN ((size_t)4096)

/* Statistics, for tests and benchmarks: bytes mapped in regions, and bytes
 * in live pool blocks (class sizes). */
void cairn__huge_stats(size_t *mapped, size_t *live);

#endif /* CAIRN_HUGEMEM_H */
