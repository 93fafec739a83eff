/* test_records.c — the WAL DATA payload codec: every section round-trips
 * exactly; truncated and garbled payloads are rejected, never crash. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "wal_records.h"

typedef struct {
  int runs, names, metrics, steps, params, kvs, counters;
  cairn_metric_agg last_metric;
  double sum_of_sums;
  uint64_t count_sum;
  int sources;
  uint32_t last_source;
} tally;

static int t_run(void *c, const cairn_rec_run *r) {
  tally *t = c;
  t->runs++;
  cr_assert_eq(r->rank, 3);
  cr_assert_eq(r->hostname_len, 5);
  cr_assert_eq(memcmp(r->hostname, "node1", 5), 0);
  return 0;
}
static int t_name(void *c, uint32_t id, const char *n, size_t l) {
  tally *t = c;
  cr_assert_eq(id, (uint32_t)t->names);
  static const char *expect[3] = {"loss", "acc", "x'); DROP TABLE Artifact;--"};
  cr_assert_eq(l, strlen(expect[id]));
  cr_assert_eq(memcmp(n, expect[id], l), 0);
  t->names++;
  return 0;
}
static int t_metric(void *c, const cairn_metric_agg *a) {
  tally *t = c;
  t->metrics++;
  t->last_metric = *a;
  t->sum_of_sums += a->sum;
  t->count_sum += a->count;
  return 0;
}
static int t_step(void *c, const cairn_rec_step *s) {
  tally *t = c;
  cr_assert_eq(s->step, -5 + t->steps);
  t->steps++;
  return 0;
}
static int t_param(void *c, const cairn_rec_param *p) {
  tally *t = c;
  t->params++;
  (void)p;
  return 0;
}
static int t_kv(void *c, const char *k, size_t kl, const char *v, size_t vl) {
  tally *t = c;
  (void)k, (void)kl, (void)v, (void)vl;
  t->kvs++;
  return 0;
}
static int t_ctr(void *c, const cairn_rec_counters *k) {
  tally *t = c;
  t->counters++;
  cr_assert_eq(k->logged, 100 + k->channel);
  return 0;
}

static void build(cairn_buf *b, size_t nmetrics) {
  cairn_rec_run run = {.rank = 3, .nranks = 8, .pid = 77, .start_ns = 123,
                       .hostname = "node1", .hostname_len = 5, .version = "0.1.0",
                       .version_len = 5};
  memset(run.run_id, 0xab, 16);
  cairn__rec_put_source(b, 3);
  cairn__rec_put_run(b, &run);
  uint32_t ids[3] = {0, 1, 2};
  const char *names[3] = {"loss", "acc", "x'); DROP TABLE Artifact;--"};
  cairn__rec_put_names(b, 3, ids, names);
  cairn_metric_agg *a = calloc(nmetrics, sizeof *a);
  for (size_t i = 0; i < nmetrics; i++) {
    a[i].step = (int64_t)(i / 3) - 2; /* negative steps too */
    a[i].id = (uint32_t)(i % 3);
    a[i].count = (uint32_t)(i % 5 == 0 ? 4 : 1);
    a[i].sum = i == 7 ? NAN : (double)i * 0.5;
    a[i].min = a[i].count > 1 ? -1.0 * (double)i : a[i].sum;
    a[i].max = a[i].count > 1 ? 2.0 * (double)i : a[i].sum;
  }
  cairn__rec_put_metrics(b, nmetrics, a);
  free(a);
  cairn_rec_step st[4];
  for (int i = 0; i < 4; i++)
    st[i] = (cairn_rec_step){-5 + i, 1000u + (uint64_t)i, 1};
  cairn__rec_put_steps(b, 4, st);
  size_t off = cairn__rec_open(b, CAIRN_SEC_PARAMS);
  cairn_rec_param p1 = {CAIRN_PARAM_INT64, "n", 1, -9, 0, NULL, 0};
  cairn_rec_param p2 = {CAIRN_PARAM_STRING, "s", 1, 0, 0, "hello", 5};
  cairn_rec_param p3 = {CAIRN_PARAM_BOOL, "b", 1, 1, 0, NULL, 0};
  cairn_rec_param p4 = {CAIRN_PARAM_DOUBLE, "d", 1, 0, -0.25, NULL, 0};
  cairn__rec_add_param(b, &p1);
  cairn__rec_add_param(b, &p2);
  cairn__rec_add_param(b, &p3);
  cairn__rec_add_param(b, &p4);
  cairn__rec_close(b, off, 4);
  off = cairn__rec_open(b, CAIRN_SEC_KV);
  cairn__rec_add_kv(b, "k", 1, "", 0);
  cairn__rec_close(b, off, 1);
  cairn_rec_counters c[2] = {{0, 100, 90, 10, 1}, {1, 101, 101, 0, 0}};
  cairn__rec_put_counters(b, 2, c);
}

static int t_source(void *c, uint32_t rank) {
  tally *t = c;
  t->sources++;
  t->last_source = rank;
  return 0;
}

static cairn_rec_visitor visitor(tally *t) {
  return (cairn_rec_visitor){t, t_run, t_name, t_metric, t_step, t_param, t_kv, t_ctr, t_source,
                             NULL, NULL};
}

