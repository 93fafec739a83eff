/*
 * h5_testdata.h — test helper: a deterministic synthetic run ("world" of W
 * ranks) from which a run view of any subset of ranks can be built, so the
 * serial writer (all ranks), the parallel writer (each process its ranks)
 * and the independent readers (tests/h5_readers.py recomputes the same
 * formulas) all see the same data. Also compares two views field by field.
 * Header-only; every function is static inline.
 */
#ifndef CAIRN_TEST_H5_TESTDATA_H
#define CAIRN_TEST_H5_TESTDATA_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_view.h"

#define TD_STEPS 40
#define TD_NMETRICS 4

/* Byte-wise sorted, as the file orders them. Names hold '/', control
 * bytes and a high byte on purpose: they must never become link names. */
static const char *const td_names[TD_NMETRICS] = {"acc/top1", "grad norm\x01\xfe", "loss",
                                                  "nan_metric"};

/* Does `rank` log metric m at step s? Value and samples if so. */
static inline int td_sample(int m, int64_t s, int rank, double *value, uint32_t *samples) {
  *samples = 1;
  switch (m) {
  case 0: /* float32-exact, missing now and then */
    if (s >= TD_STEPS || (s + rank) % 7 == 0)
      return 0;
    *value = (double)((s * 5 + rank) % 64) / 64.0;
    return 1;
  case 1: /* even ranks only; even steps plus one rank-specific far step */
    if (rank % 2)
      return 0;
    if (s == 1000 + rank) {
      *value = -1.5 * rank;
      return 1;
    }
    if (s % 2 || s >= TD_STEPS)
      return 0;
    *value = 1.0 / (1.0 + (double)s) + rank * 1e-3;
    return 1;
  case 2: /* noisy decaying loss, four micro-batches per step */
    if (s >= TD_STEPS)
      return 0;
    *value = 2.0 * exp(-(double)s / 25.0) + 0.01 * sin(12.9898 * s + 78.233 * rank);
    *samples = 4;
    return 1;
  default: /* a NaN sample is data */
    if (s >= TD_STEPS || rank != 1 || s > 3)
      return 0;
    *value = s == 3 ? NAN : (double)s;
    return 1;
  }
}

static inline int td_has_step(int m, int64_t s, int rank) {
  double v;
  uint32_t n;
  return td_sample(m, s, rank, &v, &n);
}

