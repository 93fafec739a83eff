/* test_accounting.c — exact accounting under a multi-threaded stress with the
 * real drain and write-ahead log: per thread, what the API accepted equals
 * what is on disk plus what was counted as dropped. Run under TSan in CI
 * (CAIRN_TEST_SCALE shrinks the record counts there). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"
#include "run_model.h"

#define THREADS 4

typedef struct {
  int id;
  uint64_t n, ok, dropped, other;
} worker_arg;

static uint64_t scaled(uint64_t n) {
  const char *s = getenv("CAIRN_TEST_SCALE");
  double f = s ? atof(s) : 1.0;
  return f > 0 ? (uint64_t)((double)n * f) : n;
}

static void *worker(void *p) {
  worker_arg *a = p;
  for (uint64_t i = 0; i < a->n; i++) {
    int rc = cairn_metric_at(a->id, (int64_t)i, (double)i);
    if (rc == CAIRN_OK)
      a->ok++;
    else if (rc == CAIRN_EDROPPED)
      a->dropped++;
    else
      a->other++;
    if ((i & 0xffff) == 0)
      cairn_param_int64("progress", (int64_t)i); /* lossless traffic too */
  }
  return NULL;
}

static void stress(const char *policy, uint64_t per_thread) {
  cr_assert_not_null(rm_tempdir());
  setenv("CAIRN_RING_CAPACITY", "1024", 1);
  setenv("CAIRN_RING_POLICY", policy, 1);
  setenv("CAIRN_DRAIN_FLUSH_INTERVAL_MS", "50", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  worker_arg a[THREADS];
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) {
    char name[16];
    snprintf(name, sizeof name, "t%d", t);
    a[t] = (worker_arg){.id = cairn_metric_id(name), .n = per_thread};
    cr_assert_eq(a[t].id, t);
    pthread_create(&th[t], NULL, worker, &a[t]);
  }
  for (int t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);

  cairn_counters c, k;
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  cairn_get_counters(CAIRN_CHANNEL_CONTROL, &k);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  cr_assert_eq(m.damage.corrupt_regions + m.damage.torn_tails + m.damage.bad_blocks, 0);
  uint64_t ok = 0, dropped = 0;
  for (int t = 0; t < THREADS; t++) {
    cr_assert_eq(a[t].other, 0);
    cr_assert_eq(a[t].ok + a[t].dropped, per_thread);
    cr_assert_eq(m.samples[t], a[t].ok, "thread %d: on disk %llu, accepted %llu", t,
                 (unsigned long long)m.samples[t], (unsigned long long)a[t].ok);
    ok += a[t].ok;
    dropped += a[t].dropped;
  }
  cr_assert_eq(c.logged, THREADS * per_thread);
  cr_assert_eq(c.written, ok);
  cr_assert_eq(c.dropped, dropped);
  cr_assert_eq(c.logged, c.written + c.dropped, "logged = written + dropped");
  /* The final block carries the same accounting. */
  cr_assert_eq(m.ctr[0].logged, c.logged);
  cr_assert_eq(m.ctr[0].written, c.written);
  cr_assert_eq(m.ctr[0].dropped, c.dropped);
  /* The control channel never drops. */
  cr_assert_eq(k.dropped, 0);
  cr_assert_eq(k.written, k.logged);
  cr_assert_eq(m.nparams > 0 ? k.logged : 0, k.logged);
  if (policy[0] == 'b')
    cr_assert_eq(dropped, 0, "block policy never drops");
  fprintf(stderr, "accounting stress (%s): logged %llu written %llu dropped %llu\n", policy,
          (unsigned long long)c.logged, (unsigned long long)c.written,
          (unsigned long long)c.dropped);
  rm_free(&m);
}

Test(accounting, drop_policy_four_threads_exact, .timeout = 300) {
  stress("drop", scaled(2000000));
}

Test(accounting, block_policy_four_threads_loses_nothing, .timeout = 300) {
  stress("block", scaled(1000000));
}
