/*
 * train_demo.c — a standalone (no MPI) training loop instrumented with cairn:
 * params, run metadata, per-step metrics logged per micro-batch from the
 * training thread and a throughput metric from a data-loader thread. It
 * prints where its output went; `cairn-wal-dump <run dir>` shows what is in it.
 *
 * usage: train_demo [STEPS] [CONFIG.yaml]
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cairn.h"

#define MICRO_BATCHES 4

static int check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "train_demo: %s: %s (%s)\n", what, cairn_strerror(rc), cairn_err_name(rc));
    exit(1);
  }
  return rc;
}

typedef struct {
  int steps;
  int id;
} loader_args;

/* A data-loader thread: any thread may log; it gets its own ring. */
static void *loader(void *p) {
  loader_args *a = p;
  for (int s = 0; s < a->steps; s++)
    cairn_metric_at(a->id, s, 2000.0 + 50.0 * sin(s / 10.0)); /* samples/s */
  cairn_flush(); /* publish this thread's last records before it idles */
  return NULL;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 2000;
  const char *config = argc > 2 ? argv[2] : NULL;
  if (steps <= 0) {
    fprintf(stderr, "usage: train_demo [STEPS>0] [CONFIG.yaml]\n");
    return 2;
  }
  int rc = cairn_init(config);
  if (rc != CAIRN_OK) {
    fprintf(stderr, "train_demo: cairn_init: %s\n  %s\n", cairn_strerror(rc), cairn_last_error());
    return 1;
  }
  check(cairn_param_double("optimizer.lr", 3e-4), "param");
  check(cairn_param_int64("batch_size", 256), "param");
  check(cairn_param_string("model", "resnet-18"), "param");
  check(cairn_param_bool("mixed_precision", 1), "param");
  check(cairn_run_set("dataset", "synthetic-imagenet-subset"), "run_set");

  int loss = check(cairn_metric_id("loss"), "metric_id");
  int acc = check(cairn_metric_id("accuracy"), "metric_id");
  int gnorm = check(cairn_metric_id("grad_norm"), "metric_id");
  loader_args la = {steps, check(cairn_metric_id("loader.samples_per_s"), "metric_id")};
  pthread_t th;
  pthread_create(&th, NULL, loader, &la);

  unsigned seed = 42;
  for (int s = 0; s < steps; s++) {
    check(cairn_step(s), "step");
    double base = 2.5 * exp(-s / (steps / 4.0)) + 0.1;
    for (int mb = 0; mb < MICRO_BATCHES; mb++) {
      double noise = ((double)rand_r(&seed) / RAND_MAX - 0.5) * 0.05;
      cairn_metric(loss, base + noise); /* per micro-batch: step value = mean */
    }
    cairn_metric(acc, 1.0 - base / 2.7);
    cairn_metric(gnorm, 1.0 + 0.5 * base);
    /* Stand-in for the forward/backward pass and the data read. */
    struct timespec work = {0, 250000};
    nanosleep(&work, NULL);
  }
  pthread_join(th, NULL);

  cairn_run_info info;
  cairn_get_run_info(&info);
  rc = cairn_finalize();
  cairn_counters m, c;
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &m);
  cairn_get_counters(CAIRN_CHANNEL_CONTROL, &c);
  printf("train_demo: %d steps logged, run %s\n", steps, info.run_id);
  printf("train_demo: output in %s\n", info.run_dir);
  printf("train_demo: metric records logged %llu, written %llu, dropped %llu; "
         "control records logged %llu, written %llu\n",
         (unsigned long long)m.logged, (unsigned long long)m.written,
         (unsigned long long)m.dropped, (unsigned long long)c.logged,
         (unsigned long long)c.written);
  return rc == CAIRN_OK ? 0 : 1;
}
