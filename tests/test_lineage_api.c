/* test_lineage_api.c — typed properties on artifacts, models, metrics
 * artifacts and executions (type, command line), end to end: refused when
 * invalid with nothing recorded, exact through the write-ahead log and the
 * HDF5 run file; the WAL codec's two section layouts; the hasher pool (same
 * roots whatever its size, files hashed concurrently); a file changing while
 * it is hashed, recorded exactly as docs/format.md says. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "hash/hash.h"
#include "hasher.h"
#include "props.h"
#include "run_model.h"
#include "run_view.h"
#include "runmeta.h"
#include "wal_records.h"

static const char *tmp;

static void setup(void) {
  tmp = rm_tempdir();
  cr_assert_not_null(tmp);
}

TestSuite(lineage_api, .init = setup, .timeout = 120);

/* n bytes of a pattern that depends on seed, written in large blocks. */
static void write_pattern(const char *path, size_t n, unsigned seed) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s", path);
  unsigned char buf[1 << 16];
  for (size_t off = 0; off < n;) {
    size_t k = n - off < sizeof buf ? n - off : sizeof buf;
    for (size_t i = 0; i < k; i++)
      buf[i] = (unsigned char)(((off + i) * 31u + seed * 7u) % 251u);
    cr_assert_eq(fwrite(buf, 1, k, f), k);
    off += k;
  }
  cr_assert_eq(fclose(f), 0);
}

static const cairn_h5_artifact_row *art(const cairn_run_view *v, int64_t id) {
  for (size_t i = 0; i < v->nartifacts; i++)
    if (v->artifacts[i].id == (uint64_t)id)
      return &v->artifacts[i];
  return NULL;
}

static const cairn_h5_execution_row *exe(const cairn_run_view *v, int64_t id) {
  for (size_t i = 0; i < v->nexecutions; i++)
    if (v->executions[i].id == (uint64_t)id)
      return &v->executions[i];
  return NULL;
}

static const cairn_h5_event_row *event_of(const cairn_run_view *v, int64_t artifact) {
  for (size_t i = 0; i < v->nevents; i++)
    if (v->events[i].artifact_id == (uint64_t)artifact)
      return &v->events[i];
  return NULL;
}

/* Flushes and reads the WAL until `want` artifacts are there (the hasher
 * records file artifacts in the background). */
