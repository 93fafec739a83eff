/*
 * mpi_check_run.c — independent check of a multi-rank run directory written
 * by mpi_log_app: reads every WAL segment through the shared reader and
 * verifies, per rank, every step's "loss" (count 2, exact mean), "rank_id",
 * the param, and the final accounting (logged = written + dropped, with
 * written equal to the samples found on disk); and the number of WAL writers
 * (aggregators). Prints a summary; exits 0 when everything holds.
 *
 * usage: mpi_check_run RUN_PARENT_DIR NRANKS STEPS AGGREGATORS [side]
 *                      [durable=FILE] [term]
 *   durable=FILE  the job was killed: FILE holds "rank R durable S" lines;
 *                 every step up to S must be complete for rank R, later
 *                 steps may be missing or partial, accounting may be open
 *   term          the job got SIGTERM mid-run: steps after the last one
 *                 logged are absent, but the accounting must be complete
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_reader.h"

#define MAXR 64

typedef struct {
  uint32_t rank; /* current SOURCE */
  char *names[MAXR][16];
  double *loss_sum[MAXR];
  uint32_t *loss_cnt[MAXR];
  uint64_t samples[MAXR];
  uint64_t side[MAXR];
  int params[MAXR];
  cairn_rec_counters ctr[MAXR];
  int steps;
  int bad;
} check;

