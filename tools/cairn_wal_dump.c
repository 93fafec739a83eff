/*
 * cairn_wal_dump.c — prints what a run directory's write-ahead log holds:
 * run identity, params, key/values, a per-metric summary, the accounting,
 * and any damage found. `--series NAME` prints one metric's per-step values
 * as CSV. It reads only through io/ (the readers every tool shares).
 *
 * Exit codes: 0 read cleanly, 1 read with damage (what could be recovered is
 * printed), 2 usage error or nothing readable.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_reader.h"
#include "util.h"

typedef struct {
  char *name;
  uint64_t samples, entries;
  int64_t first_step, last_step;
  double last_mean;
  double min, max;
} metric_sum;

typedef struct {
  metric_sum *m;
  size_t nm;
  const char *series; /* print this metric's steps as CSV */
  long series_id;
  int have_run;
  cairn_rec_run run;
  char host[256], version[64];
  uint64_t steps, params, kvs, first_step_ns, last_step_ns;
  cairn_rec_counters ctr[2];
  int have_ctr;
  int quiet;
} dump;

static metric_sum *metric_at(dump *d, uint32_t id) {
  if (id >= d->nm) {
    size_t n = (size_t)id + 1;
    metric_sum *m = realloc(d->m, n * sizeof *m);
    if (!m) {
      fprintf(stderr, "cairn-wal-dump: out of memory\n");
      exit(2);
    }
    memset(m + d->nm, 0, (n - d->nm) * sizeof *m);
    d->m = m;
    d->nm = n;
  }
  return &d->m[id];
}

static int on_run(void *ctx, const cairn_rec_run *r) {
  dump *d = ctx;
  d->have_run = 1;
  d->run = *r;
  snprintf(d->host, sizeof d->host, "%.*s", (int)r->hostname_len, r->hostname);
  snprintf(d->version, sizeof d->version, "%.*s", (int)r->version_len, r->version);
  return 0;
}

static int on_name(void *ctx, uint32_t id, const char *name, size_t len) {
  dump *d = ctx;
  metric_sum *m = metric_at(d, id);
  free(m->name);
  m->name = strndup(name, len);
  if (d->series && strlen(d->series) == len && memcmp(d->series, name, len) == 0)
    d->series_id = id;
  return 0;
}

static int on_metric(void *ctx, const cairn_metric_agg *a) {
  dump *d = ctx;
  metric_sum *m = metric_at(d, a->id);
  if (m->entries == 0) {
    m->first_step = m->last_step = a->step;
    m->min = a->min;
    m->max = a->max;
  }
  m->entries++;
  m->samples += a->count;
  if (a->step < m->first_step)
    m->first_step = a->step;
  if (a->step >= m->last_step) {
    m->last_step = a->step;
    m->last_mean = a->sum / a->count;
  }
  if (a->min < m->min || isnan(m->min))
    m->min = a->min;
  if (a->max > m->max || isnan(m->max))
    m->max = a->max;
  if (d->series_id >= 0 && a->id == (uint32_t)d->series_id)
    printf("%" PRId64 ",%" PRIu32 ",%.17g,%.17g,%.17g\n", a->step, a->count, a->sum / a->count,
           a->min, a->max);
  return 0;
}

static int on_step(void *ctx, const cairn_rec_step *s) {
  dump *d = ctx;
  if (d->steps == 0 || s->t_ns < d->first_step_ns)
    d->first_step_ns = s->t_ns;
  if (s->t_ns > d->last_step_ns)
    d->last_step_ns = s->t_ns;
  d->steps++;
  return 0;
}

static int on_param(void *ctx, const cairn_rec_param *p) {
  dump *d = ctx;
  d->params++;
  if (d->quiet)
    return 0;
  printf("  param %.*s = ", (int)p->key_len, p->key);
  switch (p->type) {
  case CAIRN_PARAM_INT64:
    printf("%" PRId64 " (int64)\n", p->i64);
    break;
  case CAIRN_PARAM_DOUBLE:
    printf("%.17g (double)\n", p->f64);
    break;
  case CAIRN_PARAM_BOOL:
    printf("%s (bool)\n", p->i64 ? "true" : "false");
    break;
  default:
    printf("\"%.*s\" (string)\n", (int)p->str_len, p->str);
  }
  return 0;
}

static int on_kv(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  dump *d = ctx;
  d->kvs++;
  if (!d->quiet)
    printf("  run %.*s = \"%.*s\"\n", (int)kl, k, (int)vl, v);
  return 0;
}

static int on_counters(void *ctx, const cairn_rec_counters *c) {
  dump *d = ctx;
  if (c->channel < 2) {
    d->ctr[c->channel] = *c; /* cumulative: the last block's are the totals */
    d->have_ctr = 1;
  }
  return 0;
}

