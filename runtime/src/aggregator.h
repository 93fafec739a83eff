/*
 * aggregator.h — private to cairn. The node aggregator: a background thread
 * of one rank per group (a node, or a "virtual node" of
 * mpi.ranks_per_aggregator ranks) that empties the shared-memory channels of
 * the group's ranks into one write-ahead log. It makes no MPI and no HDF5
 * call. Without MPI none of this runs and the functions below are no-ops.
 */
#ifndef CAIRN_AGGREGATOR_H
#define CAIRN_AGGREGATOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "run_view.h"
#include "shm_channel.h"

/* Where producers ring the aggregator's doorbell: a word in the node shared
 * segment (a process-shared futex). Set on every rank before logging. */
void cairn__agg_set_doorbell(_Atomic uint32_t *word);

/* Starts the aggregator thread on `n` channels; its WAL segments are
 * <run_dir>/wal-r<rank>-*.cwal. Returns CAIRN_OK, CAIRN_EIO, CAIRN_ETHREAD. */
int cairn__agg_start(cairn_shm_channel *const *chans, uint32_t n, const char *run_dir,
                     const uint8_t run_id[16], uint32_t rank, const cairn_config *cfg,
                     char *err, size_t errlen);

/* Stops the aggregator thread and forwards what is left on the calling
 * thread (at the application's priority: the aggregator thread may be
 * niced, mpi.aggregator_nice) until every channel is closed (its rank
 * finished) or its rank is dead, and empty; then closes the WAL. Returns
 * CAIRN_OK or CAIRN_EIO. No-op without an aggregator. */
int cairn__agg_stop(void);

/* After cairn__agg_stop: the view of everything the aggregator wrote to its
 * log, built while it wrote (mpi.aggregator_memory), so that finalize need
 * not read the log back; still a builder (the writer finishes it, streamed
 * when it can). The caller owns it. NULL if none was kept (over the memory
 * bound, disabled, or a block did not decode): then read the log instead. */
cairn_view_builder *cairn__agg_take_builder(void);

/* Rings the doorbell: lock-free, one futex wake only if not already rung.
 * Async-signal-safe. */
void cairn__agg_wake(void);

/* 1 when this process runs no aggregator, or when the aggregator has
 * written and synced everything it saw after SIGTERM. Async-signal-safe. */
int cairn__agg_flushed(void);

/* Blocks forwarded so far (for tests and the accounting line). */
uint64_t cairn__agg_blocks(void);

#endif /* CAIRN_AGGREGATOR_H */
