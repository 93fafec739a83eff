/* test_artifacts.c — cairn_artifact end to end: the call returns at once,
 * the hasher records the content hash (equal to sha256sum for a small
 * file), failures carry their reason, URIs are recorded as given, and all
 * of it is in the run file's lineage tables with INPUT/OUTPUT events. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "hash/hash.h"
#include "run_model.h"
#include "run_view.h"

static const char *tmp;

static void setup(void) {
  tmp = rm_tempdir();
  cr_assert_not_null(tmp);
}

TestSuite(artifacts, .init = setup);

static void write_file(const char *path, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  for (size_t i = 0; i < n; i++)
    fputc((int)(i * 31 % 251), f);
  fclose(f);
}

static const cairn_h5_artifact_row *row_of(const cairn_run_view *v, int64_t id) {
  for (size_t i = 0; i < v->nartifacts; i++)
    if (v->artifacts[i].id == (uint64_t)id)
      return &v->artifacts[i];
  return NULL;
}

Test(artifacts, calls_before_init_and_bad_arguments_are_errors) {
  cr_assert_eq(cairn_artifact("x", CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_artifact(NULL, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT), CAIRN_EINVAL);
  cr_assert_eq(cairn_artifact("", CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT), CAIRN_EINVAL);
  cr_assert_eq(cairn_artifact("x", (cairn_artifact_kind)99, CAIRN_ROLE_INPUT), CAIRN_EINVAL);
  cr_assert_eq(cairn_artifact("x", CAIRN_ARTIFACT_MODEL, (cairn_role)0), CAIRN_EINVAL);
  char *big = malloc(5000);
  memset(big, 'a', 4999);
  big[4999] = '\0';
  cr_assert_eq(cairn_artifact(big, CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT), CAIRN_ENAMETOOLONG);
  free(big);
  cairn_counters c;
  cairn_get_counters(CAIRN_CHANNEL_CONTROL, &c);
  cr_assert_eq(c.rejected, 5);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
}

Test(artifacts, hashes_failures_and_uris_reach_the_run_file, .timeout = 60) {
  char small[512], large[512], missing[512], dir[512];
  snprintf(small, sizeof small, "%s/small.bin", tmp);
  snprintf(large, sizeof large, "%s/large.bin", tmp);
  snprintf(missing, sizeof missing, "%s/no-such-file", tmp);
  snprintf(dir, sizeof dir, "%s/a-directory", tmp);
  write_file(small, 1000);
  write_file(large, 5u << 20); /* two leaves of 4 MiB */
  cr_assert_eq(mkdir(dir, 0700), 0);
  const char *uri = "s3://bucket/imagenet/train-000.tar";

  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int64_t a = cairn_artifact(small, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT);
  int64_t b = cairn_artifact(large, CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT);
  int64_t c = cairn_artifact(missing, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT);
  int64_t d = cairn_artifact(dir, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT);
  int64_t e = cairn_artifact(uri, CAIRN_ARTIFACT_DATASET, CAIRN_ROLE_INPUT);
  cr_assert(a > 0 && b > a && c > b && d > c && e > d, "ids are positive and distinct");
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);

  cairn_run_view v;
  cairn__view_init(&v);
  cr_assert_eq(cairn__run_open(info.run_dir, &v, NULL), CAIRN_OK);
  cr_assert(v.source & CAIRN_VIEW_FROM_H5, "read from the HDF5 run file");
  cr_assert_eq(v.nartifacts, 5);
  cr_assert_eq(v.nevents, 5);

  /* The small file: the hash is sha256sum's. */
  char cmd[700], want[80] = "";
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", small);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  cr_assert_eq(fscanf(p, "%64s", want), 1);
  pclose(p);
  const cairn_h5_artifact_row *r = row_of(&v, a);
  cr_assert_not_null(r);
  char expect[120];
  snprintf(expect, sizeof expect, "cairn-merkle-sha256-v1:%s", want);
  cr_assert_str_eq(r->hash, expect);
  cr_assert_str_eq(r->uri, small);
  cr_assert_eq(r->size, 1000);
  cr_assert_eq(r->kind, CAIRN_ARTIFACT_DATASET);

  /* The large file: the documented tree, as the hash library computes it. */
  cairn_hash_result hr;
  cr_assert_eq(cairn__hash_file(large, 0, 2, &hr), CAIRN_OK);
  r = row_of(&v, b);
  cr_assert_not_null(r);
  snprintf(expect, sizeof expect, "cairn-merkle-sha256-v1:%s", hr.hex);
  cr_assert_str_eq(r->hash, expect);
  cr_assert_eq(r->size, 5u << 20);
  cr_assert_eq(r->kind, CAIRN_ARTIFACT_MODEL);

  /* Failures carry their reason instead of a hash. */
  r = row_of(&v, c);
  cr_assert_not_null(r);
  cr_assert(strncmp(r->hash, "error: ", 7) == 0 && strstr(r->hash, "no such file"), "%s",
            r->hash);
  r = row_of(&v, d);
  cr_assert_not_null(r);
  cr_assert(strncmp(r->hash, "error: ", 7) == 0 && strstr(r->hash, "directory"), "%s",
            r->hash);

  /* A URI is recorded as given, not hashed. */
  r = row_of(&v, e);
  cr_assert_not_null(r);
  cr_assert_str_eq(r->uri, uri);
  cr_assert_str_eq(r->hash, "");

  /* Roles became INPUT/OUTPUT events. */
  int inputs = 0, outputs = 0;
  for (size_t i = 0; i < v.nevents; i++) {
    inputs += v.events[i].type == CAIRN_H5_EVENT_INPUT;
    outputs += v.events[i].type == CAIRN_H5_EVENT_OUTPUT && v.events[i].artifact_id == (uint64_t)b;
  }
  cr_assert_eq(inputs, 4);
  cr_assert_eq(outputs, 1);
  cairn__view_free(&v);
}

