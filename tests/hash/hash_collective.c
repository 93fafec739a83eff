/*
 * hash_collective.c — checks cairn__hash_file_collective under a real
 * mpirun: the collective identity equals the serial one (and the documented
 * vector) for leaf counts below, at and above the number of ranks, and
 * failures are agreed by every rank. Usage: hash_collective DIR (shared).
 */
#include "hash/hash_mpi.h"

#include "cairn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, nranks, failures;

#define CHECK(cond, ...)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      fprintf(stderr, "rank %d: %s:%d: ", rank, __FILE__, __LINE__);                         \
      fprintf(stderr, __VA_ARGS__);                                                          \
      fputc('\n', stderr);                                                                   \
      failures++;                                                                            \
    }                                                                                        \
  } while (0)

/* Byte i is i mod 251: the pattern of the vectors in docs/format.md. */
static void write_pattern(const char *path, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    perror(path);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  for (size_t i = 0; i < n; i++)
    putc((int)(i % 251), f);
  fclose(f);
}

/* The collective result must be the serial one, on every rank. */
static void check_same_as_serial(const char *path, uint64_t leaf, const char *want_hex) {
  cairn_hash_result coll, ser;
  int rc = cairn__hash_file_collective(MPI_COMM_WORLD, path, leaf, &coll);
  CHECK(rc == CAIRN_OK, "%s: collective %s (%s)", path, cairn_err_name(rc), coll.reason);
  rc = cairn__hash_file(path, leaf, 1, &ser);
  CHECK(rc == CAIRN_OK, "%s: serial %s (%s)", path, cairn_err_name(rc), ser.reason);
  CHECK(strcmp(coll.hex, ser.hex) == 0, "%s: collective %s, serial %s", path, coll.hex, ser.hex);
  CHECK(coll.size == ser.size && coll.nleaves == ser.nleaves, "%s: size/nleaves differ", path);
  if (want_hex != NULL)
    CHECK(strcmp(coll.hex, want_hex) == 0, "%s: %s, documented %s", path, coll.hex, want_hex);
  /* Every rank holds the same digest. */
  char all0[65];
  memcpy(all0, coll.hex, sizeof all0);
  MPI_Bcast(all0, 65, MPI_CHAR, 0, MPI_COMM_WORLD);
  CHECK(strcmp(all0, coll.hex) == 0, "%s: rank 0 has %s, this rank %s", path, all0, coll.hex);
}

static void check_failure(const char *path, int status, const char *reason_part) {
  cairn_hash_result r;
  int rc = cairn__hash_file_collective(MPI_COMM_WORLD, path, 4096, &r);
  CHECK(rc == status && r.status == status, "%s: %s, expected %s (%s)", path,
        cairn_err_name(rc), cairn_err_name(status), r.reason);
  CHECK(strstr(r.reason, reason_part) != NULL, "reason \"%s\" lacks \"%s\"", r.reason,
        reason_part);
  CHECK(r.hex[0] == '\0', "a failed artifact has a hex digest");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  if (argc != 2) {
    fprintf(stderr, "usage: hash_collective DIR\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const char *dir = argv[1];
  char big[512], small[512], empty[512], three[512], mine[512], missing[512];
  snprintf(big, sizeof big, "%s/pattern-10MiB", dir);
  snprintf(small, sizeof small, "%s/small", dir);
  snprintf(empty, sizeof empty, "%s/empty", dir);
  snprintf(three, sizeof three, "%s/three-leaves", dir);
  snprintf(mine, sizeof mine, "%s/rank-%d", dir, rank);
  snprintf(missing, sizeof missing, "%s/missing", dir);
  if (rank == 0) {
    write_pattern(big, 10u << 20);
    write_pattern(small, 1000);
    write_pattern(empty, 0);
    write_pattern(three, 2 * 4096 + 1);
  }
  write_pattern(mine, 4096u * 3 + (size_t)rank); /* a different size per rank */
  MPI_Barrier(MPI_COMM_WORLD);

  /* 10 leaves over P ranks (uneven for P = 3, 4), 3 leaves (ranks with
   * none when P > 3), one leaf, an empty file, the default leaf size. */
  check_same_as_serial(big, 1u << 20,
                       "4d5f224521e1a353f7d95ea584e2cc87a745aef35e576d8828f42650ec8d739a");
  check_same_as_serial(big, 0, "0568ced922542eb11a32b652188ad4c3ae6c91c82a558da2ab1602d352875a65");
  check_same_as_serial(three, 4096, NULL);
  check_same_as_serial(small, 4096, NULL);
  check_same_as_serial(empty, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  /* Failures every rank agrees on. */
  check_failure(missing, CAIRN_ENOTFOUND, "no such file");
  check_failure(dir, CAIRN_EINVAL, "is a directory");
  if (nranks > 1) {
    char partial[512]; /* missing on rank 1 only */
    snprintf(partial, sizeof partial, "%s", rank == 1 ? missing : big);
    char where[64];
    snprintf(where, sizeof where, "no such file (on rank 1 of %d)", nranks);
    check_failure(partial, CAIRN_ENOTFOUND, where);
    check_failure(mine, CAIRN_ECORRUPT, "ranks saw different sizes");
  }

  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("hash_collective: %d ranks, %s\n", nranks, total == 0 ? "ok" : "FAILED");
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
