/*
 * hasher.h — private to cairn. The background hasher pool: computes the
 * content hash of every artifact logged with cairn_artifact (and friends),
 * off the application's threads, and hands the finished record to the
 * lossless control channel. lineage.hasher_threads threads, started on the
 * first artifact of a run; a thread takes one queued file at a time, and
 * idle threads help with its leaves. They make no MPI and no HDF5 call.
 */
#ifndef CAIRN_HASHER_H
#define CAIRN_HASHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Queues `path` for hashing (copied, with props: props_len bytes of
 * validated properties, may be 0). Starts the pool if needed. Returns
 * CAIRN_OK, CAIRN_ENOMEM or CAIRN_ETHREAD (no thread could start; if only
 * some could, the pool runs with those). Thread-safe; never waits for
 * hashing (a short critical section only). */
int cairn__hasher_submit(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                         uint64_t t_ns, const char *path, size_t len, const char *props,
                         size_t props_len);

/* Queues a committed dataslice: its member files are hashed and recorded
 * (kind DATASET, ids from cairn__lineage_next_id), then the slice itself
 * (kind DATASLICE, uri = its name) with a hash derived from its members'
 * (docs/format.md). Takes ownership of paths (each and the array, malloc'd).
 * Returns CAIRN_OK, CAIRN_ENOMEM or CAIRN_ETHREAD (paths freed). */
int cairn__hasher_submit_slice(uint64_t id, uint8_t role, uint64_t exec, uint64_t t_ns,
                               const char *name, char **paths, size_t n);

/* Defined in api.c: the next lineage id of this process (rank << 32 | seq). */
uint64_t cairn__lineage_next_id(void);

/* Hashes everything still queued, then stops the pool's threads (no-op if
 * it never started). Called by finalize before the drain stops. */
void cairn__hasher_stop(void);

/* For tests: threads in the running pool (0 if not started), and the most
 * of them that were hashing at the same time since it started. */
unsigned cairn__hasher_threads(void);
unsigned cairn__hasher_peak_busy(void);

/* Tests only: every leaf of a file of several leaves takes at least this
 * long (microseconds; 0: no delay), so that whether the pool's threads
 * work at the same time does not depend on how fast this machine hashes. */
extern _Atomic unsigned cairn__hasher_test_leaf_delay_us;
/* Tests only: the thread that took a file of several leaves waits this long
 * before it publishes them for the others (the window in which a stop once
 * let the idle threads leave without helping). */
extern _Atomic unsigned cairn__hasher_test_publish_delay_us;

/* Defined in api.c: pushes a finished artifact record on the control
 * channel (allocates; returns CAIRN_OK or CAIRN_ENOMEM). */
int cairn__ctl_push_artifact(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                             uint64_t size, uint64_t t_ns, const char *uri, size_t uri_len,
                             const char *hash, size_t hash_len, const char *props,
                             size_t props_len);

#endif /* CAIRN_HASHER_H */
