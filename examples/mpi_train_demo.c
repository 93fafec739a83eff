/*
 * mpi_train_demo.c — the README's main job: a data-parallel training loop
 * under mpirun. cairn starts inside MPI_Init and finishes inside
 * MPI_Finalize; the program names its metrics and logs them, and records
 * its lineage. Every rank logs its loss per micro-batch, its step time and
 * throughput; one rank is made slow on purpose, so the per-rank step times
 * show a straggler.
 *
 * Lineage: the training config comes from a YAML file (params); a
 * "prepare" stage writes one data shard per rank and a label file (a
 * dataset, and a dataslice of the shards, hashed in the background); a
 * "train" stage has one execution per rank that reads its shard, and rank 0
 * writes a model checkpoint (cairn_model: framework, type, name) and the
 * run's final metrics (cairn_metrics_artifact).
 *
 * usage: mpirun -np 4 mpi_train_demo [STEPS=300 [PARAMS.yaml [DATA_DIR]]]
 */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

#define MICRO_BATCHES 4
#define GRAD_N 65536

#ifndef DEMO_PARAMS
#define DEMO_PARAMS "demo_params.yaml"
#endif

/* n bytes of a pattern that differs per seed (a stand-in for real data). */
static int write_blob(const char *path, size_t n, unsigned seed) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  unsigned char buf[4096];
  for (size_t off = 0; off < n; off += sizeof buf) {
    for (size_t i = 0; i < sizeof buf; i++)
      buf[i] = (unsigned char)((off + i) * 131u + seed);
    fwrite(buf, 1, n - off < sizeof buf ? n - off : sizeof buf, f);
  }
  return fclose(f);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 300;

  int loss = cairn_metric_id("loss");
  int step_time = cairn_metric_id("step_time_s");
  int tput = cairn_metric_id("samples_per_s");
  int compute = cairn_metric_id("compute_s"); /* excludes the allreduce wait */
  if (loss < 0) {
    if (rank == 0)
      fprintf(stderr, "mpi_train_demo: cairn is not active (%s)\n", cairn_strerror(loss));
  }
  const char *params = argc > 2 ? argv[2] : DEMO_PARAMS;
  char data[4096];
  const char *tmpdir = getenv("TMPDIR");
  if (argc > 3)
    snprintf(data, sizeof data, "%s", argv[3]);
  else
    snprintf(data, sizeof data, "%s/cairn-demo-data-%u", tmpdir ? tmpdir : "/tmp",
             (unsigned)getuid());
  char shard[4096 + 32];
  snprintf(shard, sizeof shard, "%s/shard-%03d.bin", data, rank);

  /* Stage "prepare" (rank 0): the data every rank will read. */
  if (rank == 0) {
    int n = cairn_params_from_yaml(params);
    if (n < 0)
      fprintf(stderr, "mpi_train_demo: params from %s: %s\n", params, cairn_strerror(n));
    cairn_param_int64("global_batch", 256 * size);
    cairn_run_set("dataset", "synthetic-shards");
    if (mkdir(data, 0700) != 0 && errno != EEXIST)
      fprintf(stderr, "mpi_train_demo: cannot create %s\n", data);
    cairn_stage("prepare", "{\"owner\": \"data-team\"}");
    int64_t ex = cairn_execution_begin_ex("prepare", "make-shards", NULL, NULL);
    char labels[4096 + 32];
    snprintf(labels, sizeof labels, "%s/labels.csv", data);
    FILE *f = fopen(labels, "w");
    if (f) {
      for (int i = 0; i < 1000; i++)
        fprintf(f, "%d,%d\n", i, i % 10);
      fclose(f);
    }
    cairn_artifact_props(labels, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT,
                         "{\"rows\": 1000, \"format\": \"csv\", \"classes\": 10}");
    int64_t slice = cairn_dataslice_create("train-shards");
    for (int r = 0; r < size; r++) {
      char p[4096 + 32];
      snprintf(p, sizeof p, "%s/shard-%03d.bin", data, r);
      write_blob(p, 2u << 20, (unsigned)r);
      cairn_dataslice_add(slice, p);
    }
    cairn_dataslice_commit(slice, CAIRN_ROLE_OUTPUT);
    cairn_execution_end(ex);
  }
  cairn_param_int64("local_batch", 256);
  MPI_Barrier(MPI_COMM_WORLD); /* the shards exist */

  /* Stage "train": one execution per rank, reading its shard. */
  cairn_stage("train", NULL);
  char props[64];
  snprintf(props, sizeof props, "{\"rank\": %d, \"steps\": %d}", rank, steps);
  int64_t train = cairn_execution_begin_ex("train", "data-parallel-fit", NULL, props);
  cairn_artifact_props(shard, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT, props);

  static double grad[GRAD_N], sum[GRAD_N];
  unsigned seed = 1234u + (unsigned)rank;
  for (int s = 0; s < steps; s++) {
    double t0 = now_s();
    cairn_step(s);
    double base = 2.3 * exp(-s / (steps / 3.0)) + 0.05;
    for (int mb = 0; mb < MICRO_BATCHES; mb++) {
      double noise = ((double)rand_r(&seed) / RAND_MAX - 0.5) * 0.1;
      cairn_metric(loss, base + noise + 0.01 * rank);
    }
    /* Forward/backward stand-in; rank 1 is a straggler. The others wait for
     * it in the allreduce, so step times are equal everywhere: the
     * straggler shows in its compute time. */
    double c0 = now_s();
    struct timespec work = {0, rank == 1 ? 1500000 : 1000000};
    nanosleep(&work, NULL);
    cairn_metric(compute, now_s() - c0);
    for (int i = 0; i < GRAD_N; i++)
      grad[i] = base;
    MPI_Allreduce(grad, sum, GRAD_N, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    double dt = now_s() - t0;
    cairn_metric(step_time, dt);
    cairn_metric(tput, 256.0 / dt);
  }
  /* Rank 0 saves the model and the run's final metrics. */
  if (rank == 0) {
    char ckpt[4096 + 32], metrics[128];
    snprintf(ckpt, sizeof ckpt, "%s/model-step%d.ckpt", data, steps);
    FILE *f = fopen(ckpt, "wb");
    if (f) {
      fwrite(sum, sizeof sum[0], GRAD_N, f);
      fclose(f);
    }
    snprintf(props, sizeof props, "{\"step\": %d}", steps);
    cairn_model(ckpt, CAIRN_ROLE_OUTPUT, "cairn-demo", "mlp", "demo-classifier", props);
    double final_loss = 2.3 * exp(-(steps - 1) / (steps / 3.0)) + 0.05;
    snprintf(metrics, sizeof metrics, "{\"final_loss\": %.4f, \"steps\": %d, \"ranks\": %d}",
             final_loss, steps, size);
    cairn_metrics_artifact("final-metrics", metrics);
  }
  cairn_execution_end(train);
  if (rank == 0)
    printf("mpi_train_demo: %d ranks trained %d steps\n", size, steps);
  MPI_Finalize();
  return 0;
}