static void wal_view_with(const char *dir, size_t want, cairn_run_view *v) {
  for (int tries = 0; tries < 500; tries++) {
    cr_assert_eq(cairn_flush(), CAIRN_OK);
    cairn__view_init(v);
    cr_assert_eq(cairn__view_from_wal(dir, v, NULL, NULL, NULL), CAIRN_OK);
    if (v->nartifacts >= want)
      return;
    cairn__view_free(v);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  cr_assert_fail("the WAL never held %zu artifacts", want);
}

static void h5_view(const char *dir, cairn_run_view *v) {
  cairn__view_init(v);
  cr_assert_eq(cairn__run_open(dir, v, NULL), CAIRN_OK);
  cr_assert(v->source & CAIRN_VIEW_FROM_H5, "read from the HDF5 run file");
  cr_assert_eq(v->source & CAIRN_VIEW_FROM_WAL, 0, "and only from it");
}

/* ---- invalid properties --------------------------------------------------- */

Test(lineage_api, invalid_properties_are_refused_and_nothing_is_recorded) {
  char file[512];
  snprintf(file, sizeof file, "%s/data.bin", tmp);
  write_pattern(file, 100, 1);
  cr_assert_eq(cairn_artifact_props(file, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT, "{}"),
               CAIRN_ENOTINIT);
  cr_assert_eq(cairn_model(file, CAIRN_ROLE_OUTPUT, "pytorch", NULL, NULL, NULL), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_metrics_artifact("m", NULL), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_execution_begin_ex("t", "n", NULL, NULL), CAIRN_ENOTINIT);

  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  const char *bad[] = {"{",           "{bad}",          "[1]",
                       "{\"a\":null}", "{\"a\":[1]}",    "{\"a\":{\"b\":1}}",
                       "{\"a\":1,}",  "{\"a\":1,\"a\":2}", "{\"a\":99999999999999999999}",
                       "{\"a\":\"\\ud800\"}", "{\"a\":1} trailing"};
  size_t nbad = sizeof bad / sizeof bad[0];
  for (size_t i = 0; i < nbad; i++) {
    cr_expect_eq(cairn_artifact_props(file, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT, bad[i]),
                 CAIRN_EINVAL, "%s", bad[i]);
    cr_expect_eq(cairn_artifact_props("s3://b/k", CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT,
                                      bad[i]),
                 CAIRN_EINVAL, "%s", bad[i]);
  }
  /* 2 * nbad so far, then 12 more. */
  cr_assert_eq(cairn_model(file, CAIRN_ROLE_OUTPUT, "pytorch", NULL, NULL, "{\"x\":null}"),
               CAIRN_EINVAL);
  cr_assert_eq(cairn_model(file, CAIRN_ROLE_OUTPUT, "pytorch", NULL, NULL,
                           "{\"framework\":\"jax\"}"),
               CAIRN_EINVAL, "a key given twice is a duplicate");
  cr_assert_eq(cairn_model(file, CAIRN_ROLE_OUTPUT, NULL, NULL, "bad\xff", NULL), CAIRN_EINVAL,
               "a name that is not UTF-8");
  cr_assert_eq(cairn_model(file, (cairn_role)7, NULL, NULL, NULL, NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_metrics_artifact("final", "{\"acc\":}"), CAIRN_EINVAL);
  cr_assert_eq(cairn_metrics_artifact(NULL, "{}"), CAIRN_EINVAL);
  cr_assert_eq(cairn_metrics_artifact("", NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_execution_begin_ex("train", "e", "cmd", "{\"a\":[1]}"), CAIRN_EINVAL);
  cr_assert_eq(cairn_execution_begin_ex(NULL, "e", NULL, NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_execution_begin_ex("train", "", NULL, NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_execution_begin("e", "not json"), CAIRN_EINVAL);
  cr_assert_eq(cairn_stage("s", "{'single': 1}"), CAIRN_EINVAL);
  char *longcmd = malloc(CAIRN_VALUE_MAX + 2);
  cr_assert_not_null(longcmd);
  memset(longcmd, 'x', CAIRN_VALUE_MAX + 1);
  longcmd[CAIRN_VALUE_MAX + 1] = '\0';
  cr_assert_eq(cairn_execution_begin_ex("train", "e", longcmd, NULL), CAIRN_ENAMETOOLONG);
  cr_assert_eq(cairn_artifact_props(file, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT, longcmd),
               CAIRN_ENAMETOOLONG);
  free(longcmd);
  cairn_counters c;
  cr_assert_eq(cairn_get_counters(CAIRN_CHANNEL_CONTROL, &c), CAIRN_OK);
  cr_assert_eq(c.rejected, 2 * nbad + 14);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);

  cairn_run_view v;
  h5_view(info.run_dir, &v);
  cr_assert_eq(v.nartifacts, 0);
  cr_assert_eq(v.nexecutions, 0);
  cr_assert_eq(v.ncontexts, 0);
  cr_assert_eq(v.nevents, 0);
  cairn__view_free(&v);
}

/* ---- models, metrics artifacts, artifacts with properties ---------------- */

typedef struct {
  int n;
  char keys[8][32];
  cairn_prop_type types[8];
  int64_t i64[8];
  double f64[8];
  int b[8];
  char str[8][64];
} props_seen;

static int see(void *ctx, const cairn_prop *p) {
  props_seen *s = ctx;
  cr_assert_lt(s->n, 8);
  cr_assert_lt(p->key_len, 32);
  memcpy(s->keys[s->n], p->key, p->key_len);
  s->types[s->n] = p->type;
  s->i64[s->n] = p->i64;
  s->f64[s->n] = p->f64;
  s->b[s->n] = p->b;
  if (p->type == CAIRN_PROP_STRING) {
    cr_assert_lt(p->str_len, 64);
    memcpy(s->str[s->n], p->str, p->str_len);
  }
  s->n++;
  return 0;
}

#define MODEL_PROPS                                                                            \
  "{ \"epochs\": 90, \"top1\": 0.7613, \"quantized\": false, \"note\": \"caf\\u00e9\" }"
#define MODEL_STORED                                                                           \
  "{\"framework\":\"pytorch\",\"model_type\":\"resnet50\",\"model_name\":\"classifier\","     \
  "\"epochs\": 90, \"top1\": 0.7613, \"quantized\": false, \"note\": \"caf\\u00e9\"}"

typedef struct {
  int64_t model, model_quote, model_bare, uri_props, plain, metrics, exec;
} logged_ids;

static void check_lineage_rows(const cairn_run_view *v, const logged_ids *id, const char *file) {
  cr_assert_eq(v->nartifacts, 6);
  const cairn_h5_artifact_row *m = art(v, id->model);
  cr_assert_not_null(m);
  cr_assert_eq(m->kind, CAIRN_H5_ARTIFACT_MODEL);
  cr_assert_str_eq(m->uri, file);
  cr_assert_eq(m->size, 3000);
  cr_assert_eq(strncmp(m->hash, "cairn-merkle-sha256-v1:", 23), 0, "%s", m->hash);
  cr_assert_str_eq(m->properties, MODEL_STORED);
  props_seen s = {0};
  cr_assert_eq(cairn__props_parse(m->properties, strlen(m->properties), see, &s, NULL, 0),
               CAIRN_OK);
  cr_assert_eq(s.n, 7);
  cr_assert_str_eq(s.keys[0], "framework");
  cr_assert_str_eq(s.str[0], "pytorch");
  cr_assert_str_eq(s.keys[1], "model_type");
  cr_assert_str_eq(s.str[1], "resnet50");
  cr_assert_str_eq(s.keys[2], "model_name");
  cr_assert_str_eq(s.str[2], "classifier");
  cr_assert_eq(s.types[3], CAIRN_PROP_INT);
  cr_assert_eq(s.i64[3], 90);
  cr_assert_eq(s.types[4], CAIRN_PROP_DOUBLE);
  cr_assert_eq(s.f64[4], 0.7613);
  cr_assert_eq(s.types[5], CAIRN_PROP_BOOL);
  cr_assert_eq(s.b[5], 0);
  cr_assert_eq(s.types[6], CAIRN_PROP_STRING);
  cr_assert_str_eq(s.str[6], "caf\xc3\xa9");
  const cairn_h5_event_row *ev = event_of(v, id->model);
  cr_assert_not_null(ev);
  cr_assert_eq(ev->type, CAIRN_H5_EVENT_OUTPUT);
  cr_assert_eq(ev->execution_id, (uint64_t)id->exec);

  const cairn_h5_artifact_row *q = art(v, id->model_quote);
  cr_assert_not_null(q);
  cr_assert_str_eq(q->properties, "{\"framework\":\"my \\\"fw\\\"\\\\1\\u0009\"}");
  cr_assert_str_eq(q->uri, "s3://models/m.onnx");
  cr_assert_str_eq(q->hash, "");
  const cairn_h5_artifact_row *b = art(v, id->model_bare);
  cr_assert_not_null(b);
  cr_assert_str_eq(b->properties, "", "no framework, type, name or properties: none");
  cr_assert_eq(b->kind, CAIRN_H5_ARTIFACT_MODEL);
  const cairn_h5_artifact_row *u = art(v, id->uri_props);
  cr_assert_not_null(u);
  cr_assert_eq(u->kind, CAIRN_H5_ARTIFACT_DATASET);
  cr_assert_str_eq(u->properties, "{\"rows\": -12, \"split\": \"val\", \"ok\": true}");
  const cairn_h5_artifact_row *p = art(v, id->plain);
  cr_assert_not_null(p);
  cr_assert_str_eq(p->properties, "");
  const cairn_h5_artifact_row *x = art(v, id->metrics);
  cr_assert_not_null(x);
  cr_assert_eq(x->kind, CAIRN_H5_ARTIFACT_METRICS);
  cr_assert_str_eq(x->uri, "final-metrics");
  cr_assert_str_eq(x->hash, "");
  cr_assert_eq(x->size, 0);
  cr_assert_str_eq(x->properties, "{\"accuracy\": 0.931, \"test_loss\": 0.212, \"epochs\": 90}");
  ev = event_of(v, id->metrics);
  cr_assert_not_null(ev);
  cr_assert_eq(ev->type, CAIRN_H5_EVENT_OUTPUT);
  cr_assert_eq(ev->execution_id, (uint64_t)id->exec);
}

Test(lineage_api, model_and_metrics_properties_round_trip_through_wal_and_h5) {
  char file[512];
  snprintf(file, sizeof file, "%s/model.pt", tmp);
  write_pattern(file, 3000, 2);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  logged_ids id;
  id.exec = cairn_execution_begin_ex("train", "fit", "train.py", NULL);
  cr_assert_gt(id.exec, 0);
  id.model = cairn_model(file, CAIRN_ROLE_OUTPUT, "pytorch", "resnet50", "classifier",
                         MODEL_PROPS);
  cr_assert_gt(id.model, 0);
  id.model_quote = cairn_model("s3://models/m.onnx", CAIRN_ROLE_INPUT, "my \"fw\"\\1\t", NULL,
                               NULL, "");
  cr_assert_gt(id.model_quote, 0);
  id.model_bare = cairn_model("s3://models/bare", CAIRN_ROLE_INPUT, NULL, NULL, NULL, NULL);
  cr_assert_gt(id.model_bare, 0);
  id.uri_props = cairn_artifact_props("https://data/val.tar", CAIRN_ARTIFACT_DATASET,
                                      CAIRN_ROLE_INPUT,
                                      "{\"rows\": -12, \"split\": \"val\", \"ok\": true}");
  cr_assert_gt(id.uri_props, 0);
  id.plain = cairn_artifact("s3://plain", CAIRN_ARTIFACT_OTHER, CAIRN_ROLE_INPUT);
  cr_assert_gt(id.plain, 0);
  id.metrics = cairn_metrics_artifact("final-metrics",
                                      "{\"accuracy\": 0.931, \"test_loss\": 0.212, \"epochs\": 90}");
  cr_assert_gt(id.metrics, 0);
  cr_assert_eq(cairn_execution_end(id.exec), CAIRN_OK);
  cairn_run_info info;
  cairn_get_run_info(&info);

  cairn_run_view w;
  wal_view_with(info.run_dir, 6, &w);
  check_lineage_rows(&w, &id, file);
  cairn__view_free(&w);

  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cairn_run_view v;
  h5_view(info.run_dir, &v);
  check_lineage_rows(&v, &id, file);
  cairn__view_free(&v);
}

/* ---- executions: type and command line ------------------------------------ */

static void check_executions(const cairn_run_view *v, int64_t e1, int64_t e2, int64_t e3,
                             const char *own_cmdline) {
  cr_assert_eq(v->nexecutions, 3);
  const cairn_h5_execution_row *a = exe(v, e1), *b = exe(v, e2), *c = exe(v, e3);
  cr_assert(a && b && c);
  cr_assert_str_eq(a->type, "train");
  cr_assert_str_eq(a->name, "epoch-1");
  cr_assert_str_eq(a->command, "python train.py --lr 0.1 'two words'");
  cr_assert_str_eq(a->properties, "{\"epoch\": 1, \"lr\": 0.1}");
  cr_assert_str_eq(b->type, "evaluate", "cairn_execution_begin: the type is the name");
  cr_assert_str_eq(b->name, "evaluate");
  cr_assert_str_eq(b->command, own_cmdline, "NULL: this process's command line");
  cr_assert_str_eq(b->properties, "");
  cr_assert_str_eq(c->type, "export");
  cr_assert_str_eq(c->command, "", "\"\" records none");
  cr_assert_gt(a->end_ns, 0);
  cr_assert_gt(b->end_ns, 0);
  cr_assert_eq(c->end_ns, 0, "never ended");
}

Test(lineage_api, execution_type_and_command_round_trip_through_wal_and_h5) {
  char *own = cairn__meta_cmdline();
  cr_assert_not_null(own);
  cr_assert_neq(own[0], '\0', "the process has a command line");
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int64_t e1 = cairn_execution_begin_ex("train", "epoch-1", "python train.py --lr 0.1 'two words'",
                                        "{\"epoch\": 1, \"lr\": 0.1}");
  cr_assert_gt(e1, 0);
  cr_assert_eq(cairn_execution_end(e1), CAIRN_OK);
  int64_t e2 = cairn_execution_begin("evaluate", NULL);
  cr_assert_gt(e2, e1);
  cr_assert_eq(cairn_execution_end(e2), CAIRN_OK);
  int64_t e3 = cairn_execution_begin_ex("export", "onnx", "", NULL);
  cr_assert_gt(e3, e2);
  /* a URI artifact, so the WAL poll below has something to wait for */
  cr_assert_gt(cairn_artifact("s3://x", CAIRN_ARTIFACT_OTHER, CAIRN_ROLE_OUTPUT), 0);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cairn_run_view w;
  wal_view_with(info.run_dir, 1, &w);
  check_executions(&w, e1, e2, e3, own);
  cairn__view_free(&w);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cairn_run_view v;
  h5_view(info.run_dir, &v);
  check_executions(&v, e1, e2, e3, own);
  cairn__view_free(&v);
  free(own);
}

/* ---- a file changing while it is hashed ----------------------------------- */

typedef struct {
  const char *path;
  atomic_int stop;
  atomic_int writes;
} writer_arg;

/* Appends a byte at a time until told to stop: the size (and mtime) keeps
 * changing while the hasher reads the file. */
static void *appender(void *p) {
  writer_arg *w = p;
  FILE *f = fopen(w->path, "ab");
  if (!f)
    return NULL;
  while (!atomic_load(&w->stop)) {
    fputc('x', f);
    fflush(f);
    atomic_fetch_add(&w->writes, 1);
  }
  fclose(f);
  return NULL;
}

Test(lineage_api, file_changing_while_hashed_is_recorded_as_failed) {
  char file[512];
  snprintf(file, sizeof file, "%s/growing.ckpt", tmp);
  size_t size = 64u << 20;
  write_pattern(file, size, 3);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  writer_arg w = {.path = file};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, appender, &w), 0);
  while (atomic_load(&w.writes) < 10)
    sched_yield();
  int64_t id = cairn_model(file, CAIRN_ROLE_OUTPUT, "pytorch", NULL, NULL, NULL);
  cr_assert_gt(id, 0);
  cairn_run_info info;
  cairn_get_run_info(&info);
  /* Keep writing until the hasher has recorded it (finalize waits for the
   * hasher: flush-and-poll instead, so the writer runs all along). */
  cairn_run_view wal;
  wal_view_with(info.run_dir, 1, &wal);
  atomic_store(&w.stop, 1);
  pthread_join(t, NULL);
  cairn__view_free(&wal);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);

  cairn_run_view v;
  h5_view(info.run_dir, &v);
  cr_assert_eq(v.nartifacts, 1);
  const cairn_h5_artifact_row *r = art(&v, id);
  cr_assert_not_null(r);
  const char *want = "error: changed while hashed: size/mtime/ctime differed before and after "
                     "(size ";
  cr_assert_eq(strncmp(r->hash, want, strlen(want)), 0, "%s", r->hash);
  unsigned long long a = 0, b = 0;
  cr_assert_eq(sscanf(r->hash + strlen(want), "%llu -> %llu)", &a, &b), 2, "%s", r->hash);
  cr_assert_geq(a, size);
  cr_assert_gt(b, a, "it grew while it was read");
  cr_assert_eq(r->size, 0, "no size for a file without identity");
  cr_assert_str_eq(r->properties, "{\"framework\":\"pytorch\"}", "properties still recorded");
  cairn__view_free(&v);
}

/* ---- the hasher pool ------------------------------------------------------ */

#define NFILES 4

static void log_files_and_collect(char paths[NFILES][512], char hashes[NFILES][160],
                                  unsigned *threads, unsigned *peak) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int64_t ids[NFILES];
  for (int i = 0; i < NFILES; i++) {
    ids[i] = cairn_artifact(paths[i], CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT);
    cr_assert_gt(ids[i], 0);
  }
  *threads = cairn__hasher_threads();
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  *peak = cairn__hasher_peak_busy();
  cairn_run_view v;
  h5_view(info.run_dir, &v);
  cr_assert_eq(v.nartifacts, NFILES);
  for (int i = 0; i < NFILES; i++) {
    const cairn_h5_artifact_row *r = art(&v, ids[i]);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->uri, paths[i]);
    snprintf(hashes[i], 160, "%s", r->hash);
  }
  cairn__view_free(&v);
}

