/*
 * lineage_app.c — a small MPI "training job" with a complete lineage, for the
 * lineage database tests: a pipeline of two stages (prepare, train), a
 * dataset, a dataslice of shards, an optional input model (the previous
 * run's checkpoint, so that lineage crosses runs), an output checkpoint,
 * params, and metrics including hostile names that must come out verbatim
 * and inert (SQL and HTML). Rank 2 is a straggler (slower steps).
 *
 * usage: lineage_app DATA_DIR MODEL_IN|- MODEL_OUT STEPS [crash]
 *   crash: at STEPS/2 every rank flushes and kills itself (SIGKILL), leaving
 *   only the write-ahead log: a crashed run.
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"

#define HOSTILE_SQL "x'); DROP TABLE Artifact;--"
#define HOSTILE_HTML "<script>alert(1)</script>"

static void die(int rank, const char *what, int64_t rc) {
  fprintf(stderr, "lineage_app rank %d: %s failed: %s\n", rank, what,
          cairn_strerror((int)rc));
  MPI_Abort(MPI_COMM_WORLD, 3);
}

static void spin(double seconds) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do
    clock_gettime(CLOCK_MONOTONIC, &b);
  while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9 < seconds);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 5) {
    if (!rank)
      fprintf(stderr, "usage: lineage_app DATA_DIR MODEL_IN|- MODEL_OUT STEPS [crash]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const char *data = argv[1], *model_in = argv[2], *model_out = argv[3];
  int steps = atoi(argv[4]);
  int crash = argc > 5 && !strcmp(argv[5], "crash");
  char path[4096];
  int64_t rc;

  int loss = cairn_metric_id("loss");
  int stime = cairn_metric_id("step_time_s");
  int hsql = cairn_metric_id(HOSTILE_SQL);
  int hhtml = cairn_metric_id(HOSTILE_HTML);
  if (loss < 0 || stime < 0 || hsql < 0 || hhtml < 0)
    die(rank, "cairn_metric_id", loss < 0 ? loss : stime);
  cairn_param_double("optimizer.lr", 0.001);
  cairn_param_int64("batch", 64);
  cairn_param_string("model.arch", "resnet-test");
  cairn_run_set("experiment", "lineage-fixture");

  /* Stage 1: prepare (rank 0): raw dataset in, shards out as a dataslice. */
  if ((rc = cairn_stage("prepare", "{\"owner\": \"data-team\"}")) <= 0)
    die(rank, "cairn_stage(prepare)", rc);
  if (rank == 0) {
    int64_t ex = cairn_execution_begin("prepare-shards", "{\"shards\": 3}");
    if (ex <= 0)
      die(rank, "cairn_execution_begin", ex);
    snprintf(path, sizeof path, "%s/raw.csv", data);
    if ((rc = cairn_artifact(path, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT)) <= 0)
      die(rank, "cairn_artifact(raw)", rc);
    snprintf(path, sizeof path, "%s/%s", data, HOSTILE_SQL);
    if ((rc = cairn_artifact(path, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT)) <= 0)
      die(rank, "cairn_artifact(hostile)", rc);
    if ((rc = cairn_artifact("s3://bucket/reference/v1", CAIRN_ARTIFACT_DATASET,
                             CAIRN_ROLE_INPUT)) <= 0)
      die(rank, "cairn_artifact(uri)", rc);
    int64_t sl = cairn_dataslice_create("train-split");
    for (int i = 2; i >= 0; i--) {
      snprintf(path, sizeof path, "%s/shard-%d.bin", data, i);
      if ((rc = cairn_dataslice_add(sl, path)) != CAIRN_OK)
        die(rank, "cairn_dataslice_add", rc);
    }
    if ((rc = cairn_dataslice_commit(sl, CAIRN_ROLE_OUTPUT)) <= 0)
      die(rank, "cairn_dataslice_commit", rc);
    cairn_execution_end(ex);
  }

  /* Stage 2: train (every rank): the shards (and the previous model) in. */
  if ((rc = cairn_stage("train", NULL)) <= 0)
    die(rank, "cairn_stage(train)", rc);
  int64_t ex = cairn_execution_begin("train-epoch", "{\"epochs\": 1, \"lr\": 0.001}");
  if (ex <= 0)
    die(rank, "cairn_execution_begin(train)", ex);
  if (rank == 0) {
    int64_t sl = cairn_dataslice_create("train-split");
    for (int i = 0; i < 3; i++) {
      snprintf(path, sizeof path, "%s/shard-%d.bin", data, i);
      cairn_dataslice_add(sl, path);
    }
    if ((rc = cairn_dataslice_commit(sl, CAIRN_ROLE_INPUT)) <= 0)
      die(rank, "cairn_dataslice_commit(input)", rc);
    if (strcmp(model_in, "-") &&
        (rc = cairn_artifact(model_in, CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_INPUT)) <= 0)
      die(rank, "cairn_artifact(model in)", rc);
  }
  for (int s = 0; s < steps; s++) {
    cairn_step(s);
    double t0 = MPI_Wtime();
    spin(rank == 2 ? 0.0006 : 0.0002); /* rank 2 is the straggler */
    cairn_metric(loss, 1.0 / (1.0 + s) + 0.01 * rank);
    cairn_metric(hsql, s);
    cairn_metric(hhtml, -s);
    cairn_metric(stime, MPI_Wtime() - t0);
    if (crash && s == steps / 2) {
      cairn_flush();
      MPI_Barrier(MPI_COMM_WORLD);
      raise(SIGKILL);
    }
  }
  if (rank == 0) {
    FILE *f = fopen(model_out, "wb");
    if (!f)
      die(rank, "fopen(model out)", CAIRN_EIO);
    for (int i = 0; i < 1000; i++)
      fprintf(f, "weights %d %s\n", i, model_in);
    fclose(f);
    if ((rc = cairn_artifact(model_out, CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT)) <= 0)
      die(rank, "cairn_artifact(model out)", rc);
  }
  cairn_execution_end(ex);
  MPI_Finalize();
  return 0;
}
