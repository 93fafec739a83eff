/*
 * hash_mpi.c — the collective content hash: the ranks of a communicator
 * hash disjoint leaves of one shared file and agree on one result, equal to
 * the serial cairn__hash_file's (see hash_mpi.h).
 */
#include "hash/hash_mpi.h"

#include "cairn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What rank 0 broadcasts at the end: everything a rank needs to fill out. */
typedef struct {
  int status;
  char reason[CAIRN_HASH_REASON_LEN];
  uint8_t digest[CAIRN_HASH_DIGEST_LEN];
} final_msg;

/*
 * Makes a local status collective: returns CAIRN_OK on every rank if every
 * rank had CAIRN_OK, otherwise the status of the lowest rank with the lowest
 * (most negative) status on every rank, with its reason in reason. Every
 * rank must call it at the same point.
 */
static int agree(MPI_Comm comm, int nranks, int status, char reason[CAIRN_HASH_REASON_LEN]) {
  struct {
    int value;
    int rank;
  } mine, worst;
  int rank, failed = status != CAIRN_OK, nfailed = 0;
  MPI_Comm_rank(comm, &rank);
  mine.value = status;
  mine.rank = rank;
  if (MPI_Allreduce(&mine, &worst, 1, MPI_2INT, MPI_MINLOC, comm) != MPI_SUCCESS ||
      MPI_Allreduce(&failed, &nfailed, 1, MPI_INT, MPI_SUM, comm) != MPI_SUCCESS) {
    snprintf(reason, CAIRN_HASH_REASON_LEN, "MPI error while agreeing on the outcome");
    return CAIRN_EIO;
  }
  if (worst.value == CAIRN_OK)
    return CAIRN_OK;
  if (MPI_Bcast(reason, CAIRN_HASH_REASON_LEN, MPI_CHAR, worst.rank, comm) != MPI_SUCCESS) {
    snprintf(reason, CAIRN_HASH_REASON_LEN, "MPI error while agreeing on the outcome");
    return CAIRN_EIO;
  }
  reason[CAIRN_HASH_REASON_LEN - 1] = '\0';
  if (nfailed < nranks) { /* say where, unless everybody saw the same */
    size_t used = strlen(reason);
    snprintf(reason + used, CAIRN_HASH_REASON_LEN - used, " (on rank %d of %d)", worst.rank,
             nranks);
  }
  return worst.value;
}

