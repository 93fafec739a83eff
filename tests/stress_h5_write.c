/*
 * stress_h5_write.c — the threaded parts of writing a run file, without
 * Criterion so that the ThreadSanitizer build can run it: a view built
 * block by block and finished on several threads, then written by the
 * serial writer with its chunk compressor on several workers, read back and
 * compared with the same view built single-threaded from the log.
 *
 * usage: stress_h5_write [ROUNDS]   (default 3). Exit status 0 when every
 * round reads back exactly what was logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "h5/h5_writer.h"
#include "h5_testdata.h"
#include "test_tmpdir.h"
#include "run_view.h"
#include "wal.h"
#include "wal_format.h"
#include "wal_records.h"

#define RANKS 12
#define STEPS 4000
#define METRICS 6

static int fails;
#define CHECK(cond, ...)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "stress_h5_write: %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fputc('\n', stderr);                                                                 \
      fails++;                                                                             \
    }                                                                                      \
  } while (0)

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

static void round_trip(int round) {
  char dir[64];
  snprintf(dir, sizeof dir, "/tmp/cairn-stress-h5-XXXXXX");
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp failed");
    return;
  }
  cairn_wal_options o = {.dir = dir, .rank = 0, .compression_level = 1, .segment_bytes = 8 << 20};
  cairn_wal_writer *w;
  char err[512] = "";
  CHECK(cairn__wal_open(&w, &o, err, sizeof err) == CAIRN_OK, "wal: %s", err);
  cairn_view_builder *vb;
  CHECK(cairn__view_builder_new(&vb) == CAIRN_OK, "builder");
  cairn_buf b = {0};
  const char *names[METRICS] = {"loss", "acc", "lr", "grad_norm", "step_time", "tokens"};
  uint32_t ids[METRICS] = {0, 1, 2, 3, 4, 5};
  for (int64_t s0 = 0; s0 < STEPS; s0 += 250) {
    for (uint32_t r = 0; r < RANKS; r++) {
      cairn__rec_put_source(&b, r);
      if (s0 == 0) {
        cairn_rec_run run = {.rank = r, .nranks = RANKS, .pid = 1 + r, .start_ns = 1,
                             .hostname = "n", .hostname_len = 1, .version = "t",
                             .version_len = 1};
        cairn__rec_put_run(&b, &run);
        cairn__rec_put_names(&b, METRICS, ids, names);
      }
      for (int64_t s = s0; s < s0 + 250; s++)
        for (uint32_t k = 0; k < METRICS; k++) {
          /* float32-exact for some metrics, so both value types are written */
          double v = k % 2 ? (double)(float)(1.0 / (1 + s) + (next_u32() % 1000) * 1e-6)
                           : (double)(next_u32() % 100000) / 3.0 + round;
          cairn_metric_agg a = {s, k, 1, v, v, v};
          cairn__rec_put_metrics(&b, 1, &a);
        }
      CHECK(cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, b.data, b.len) == CAIRN_OK, "append");
      CHECK(cairn__view_builder_add(vb, 0, b.data, b.len, err, sizeof err) == CAIRN_OK,
            "add: %s", err);
      cairn__buf_reset(&b);
    }
  }
  cairn__buf_free(&b);
  CHECK(cairn__wal_close(w) == CAIRN_OK, "close");

  cairn_run_view built, logged, back;
  CHECK(cairn__view_builder_finish(vb, &built) == CAIRN_OK, "finish");
  CHECK(cairn__view_from_wal_of(dir, 0, &logged, NULL) == CAIRN_OK, "from wal");
  char why[512] = "";
  CHECK(td_compare(&built, &logged, why, sizeof why) == 0, "built vs log: %s", why);
  char path[128];
  snprintf(path, sizeof path, "%s/run.h5", dir);
  CHECK(cairn__h5_write(&built, path, NULL, err, sizeof err) == CAIRN_OK, "write: %s", err);
  CHECK(cairn__view_from_h5(path, &back, NULL) == CAIRN_OK, "read back");
  CHECK(td_compare(&logged, &back, why, sizeof why) == 0, "log vs file: %s", why);
  cairn__view_free(&built);
  cairn__view_free(&logged);
  cairn__view_free(&back);
  tt_rmtree(dir);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 3;
  for (int i = 0; i < rounds; i++)
    round_trip(i);
  if (fails)
    fprintf(stderr, "stress_h5_write: %d checks failed\n", fails);
  else
    printf("stress_h5_write: %d rounds of %d ranks x %d steps x %d metrics read back exactly\n",
           rounds, RANKS, STEPS, METRICS);
  return fails ? 1 : 0;
}
