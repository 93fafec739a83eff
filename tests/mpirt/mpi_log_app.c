/*
 * mpi_log_app.c — an MPI program instrumented with cairn for the MPI runtime
 * tests: every rank logs two samples of "loss" per step (value rank + step /
 * 1000, and the same plus 1, so the step's mean is known exactly), one
 * "rank_id" sample, and a param. cairn starts inside MPI_Init and finishes
 * inside MPI_Finalize; nothing else is called.
 *
 * usage: mpi_log_app STEPS [side] [sleep=US] [flush=K]
 *   side     also log "side" from a second thread
 *   sleep=US sleep US microseconds per step (so a test can kill the job)
 *   flush=K  call cairn_flush every K steps and print "rank R durable S"
 *            once it returns (everything up to step S is then in the log)
 *   cflush=K the same with the collective cairn_flush_collective
 *   lineage  also log a stage, 125 executions and 1250 artifacts per rank
 *            (every 10th a file, hashed; the others URIs), alternating
 *            INPUT and OUTPUT
 */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "cairn_mpi.h"

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
  int threads = 0, sleep_us = 0, flush_every = 0, cflush_every = 0, lineage = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "side"))
      threads = 1;
    else if (!strncmp(argv[i], "sleep=", 6))
      sleep_us = atoi(argv[i] + 6);
    else if (!strncmp(argv[i], "flush=", 6))
      flush_every = atoi(argv[i] + 6);
    else if (!strncmp(argv[i], "cflush=", 7))
      cflush_every = atoi(argv[i] + 7);
    else if (!strcmp(argv[i], "lineage"))
      lineage = 1;
  }
  int loss = cairn_metric_id("loss");
  int rid = cairn_metric_id("rank_id");
  if (loss < 0 || rid < 0) {
    fprintf(stderr, "rank %d: cairn is not active: %s\n", rank, cairn_strerror(loss));
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  cairn_param_int64("world_rank", rank);
  /* Lineage from every rank: the program itself (hashed by the rank's
   * hasher) and a URI. */
  if (cairn_artifact("/proc/self/exe", CAIRN_ARTIFACT_ENVIRONMENT, CAIRN_ROLE_INPUT) <= 0 ||
      cairn_artifact("https://example.org/dataset/v1", CAIRN_ARTIFACT_DATASET,
                     CAIRN_ROLE_INPUT) <= 0) {
    fprintf(stderr, "rank %d: cairn_artifact failed\n", rank);
    MPI_Abort(MPI_COMM_WORLD, 5);
  }
  if (cairn_flush_collective(MPI_COMM_NULL) != CAIRN_EINVAL) {
    fprintf(stderr, "rank %d: cairn_flush_collective(MPI_COMM_NULL) is not EINVAL\n", rank);
    MPI_Abort(MPI_COMM_WORLD, 4);
  }
  if (lineage) {
    if (cairn_stage("train", NULL) <= 0)
      MPI_Abort(MPI_COMM_WORLD, 6);
    for (int e = 0; e < 125; e++) {
      char name[32];
      snprintf(name, sizeof name, "batch-%d", e);
      /* Odd executions with a type, a command line and properties; even
       * ones the short way (type = name, the process's command line). */
      char cmd[64], props[64];
      snprintf(cmd, sizeof cmd, "mpi_log_app --batch %d", e);
      snprintf(props, sizeof props, "{\"rank\": %d, \"batch\": %d}", rank, e);
      int64_t ex = e % 2 ? cairn_execution_begin_ex("batch", name, cmd, props)
                         : cairn_execution_begin(name, NULL);
      for (int k = 0; k < 10; k++) {
        char uri[96];
        snprintf(uri, sizeof uri, "s3://bucket/rank%d/exec%d/item%d", rank, e, k);
        const char *what = k == 0 ? "/proc/self/exe" : uri;
        cairn_role role = k % 2 ? CAIRN_ROLE_OUTPUT : CAIRN_ROLE_INPUT;
        int64_t id = k == 1 ? cairn_artifact_props(what, CAIRN_ARTIFACT_DATASLICE, role, props)
                            : cairn_artifact(what, CAIRN_ARTIFACT_DATASLICE, role);
        if (id <= 0)
          MPI_Abort(MPI_COMM_WORLD, 7);
      }
      if (ex <= 0 || cairn_execution_end(ex) != CAIRN_OK)
        MPI_Abort(MPI_COMM_WORLD, 8);
    }
  }
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
    if (cflush_every && (s + 1) % cflush_every == 0 &&
        cairn_flush_collective(MPI_COMM_WORLD) == CAIRN_OK) {
      printf("rank %d durable %d\n", rank, s);
      fflush(stdout);
    }
    if (flush_every && (s + 1) % flush_every == 0 && cairn_flush() == CAIRN_OK) {
      printf("rank %d durable %d\n", rank, s);
      fflush(stdout);
    }
    if (sleep_us) {
      struct timespec ts = {sleep_us / 1000000, (long)(sleep_us % 1000000) * 1000};
      nanosleep(&ts, NULL);
    }
  }
  if (threads)
    pthread_join(th, NULL);
  MPI_Finalize();
  return 0;
}