static inline int td_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Builds the view of ranks[0..n) (ascending) of a world of W ranks. */
static inline void td_view(cairn_run_view *v, const int32_t *ranks, size_t n, int W) {
  cairn__view_init(v);
  v->format_version = 0;
  for (int i = 0; i < 16; i++)
    v->run_id[i] = (uint8_t)(0x10 + i * 7);
  v->have_run_id = 1;
  snprintf(v->cairn_version, sizeof v->cairn_version, "0.1.0");
  v->created_ns = 1700000000000000000ull;
  v->nranks = (uint32_t)W;
  v->naggregators = 1;
  v->detail = 1;
  v->ncols = n;
  v->col_rank = malloc((n + 1) * sizeof *v->col_rank);
  v->ranks = calloc(n + 1, sizeof *v->ranks);
  v->acct = calloc((n + 1) * CAIRN_H5_NCHANNELS, sizeof *v->acct);
  v->acct_reported = calloc(n + 1, 1);
  for (size_t c = 0; c < n; c++) {
    int r = ranks[c];
    v->col_rank[c] = r;
    char host[32];
    snprintf(host, sizeof host, "node%02d", r / 2);
    v->ranks[c].hostname = strdup(host);
    v->ranks[c].pid = 1000u + (uint32_t)r;
    v->ranks[c].start_ns = 1700000000000000000ull + (uint64_t)r;
    v->acct[c * 2] = (cairn_view_acct){1000u + (uint64_t)r, 990u + (uint64_t)r, 10, (uint64_t)(r % 2)};
    v->acct[c * 2 + 1] = (cairn_view_acct){5, 5, 0, 0};
    v->acct_reported[c] = 1;
  }
  /* metrics: union of the subset's steps */
  v->metrics = calloc(TD_NMETRICS, sizeof *v->metrics);
  for (int m = 0; m < TD_NMETRICS; m++) {
    int64_t cand[TD_STEPS + 64];
    size_t ns = 0;
    for (int64_t s = 0; s < TD_STEPS; s++)
      for (size_t c = 0; c < n; c++)
        if (td_has_step(m, s, ranks[c])) {
          cand[ns++] = s;
          break;
        }
    for (size_t c = 0; c < n; c++)
      if (td_has_step(m, 1000 + ranks[c], ranks[c]))
        cand[ns++] = 1000 + ranks[c];
    qsort(cand, ns, sizeof *cand, td_cmp_i64);
    if (ns == 0)
      continue;
    cairn_view_metric *vm = &v->metrics[v->nmetrics++];
    cairn__view_metric_alloc(vm, ns, n, 1);
    vm->name = strdup(td_names[m]);
    vm->name_len = strlen(td_names[m]);
    memcpy(vm->step, cand, ns * sizeof *cand);
    vm->missing = 0;
    for (size_t i = 0; i < ns; i++) {
      for (size_t c = 0; c < n; c++) {
        double x;
        uint32_t k;
        if (td_sample(m, cand[i], ranks[c], &x, &k)) {
          vm->values[i * n + c] = x;
          vm->samples[i * n + c] = k;
        } else {
          vm->values[i * n + c] = NAN;
          vm->samples[i * n + c] = 0;
        }
      }
      cairn__view_stats_row(vm->values + i * n, vm->samples + i * n, v->col_rank, n,
                            &vm->count[i], &vm->sum[i], &vm->sumsq[i], &vm->min[i],
                            &vm->max[i], &vm->rank_min[i], &vm->rank_max[i]);
      vm->missing += n - vm->count[i];
    }
  }
  /* step markers: every rank marks 0..TD_STEPS-1 except rank 2 at step 5 */
  v->nmarks = TD_STEPS;
  v->mark_step = malloc(TD_STEPS * sizeof *v->mark_step);
  v->mark_time = calloc(TD_STEPS * (n + 1), sizeof *v->mark_time);
  for (size_t i = 0; i < TD_STEPS; i++) {
    v->mark_step[i] = (int64_t)i;
    for (size_t c = 0; c < n; c++)
      if (!(ranks[c] == 2 && i == 5))
        v->mark_time[i * n + c] =
            1700000000000000000ull + i * 1000000u + (uint64_t)ranks[c] * 1000u;
  }
  /* params (rank 0 sets lr twice: the last one wins), run key/values */
  for (size_t c = 0; c < n; c++) {
    int r = ranks[c];
    if (r == 0) {
      cairn_view_param p0 = {r, CAIRN_H5_PARAM_DOUBLE, "lr", 0, 1e-3, ""};
      cairn__view_add_param(v, &p0);
    }
    cairn_view_param p1 = {r, CAIRN_H5_PARAM_DOUBLE, "lr", 0, 3e-4, ""};
    cairn_view_param p2 = {r, CAIRN_H5_PARAM_INT64, "batch", 32 + r, 0, ""};
    cairn_view_param p3 = {r, CAIRN_H5_PARAM_STRING, "model", 0, 0, "resnet-50"};
    cairn_view_param p4 = {r, CAIRN_H5_PARAM_BOOL, "amp", 1, 0, ""};
    cairn__view_add_param(v, &p1);
    cairn__view_add_param(v, &p2);
    cairn__view_add_param(v, &p3);
    cairn__view_add_param(v, &p4);
    if (r == 0)
      cairn__view_add_kv(v, r, "dataset", "imagenet/train");
    if (r == W - 1)
      cairn__view_add_kv(v, r, "note", "straggler\ttab");
    if (r % 2 == 0) {
      cairn_h5_artifact_row a = {(uint64_t)(100 + r), CAIRN_H5_ARTIFACT_DATASLICE, r,
                                 4096u * (uint64_t)(r + 1), 1700000000000000000ull + (uint64_t)r,
                                 "file:///data/shard", "sha256:00ff",
                                 "{\"rows\": 1000, \"split\": \"train\"}"};
      cairn__view_add_artifact(v, &a);
      cairn_h5_event_row e = {7, (uint64_t)(100 + r), CAIRN_H5_EVENT_INPUT, r, 5};
      cairn__view_add_event(v, &e);
    }
    if (r == 0) {
      cairn_h5_execution_row x = {7, 3, 0, 10, 20, "train", "{\"epochs\": 3}", "training",
                                  "python train.py --epochs 3"};
      cairn__view_add_execution(v, &x);
      cairn_h5_context_row ctx = {3, "training", "resnet-pipeline", ""};
      cairn__view_add_context(v, &ctx);
    }
  }
}

