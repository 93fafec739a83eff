/*
 * cairn_wal_dump.c — prints what a run directory's write-ahead log holds:
 * run identity, params and key/values (of the lowest rank that logged
 * them), a per-metric summary across ranks, the accounting summed over
 * ranks, and any damage found. `--series NAME` prints one metric's per-step,
 * per-rank values as CSV. It reads only through io/ (the readers every tool
 * shares). Metric ids are per rank (each rank interns its own names), so
 * everything here is keyed by (rank, id) -> name.
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
#include "tool_common.h"
#include "util.h"

typedef struct {
  char *name;
  uint64_t samples, entries;
  int64_t last_step;
  double last_sum;      /* sum of the per-rank means at last_step */
  uint32_t last_ranks;  /* ranks that logged last_step            */
  double min, max;
  uint32_t ranks;       /* ranks that logged it at all            */
} metric_sum;

typedef struct {
  uint32_t *map; /* id -> index into metrics, UINT32_MAX if unnamed */
  size_t n;
  uint8_t *seen; /* per metric index: this rank has logged it */
  size_t nseen;
  cairn_rec_counters ctr[2];
  int have_ctr;
  int have_run;
} rank_info;

typedef struct {
  metric_sum *m;
  size_t nm, capm;
  rank_info *ranks;
  size_t nranks;
  uint32_t rank; /* current SOURCE */
  const char *series;
  uint8_t run_id[16];
  int have_run;
  uint32_t declared_ranks;
  char host[256], version[64];
  uint64_t steps, params, kvs, first_step_ns, last_step_ns;
  uint64_t artifacts, executions; /* lineage records seen (the first few printed) */
  uint32_t param_rank; /* print params/kv of this rank only */
  int quiet;
} dump;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "cairn-wal-dump: out of memory\n");
    exit(2);
  }
  return q;
}

static rank_info *rank_at(dump *d, uint32_t r) {
  if (r >= d->nranks) {
    size_t n = (size_t)r + 1;
    d->ranks = xrealloc(d->ranks, n * sizeof *d->ranks);
    memset(d->ranks + d->nranks, 0, (n - d->nranks) * sizeof *d->ranks);
    d->nranks = n;
  }
  return &d->ranks[r];
}

static uint32_t metric_index(dump *d, const char *name, size_t len) {
  for (size_t i = 0; i < d->nm; i++)
    if (strlen(d->m[i].name) == len && memcmp(d->m[i].name, name, len) == 0)
      return (uint32_t)i;
  if (d->nm == d->capm) {
    d->capm = d->capm ? d->capm * 2 : 16;
    d->m = xrealloc(d->m, d->capm * sizeof *d->m);
  }
  metric_sum *m = &d->m[d->nm];
  memset(m, 0, sizeof *m);
  m->name = strndup(name, len);
  m->last_step = INT64_MIN;
  return (uint32_t)d->nm++;
}

static int on_source(void *ctx, uint32_t rank) {
  dump *d = ctx;
  d->rank = rank;
  rank_at(d, rank);
  return 0;
}

static int on_run(void *ctx, const cairn_rec_run *r) {
  dump *d = ctx;
  rank_at(d, d->rank)->have_run = 1;
  if (!d->have_run || d->rank < d->param_rank) {
    memcpy(d->run_id, r->run_id, 16);
    snprintf(d->host, sizeof d->host, "%.*s", (int)r->hostname_len, r->hostname);
    snprintf(d->version, sizeof d->version, "%.*s", (int)r->version_len, r->version);
  }
  d->have_run = 1;
  d->declared_ranks = r->nranks;
  return 0;
}

static int on_name(void *ctx, uint32_t id, const char *name, size_t len) {
  dump *d = ctx;
  rank_info *ri = rank_at(d, d->rank);
  if (id >= ri->n) {
    size_t n = (size_t)id + 1;
    ri->map = xrealloc(ri->map, n * sizeof *ri->map);
    for (size_t i = ri->n; i < n; i++)
      ri->map[i] = UINT32_MAX;
    ri->n = n;
  }
  ri->map[id] = metric_index(d, name, len);
  return 0;
}

