/*
 * stress_hasher.c — the hasher pool under concurrency, without Criterion so
 * that it runs under ThreadSanitizer (tools/test.sh's TSan build can add
 * it). Four application threads log files (with properties), URIs, models,
 * metrics artifacts and a dataslice each, in executions, while a pool of 3
 * hasher threads hashes; then every artifact must be in the run file once,
 * with the serial hash of its file and its exact properties. Two runs in
 * one process: the pool stops and starts again cleanly.
 * Exits 0 on success, 1 with a message on the first failed check.
 * usage: stress_hasher [FILES_PER_THREAD]   (default 6)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "hash/hash.h"
#include "run_model.h"
#include "run_view.h"

#define STRESS_NAME "stress_hasher"
#include "stress_check.h"

#define THREADS 4
#define MAX_FILES 64

static const char *dir;
static int files_per_thread = 6;

typedef struct {
  int t;
  int64_t ids[MAX_FILES];
  int64_t uri, model, metrics, slice;
} logged;

static void path_of(char *out, size_t n, int t, int i) {
  snprintf(out, n, "%s/t%d-f%d.bin", dir, t, i);
}

static void *app(void *p) {
  logged *l = p;
  char props[64], path[512];
  char name[32];
  snprintf(name, sizeof name, "worker-%d", l->t);
  int64_t ex = cairn_execution_begin_ex("stress", name, NULL, "{\"k\": 1}");
  CHECK(ex > 0, "execution %d", (int)ex);
  for (int i = 0; i < files_per_thread; i++) {
    path_of(path, sizeof path, l->t, i);
    snprintf(props, sizeof props, "{\"thread\": %d, \"file\": %d}", l->t, i);
    l->ids[i] = cairn_artifact_props(path, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT, props);
    CHECK(l->ids[i] > 0, "artifact %d", (int)l->ids[i]);
  }
  snprintf(path, sizeof path, "s3://bucket/t%d", l->t);
  l->uri = cairn_artifact(path, CAIRN_ARTIFACT_OTHER, CAIRN_ROLE_INPUT);
  path_of(path, sizeof path, l->t, 0);
  l->model = cairn_model(path, CAIRN_ROLE_OUTPUT, "fw", "type", name, NULL);
  l->slice = cairn_dataslice_create(name);
  for (int i = 0; i < files_per_thread; i++) {
    path_of(path, sizeof path, l->t, i);
    CHECK(cairn_dataslice_add(l->slice, path) == CAIRN_OK, "slice add");
  }
  CHECK(cairn_dataslice_commit(l->slice, CAIRN_ROLE_INPUT) == l->slice, "commit");
  l->metrics = cairn_metrics_artifact(name, "{\"acc\": 0.5}");
  CHECK(l->uri > 0 && l->model > 0 && l->metrics > 0, "ids");
  CHECK(cairn_execution_end(ex) == CAIRN_OK, "end");
  return NULL;
}

static const cairn_h5_artifact_row *find(const cairn_run_view *v, int64_t id) {
  for (size_t i = 0; i < v->nartifacts; i++)
    if (v->artifacts[i].id == (uint64_t)id)
      return &v->artifacts[i];
  return NULL;
}

static void one_run(char want[THREADS][MAX_FILES][96]) {
  CHECK(cairn_init(NULL) == CAIRN_OK, "init: %s", cairn_last_error());
  logged l[THREADS];
  pthread_t th[THREADS];
  memset(l, 0, sizeof l);
  for (int t = 0; t < THREADS; t++) {
    l[t].t = t;
    CHECK(pthread_create(&th[t], NULL, app, &l[t]) == 0, "pthread_create");
  }
  for (int t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  cairn_run_info info;
  cairn_get_run_info(&info);
  CHECK(cairn_finalize() == CAIRN_OK, "finalize");
  cairn_run_view v;
  cairn__view_init(&v);
  CHECK(cairn__run_open(info.run_dir, &v, NULL) == CAIRN_OK, "run_open");
  /* per thread: files, uri, model, members, slice, metrics */
  size_t want_n = (size_t)THREADS * ((size_t)files_per_thread * 2 + 4);
  CHECK(v.nartifacts == want_n, "%zu artifacts, want %zu", v.nartifacts, want_n);
  for (int t = 0; t < THREADS; t++) {
    for (int i = 0; i < files_per_thread; i++) {
      const cairn_h5_artifact_row *a = find(&v, l[t].ids[i]);
      CHECK(a != NULL, "thread %d file %d missing", t, i);
      CHECK(strcmp(a->hash, want[t][i]) == 0, "%s != %s", a->hash, want[t][i]);
      char props[64];
      snprintf(props, sizeof props, "{\"thread\": %d, \"file\": %d}", t, i);
      CHECK(strcmp(a->properties, props) == 0, "properties %s", a->properties);
    }
    const cairn_h5_artifact_row *m = find(&v, l[t].model);
    CHECK(m && strcmp(m->hash, want[t][0]) == 0, "model hash");
    char props[96];
    snprintf(props, sizeof props,
             "{\"framework\":\"fw\",\"model_type\":\"type\",\"model_name\":\"worker-%d\"}", t);
    CHECK(strcmp(m->properties, props) == 0, "model properties %s", m->properties);
    const cairn_h5_artifact_row *s = find(&v, l[t].slice);
    CHECK(s && strncmp(s->hash, "cairn-dataslice-sha256-v1:", 26) == 0, "slice %s",
          s ? s->hash : "missing");
    const cairn_h5_artifact_row *x = find(&v, l[t].metrics);
    CHECK(x && strcmp(x->properties, "{\"acc\": 0.5}") == 0, "metrics");
  }
  CHECK(v.nexecutions == THREADS, "%zu executions", v.nexecutions);
  cairn__view_free(&v);
}

int main(int argc, char **argv) {
  if (argc > 1)
    files_per_thread = atoi(argv[1]);
  CHECK(files_per_thread > 0 && files_per_thread <= MAX_FILES, "usage: stress_hasher [1..64]");
  dir = rm_tempdir();
  CHECK(dir != NULL, "tempdir");
  static char want[THREADS][MAX_FILES][96];
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < files_per_thread; i++) {
      char path[512];
      path_of(path, sizeof path, t, i);
      FILE *f = fopen(path, "wb");
      CHECK(f != NULL, "%s", path);
      /* sizes from 1 KiB to ~9 MiB: one and several leaves */
      size_t n = 1024u + (size_t)(t * files_per_thread + i) * (331u << 10) % (9u << 20);
      for (size_t k = 0; k < n; k++)
        fputc((int)((k * 7u + (unsigned)t * 13u + (unsigned)i) % 251u), f);
      fclose(f);
      cairn_hash_result r;
      cairn__hash_file(path, 0, 1, &r);
      CHECK(r.status == CAIRN_OK, "%s: %s", path, r.reason);
      snprintf(want[t][i], sizeof want[t][i], "cairn-merkle-sha256-v1:%s", r.hex);
    }
  char runs[600];
  snprintf(runs, sizeof runs, "%s/runs", dir);
  setenv("CAIRN_RUN_DIR", runs, 1);
  setenv("CAIRN_LINEAGE_HASHER_THREADS", "3", 1);
  one_run(want);
  one_run(want); /* the pool starts again in a second run */
  printf("stress_hasher: %d threads x %d files, 2 runs, ok\n", THREADS, files_per_thread);
  return 0;
}