int cairn__hash_file_collective(MPI_Comm comm, const char *path, uint64_t leaf_bytes,
                                cairn_hash_result *out) {
  cairn_hash_result scratch;
  if (out == NULL)
    out = &scratch; /* still take part in every collective */
  memset(out, 0, sizeof *out);
  if (leaf_bytes == 0)
    leaf_bytes = CAIRN_HASH_DEFAULT_LEAF;
  out->leaf_bytes = leaf_bytes;

  int rank, nranks;
  if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &nranks) != MPI_SUCCESS)
    return cairn__hash_fail(out, CAIRN_EINVAL, "invalid communicator");

  /* 1. Every rank opens the file; any failure is everybody's. */
  char reason[CAIRN_HASH_REASON_LEN] = "";
  int fd = -1, rc;
  struct stat before, after;
  if (path == NULL || path[0] == '\0') {
    rc = CAIRN_EINVAL;
    snprintf(reason, sizeof reason, "empty path");
  } else if (!cairn__hash_leaf_size_ok(leaf_bytes)) {
    rc = CAIRN_EINVAL;
    snprintf(reason, sizeof reason, "leaf size %llu is not a power of two in [4 KiB, 1 GiB]",
             (unsigned long long)leaf_bytes);
  } else {
    rc = cairn__hash_open(path, &fd, &before, reason, sizeof reason);
  }
  rc = agree(comm, nranks, rc, reason);
  if (rc != CAIRN_OK) {
    if (fd >= 0)
      close(fd);
    return cairn__hash_fail(out, rc, "%s", reason);
  }

  /* 2. Same size and leaf size everywhere: max of each and of its
   * complement gives max and min in one reduction. */
  uint64_t size = (uint64_t)before.st_size;
  uint64_t mine[4] = {size, ~size, leaf_bytes, ~leaf_bytes}, all[4];
  if (MPI_Allreduce(mine, all, 4, MPI_UINT64_T, MPI_MAX, comm) != MPI_SUCCESS) {
    close(fd);
    return cairn__hash_fail(out, CAIRN_EIO, "MPI error while comparing sizes");
  }
  if (all[2] != ~all[3]) {
    close(fd);
    return cairn__hash_fail(out, CAIRN_EINVAL, "ranks passed different leaf sizes");
  }
  if (all[0] != ~all[1]) {
    close(fd);
    return cairn__hash_fail(out, CAIRN_ECORRUPT,
                            "ranks saw different sizes (%llu to %llu bytes): changed while "
                            "hashed or not one shared file",
                            (unsigned long long)~all[1], (unsigned long long)all[0]);
  }
  out->size = size;
  out->nleaves = cairn__hash_nleaves(size, leaf_bytes);
  uint64_t n = out->nleaves;
  if (n > (uint64_t)INT_MAX) { /* MPI counts are ints; 8 PiB at 4 MiB */
    close(fd);
    return cairn__hash_fail(out, CAIRN_EINVAL, "%llu leaves exceed MPI's count range",
                            (unsigned long long)n);
  }

  /* 3. Each rank hashes its balanced share of leaves, then checks the file
   * did not change under it. */
  uint64_t q = n / (uint64_t)nranks, r = n % (uint64_t)nranks;
  uint64_t ur = (uint64_t)rank;
  uint64_t first = ur * q + (ur < r ? ur : r);
  uint64_t count = q + (ur < r);
  uint8_t (*mine_leaves)[CAIRN_HASH_DIGEST_LEN] = NULL;
  rc = CAIRN_OK;
  if (count > 0) {
    mine_leaves = malloc(count * sizeof *mine_leaves);
    if (mine_leaves == NULL) {
      rc = CAIRN_ENOMEM;
      snprintf(reason, sizeof reason, "out of memory");
    } else {
      rc = cairn__hash_leaves(fd, size, leaf_bytes, first, count, mine_leaves, reason,
                              sizeof reason);
    }
  }
  if (rc == CAIRN_OK && fstat(fd, &after) != 0) {
    rc = CAIRN_EIO;
    snprintf(reason, sizeof reason, "cannot stat after reading");
  }
  if (rc == CAIRN_OK && !cairn__hash_unchanged(&before, &after)) {
    rc = CAIRN_ECORRUPT;
    snprintf(reason, sizeof reason,
             "changed while hashed: size/mtime/ctime differed before and after");
  }
  close(fd);
  rc = agree(comm, nranks, rc, reason);
  if (rc != CAIRN_OK) {
    free(mine_leaves);
    return cairn__hash_fail(out, rc, "%s", reason);
  }

  /* 4. Rank 0 gathers every leaf hash in order and combines them. A leaf
   * hash travels as one element of a 32-byte type so counts stay small. */
  final_msg fin = {.status = CAIRN_OK};
  MPI_Datatype leaf_t;
  int *counts = NULL, *displs = NULL;
  uint8_t (*leaves)[CAIRN_HASH_DIGEST_LEN] = NULL;
  int mpi_ok = MPI_Type_contiguous(CAIRN_HASH_DIGEST_LEN, MPI_BYTE, &leaf_t) == MPI_SUCCESS;
  if (mpi_ok && MPI_Type_commit(&leaf_t) != MPI_SUCCESS) {
    MPI_Type_free(&leaf_t);
    mpi_ok = 0;
  }
  int root_ok = 1; /* rank 0's buffers; everyone else needs none */
  if (rank == 0) {
    counts = malloc(sizeof *counts * (size_t)nranks);
    displs = malloc(sizeof *displs * (size_t)nranks);
    leaves = malloc(n * sizeof *leaves);
    root_ok = counts != NULL && displs != NULL && leaves != NULL;
    for (int i = 0; root_ok && i < nranks; i++) {
      uint64_t ui = (uint64_t)i;
      counts[i] = (int)(q + (ui < r));
      displs[i] = (int)(ui * q + (ui < r ? ui : r));
    }
  }
  /* Every rank must enter the gather or none: agree on rank 0's memory and
   * the datatype first. */
  snprintf(reason, sizeof reason, "out of memory"); /* used only on failure */
  rc = agree(comm, nranks, root_ok && mpi_ok ? CAIRN_OK : CAIRN_ENOMEM, reason);
  if (rc == CAIRN_OK &&
      MPI_Gatherv(mine_leaves, (int)count, leaf_t, leaves, counts, displs, leaf_t, 0, comm) !=
          MPI_SUCCESS) {
    rc = CAIRN_EIO;
    snprintf(reason, sizeof reason, "MPI error while gathering leaf hashes");
  }
  if (mpi_ok)
    MPI_Type_free(&leaf_t);
  free(mine_leaves);
  free(counts);
  free(displs);
  if (rc != CAIRN_OK) {
    free(leaves);
    return cairn__hash_fail(out, rc, "%s", reason);
  }
  if (rank == 0) {
    fin.status = cairn__hash_combine((const uint8_t (*)[CAIRN_HASH_DIGEST_LEN])leaves, n, size,
                                     leaf_bytes, fin.digest);
    if (fin.status != CAIRN_OK)
      snprintf(fin.reason, sizeof fin.reason, "SHA-256 failed (out of memory)");
  }
  free(leaves);
  if (MPI_Bcast(&fin, (int)sizeof fin, MPI_BYTE, 0, comm) != MPI_SUCCESS)
    return cairn__hash_fail(out, CAIRN_EIO, "MPI error while broadcasting the result");
  if (fin.status != CAIRN_OK) {
    fin.reason[sizeof fin.reason - 1] = '\0';
    return cairn__hash_fail(out, fin.status, "%s", fin.reason);
  }
  memcpy(out->digest, fin.digest, sizeof out->digest);
  cairn__hash_to_hex(out->digest, out->hex);
  out->status = CAIRN_OK;
  return CAIRN_OK;
}