Test(lineage_api, hasher_pool_gives_the_same_roots_whatever_its_size) {
  char paths[NFILES][512];
  size_t sizes[NFILES] = {24u << 20, (20u << 20) + 12345, 9u << 20, 1000};
  for (int i = 0; i < NFILES; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/ckpt-%d.bin", tmp, i);
    write_pattern(paths[i], sizes[i], (unsigned)i + 10);
  }
  char want[NFILES][160];
  for (int i = 0; i < NFILES; i++) {
    cairn_hash_result res;
    cairn__hash_file(paths[i], 0, 1, &res);
    cr_assert_eq(res.status, CAIRN_OK);
    snprintf(want[i], sizeof want[i], "cairn-merkle-sha256-v1:%s", res.hex);
  }
  unsigned counts[] = {1, 3, 0};
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    char env[16];
    snprintf(env, sizeof env, "%u", counts[k]);
    if (counts[k])
      setenv("CAIRN_LINEAGE_HASHER_THREADS", env, 1);
    else
      unsetenv("CAIRN_LINEAGE_HASHER_THREADS"); /* the default */
    char got[NFILES][160];
    unsigned threads, peak;
    log_files_and_collect(paths, got, &threads, &peak);
    unsigned expect = counts[k];
    if (!expect) {
      cpu_set_t set;
      cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
      expect = CPU_COUNT(&set) >= 2 ? 2 : 1;
    }
    cr_assert_eq(threads, expect, "lineage.hasher_threads = %u", counts[k]);
    cr_assert_leq(peak, expect);
    cr_assert_geq(peak, 1);
    for (int i = 0; i < NFILES; i++)
      cr_assert_str_eq(got[i], want[i], "file %d with %u threads", i, threads);
  }
  unsetenv("CAIRN_LINEAGE_HASHER_THREADS");
}

