/*
 * cairn_mpi.h — the MPI-specific part of cairn's public API (include it
 * after or instead of cairn.h in MPI programs; cairn.h itself never needs
 * mpi.h).
 *
 * Under MPI cairn starts inside MPI_Init/MPI_Init_thread and finishes inside
 * MPI_Finalize (see README.md, "Under MPI"). Its background threads make no
 * MPI and no HDF5 call at any thread level: collective work happens only in
 * MPI_Init, MPI_Finalize and the collective flush point below, on the
 * application's thread.
 */
#ifndef CAIRN_MPI_H
#define CAIRN_MPI_H

#include <mpi.h>

#include "cairn.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Collective over `comm`: every rank of comm publishes its calling thread's
 * records and waits until they are in its aggregator's write-ahead log
 * (cairn_flush), then the ranks synchronise. When it returns on any rank,
 * everything every rank of comm logged from its calling thread before the
 * call is durable in the run directory — a consistent point to take a
 * checkpoint at, or after which a kill loses nothing logged before it.
 *
 * Returns CAIRN_OK on every rank, or CAIRN_EIO on every rank if any rank's
 * flush failed (its log could not be written or its aggregator is gone),
 * CAIRN_ENOTINIT on every rank if cairn is not running under MPI on some
 * rank, CAIRN_EINVAL for MPI_COMM_NULL. Must be called by every rank of comm
 * (it is collective), from the thread that makes the application's MPI
 * calls. Not for the loop: it waits for I/O.
 */
CAIRN_API int cairn_flush_collective(MPI_Comm comm);

/* ---------------------------------------------------------------------- */
/* Collective content hashes                                               */
/* ---------------------------------------------------------------------- */

/* Room for any text cairn_hash_file_collective writes: a digest needs
 * CAIRN_HASH_TEXT_MIN bytes ("cairn-merkle-sha256-v1:" + 64 hex digits +
 * NUL); a failure's "error: <reason>" at most CAIRN_HASH_TEXT_MAX. */
#define CAIRN_HASH_TEXT_MIN 88u
#define CAIRN_HASH_TEXT_MAX 272u

/*
 * Collective over comm: computes the content hash of one file that every
 * rank sees at the same path (e.g. a checkpoint written with MPI-IO on a
 * parallel file system). Rank r of p reads and hashes only its share of the
 * file's 4 MiB leaves, rank 0 combines the leaf hashes, and every rank gets
 * the same identity — the one cairn_artifact records for that file
 * (cairn-merkle-sha256-v1, docs/format.md), whatever the number of ranks.
 * Does not need cairn to be initialized, only MPI.
 *
 * out (outlen >= CAIRN_HASH_TEXT_MIN bytes) receives, on every rank,
 * "cairn-merkle-sha256-v1:<64 hex>" or, if the file could not be hashed,
 * "error: <reason>" (truncated to outlen; CAIRN_HASH_TEXT_MAX always
 * suffices).
 *
 * Returns, the same on every rank: CAIRN_OK; the status of the failure
 * (CAIRN_ENOTFOUND, CAIRN_EIO, CAIRN_ECORRUPT for a file that changed while
 * hashed or that ranks saw with different sizes, ... as docs/format.md,
 * "Failed artifacts", lists) with the lowest failing rank's reason; or,
 * without hashing, CAIRN_EINVAL (on any rank: NULL/empty path, out NULL or
 * outlen too small; MPI_COMM_NULL), CAIRN_ENAMETOOLONG (path of 4096 bytes
 * or more), CAIRN_ENOTINIT (MPI not initialized or finalized), CAIRN_EIO (an
 * MPI call failed). Must be called by every rank of comm, from the thread
 * that makes the application's MPI calls; it blocks until the file is
 * hashed, so it is a collective point, not a call for the loop.
 */
CAIRN_API int cairn_hash_file_collective(MPI_Comm comm, const char *path, char *out,
                                         size_t outlen);

/*
 * Collective over comm: records one artifact (see cairn_artifact_props in
 * cairn.h) for a file every rank of comm sees, hashed as
 * cairn_hash_file_collective does, so that a checkpoint written by many
 * ranks is read once, in parallel, and recorded once: by rank 0 of comm,
 * as an event of rank 0's open execution, with rank 0's world rank. A URI
 * is recorded as given without hashing; a file that cannot be hashed is
 * recorded with its reason, as cairn_artifact does.
 *
 * Returns, on every rank, the artifact's id (> 0), or an error code that is
 * the same on every rank: CAIRN_EINVAL (on any rank: NULL/empty path, bad
 * kind or role, invalid properties; MPI_COMM_NULL), CAIRN_ENAMETOOLONG,
 * CAIRN_ENOTINIT (cairn not running on rank 0 of comm, or MPI not usable),
 * CAIRN_ENOMEM, CAIRN_EIO (an MPI call failed). Arguments must be the same
 * on every rank. Must be called by every rank of comm from the thread that
 * makes the application's MPI calls; it blocks until the file is hashed.
 */
CAIRN_API int64_t cairn_artifact_collective(MPI_Comm comm, const char *path,
                                            cairn_artifact_kind kind, cairn_role role,
                                            const char *properties_json);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_MPI_H */