Test(artifacts, stages_and_executions_link_artifacts, .timeout = 60) {
  setenv("CAIRN_PIPELINE_NAME", "imagenet-resnet", 1);
  char data[512];
  snprintf(data, sizeof data, "%s/shard.bin", tmp);
  write_file(data, 4096);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_stage(NULL, NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_execution_end(0), CAIRN_EINVAL);
  int64_t stage = cairn_stage("train", "{\"nodes\": 4}");
  cr_assert_gt(stage, 0);
  int64_t e0 = cairn_execution_begin("epoch-0", NULL);
  cr_assert_gt(e0, stage);
  int64_t in = cairn_artifact(data, CAIRN_ARTIFACT_DATASLICE, CAIRN_ROLE_INPUT);
  int64_t out = cairn_artifact("s3://ckpt/epoch-0.pt", CAIRN_ARTIFACT_MODEL, CAIRN_ROLE_OUTPUT);
  cr_assert_eq(cairn_execution_end(e0), CAIRN_OK);
  int64_t after = cairn_artifact("https://example.org/report", CAIRN_ARTIFACT_METRICS,
                                 CAIRN_ROLE_OUTPUT);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  unsetenv("CAIRN_PIPELINE_NAME");

  cairn_run_view v;
  cairn__view_init(&v);
  cr_assert_eq(cairn__run_open(info.run_dir, &v, NULL), CAIRN_OK);
  cr_assert_eq(v.ncontexts, 1);
  cr_assert_eq(v.contexts[0].id, (uint64_t)stage);
  cr_assert_str_eq(v.contexts[0].name, "train");
  cr_assert_str_eq(v.contexts[0].pipeline, "imagenet-resnet");
  cr_assert_str_eq(v.contexts[0].properties, "{\"nodes\": 4}");
  cr_assert_eq(v.nexecutions, 1);
  cr_assert_eq(v.executions[0].id, (uint64_t)e0);
  cr_assert_eq(v.executions[0].context_id, (uint64_t)stage);
  cr_assert_str_eq(v.executions[0].name, "epoch-0");
  cr_assert_gt(v.executions[0].start_ns, 0);
  cr_assert_geq(v.executions[0].end_ns, v.executions[0].start_ns, "ended");
  int linked = 0, unlinked = 0;
  for (size_t i = 0; i < v.nevents; i++) {
    const cairn_h5_event_row *ev = &v.events[i];
    if ((ev->artifact_id == (uint64_t)in && ev->type == CAIRN_H5_EVENT_INPUT) ||
        (ev->artifact_id == (uint64_t)out && ev->type == CAIRN_H5_EVENT_OUTPUT))
      linked += ev->execution_id == (uint64_t)e0;
    if (ev->artifact_id == (uint64_t)after)
      unlinked += ev->execution_id == 0;
  }
  cr_assert_eq(linked, 2, "the epoch's input and output are its events");
  cr_assert_eq(unlinked, 1, "after the execution ended, artifacts belong to the run");
  cairn__view_free(&v);
}

