/*
 * run_model.h — test helper: reads a run directory through the shared
 * readers (io/run_reader.h) into plain arrays the tests can assert on.
 * Header-only so each test program stays one file plus this.
 */
#ifndef CAIRN_TEST_RUN_MODEL_H
#define CAIRN_TEST_RUN_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_reader.h"
#include "run_view.h"

#define RM_MAX_NAMES 256

typedef struct {
  char *names[RM_MAX_NAMES];
  /* per metric id: every aggregate seen, in order */
  cairn_metric_agg *agg[RM_MAX_NAMES];
  size_t nagg[RM_MAX_NAMES], capagg[RM_MAX_NAMES];
  uint64_t samples[RM_MAX_NAMES];
  cairn_rec_param params[64];
  char *param_keys[64], *param_strs[64];
  size_t nparams;
  char *kv_keys[64], *kv_vals[64];
  size_t nkv;
  cairn_rec_step *steps;
  size_t nsteps, capsteps;
  cairn_rec_counters ctr[2];
  int have_run;
  cairn_rec_run run;
  cairn_run_damage damage;
  uint32_t last_source;
  uint64_t nsources;
  char reports[8][512];
  int nreports;
} run_model;

static int rm_name(void *c, uint32_t id, const char *n, size_t l) {
  run_model *m = c;
  if (id < RM_MAX_NAMES)
    m->names[id] = strndup(n, l);
  return 0;
}
static int rm_metric(void *c, const cairn_metric_agg *a) {
  run_model *m = c;
  if (a->id >= RM_MAX_NAMES)
    return 0;
  if (m->nagg[a->id] == m->capagg[a->id]) {
    m->capagg[a->id] = m->capagg[a->id] ? m->capagg[a->id] * 2 : 64;
    m->agg[a->id] = realloc(m->agg[a->id], m->capagg[a->id] * sizeof *a);
  }
  m->agg[a->id][m->nagg[a->id]++] = *a;
  m->samples[a->id] += a->count;
  return 0;
}
static int rm_step(void *c, const cairn_rec_step *s) {
  run_model *m = c;
  if (m->nsteps == m->capsteps) {
    m->capsteps = m->capsteps ? m->capsteps * 2 : 64;
    m->steps = realloc(m->steps, m->capsteps * sizeof *s);
  }
  m->steps[m->nsteps++] = *s;
  return 0;
}
static int rm_param(void *c, const cairn_rec_param *p) {
  run_model *m = c;
  if (m->nparams < 64) {
    m->params[m->nparams] = *p;
    m->param_keys[m->nparams] = strndup(p->key, p->key_len);
    m->param_strs[m->nparams] = p->str ? strndup(p->str, p->str_len) : NULL;
    m->nparams++;
  }
  return 0;
}
static int rm_kv(void *c, const char *k, size_t kl, const char *v, size_t vl) {
  run_model *m = c;
  if (m->nkv < 64) {
    m->kv_keys[m->nkv] = strndup(k, kl);
    m->kv_vals[m->nkv] = strndup(v, vl);
    m->nkv++;
  }
  return 0;
}
static int rm_counters(void *c, const cairn_rec_counters *k) {
  run_model *m = c;
  if (k->channel < 2)
    m->ctr[k->channel] = *k;
  return 0;
}
static int rm_run(void *c, const cairn_rec_run *r) {
  run_model *m = c;
  m->have_run = 1;
  m->run = *r;
  m->run.hostname = NULL;
  m->run.version = NULL;
  return 0;
}
static int rm_source(void *c, uint32_t rank) {
  run_model *m = c;
  m->last_source = rank;
  m->nsources++;
  return 0;
}
static void rm_report(void *c, const char *msg) {
  run_model *m = c;
  if (m->nreports < 8)
    snprintf(m->reports[m->nreports++], sizeof m->reports[0], "%s", msg);
}

/* Reads only the write-ahead log (e.g. of a run that is still going).
 * Metric slots are the runtime's ids. Returns the reader's return code. */
static inline int rm_read_wal(run_model *m, const char *dir) {
  memset(m, 0, sizeof *m);
  cairn_rec_visitor v = {m, rm_run, rm_name, rm_metric, rm_step, rm_param, rm_kv, rm_counters, rm_source, NULL, NULL};
  return cairn__run_read_wal(dir, &v, &m->damage, rm_report, m);
}