static void on_report(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "cairn-wal-dump: %s\n", msg);
}

static void usage(FILE *f) {
  fprintf(f, "usage: cairn-wal-dump RUN_DIR [--series METRIC]\n"
             "  Prints the contents of a cairn run directory's write-ahead log.\n"
             "  --series METRIC  print step,count,mean,min,max CSV for one metric\n"
             "Exit status: 0 clean, 1 damage found (intact data printed), 2 error.\n");
}

int main(int argc, char **argv) {
  dump d = {.series_id = -1};
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--series") && i + 1 < argc) {
      d.series = argv[++i];
      d.quiet = 1;
    } else if (argv[i][0] == '-' || dir) {
      usage(stderr);
      return 2;
    } else {
      dir = argv[i];
    }
  }
  if (!dir) {
    usage(stderr);
    return 2;
  }
  cairn_rec_visitor v = {&d, on_run, on_name, on_metric, on_step, on_param, on_kv, on_counters, NULL};
  cairn_run_damage dmg;
  if (d.series) {
    /* Names come first in the log, so one pass resolves the id before the
     * metric records arrive; print the header here. */
    printf("step,count,mean,min,max\n");
  } else {
    printf("run directory: %s\n", dir);
  }
  int rc = cairn__run_read_wal(dir, &v, &dmg, on_report, NULL);
  if (rc == CAIRN_ENOTFOUND) {
    fprintf(stderr, "cairn-wal-dump: %s: no write-ahead log segments (wal-r*-*.cwal) found\n", dir);
    return 2;
  }
  if (rc != CAIRN_OK) {
    fprintf(stderr, "cairn-wal-dump: %s: %s\n", dir, cairn_strerror(rc));
    return 2;
  }
  if (d.series) {
    if (d.series_id < 0) {
      fprintf(stderr, "cairn-wal-dump: %s: no metric named '%s'\n", dir, d.series);
      return 2;
    }
  } else {
    if (d.have_run) {
      char id[37];
      cairn__uuid_format(d.run.run_id, id);
      printf("run id: %s\nhost: %s  pid: %" PRIu32 "  cairn %s\n", id, d.host, d.run.pid,
             d.version);
    }
    printf("segments: %" PRIu64 "  blocks: %" PRIu64 "  step markers: %" PRIu64
           "  params: %" PRIu64 "  run key/values: %" PRIu64 "\n",
           dmg.segments, dmg.blocks, d.steps, d.params, d.kvs);
    if (d.steps > 1)
      printf("wall time between first and last step marker: %.3f s\n",
             (double)(d.last_step_ns - d.first_step_ns) / 1e9);
    printf("metrics (%zu):\n", d.nm);
    printf("  %-24s %10s %10s %12s %14s %14s %14s\n", "name", "samples", "steps",
           "last step", "last mean", "min", "max");
    for (size_t i = 0; i < d.nm; i++) {
      metric_sum *m = &d.m[i];
      printf("  %-24s %10" PRIu64 " %10" PRIu64 " %12" PRId64 " %14.6g %14.6g %14.6g\n",
             m->name ? m->name : "(unnamed)", m->samples, m->entries, m->last_step,
             m->last_mean, m->min, m->max);
    }
    if (d.have_ctr) {
      static const char *ch[] = {"metrics", "control"};
      printf("accounting (records):\n");
      for (int c = 0; c < 2; c++)
        printf("  %-8s logged %" PRIu64 "  written %" PRIu64 "  dropped %" PRIu64
               "  rejected %" PRIu64 "%s\n",
               ch[c], d.ctr[c].logged, d.ctr[c].written, d.ctr[c].dropped, d.ctr[c].rejected,
               d.ctr[c].logged == d.ctr[c].written + d.ctr[c].dropped
                   ? "  (complete)"
                   : "  (incomplete: the run did not finish cleanly)");
    }
  }
  int damaged = dmg.corrupt_regions || dmg.torn_tails || dmg.bad_files || dmg.bad_blocks;
  if (damaged)
    fprintf(stderr,
            "cairn-wal-dump: damage: %" PRIu64 " corrupt regions, %" PRIu64 " torn tails, %" PRIu64
            " rejected files, %" PRIu64 " undecodable blocks, %" PRIu64 " bytes skipped\n",
            dmg.corrupt_regions, dmg.torn_tails, dmg.bad_files, dmg.bad_blocks,
            dmg.bytes_skipped);
  for (size_t i = 0; i < d.nm; i++)
    free(d.m[i].name);
  free(d.m);
  return damaged ? 1 : 0;
}