static char *sh(const char *cmd) {
  static char out[256];
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  out[0] = '\0';
  cr_assert_eq(fscanf(p, "%64s", out), 1);
  pclose(p);
  return out;
}

Test(artifacts, dataslice_hash_is_derived_from_members_in_any_order, .timeout = 60) {
  char a[512], b[512], c[512], missing[512];
  snprintf(a, sizeof a, "%s/part-a", tmp);
  snprintf(b, sizeof b, "%s/part-b", tmp);
  snprintf(c, sizeof c, "%s/part-c", tmp);
  snprintf(missing, sizeof missing, "%s/part-missing", tmp);
  write_file(a, 100);
  write_file(b, 2000);
  write_file(c, 30000);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(424242, a), CAIRN_ENOTFOUND);
  int64_t s1 = cairn_dataslice_create("train-split");
  int64_t s2 = cairn_dataslice_create("train-split-again");
  int64_t s3 = cairn_dataslice_create("broken");
  cr_assert(s1 > 0 && s2 > 0 && s3 > 0);
  cr_assert_eq(cairn_dataslice_add(s1, a), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(s1, b), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(s1, c), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(s2, c), CAIRN_OK); /* other order */
  cr_assert_eq(cairn_dataslice_add(s2, a), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(s2, b), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(s3, a), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_add(s3, missing), CAIRN_OK);
  cr_assert_eq(cairn_dataslice_commit(s1, CAIRN_ROLE_INPUT), s1);
  cr_assert_eq(cairn_dataslice_commit(s2, CAIRN_ROLE_INPUT), s2);
  cr_assert_eq(cairn_dataslice_commit(s3, CAIRN_ROLE_OUTPUT), s3);
  cr_assert_eq(cairn_dataslice_commit(s1, CAIRN_ROLE_INPUT), CAIRN_ENOTFOUND, "committed once");
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);

  /* The documented derivation, computed with sha256sum alone. */
  char cmd[2400];
  snprintf(cmd, sizeof cmd,
           "for f in '%s' '%s' '%s'; do sha256sum \"$f\" | cut -c1-64; done | sort | sha256sum",
           a, b, c);
  char expect[128];
  snprintf(expect, sizeof expect, "cairn-dataslice-sha256-v1:%s", sh(cmd));

  cairn_run_view v;
  cairn__view_init(&v);
  cr_assert_eq(cairn__run_open(info.run_dir, &v, NULL), CAIRN_OK);
  const cairn_h5_artifact_row *r1 = row_of(&v, s1), *r2 = row_of(&v, s2), *r3 = row_of(&v, s3);
  cr_assert(r1 && r2 && r3);
  cr_assert_eq(r1->kind, CAIRN_ARTIFACT_DATASLICE);
  cr_assert_str_eq(r1->uri, "train-split");
  cr_assert_str_eq(r1->hash, expect);
  cr_assert_str_eq(r2->hash, expect, "member order does not matter");
  cr_assert_eq(r1->size, 32100);
  cr_assert(strncmp(r3->hash, "error: member ", 14) == 0 && strstr(r3->hash, "part-missing"),
            "%s", r3->hash);
  /* 3 + 3 + 2 members, each its own artifact, plus the 3 slices. */
  cr_assert_eq(v.nartifacts, 11);
  cairn__view_free(&v);
}