static int on_metric(void *ctx, const cairn_metric_agg *a) {
  dump *d = ctx;
  rank_info *ri = rank_at(d, d->rank);
  uint32_t mi = a->id < ri->n ? ri->map[a->id] : UINT32_MAX;
  if (mi == UINT32_MAX) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "(unnamed id %u)", a->id);
    mi = metric_index(d, tmp, (size_t)n);
  }
  metric_sum *m = &d->m[mi];
  if (m->entries == 0) {
    m->min = a->min;
    m->max = a->max;
  }
  m->entries++;
  m->samples += a->count;
  if (mi >= ri->nseen) {
    size_t n = (size_t)mi + 16;
    ri->seen = xrealloc(ri->seen, n);
    memset(ri->seen + ri->nseen, 0, n - ri->nseen);
    ri->nseen = n;
  }
  if (!ri->seen[mi]) {
    ri->seen[mi] = 1;
    m->ranks++;
  }
  double mean = a->sum / a->count;
  if (a->step > m->last_step) {
    m->last_step = a->step;
    m->last_sum = mean;
    m->last_ranks = 1;
  } else if (a->step == m->last_step) {
    m->last_sum += mean;
    m->last_ranks++;
  }
  if (a->min < m->min || isnan(m->min))
    m->min = a->min;
  if (a->max > m->max || isnan(m->max))
    m->max = a->max;
  if (d->series && strcmp(m->name, d->series) == 0)
    printf("%" PRId64 ",%" PRIu32 ",%" PRIu32 ",%.17g,%.17g,%.17g\n", a->step, d->rank, a->count,
           mean, a->min, a->max);
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
  if (d->quiet || d->rank != d->param_rank)
    return 0;
  cairn_tool_print_param(p->key, p->key_len, p->type, p->i64, p->f64, p->str, p->str_len);
  return 0;
}

static int on_kv(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  dump *d = ctx;
  d->kvs++;
  if (!d->quiet && d->rank == d->param_rank)
    cairn_tool_print_kv(k, kl, v, vl, "");
  return 0;
}

static int on_counters(void *ctx, const cairn_rec_counters *c) {
  dump *d = ctx;
  rank_info *ri = rank_at(d, d->rank);
  if (c->channel < 2) {
    ri->ctr[c->channel] = *c; /* cumulative: the rank's last block holds its totals */
    ri->have_ctr = 1;
  }
  return 0;
}

static int on_artifact(void *ctx, const cairn_rec_artifact *a) {
  dump *d = ctx;
  if (!d->quiet && d->artifacts++ < CAIRN_TOOL_LINEAGE_SHOWN)
    cairn_tool_print_artifact(a->id, a->kind, a->role, (int32_t)d->rank, a->size, a->uri,
                              a->uri_len, a->hash, a->hash_len, a->props, a->props_len);
  return 0;
}

static int on_lineage(void *ctx, const cairn_rec_lineage *l) {
  dump *d = ctx;
  if (l->what == CAIRN_LIN_EXEC_BEGIN && !d->quiet && d->executions++ < CAIRN_TOOL_LINEAGE_SHOWN)
    cairn_tool_print_execution(l->id, (int32_t)d->rank, l->type, l->type_len, l->name,
                               l->name_len, l->command, l->command_len, l->props, l->props_len);
  return 0;
}

static void on_report(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "cairn-wal-dump: %s\n", msg);
}

static void usage(FILE *f) {
  fprintf(f, "usage: cairn-wal-dump RUN_DIR [--series METRIC]\n"
             "  Prints the contents of a cairn run directory's write-ahead log.\n"
             "  --series METRIC  print step,rank,count,mean,min,max CSV for one metric\n"
             "Exit status: 0 clean, 1 damage found (intact data printed), 2 error.\n");
}

