/* artifact_collective.c — under mpirun: cairn_hash_file_collective and
 * cairn_artifact_collective through the public API. Every rank must get the
 * same text and id; errors must be the same on every rank, even when only
 * one rank's arguments are wrong; rank 0 records the artifact once. Rank 0
 * writes what it got to DIR/collective.txt for check_collective, which
 * compares it with a serial hash and with the run file. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_mpi.h"

static int rank, size, bad;

#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "artifact_collective rank %d: line %d: ", rank, __LINE__);              \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fputc('\n', stderr);                                                                     \
      bad = 1;                                                                                 \
    }                                                                                          \
  } while (0)

/* 1 if every rank passed the same string. */
static int same_everywhere(const char *s) {
  char root[CAIRN_HASH_TEXT_MAX];
  snprintf(root, sizeof root, "%s", s);
  MPI_Bcast(root, (int)sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
  int mine = strcmp(root, s) == 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all;
}

static int same_id(int64_t id) {
  int64_t lo = 0, hi = 0;
  MPI_Allreduce(&id, &lo, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&id, &hi, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 2) {
    if (rank == 0)
      fprintf(stderr, "usage: artifact_collective DIR\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  char path[4096], missing[4096], report[4096];
  snprintf(path, sizeof path, "%s/ckpt.bin", argv[1]);
  snprintf(missing, sizeof missing, "%s/no-such-checkpoint", argv[1]);
  snprintf(report, sizeof report, "%s/collective.txt", argv[1]);
  /* 29 MiB + 12345 bytes: 8 leaves of 4 MiB, the last one short, so 7
   * ranks get one or two leaves each. */
  size_t n = (29u << 20) + 12345u;
  if (rank == 0) {
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; f && i < n; i++)
      fputc((int)((i * 131u + 7u) % 251u), f);
    if (!f || fclose(f) != 0)
      MPI_Abort(MPI_COMM_WORLD, 3);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  char text[CAIRN_HASH_TEXT_MAX];
  int rc = cairn_hash_file_collective(MPI_COMM_WORLD, path, text, sizeof text);
  CHECK(rc == CAIRN_OK, "hash: %s", cairn_err_name(rc));
  CHECK(strncmp(text, "cairn-merkle-sha256-v1:", 23) == 0 && strlen(text) == 87, "text %s", text);
  CHECK(same_everywhere(text), "ranks disagree on the hash");

  /* Half the ranks, in their own communicator: the same identity. */
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  char text_half[CAIRN_HASH_TEXT_MAX];
  rc = cairn_hash_file_collective(half, path, text_half, sizeof text_half);
  CHECK(rc == CAIRN_OK && strcmp(text_half, text) == 0, "sub-communicator: %s %s",
        cairn_err_name(rc), text_half);
  MPI_Comm_free(&half);

  /* A missing file: the same failure everywhere. */
  char err_text[CAIRN_HASH_TEXT_MAX];
  rc = cairn_hash_file_collective(MPI_COMM_WORLD, missing, err_text, sizeof err_text);
  CHECK(rc == CAIRN_ENOTFOUND, "missing: %s", cairn_err_name(rc));
  CHECK(strcmp(err_text, "error: no such file") == 0, "missing: %s", err_text);

  /* One rank's buffer too small: every rank refuses, none hangs. */
  char small[CAIRN_HASH_TEXT_MAX];
  rc = cairn_hash_file_collective(MPI_COMM_WORLD, path, small,
                                  rank == size - 1 ? 10 : sizeof small);
  CHECK(rc == CAIRN_EINVAL, "short buffer on one rank: %s", cairn_err_name(rc));
  CHECK(cairn_hash_file_collective(MPI_COMM_NULL, path, small, sizeof small) == CAIRN_EINVAL,
        "MPI_COMM_NULL");

  /* The artifact: recorded once, by rank 0, in its open execution. */
  int64_t exec = 0;
  if (rank == 0) {
    exec = cairn_execution_begin_ex("save", "checkpoint-100", NULL, NULL);
    CHECK(exec > 0, "execution: %s", cairn_err_name((int)exec));
  }
  char props[128];
  snprintf(props, sizeof props, "{\"step\": 100, \"writers\": %d}", size);
  int64_t id = cairn_artifact_collective(MPI_COMM_WORLD, path, CAIRN_ARTIFACT_MODEL,
                                         CAIRN_ROLE_OUTPUT, props);
  CHECK(id > 0, "artifact: %s", cairn_err_name((int)id));
  CHECK(same_id(id), "ranks got different ids");
  /* Bad properties on the last rank only: refused everywhere. */
  int64_t no = cairn_artifact_collective(MPI_COMM_WORLD, path, CAIRN_ARTIFACT_MODEL,
                                         CAIRN_ROLE_OUTPUT, rank == size - 1 ? "{bad" : "{}");
  CHECK(no == CAIRN_EINVAL, "bad properties on one rank: %s", cairn_err_name((int)no));
  /* A missing file is recorded, with its reason. */
  int64_t id2 = cairn_artifact_collective(MPI_COMM_WORLD, missing, CAIRN_ARTIFACT_DATASET,
                                          CAIRN_ROLE_INPUT, NULL);
  CHECK(id2 > id, "missing artifact: %s", cairn_err_name((int)id2));
  CHECK(same_id(id2), "ranks got different ids for the missing file");
  if (rank == 0) {
    CHECK(cairn_execution_end(exec) == CAIRN_OK, "execution end");
    FILE *f = fopen(report, "w");
    CHECK(f != NULL, "cannot write %s", report);
    if (f) {
      fprintf(f, "%s\n%lld\n%lld\n%lld\n%d\n", text, (long long)id, (long long)id2,
              (long long)exec, size);
      fclose(f);
    }
  }
  int all_bad = 0;
  MPI_Allreduce(&bad, &all_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  if (rank == 0 && !all_bad)
    printf("artifact_collective: %d ranks, ok\n", size);
  return all_bad;
}
