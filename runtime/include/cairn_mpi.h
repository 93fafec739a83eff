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

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_MPI_H */
