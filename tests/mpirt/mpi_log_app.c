/*
 * mpi_log_app.c — an MPI program instrumented with cairn for the MPI runtime
 * tests: every rank logs two samples of "loss" per step (value rank + step /
 * 1000, and the same plus 1, so the step's mean is known exactly), one
 * "rank_id" sample, and a param. cairn starts inside MPI_Init and finishes
 * inside MPI_Finalize; nothing else is called.
 *
 * usage: mpi_log_app STEPS [threads]   (threads: also log from a 2nd thread)
 */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"

static int steps;

static void *side(void *arg) {
  int id = *(int *)arg;
  for (int s = 0; s < steps; s++)
    cairn_metric_at(id, s, 7.0);
  cairn_flush();
  return NULL;
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  steps = argc > 1 ? atoi(argv[1]) : 100;
  int threads = argc > 2;
  int loss = cairn_metric_id("loss");
  int rid = cairn_metric_id("rank_id");
  if (loss < 0 || rid < 0) {
    fprintf(stderr, "rank %d: cairn is not active: %s\n", rank, cairn_strerror(loss));
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  cairn_param_int64("world_rank", rank);
  pthread_t th;
  int sid = cairn_metric_id("side");
  if (threads)
    pthread_create(&th, NULL, side, &sid);
  for (int s = 0; s < steps; s++) {
    cairn_step(s);
    cairn_metric(loss, rank + s / 1000.0);
    cairn_metric(loss, rank + s / 1000.0 + 1.0);
    cairn_metric(rid, rank);
    if (s % 50 == 0) {
      double x = rank, sum;
      MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
  }
  if (threads)
    pthread_join(th, NULL);
  MPI_Finalize();
  return 0;
}