/* Bitwise equality that also holds for NaN. */
static inline int td_same_f64(double a, double b) {
  return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* Compares two views; returns 0 or writes the first difference into why.
 * Identity fields that a file does not carry from the view (format
 * version, source, created_ns) are not compared. */
static inline int td_compare(const cairn_run_view *a, const cairn_run_view *b, char *why, size_t len) {
#define DIFF(...)                                                                              \
  do {                                                                                         \
    snprintf(why, len, __VA_ARGS__);                                                           \
    return -1;                                                                                 \
  } while (0)
  if (a->ncols != b->ncols)
    DIFF("ncols %zu vs %zu", a->ncols, b->ncols);
  if (a->have_run_id != b->have_run_id || memcmp(a->run_id, b->run_id, 16))
    DIFF("run id");
  if (a->nranks != b->nranks)
    DIFF("nranks %u vs %u", a->nranks, b->nranks);
  for (size_t c = 0; c < a->ncols; c++) {
    if (a->col_rank[c] != b->col_rank[c])
      DIFF("col_rank[%zu]", c);
    if (strcmp(a->ranks[c].hostname, b->ranks[c].hostname) || a->ranks[c].pid != b->ranks[c].pid ||
        a->ranks[c].start_ns != b->ranks[c].start_ns)
      DIFF("rank info of column %zu", c);
    if (memcmp(&a->acct[c * 2], &b->acct[c * 2], 2 * sizeof *a->acct) ||
        a->acct_reported[c] != b->acct_reported[c])
      DIFF("accounting of column %zu", c);
  }
  if (a->nmetrics != b->nmetrics)
    DIFF("nmetrics %zu vs %zu", a->nmetrics, b->nmetrics);
  for (size_t k = 0; k < a->nmetrics; k++) {
    const cairn_view_metric *x = &a->metrics[k], *y = &b->metrics[k];
    if (x->name_len != y->name_len || memcmp(x->name, y->name, x->name_len))
      DIFF("metric %zu name", k);
    if (x->nsteps != y->nsteps)
      DIFF("metric %s: nsteps %zu vs %zu", x->name, x->nsteps, y->nsteps);
    if (x->missing != y->missing)
      DIFF("metric %s: missing %llu vs %llu", x->name, (unsigned long long)x->missing,
           (unsigned long long)y->missing);
    for (size_t i = 0; i < x->nsteps; i++) {
      if (x->step[i] != y->step[i] || x->count[i] != y->count[i] ||
          !td_same_f64(x->sum[i], y->sum[i]) || !td_same_f64(x->sumsq[i], y->sumsq[i]) ||
          !td_same_f64(x->min[i], y->min[i]) || !td_same_f64(x->max[i], y->max[i]) ||
          x->rank_min[i] != y->rank_min[i] || x->rank_max[i] != y->rank_max[i])
        DIFF("metric %s: statistics of row %zu (step %lld)", x->name, i, (long long)x->step[i]);
    }
    if (!x->values != !y->values)
      DIFF("metric %s: detail present in one view only", x->name);
    for (size_t i = 0; x->values && i < x->nsteps * a->ncols; i++)
      if (!td_same_f64(x->values[i], y->values[i]) || x->samples[i] != y->samples[i])
        DIFF("metric %s: cell %zu: %.17g/%u vs %.17g/%u", x->name, i, x->values[i],
             x->samples[i], y->values[i], y->samples[i]);
  }
  if (a->nmarks != b->nmarks)
    DIFF("nmarks");
  for (size_t i = 0; i < a->nmarks; i++) {
    if (a->mark_step[i] != b->mark_step[i])
      DIFF("mark step %zu", i);
    for (size_t c = 0; c < a->ncols; c++)
      if (a->mark_time[i * a->ncols + c] != b->mark_time[i * a->ncols + c])
        DIFF("mark time %zu,%zu", i, c);
  }
  if (a->nparams != b->nparams)
    DIFF("nparams %zu vs %zu", a->nparams, b->nparams);
  for (size_t i = 0; i < a->nparams; i++) {
    const cairn_view_param *x = &a->params[i], *y = &b->params[i];
    if (x->rank != y->rank || x->type != y->type || strcmp(x->key, y->key) || x->i64 != y->i64 ||
        !td_same_f64(x->f64, y->f64) || strcmp(x->str, y->str))
      DIFF("param %zu (%s)", i, x->key);
  }
  if (a->nkv != b->nkv)
    DIFF("nkv");
  for (size_t i = 0; i < a->nkv; i++)
    if (a->kv[i].rank != b->kv[i].rank || strcmp(a->kv[i].key, b->kv[i].key) ||
        strcmp(a->kv[i].value, b->kv[i].value))
      DIFF("kv %zu", i);
  if (a->nartifacts != b->nartifacts || a->nexecutions != b->nexecutions ||
      a->nevents != b->nevents || a->ncontexts != b->ncontexts)
    DIFF("lineage row counts");
  for (size_t i = 0; i < a->nartifacts; i++) {
    const cairn_h5_artifact_row *x = &a->artifacts[i], *y = &b->artifacts[i];
    if (x->id != y->id || x->kind != y->kind || x->rank != y->rank || x->size != y->size ||
        x->t_ns != y->t_ns || strcmp(x->uri, y->uri) || strcmp(x->hash, y->hash) ||
        strcmp(x->properties, y->properties))
      DIFF("artifact %zu", i);
  }
  for (size_t i = 0; i < a->nexecutions; i++) {
    const cairn_h5_execution_row *x = &a->executions[i], *y = &b->executions[i];
    if (x->id != y->id || x->context_id != y->context_id || x->rank != y->rank ||
        x->start_ns != y->start_ns || x->end_ns != y->end_ns || strcmp(x->name, y->name) ||
        strcmp(x->properties, y->properties) || strcmp(x->type, y->type) ||
        strcmp(x->command, y->command))
      DIFF("execution %zu", i);
  }
  for (size_t i = 0; i < a->nevents; i++) {
    const cairn_h5_event_row *x = &a->events[i], *y = &b->events[i];
    if (x->execution_id != y->execution_id || x->artifact_id != y->artifact_id ||
        x->type != y->type || x->rank != y->rank || x->t_ns != y->t_ns)
      DIFF("event %zu", i);
  }
  for (size_t i = 0; i < a->ncontexts; i++) {
    const cairn_h5_context_row *x = &a->contexts[i], *y = &b->contexts[i];
    if (x->id != y->id || strcmp(x->name, y->name) || strcmp(x->pipeline, y->pipeline) ||
        strcmp(x->properties, y->properties))
      DIFF("context %zu", i);
  }
#undef DIFF
  return 0;
}

#endif /* CAIRN_TEST_H5_TESTDATA_H */