Test(lineage_api, hasher_pool_hashes_several_files_at_once) {
  /* Eight 16 MiB files and a pool of 3: while the first file is hashed the
   * others wait in the queue, so idle threads must take them. */
  char paths[8][512];
  for (int i = 0; i < 8; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/big-%d.bin", tmp, i);
    write_pattern(paths[i], 16u << 20, (unsigned)i);
  }
  setenv("CAIRN_LINEAGE_HASHER_THREADS", "3", 1);
  /* Each file is 4 leaves of at least 20 ms: the thread hashing the first
   * one is busy long enough for the others to take queued files, however
   * fast this machine hashes (see the test below). */
  atomic_store(&cairn__hasher_test_leaf_delay_us, 20000u);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  for (int i = 0; i < 8; i++)
    cr_assert_gt(cairn_artifact(paths[i], CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT), 0);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  atomic_store(&cairn__hasher_test_leaf_delay_us, 0u);
  unsetenv("CAIRN_LINEAGE_HASHER_THREADS");
  unsigned peak = cairn__hasher_peak_busy();
  cr_assert_geq(peak, 2, "files were hashed concurrently (peak %u)", peak);
  cr_assert_leq(peak, 3);
}

/* ---- the WAL codec: both section layouts ---------------------------------- */

typedef struct {
  int arts, lins;
  cairn_rec_artifact a;
  cairn_rec_lineage l;
  char a_props[64], l_type[32], l_cmd[64];
} rec_seen;

