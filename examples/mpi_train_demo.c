/*
 * mpi_train_demo.c — the README's main job: a data-parallel training loop
 * under mpirun. cairn starts inside MPI_Init and finishes inside
 * MPI_Finalize; the program only names its metrics and logs them. Every rank
 * logs its loss per micro-batch, its step time and throughput; one rank is
 * made slow on purpose, so the per-rank step times show a straggler.
 *
 * usage: mpirun -np 4 mpi_train_demo [STEPS=300]
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cairn.h"

#define MICRO_BATCHES 4
#define GRAD_N 65536

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
  if (rank == 0) {
    cairn_param_double("optimizer.lr", 1e-3);
    cairn_param_int64("global_batch", 256 * size);
    cairn_run_set("dataset", "synthetic-shards");
  }
  cairn_param_int64("local_batch", 256);

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
  if (rank == 0)
    printf("mpi_train_demo: %d ranks trained %d steps\n", size, steps);
  MPI_Finalize();
  return 0;
}
