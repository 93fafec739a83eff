/* lineage_mpi.c — the collective artifact calls of cairn_mpi.h: the ranks of
 * a communicator hash disjoint leaves of one shared file (io/hash/hash_mpi.c)
 * and rank 0 records the artifact once. They run on the application's
 * thread, the one that makes its MPI calls: cairn's own threads never call
 * MPI. */
#include <mpi.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cairn_mpi.h"
#include "hash/hash_mpi.h"
#include "hasher.h"
#include "lifecycle.h"
#include "lineage.h"
#include "state.h"
#include "util.h"

static int mpi_usable(void) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

/* The recorded form of a result: the scheme and digest, or the reason. */
static void hash_text(const cairn_hash_result *r, char *out, size_t outlen) {
  if (r->status == CAIRN_OK)
    snprintf(out, outlen, "%s:%s", CAIRN_HASH_SCHEME, r->hex);
  else
    snprintf(out, outlen, "error: %s", r->reason[0] ? r->reason : cairn_strerror(r->status));
}

/* Every rank's local verdict, agreed: the most negative code wins, so all
 * ranks return the same one and none is left inside a collective alone. */
static int agree(MPI_Comm comm, int mine) {
  int all = mine;
  if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
    return CAIRN_EIO;
  return all;
}

CAIRN_API int cairn_hash_file_collective(MPI_Comm comm, const char *path, char *out,
                                         size_t outlen) {
  if (comm == MPI_COMM_NULL)
    return CAIRN_EINVAL;
  if (!mpi_usable())
    return CAIRN_ENOTINIT;
  size_t len = path ? strnlen(path, 4096) : 0;
  int rc = !path || !len || !out || outlen < CAIRN_HASH_TEXT_MIN ? CAIRN_EINVAL
           : len > 4095                                          ? CAIRN_ENAMETOOLONG
                                                                 : CAIRN_OK;
  if (out && outlen)
    out[0] = '\0';
  if ((rc = agree(comm, rc)) != CAIRN_OK)
    return rc;
  cairn_hash_result res;
  int st = cairn__hash_file_collective(comm, path, 0, &res);
  hash_text(&res, out, outlen);
  return st;
}

CAIRN_API int64_t cairn_artifact_collective(MPI_Comm comm, const char *path,
                                            cairn_artifact_kind kind, cairn_role role,
                                            const char *properties_json) {
  int running = cairn__running();
  if (comm == MPI_COMM_NULL || !mpi_usable()) {
    if (running)
      cairn__reject_control();
    return comm == MPI_COMM_NULL ? CAIRN_EINVAL : CAIRN_ENOTINIT;
  }
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  uint64_t t = cairn__now_realtime_ns();
  size_t len = 0, plen = 0;
  int mine = cairn__artifact_check("cairn_artifact_collective", path, kind, role,
                                   properties_json, &len, &plen);
  if (mine != CAIRN_OK && running && mine != CAIRN_ENOMEM)
    cairn__reject_control();
  /* Rank 0 records: it must be running. The others need not be. */
  if (mine == CAIRN_OK && rank == 0 && !running)
    mine = CAIRN_ENOTINIT;
  int rc = agree(comm, mine);
  if (rc != CAIRN_OK)
    return rc;
  /* Every rank sees the same path, so all agree on whether it is a URI. */
  char hash[CAIRN_HASH_TEXT_MAX] = "";
  cairn_hash_result res;
  memset(&res, 0, sizeof res);
  if (!cairn__is_uri(path)) {
    cairn__hash_file_collective(comm, path, 0, &res);
    hash_text(&res, hash, sizeof hash);
  }
  int64_t id = 0;
  if (rank == 0) {
    uint64_t exec = atomic_load_explicit(&cairn__g.cur_execution, memory_order_relaxed);
    uint64_t lid = cairn__lineage_next_id();
    rc = cairn__ctl_push_artifact(lid, (uint8_t)kind, (uint8_t)role, exec,
                                  res.status == CAIRN_OK ? res.size : 0, t, path, len, hash,
                                  strlen(hash), properties_json ? properties_json : "", plen);
    id = rc == CAIRN_OK ? (int64_t)lid : rc;
  }
  if (MPI_Bcast(&id, 1, MPI_INT64_T, 0, comm) != MPI_SUCCESS)
    return CAIRN_EIO;
  return id;
}