/* Reads a finished run the way the tools do (cairn__run_open: the HDF5 run
 * file, or the log of a crashed run) and flattens rank 0's part into the
 * same model. Metric slots are in name order (the view's order), so tests
 * look metrics up with rm_id. Per step: count = the rank's samples, sum =
 * its mean times count, min/max = the step's statistics across ranks. */
static inline int rm_read(run_model *m, const char *dir) {
  memset(m, 0, sizeof *m);
  cairn_run_view v;
  cairn__view_init(&v);
  cairn_run_report rep;
  memset(&rep, 0, sizeof rep);
  rep.fn = rm_report;
  rep.ctx = m;
  int rc = cairn__run_open(dir, &v, &rep);
  m->damage = rep.wal;
  if (rc != CAIRN_OK) {
    cairn__view_free(&v);
    return rc;
  }
  m->have_run = v.have_run_id;
  memcpy(m->run.run_id, v.run_id, 16);
  for (size_t i = 0; i < v.nmetrics && i < RM_MAX_NAMES; i++) {
    const cairn_view_metric *vm = &v.metrics[i];
    m->names[i] = strndup(vm->name, vm->name_len);
    for (size_t k = 0; k < vm->nsteps; k++) {
      cairn_metric_agg a = {.step = vm->step[k], .id = (uint32_t)i};
      if (vm->values) {
        a.count = vm->samples[k * v.ncols];
        a.sum = a.count ? vm->values[k * v.ncols] * a.count : 0;
      } else {
        a.count = vm->count[k];
        a.sum = vm->sum[k];
      }
      a.min = vm->min[k];
      a.max = vm->max[k];
      if (a.count)
        rm_metric(m, &a);
    }
  }
  for (size_t i = 0; i < v.nmarks; i++) {
    cairn_rec_step st = {v.mark_step[i], v.ncols ? v.mark_time[i * v.ncols] : 0, 0};
    rm_step(m, &st);
  }
  for (size_t i = 0; i < v.nparams; i++) {
    const cairn_view_param *p = &v.params[i];
    cairn_rec_param rp = {p->type, p->key, strlen(p->key), p->i64, p->f64, p->str,
                          p->str ? strlen(p->str) : 0};
    rm_param(m, &rp);
  }
  for (size_t i = 0; i < v.nkv; i++)
    rm_kv(m, v.kv[i].key, strlen(v.kv[i].key), v.kv[i].value, strlen(v.kv[i].value));
  for (int ch = 0; ch < 2 && v.ncols; ch++) {
    const cairn_view_acct *a = &v.acct[ch];
    m->ctr[ch] = (cairn_rec_counters){(uint32_t)ch, a->logged, a->stored, a->dropped,
                                      a->rejected};
  }
  cairn__view_free(&v);
  return CAIRN_OK;
}

static inline int rm_id(const run_model *m, const char *name) {
  for (int i = 0; i < RM_MAX_NAMES; i++)
    if (m->names[i] && strcmp(m->names[i], name) == 0)
      return i;
  return -1;
}

/* Combines every aggregate of (id, step): a step may be split across blocks. */
static inline int rm_step_value(const run_model *m, int id, int64_t step, cairn_metric_agg *out) {
  int found = 0;
  for (size_t i = 0; i < m->nagg[id]; i++) {
    const cairn_metric_agg *a = &m->agg[id][i];
    if (a->step != step)
      continue;
    if (!found) {
      *out = *a;
      found = 1;
    } else {
      out->count += a->count;
      out->sum += a->sum;
      if (a->min < out->min)
        out->min = a->min;
      if (a->max > out->max)
        out->max = a->max;
    }
  }
  return found;
}

static inline void rm_free(run_model *m) {
  for (int i = 0; i < RM_MAX_NAMES; i++) {
    free(m->names[i]);
    free(m->agg[i]);
  }
  for (size_t i = 0; i < m->nparams; i++) {
    free(m->param_keys[i]);
    free(m->param_strs[i]);
  }
  for (size_t i = 0; i < m->nkv; i++) {
    free(m->kv_keys[i]);
    free(m->kv_vals[i]);
  }
  free(m->steps);
}

/* A fresh private directory for a test's runs; sets CAIRN_RUN_DIR to it. */
static inline const char *rm_tempdir(void) {
  static char dir[] = "/tmp/cairn-test-XXXXXX";
  if (!mkdtemp(dir))
    return NULL;
  setenv("CAIRN_RUN_DIR", dir, 1);
  return dir;
}

#endif /* CAIRN_TEST_RUN_MODEL_H */