Test(records, every_section_round_trips) {
  cairn_buf b = {0};
  build(&b, 1000);
  cr_assert_eq(b.failed, 0);
  tally t = {0};
  cairn_rec_visitor v = visitor(&t);
  char err[256];
  cr_assert_eq(cairn__rec_decode(b.data, b.len, &v, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(t.runs, 1);
  cr_assert_eq(t.names, 3);
  cr_assert_eq(t.metrics, 1000);
  cr_assert_eq(t.steps, 4);
  cr_assert_eq(t.params, 4);
  cr_assert_eq(t.kvs, 1);
  cr_assert_eq(t.counters, 2);
  cr_assert_eq(t.sources, 1);
  cr_assert_eq(t.last_source, 3);
  cr_assert_eq(t.last_metric.step, 999 / 3 - 2);
  cr_assert_eq(t.last_metric.id, 0);
  cr_assert(isnan(t.sum_of_sums), "the NaN sample survives");
  cairn__buf_free(&b);
}

static cairn_metric_agg got[8];
static int ngot;
static int collect(void *c, const cairn_metric_agg *a) {
  (void)c;
  if (ngot < 8)
    got[ngot++] = *a;
  return 0;
}

Test(records, metric_values_are_exact_including_min_max) {
  cairn_buf b = {0};
  cairn_metric_agg in[3] = {{-7, 4, 3, 6.5, -1.25, 4.0},
                            {INT64_MAX, 0, 1, 1e300, 1e300, 1e300},
                            {INT64_MIN, 9, 2, -INFINITY, -INFINITY, 3.0}};
  cairn__rec_put_metrics(&b, 3, in);
  cairn_rec_visitor v = {.metric = collect};
  ngot = 0;
  cr_assert_eq(cairn__rec_decode(b.data, b.len, &v, NULL, 0), CAIRN_OK);
  cr_assert_eq(ngot, 3);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(got[i].step, in[i].step);
    cr_assert_eq(got[i].id, in[i].id);
    cr_assert_eq(got[i].count, in[i].count);
    cr_assert_eq(memcmp(&got[i].sum, &in[i].sum, 8), 0);
    cr_assert_eq(memcmp(&got[i].min, &in[i].min, 8), 0);
    cr_assert_eq(memcmp(&got[i].max, &in[i].max, 8), 0);
  }
  cairn__buf_free(&b);
}

Test(records, every_truncation_is_rejected_without_crashing) {
  cairn_buf b = {0};
  build(&b, 50);
  tally t;
  for (size_t cut = 0; cut < b.len; cut++) {
    memset(&t, 0, sizeof t);
    cairn_rec_visitor v = {.ctx = &t};
    char err[256] = "";
    int rc = cairn__rec_decode(b.data, cut, &v, err, sizeof err);
    /* A cut exactly between sections is a valid shorter payload. */
    if (rc != CAIRN_OK) {
      cr_assert_eq(rc, CAIRN_ECORRUPT);
      cr_assert(strstr(err, "section") != NULL, "message names the section: %s", err);
    }
  }
  cairn__buf_free(&b);
}

Test(records, random_garbage_never_crashes) {
  unsigned seed = 1;
  uint8_t buf[512];
  int rejected = 0;
  for (int it = 0; it < 20000; it++) {
    size_t n = (size_t)rand_r(&seed) % sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = (uint8_t)rand_r(&seed);
    /* Make some of them start like a real section to get past the header. */
    if (n > 12 && it % 2) {
      buf[0] = (uint8_t)(1 + it % 7);
      buf[1] = 0;
      uint32_t body = (uint32_t)(n - 12);
      memcpy(buf + 8, &body, 4);
    }
    cairn_rec_visitor v = {0};
    int rc = cairn__rec_decode(buf, n, &v, NULL, 0);
    cr_assert(rc == CAIRN_OK || rc == CAIRN_ECORRUPT);
    rejected += rc != CAIRN_OK;
  }
  cr_assert_gt(rejected, 1000);
}

Test(records, unknown_sections_are_skipped) {
  cairn_buf b = {0};
  size_t off = cairn__rec_open(&b, 200);
  cairn__rec_add_kv(&b, "future", 6, "data", 4);
  cairn__rec_close(&b, off, 1);
  off = cairn__rec_open(&b, CAIRN_SEC_KV);
  cairn__rec_add_kv(&b, "k", 1, "v", 1);
  cairn__rec_close(&b, off, 1);
  tally t = {0};
  cairn_rec_visitor v = visitor(&t);
  cr_assert_eq(cairn__rec_decode(b.data, b.len, &v, NULL, 0), CAIRN_OK);
  cr_assert_eq(t.kvs, 1);
  cairn__buf_free(&b);
}

static int stop_at_first(void *c, const cairn_metric_agg *a) {
  (void)a;
  ++*(int *)c;
  return 42;
}

Test(records, a_visitor_can_stop_decoding) {
  cairn_buf b = {0};
  build(&b, 10);
  int calls = 0;
  cairn_rec_visitor v = {.ctx = &calls, .metric = stop_at_first};
  cr_assert_eq(cairn__rec_decode(b.data, b.len, &v, NULL, 0), 42);
  cr_assert_eq(calls, 1);
  cairn__buf_free(&b);
}
