/*
 * hash_mpi.h — private to cairn: the collective content hash, in which the
 * ranks of a communicator hash disjoint leaves of one shared file and agree
 * on its identity (the same as cairn__hash_file computes, see hash.h).
 */
#ifndef CAIRN_HASH_MPI_H
#define CAIRN_HASH_MPI_H

#include "hash/hash.h"

#include <mpi.h>

/*
 * Collective over comm: every rank passes the same path (on a file system
 * they all see) and leaf_bytes (0: the default). Rank r of p hashes leaves
 * [r*n/p, (r+1)*n/p) (balanced, remainder to the low ranks) with one thread,
 * rank 0 gathers the leaf hashes and combines them, and every rank returns
 * the same result and fills out identically.
 *
 * Failures are agreed: if any rank cannot open or read the file, or sees it
 * change, every rank returns the status and reason of the lowest such rank
 * (with " (on rank R of P)" appended unless all ranks failed alike). Ranks
 * seeing different sizes give CAIRN_ECORRUPT; different leaf sizes
 * CAIRN_EINVAL; an MPI call that returns an error (communicators with
 * MPI_ERRORS_RETURN) CAIRN_EIO — the last may leave ranks disagreeing, as
 * any failed collective does. Called from one thread per rank, like any
 * MPI collective; not concurrently with another collective on comm.
 */
int cairn__hash_file_collective(MPI_Comm comm, const char *path, uint64_t leaf_bytes,
                                cairn_hash_result *out);

#endif /* CAIRN_HASH_MPI_H */