static int on_source(void *c, uint32_t r) {
  check *k = c;
  if (r >= MAXR) {
    fprintf(stderr, "rank %u out of range\n", r);
    return 1;
  }
  k->rank = r;
  return 0;
}
static int on_name(void *c, uint32_t id, const char *n, size_t l) {
  check *k = c;
  if (id < 16)
    k->names[k->rank][id] = strndup(n, l);
  return 0;
}
static int on_metric(void *c, const cairn_metric_agg *a) {
  check *k = c;
  uint32_t r = k->rank;
  const char *n = a->id < 16 ? k->names[r][a->id] : NULL;
  k->samples[r] += a->count;
  if (!n) {
    fprintf(stderr, "rank %u: metric id %u without a name\n", r, a->id);
    k->bad++;
  } else if (!strcmp(n, "loss")) {
    if (a->step < 0 || a->step >= k->steps) {
      k->bad++;
      return 0;
    }
    k->loss_sum[r][a->step] += a->sum;
    k->loss_cnt[r][a->step] += a->count;
  } else if (!strcmp(n, "rank_id")) {
    if (a->sum != (double)r * a->count) {
      fprintf(stderr, "rank %u: rank_id %g\n", r, a->sum);
      k->bad++;
    }
  } else if (!strcmp(n, "side")) {
    k->side[r] += a->count;
  }
  return 0;
}
static int on_param(void *c, const cairn_rec_param *p) {
  check *k = c;
  if (p->key_len == 10 && !memcmp(p->key, "world_rank", 10) && p->i64 == (int64_t)k->rank)
    k->params[k->rank]++;
  return 0;
}
static int on_counters(void *c, const cairn_rec_counters *x) {
  check *k = c;
  if (x->channel == 0)
    k->ctr[k->rank] = *x;
  return 0;
}
static void report(void *c, const char *m) {
  (void)c;
  fprintf(stderr, "reader: %s\n", m);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: mpi_check_run RUN_PARENT NRANKS STEPS AGGREGATORS [side]\n");
    return 2;
  }
  int n = atoi(argv[2]), aggs = atoi(argv[4]), side = 0, term = 0;
  static int durable[MAXR];
  const char *durable_file = NULL;
  for (int i = 5; i < argc; i++) {
    if (!strcmp(argv[i], "side"))
      side = 1;
    else if (!strcmp(argv[i], "term"))
      term = 1;
    else if (!strncmp(argv[i], "durable=", 8))
      durable_file = argv[i] + 8;
  }
  for (int r = 0; r < MAXR; r++)
    durable[r] = -1;
  if (durable_file) {
    FILE *f = fopen(durable_file, "r");
    int r, st;
    char line[256];
    while (f && fgets(line, sizeof line, f))
      if (sscanf(line, "rank %d durable %d", &r, &st) == 2 && r >= 0 && r < MAXR &&
          st > durable[r])
        durable[r] = st;
    if (f)
      fclose(f);
  }
  static check k;
  k.steps = atoi(argv[3]);
  /* The parent holds exactly one run directory. */
  DIR *d = opendir(argv[1]);
  struct dirent *e;
  char run[4096] = "";
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.')
      snprintf(run, sizeof run, "%s/%s", argv[1], e->d_name);
  if (d)
    closedir(d);
  if (!run[0]) {
    fprintf(stderr, "no run directory in %s\n", argv[1]);
    return 1;
  }
  for (int r = 0; r < n; r++) {
    k.loss_sum[r] = calloc((size_t)k.steps, sizeof(double));
    k.loss_cnt[r] = calloc((size_t)k.steps, sizeof(uint32_t));
  }
  char **paths;
  size_t np;
  char err[512];
  if (cairn__run_list_wal(run, &paths, &np, err, sizeof err) != CAIRN_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* One writer per aggregator: count distinct ranks in segment names. */
  int writers = 0;
  for (size_t i = 0; i < np; i++)
    writers += strstr(paths[i], "-000000.cwal") != NULL;
  cairn__run_free_paths(paths, np);
  cairn_rec_visitor v = {.ctx = &k, .name = on_name, .metric = on_metric, .param = on_param,
                         .counters = on_counters, .source = on_source};
  cairn_run_damage dmg;
  int rc = cairn__run_read_wal(run, &v, &dmg, report, NULL);
  if (rc != CAIRN_OK) {
    fprintf(stderr, "read %s: %s\n", run, cairn_strerror(rc));
    return 1;
  }
  if (writers != aggs && aggs >= 0) {
    fprintf(stderr, "expected %d aggregator logs, found %d\n", aggs, writers);
    k.bad++;
  }
  uint64_t total_logged = 0, total_written = 0, total_dropped = 0;
  for (int r = 0; r < n; r++) {
    int last = durable_file ? durable[r] : k.steps - 1;
    if (term) /* the last step this rank logged */
      for (last = k.steps - 1; last >= 0 && k.loss_cnt[r][last] == 0; last--)
        ;
    if (durable_file && durable[r] < 0) {
      fprintf(stderr, "rank %d: never reported a durable step\n", r);
      k.bad++;
    }
    for (int s = 0; s < k.steps; s++) {
      double want = 2 * (r + s / 1000.0) + 1.0;
      if (s > last) {
        /* After the kill point: absent, or a prefix of the step's samples. */
        double one = r + s / 1000.0;
        if (k.loss_cnt[r][s] > 2 ||
            (k.loss_cnt[r][s] == 2 && fabs(k.loss_sum[r][s] - want) > 1e-9) ||
            (k.loss_cnt[r][s] == 1 && fabs(k.loss_sum[r][s] - one) > 1e-9 &&
             fabs(k.loss_sum[r][s] - one - 1.0) > 1e-9)) {
          fprintf(stderr, "rank %d step %d (after the kill point): count %u sum %.12g\n", r, s,
                  k.loss_cnt[r][s], k.loss_sum[r][s]);
          k.bad++;
          break;
        }
        continue;
      }
      if (k.ctr[r].dropped == 0 &&
          (k.loss_cnt[r][s] != 2 || fabs(k.loss_sum[r][s] - want) > 1e-9)) {
        fprintf(stderr, "rank %d step %d: loss count %u sum %.12g, want 2 and %.12g\n", r, s,
                k.loss_cnt[r][s], k.loss_sum[r][s], want);
        k.bad++;
        break;
      }
    }
    if (k.params[r] != 1) {
      fprintf(stderr, "rank %d: world_rank param seen %d times\n", r, k.params[r]);
      k.bad++;
    }
    if (side && !durable_file && !term && k.ctr[r].dropped == 0 &&
        k.side[r] != (uint64_t)k.steps) {
      fprintf(stderr, "rank %d: side thread samples %llu\n", r,
              (unsigned long long)k.side[r]);
      k.bad++;
    }
    const cairn_rec_counters *c = &k.ctr[r];
    if (!durable_file && (c->logged != c->written + c->dropped || c->written != k.samples[r])) {
      fprintf(stderr,
              "rank %d: accounting logged %llu written %llu dropped %llu, on disk %llu\n", r,
              (unsigned long long)c->logged, (unsigned long long)c->written,
              (unsigned long long)c->dropped, (unsigned long long)k.samples[r]);
      k.bad++;
    }
    total_logged += c->logged;
    total_written += c->written;
    total_dropped += c->dropped;
  }
  printf("run %s: %d ranks, %d aggregator logs, %llu blocks; logged %llu = written %llu + "
         "dropped %llu; %s\n",
         run, n, writers, (unsigned long long)dmg.blocks, (unsigned long long)total_logged,
         (unsigned long long)total_written, (unsigned long long)total_dropped,
         k.bad ? "FAILED" : "ok");
  return k.bad ? 1 : 0;
}