static int on_art(void *ctx, const cairn_rec_artifact *a) {
  rec_seen *s = ctx;
  s->arts++;
  s->a = *a;
  memcpy(s->a_props, a->props, a->props_len);
  s->a_props[a->props_len] = '\0';
  return 0;
}

static int on_lin(void *ctx, const cairn_rec_lineage *l) {
  rec_seen *s = ctx;
  s->lins++;
  s->l = *l;
  memcpy(s->l_type, l->type, l->type_len);
  s->l_type[l->type_len] = '\0';
  memcpy(s->l_cmd, l->command, l->command_len);
  s->l_cmd[l->command_len] = '\0';
  return 0;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

Test(lineage_records, layout_v2_round_trips_properties_type_and_command) {
  cairn_buf b = {0};
  size_t off = cairn__rec_open_artifacts(&b);
  cairn_rec_artifact a = {0x300000007ull, 2, 2, 0x300000001ull, 4096, 123456789,
                          "ckpt.pt", 7, "h", 1, "{\"x\": 1}", 8};
  cairn__rec_add_artifact(&b, &a);
  cairn__rec_close(&b, off, 1);
  off = cairn__rec_open_lineage(&b);
  cairn_rec_lineage l = {CAIRN_LIN_EXEC_BEGIN, 9, 8, 77, "fit", "", "{}", 3, 0, 2,
                         "train", "./train --x", 5, 11};
  cairn__rec_add_lineage(&b, &l);
  cairn__rec_close(&b, off, 1);
  cr_assert_eq(b.failed, 0);
  cr_assert_eq(b.data[2], CAIRN_SEC_LAYOUT_V2, "ARTIFACTS says its layout");
  rec_seen s = {0};
  cairn_rec_visitor v = {.ctx = &s, .artifact = on_art, .lineage = on_lin};
  char err[256] = "";
  cr_assert_eq(cairn__rec_decode(b.data, b.len, &v, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(s.arts, 1);
  cr_assert_eq(s.a.id, 0x300000007ull);
  cr_assert_eq(s.a.size, 4096);
  cr_assert_str_eq(s.a_props, "{\"x\": 1}");
  cr_assert_eq(s.lins, 1);
  cr_assert_eq(s.l.id, 9);
  cr_assert_eq(s.l.parent, 8);
  cr_assert_str_eq(s.l_type, "train");
  cr_assert_str_eq(s.l_cmd, "./train --x");
  cairn__buf_free(&b);
}

/* Sections as WAL format 1 wrote them (flags 0, no properties, no type or
 * command), built byte by byte. */
Test(lineage_records, layout_0_sections_of_wal_format_1_still_decode) {
  uint8_t p[256];
  size_t n = 0;
  /* ARTIFACTS: header, then one record: id, kind, role, exec, size, t,
   * value uri, value hash. */
  size_t h = n;
  n += 12;
  put_le(p + n, 42, 8), n += 8;
  p[n++] = 1;
  p[n++] = 1;
  put_le(p + n, 5, 8), n += 8;
  put_le(p + n, 10, 8), n += 8;
  put_le(p + n, 99, 8), n += 8;
  put_le(p + n, 3, 4), n += 4;
  memcpy(p + n, "a.b", 3), n += 3;
  put_le(p + n, 0, 4), n += 4;
  put_le(p + h, CAIRN_SEC_ARTIFACTS, 2);
  put_le(p + h + 2, 0, 2);
  put_le(p + h + 4, 1, 4);
  put_le(p + h + 8, n - h - 12, 4);
  /* LINEAGE: one EXEC_BEGIN: what, id, parent, t, name, text, props. */
  h = n;
  n += 12;
  p[n++] = CAIRN_LIN_EXEC_BEGIN;
  put_le(p + n, 6, 8), n += 8;
  put_le(p + n, 4, 8), n += 8;
  put_le(p + n, 1000, 8), n += 8;
  put_le(p + n, 2, 4), n += 4;
  memcpy(p + n, "ep", 2), n += 2;
  put_le(p + n, 0, 4), n += 4;
  put_le(p + n, 0, 4), n += 4;
  put_le(p + h, CAIRN_SEC_LINEAGE, 2);
  put_le(p + h + 2, 0, 2);
  put_le(p + h + 4, 1, 4);
  put_le(p + h + 8, n - h - 12, 4);

  rec_seen s = {0};
  cairn_rec_visitor v = {.ctx = &s, .artifact = on_art, .lineage = on_lin};
  char err[256] = "";
  cr_assert_eq(cairn__rec_decode(p, n, &v, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(s.arts, 1);
  cr_assert_eq(s.a.id, 42);
  cr_assert_eq(s.a.execution_id, 5);
  cr_assert_eq(s.a.uri_len, 3);
  cr_assert_eq(s.a.props_len, 0);
  cr_assert_str_eq(s.a_props, "");
  cr_assert_eq(s.lins, 1);
  cr_assert_eq(s.l.id, 6);
  cr_assert_eq(s.l.name_len, 2);
  cr_assert_str_eq(s.l_type, "");
  cr_assert_str_eq(s.l_cmd, "");

  /* An unknown layout in a known section is corruption, not a guess. */
  put_le(p + 2, 7, 2);
  cr_assert_eq(cairn__rec_decode(p, n, &v, err, sizeof err), CAIRN_ECORRUPT);
  cr_assert(strstr(err, "unknown record layout") != NULL, "%s", err);
}

Test(lineage_api, hasher_pool_shares_one_large_file_by_leaves) {
  /* One 96 MiB file (24 leaves) and a pool of 3: the thread that took it
   * is helped by the idle ones, and the identity is the serial one. */
  char path[512];
  snprintf(path, sizeof path, "%s/one-big.ckpt", tmp);
  write_pattern(path, 96u << 20, 77);
  cairn_hash_result res;
  cairn__hash_file(path, 0, 1, &res);
  cr_assert_eq(res.status, CAIRN_OK);
  char want[128];
  snprintf(want, sizeof want, "cairn-merkle-sha256-v1:%s", res.hex);
  setenv("CAIRN_LINEAGE_HASHER_THREADS", "3", 1);
  /* 24 leaves of at least 20 ms each: the owner alone would take 0.5 s, so
   * the idle threads are woken and claim leaves however fast this machine
   * hashes and however loaded it is (a machine with SHA instructions hashes
   * the whole file in ~50 ms, less than a loaded scheduler may take to run
   * a woken thread). */
  atomic_store(&cairn__hasher_test_leaf_delay_us, 20000u);
  /* cairn_finalize (the pool's stop) comes while the thread that took the
   * file has not yet published its leaves: the idle threads must not leave
   * then (they once did, and the file was hashed by one thread). */
  atomic_store(&cairn__hasher_test_publish_delay_us, 100000u);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int64_t id = cairn_model(path, CAIRN_ROLE_OUTPUT, "pytorch", NULL, NULL, NULL);
  cr_assert_gt(id, 0);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  atomic_store(&cairn__hasher_test_leaf_delay_us, 0u);
  atomic_store(&cairn__hasher_test_publish_delay_us, 0u);
  unsetenv("CAIRN_LINEAGE_HASHER_THREADS");
  unsigned peak = cairn__hasher_peak_busy();
  cr_assert_geq(peak, 2, "idle threads helped with the file's leaves (peak %u)", peak);
  cairn_run_view v;
  h5_view(info.run_dir, &v);
  const cairn_h5_artifact_row *r = art(&v, id);
  cr_assert_not_null(r);
  cr_assert_str_eq(r->hash, want);
  cr_assert_eq(r->size, 96u << 20);
  cairn__view_free(&v);
}

/* ---- stages begin and end ------------------------------------------------- */

Test(lineage_api, stage_end_leaves_later_executions_outside_any_stage) {
  cr_assert_eq(cairn_stage_end(1), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int64_t s1 = cairn_stage("prepare", NULL);
  cr_assert_gt(s1, 0);
  int64_t e1 = cairn_execution_begin("shard", NULL);
  cr_assert_eq(cairn_execution_end(e1), CAIRN_OK);
  cr_assert_eq(cairn_stage_end(0), CAIRN_EINVAL);
  cr_assert_eq(cairn_stage_end(s1 + 1000), CAIRN_ENOTFOUND, "not the current stage");
  cr_assert_eq(cairn_stage_end(s1), CAIRN_OK);
  cr_assert_eq(cairn_stage_end(s1), CAIRN_ENOTFOUND, "already ended");
  int64_t e2 = cairn_execution_begin("between", NULL);
  cr_assert_eq(cairn_execution_end(e2), CAIRN_OK);
  int64_t s2 = cairn_stage("train", NULL);
  int64_t e3 = cairn_execution_begin("fit", NULL);
  cr_assert_eq(cairn_execution_end(e3), CAIRN_OK);
  cr_assert_gt(cairn_artifact("s3://marker", CAIRN_ARTIFACT_OTHER, CAIRN_ROLE_OUTPUT), 0);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cairn_run_view v;
  h5_view(info.run_dir, &v);
  cr_assert_eq(exe(&v, e1)->context_id, (uint64_t)s1);
  cr_assert_eq(exe(&v, e2)->context_id, 0, "begun after cairn_stage_end: no stage");
  cr_assert_eq(exe(&v, e3)->context_id, (uint64_t)s2);
  cairn__view_free(&v);
}