int main(int argc, char **argv) {
  dump d;
  memset(&d, 0, sizeof d);
  const char *dir;
  int code = cairn_tool_dump_args(argc, argv, usage, &dir, &d.series, NULL);
  if (code >= 0)
    return code;
  d.quiet = d.series != NULL;
  cairn_rec_visitor v = {&d,       on_run, on_name,     on_metric, on_step,
                         on_param, on_kv,  on_counters, on_source, on_artifact, on_lineage};
  cairn_run_damage dmg;
  if (d.series)
    printf("step,rank,count,mean,min,max\n");
  else
    printf("run directory: %s\n", dir);
  int rc = cairn__run_read_wal(dir, &v, &dmg, on_report, NULL);
  if (rc == CAIRN_ENOTFOUND) {
    fprintf(stderr, "cairn-wal-dump: %s: no write-ahead log segments (wal-r*-*.cwal) found\n",
            dir);
    return 2;
  }
  if (rc != CAIRN_OK) {
    fprintf(stderr, "cairn-wal-dump: %s: %s\n", dir, cairn_strerror(rc));
    return 2;
  }
  if (d.series) {
    int found = 0;
    for (size_t i = 0; i < d.nm; i++)
      found |= strcmp(d.m[i].name, d.series) == 0;
    if (!found) {
      fprintf(stderr, "cairn-wal-dump: %s: no metric named '%s'\n", dir, d.series);
      return 2;
    }
  } else {
    size_t ranks_seen = 0;
    for (size_t r = 0; r < d.nranks; r++)
      ranks_seen += d.ranks[r].have_run;
    if (d.have_run) {
      char id[37];
      cairn__uuid_format(d.run_id, id);
      printf("run id: %s  cairn %s\nranks: %zu logged of %u declared  (rank 0 on host %s)\n", id,
             d.version, ranks_seen, d.declared_ranks, d.host);
    }
    printf("segments: %" PRIu64 "  blocks: %" PRIu64 "  step markers: %" PRIu64
           "  params: %" PRIu64 "  run key/values: %" PRIu64 "\n",
           dmg.segments, dmg.blocks, d.steps, d.params, d.kvs);
    if (d.artifacts > CAIRN_TOOL_LINEAGE_SHOWN || d.executions > CAIRN_TOOL_LINEAGE_SHOWN)
      printf("lineage: %" PRIu64 " artifacts, %" PRIu64 " executions (the first %d of each "
             "listed)\n",
             d.artifacts, d.executions, CAIRN_TOOL_LINEAGE_SHOWN);
    if (d.steps > 1)
      printf("wall time between first and last step marker: %.3f s\n",
             (double)(d.last_step_ns - d.first_step_ns) / 1e9);
    printf("metrics (%zu):\n", d.nm);
    printf("  %-24s %10s %8s %10s %10s %14s %14s %14s\n", "name", "samples", "ranks", "entries",
           "last step", "last mean", "min", "max");
    for (size_t i = 0; i < d.nm; i++) {
      metric_sum *m = &d.m[i];
      printf("  %-24s %10" PRIu64 " %8u %10" PRIu64 " %10" PRId64 " %14.6g %14.6g %14.6g\n",
             m->name, m->samples, m->ranks, m->entries, m->last_step,
             m->last_ranks ? m->last_sum / m->last_ranks : NAN, m->min, m->max);
    }
    uint64_t t[2][4] = {{0}};
    int complete = 1;
    for (size_t r = 0; r < d.nranks; r++) {
      if (!d.ranks[r].have_ctr)
        continue;
      uint64_t k[2][4];
      for (int c = 0; c < 2; c++) {
        const cairn_rec_counters *x = &d.ranks[r].ctr[c];
        k[c][0] = x->logged;
        k[c][1] = x->written;
        k[c][2] = x->dropped;
        k[c][3] = x->rejected;
      }
      cairn_tool_acct_add(t, &complete, k);
    }
    cairn_tool_print_acct(t, complete);
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
  for (size_t r = 0; r < d.nranks; r++) {
    free(d.ranks[r].map);
    free(d.ranks[r].seen);
  }
  free(d.ranks);
  return damaged ? 1 : 0;
}
