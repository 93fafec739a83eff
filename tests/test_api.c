/* test_api.c — the public API end to end through the drain and the WAL:
 * lifecycle misuse, argument validation, the per-step value of repeated
 * samples, NaN/Inf as data, params and key/values read back from disk. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "run_model.h"
#include "util.h"

static const char *tmp;

static void setup(void) {
  tmp = rm_tempdir();
  cr_assert_not_null(tmp);
  unsetenv("CAIRN_CONFIG");
}

TestSuite(api, .init = setup);

Test(api, every_call_before_init_returns_enotinit) {
  cairn_counters c;
  cairn_run_info info;
  cr_assert_eq(cairn_metric_id("loss"), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_metric(0, 1.0), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_metric_at(0, 3, 1.0), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_step(1), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_flush(), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_param_int64("k", 1), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_param_double("k", 1), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_param_string("k", "v"), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_param_bool("k", 1), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_run_set("k", "v"), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_get_counters(CAIRN_CHANNEL_METRICS, &c), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_get_run_info(&info), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_finalize(), CAIRN_ENOTINIT);
}

Test(api, init_twice_and_finalize_twice_are_errors) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_init(NULL), CAIRN_EALREADY);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cr_assert_eq(cairn_finalize(), CAIRN_ENOTINIT);
}

Test(api, calls_after_finalize_return_enotinit_and_never_crash) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int id = cairn_metric_id("loss");
  cr_assert_geq(id, 0);
  cr_assert_eq(cairn_metric(id, 1.0), CAIRN_OK);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cr_assert_eq(cairn_metric(id, 2.0), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_metric_at(id, 5, 2.0), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_step(2), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_metric_id("loss"), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_run_set("a", "b"), CAIRN_ENOTINIT);
  /* The last run's accounting stays readable. */
  cairn_counters c;
  cr_assert_eq(cairn_get_counters(CAIRN_CHANNEL_METRICS, &c), CAIRN_OK);
  cr_assert_eq(c.logged, 1);
  cr_assert_eq(c.written, 1);
}

Test(api, init_after_finalize_starts_a_new_run) {
  cairn_run_info a, b;
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int id = cairn_metric_id("x");
  cairn_metric_at(id, 1, 1.0);
  cairn_get_run_info(&a);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cairn_get_run_info(&b);
  cr_assert_str_neq(a.run_id, b.run_id);
  /* The old id is unknown in the new run until interned again. */
  cr_assert_eq(cairn_metric_at(id, 1, 1.0), CAIRN_EBADID);
  cr_assert_eq(cairn_metric_id("y"), 0);
  cr_assert_eq(cairn_metric_at(0, 1, 5.0), CAIRN_OK);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  run_model m;
  cr_assert_eq(rm_read(&m, b.run_dir), CAIRN_OK);
  cr_assert_str_eq(m.names[0], "y");
  cr_assert_eq(m.samples[0], 1);
  rm_free(&m);
}

Test(api, bad_names_are_rejected_with_codes_and_counted) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  char *big = malloc(10 * 1024 + 1);
  memset(big, 'a', 10 * 1024);
  big[10 * 1024] = '\0';
  cr_assert_eq(cairn_metric_id(NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_metric_id(""), CAIRN_EINVAL);
  cr_assert_eq(cairn_metric_id(big), CAIRN_ENAMETOOLONG);
  cr_assert_eq(cairn_param_int64(NULL, 1), CAIRN_EINVAL);
  cr_assert_eq(cairn_param_double(big, 1), CAIRN_ENAMETOOLONG);
  cr_assert_eq(cairn_param_string("k", NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_run_set("k", NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_run_set("", "v"), CAIRN_EINVAL);
  big[CAIRN_NAME_MAX] = '\0';
  cr_assert_geq(cairn_metric_id(big), 0, "a name of exactly CAIRN_NAME_MAX bytes is fine");
  cr_assert_eq(cairn_metric(-1, 1.0), CAIRN_EBADID);
  cr_assert_eq(cairn_metric(12345, 1.0), CAIRN_EBADID);
  cr_assert_eq(cairn_metric_at(1, 0, 1.0), CAIRN_EBADID);
  cairn_counters m, c;
  cr_assert_eq(cairn_get_counters(CAIRN_CHANNEL_METRICS, &m), CAIRN_OK);
  cr_assert_eq(cairn_get_counters(CAIRN_CHANNEL_CONTROL, &c), CAIRN_OK);
  cr_assert_eq(m.rejected, 6, "3 bad metric names + 3 bad ids");
  cr_assert_eq(c.rejected, 5);
  cr_assert_eq(cairn_get_counters((cairn_channel)7, &m), CAIRN_EINVAL);
  cr_assert_eq(cairn_get_counters(CAIRN_CHANNEL_METRICS, NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_get_run_info(NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  free(big);
}

Test(api, same_name_gives_same_id) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int a = cairn_metric_id("loss"), b = cairn_metric_id("acc"), c = cairn_metric_id("loss");
  cr_assert_eq(a, 0);
  cr_assert_eq(b, 1);
  cr_assert_eq(c, a);
  cairn_finalize();
}

Test(api, metric_names_beyond_the_limit_give_etoomany) {
  setenv("CAIRN_METRICS_MAX_NAMES", "3", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_metric_id("a"), 0);
  cr_assert_eq(cairn_metric_id("b"), 1);
  cr_assert_eq(cairn_metric_id("c"), 2);
  cr_assert_eq(cairn_metric_id("d"), CAIRN_ETOOMANY);
  cr_assert_eq(cairn_metric_id("a"), 0, "existing names still resolve");
  cairn_finalize();
  unsetenv("CAIRN_METRICS_MAX_NAMES");
}

Test(api, repeated_samples_in_a_step_give_mean_count_min_max) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int loss = cairn_metric_id("loss");
  cairn_step(10);
  cairn_metric(loss, 1.0);
  cairn_metric(loss, 2.0);
  cairn_metric(loss, 3.0);
  cairn_metric(loss, 6.0);
  cairn_step(11);
  cairn_metric(loss, 0.5);
  cairn_metric_at(loss, 10, -2.0); /* a late sample of step 10 */
  cairn_run_info info;
  cairn_get_run_info(&info);
  /* The log keeps count, sum, min and max of the step's samples. */
  cr_assert_eq(cairn_flush(), CAIRN_OK);
  run_model w;
  cr_assert_eq(rm_read_wal(&w, info.run_dir), CAIRN_OK);
  cairn_metric_agg a;
  cr_assert(rm_step_value(&w, loss, 10, &a));
  cr_assert_eq(a.count, 5);
  cr_assert_float_eq(a.sum / a.count, 2.0, 1e-12);
  cr_assert_float_eq(a.min, -2.0, 0);
  cr_assert_float_eq(a.max, 6.0, 0);
  rm_free(&w);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);

  /* The run file holds the step's value (the mean) and its sample count. */
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  int id = rm_id(&m, "loss");
  cr_assert_geq(id, 0);
  cr_assert(rm_step_value(&m, id, 10, &a));
  cr_assert_eq(a.count, 5);
  cr_assert_float_eq(a.sum / a.count, 2.0, 1e-12);
  cr_assert(rm_step_value(&m, id, 11, &a));
  cr_assert_eq(a.count, 1);
  cr_assert_float_eq(a.sum, 0.5, 0);
  cr_assert_eq(m.nsteps, 2);
  cr_assert_eq(m.steps[0].step, 10);
  cr_assert_eq(m.steps[1].step, 11);
  cr_assert_leq(m.steps[0].t_ns, m.steps[1].t_ns);
  cr_assert_gt(m.steps[0].t_ns, 0);
  rm_free(&m);
}

Test(api, nan_and_infinities_are_stored_as_data) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int x = cairn_metric_id("x");
  cr_assert_eq(cairn_metric_at(x, 1, NAN), CAIRN_OK);
  cr_assert_eq(cairn_metric_at(x, 2, INFINITY), CAIRN_OK);
  cr_assert_eq(cairn_metric_at(x, 3, -INFINITY), CAIRN_OK);
  cr_assert_eq(cairn_metric_at(x, 4, NAN), CAIRN_OK);
  cr_assert_eq(cairn_metric_at(x, 4, 7.0), CAIRN_OK); /* NaN makes the mean NaN */
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_flush(), CAIRN_OK);
  run_model w;
  cr_assert_eq(rm_read_wal(&w, info.run_dir), CAIRN_OK);
  cairn_metric_agg a;
  cr_assert(rm_step_value(&w, x, 4, &a));
  cr_assert_eq(a.count, 2);
  cr_assert(isnan(a.sum));
  cr_assert_float_eq(a.min, 7.0, 0, "min/max ignore NaN samples");
  cr_assert_float_eq(a.max, 7.0, 0);
  rm_free(&w);
  cairn_counters c;
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  cr_assert_eq(c.rejected, 0, "NaN and Inf are not errors");
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  x = rm_id(&m, "x");
  cr_assert(rm_step_value(&m, x, 1, &a));
  cr_assert(isnan(a.sum));
  cr_assert(rm_step_value(&m, x, 2, &a));
  cr_assert(isinf(a.sum) && a.sum > 0);
  cr_assert(rm_step_value(&m, x, 3, &a));
  cr_assert(isinf(a.sum) && a.sum < 0);
  cr_assert(rm_step_value(&m, x, 4, &a));
  cr_assert_eq(a.count, 2);
  cr_assert(isnan(a.sum));
  rm_free(&m);
}

Test(api, params_and_run_values_round_trip_with_types) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_param_int64("batch", -256), CAIRN_OK);
  cr_assert_eq(cairn_param_double("lr", 3e-4), CAIRN_OK);
  cr_assert_eq(cairn_param_string("model", "x'); DROP TABLE Artifact;--"), CAIRN_OK);
  cr_assert_eq(cairn_param_bool("amp", 42), CAIRN_OK);
  cr_assert_eq(cairn_run_set("dataset", "imagenet"), CAIRN_OK);
  cr_assert_eq(cairn_run_set("empty", ""), CAIRN_OK);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  cr_assert_eq(m.nparams, 4);
  cr_assert_str_eq(m.param_keys[0], "batch");
  cr_assert_eq(m.params[0].type, CAIRN_PARAM_INT64);
  cr_assert_eq(m.params[0].i64, -256);
  cr_assert_eq(m.params[1].type, CAIRN_PARAM_DOUBLE);
  cr_assert_float_eq(m.params[1].f64, 3e-4, 0);
  cr_assert_eq(m.params[2].type, CAIRN_PARAM_STRING);
  cr_assert_str_eq(m.param_strs[2], "x'); DROP TABLE Artifact;--");
  cr_assert_eq(m.params[3].type, CAIRN_PARAM_BOOL);
  cr_assert_eq(m.params[3].i64, 1);
  /* Besides ours, the run carries the automatic metadata (docs/metadata.md). */
  int dataset = -1, empty = -1, user = -1;
  for (size_t i = 0; i < m.nkv; i++) {
    if (!strcmp(m.kv_keys[i], "dataset"))
      dataset = (int)i;
    if (!strcmp(m.kv_keys[i], "empty"))
      empty = (int)i;
    if (!strcmp(m.kv_keys[i], "user"))
      user = (int)i;
  }
  cr_assert_geq(dataset, 0);
  cr_assert_str_eq(m.kv_vals[dataset], "imagenet");
  cr_assert_geq(empty, 0);
  cr_assert_str_eq(m.kv_vals[empty], "");
  cr_assert_geq(user, 0, "automatic metadata recorded");
  cr_assert_eq(m.ctr[CAIRN_CHANNEL_CONTROL].logged, 6 + (m.nkv - 2));
  cr_assert_eq(m.ctr[CAIRN_CHANNEL_CONTROL].written, m.ctr[CAIRN_CHANNEL_CONTROL].logged);
  cr_assert(m.have_run);
  rm_free(&m);
}

Test(api, run_directory_is_private_and_named_by_run_id) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cairn_run_info info;
  cr_assert_eq(cairn_get_run_info(&info), CAIRN_OK);
  cr_assert_eq(strlen(info.run_id), 36);
  char expect[4200];
  snprintf(expect, sizeof expect, "%s/%s", tmp, info.run_id);
  cr_assert_str_eq(info.run_dir, expect);
  struct stat st;
  cr_assert_eq(stat(info.run_dir, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  char id[37];
  cairn__uuid_format(m.run.run_id, id);
  cr_assert_str_eq(id, info.run_id, "the run file carries the run id");
  rm_free(&m);
  /* A clean finalize leaves the HDF5 run file, private, and no log. */
  char path[4200];
  snprintf(path, sizeof path, "%s/run-g000000.h5", info.run_dir);
  cr_assert_eq(stat(path, &st), 0, "%s", path);
  cr_assert_eq(st.st_mode & 0777, 0600);
  snprintf(path, sizeof path, "%s/wal-r000000-000000.cwal", info.run_dir);
  cr_assert_neq(stat(path, &st), 0, "the write-ahead log is removed once the file is complete");
}

Test(api, fixed_run_id_from_config_and_reuse_is_refused) {
  setenv("CAIRN_RUN_ID", "0f8e1c2a-3b4d-4e5f-8a6b-7c8d9e0f1a2b", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_str_eq(info.run_id, "0f8e1c2a-3b4d-4e5f-8a6b-7c8d9e0f1a2b");
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cr_assert_eq(cairn_init(NULL), CAIRN_EIO);
  cr_assert(strstr(cairn_last_error(), "existing run") != NULL, "%s", cairn_last_error());
  unsetenv("CAIRN_RUN_ID");
}

Test(api, bad_config_is_returned_not_fatal) {
  char path[512];
  snprintf(path, sizeof path, "%s/bad.yaml", tmp);
  FILE *f = fopen(path, "w");
  fputs("ring:\n  capacity: 1000\n", f);
  fclose(f);
  cr_assert_eq(cairn_init(path), CAIRN_ECONFIG);
  cr_assert(strstr(cairn_last_error(), "ring.capacity") != NULL, "%s", cairn_last_error());
  cr_assert(strstr(cairn_last_error(), ":2:") != NULL, "line number: %s", cairn_last_error());
  cr_assert_eq(cairn_metric_id("x"), CAIRN_ENOTINIT);
  /* A corrected call works in the same process. */
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
}

Test(api, disabled_by_config) {
  setenv("CAIRN_ENABLED", "false", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_EDISABLED);
  cr_assert_eq(cairn_metric(0, 1), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_finalize(), CAIRN_ENOTINIT);
  unsetenv("CAIRN_ENABLED");
}

Test(api, error_codes_have_unique_names_and_messages) {
  int codes[] = {
#define X(n, v, m) CAIRN_##n,
      CAIRN_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    cr_assert_lt(codes[i], 0);
    cr_assert_str_neq(cairn_strerror(codes[i]), "unknown error");
    cr_assert_eq(strncmp(cairn_err_name(codes[i]), "CAIRN_E", 7), 0);
    for (size_t j = i + 1; j < n; j++) {
      cr_assert_neq(codes[i], codes[j]);
      cr_assert_str_neq(cairn_strerror(codes[i]), cairn_strerror(codes[j]));
    }
  }
  cr_assert_str_eq(cairn_err_name(CAIRN_EDROPPED), "CAIRN_EDROPPED");
  cr_assert_str_eq(cairn_strerror(12345), "unknown error");
  cr_assert_str_eq(cairn_err_name(-999), "CAIRN_UNKNOWN");
  cr_assert_str_eq(cairn_strerror(CAIRN_OK), "success");
  cr_assert_str_eq(cairn_version(), "0.1.0");
}

static void *worker(void *p) {
  int id = *(int *)p;
  for (int s = 0; s < 1000; s++)
    cairn_metric_at(id, s, 1.0);
  /* No cairn_flush: the thread's exit publishes its last records. */
  return NULL;
}

Test(api, a_thread_that_exits_leaves_all_its_records) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int id = cairn_metric_id("w");
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, worker, &id);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cairn_counters c;
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  cr_assert_eq(c.logged, 4000);
  cr_assert_eq(c.written + c.dropped, 4000);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  cr_assert_eq(m.samples[id], c.written);
  cr_assert_eq(m.ctr[0].logged, 4000, "the final block holds the final accounting");
  rm_free(&m);
}

/* cairn.h turns cairn_metric(...) into an inline fast path; the exported
 * functions, (cairn_metric)(...), are what dlopen and FFI users call. Both
 * fill the same ring, with the same returns and accounting, across publication
 * batches, a full ring (drops), a bad id and the end of the run. */
Test(api, inline_and_exported_metric_calls_share_one_ring_and_its_accounting) {
  setenv("CAIRN_RING_CAPACITY", "1024", 1);
  setenv("CAIRN_DRAIN_FLUSH_INTERVAL_MS", "60000", 1);
  setenv("CAIRN_RING_HIGH_WATER", "1.0", 1);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  unsetenv("CAIRN_RING_CAPACITY");
  unsetenv("CAIRN_DRAIN_FLUSH_INTERVAL_MS");
  unsetenv("CAIRN_RING_HIGH_WATER");
  int id = cairn_metric_id("x");
  int (*exported)(int, double) = cairn_metric; /* no call: not the macro */
  uint64_t ok = 0, dropped = 0;
  for (int i = 0; i < 3000; i++) {
    int rc;
    switch (i % 4) {
    case 0: rc = cairn_metric(id, 1.0); break;
    case 1: rc = (cairn_metric)(id, 1.0); break;
    case 2: rc = cairn_metric_at(id, 7, 1.0); break;
    default: rc = exported(id, 1.0); break;
    }
    cr_assert(rc == CAIRN_OK || rc == CAIRN_EDROPPED, "rc %d", rc);
    ok += rc == CAIRN_OK;
    dropped += rc == CAIRN_EDROPPED;
  }
  cr_assert_eq(cairn_metric(id + 1, 1.0), CAIRN_EBADID);
  cr_assert_eq((cairn_metric)(id + 1, 1.0), CAIRN_EBADID);
  cr_assert_eq(cairn_metric_at(-1, 0, 1.0), CAIRN_EBADID);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  cr_assert_eq(cairn_metric(id, 1.0), CAIRN_ENOTINIT);
  cr_assert_eq((cairn_metric_at)(id, 1, 1.0), CAIRN_ENOTINIT);
  cairn_counters c;
  cairn_get_counters(CAIRN_CHANNEL_METRICS, &c);
  cr_assert_eq(c.logged, 3000);
  cr_assert_eq(c.dropped, dropped);
  cr_assert_eq(c.written, ok);
  cr_assert_eq(c.rejected, 3);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  cr_assert_eq(m.samples[id], ok);
  rm_free(&m);
}

Test(api, flush_makes_records_durable_before_finalize) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int id = cairn_metric_id("loss");
  for (int i = 0; i < 5; i++)
    cairn_metric_at(id, i, (double)i);
  cr_assert_eq(cairn_flush(), CAIRN_OK);
  cairn_run_info info;
  cairn_get_run_info(&info);
  /* Read the log while the run is still live. */
  run_model m;
  cr_assert_eq(rm_read_wal(&m, info.run_dir), CAIRN_OK);
  cr_assert_eq(m.samples[id], 5);
  cr_assert_eq(m.ctr[0].written, 5);
  rm_free(&m);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
}

#include <hdf5.h>

Test(api, single_rank_run_file_stores_values_once_and_stats_are_derived) {
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  int x = cairn_metric_id("x");
  for (int s = 0; s < 3; s++) {
    cairn_metric_at(x, s, 1.5 * s);
    cairn_metric_at(x, s, 1.5 * s + 1.0); /* two samples: mean 1.5 s + 0.5 */
  }
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  /* Independent look with the HDF5 C API. */
  char path[4200];
  snprintf(path, sizeof path, "%s/run-g000000.h5", info.run_dir);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  hid_t g = H5Gopen2(f, "/metrics/0", H5P_DEFAULT);
  cr_assert_geq(g, 0);
  cr_assert_gt(H5Aexists(g, "stats_derived"), 0);
  cr_assert_eq(H5Lexists(g, "sum", H5P_DEFAULT), 0, "no duplicate statistics for one rank");
  cr_assert_gt(H5Lexists(g, "values", H5P_DEFAULT), 0);
  H5Gclose(g);
  H5Fclose(f);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  int id = rm_id(&m, "x");
  for (int s = 0; s < 3; s++) {
    cairn_metric_agg a;
    cr_assert(rm_step_value(&m, id, s, &a));
    cr_assert_eq(a.count, 2);
    cr_assert_float_eq(a.sum / a.count, 1.5 * s + 0.5, 1e-12);
    cr_assert_float_eq(a.min, 1.5 * s + 0.5, 1e-12, "derived min = the rank's value");
    cr_assert_float_eq(a.max, 1.5 * s + 0.5, 1e-12);
  }
  rm_free(&m);
}

Test(api, params_from_yaml_are_flattened_and_typed) {
  char path[512];
  snprintf(path, sizeof path, "%s/train.yaml", tmp);
  FILE *f = fopen(path, "w");
  fputs("model: resnet-50\n"
        "optimizer:\n"
        "  name: adamw\n"
        "  lr: 3.0e-4\n"
        "  betas: [0.9, 0.999]\n"
        "batch_size: 256\n"
        "amp: true\n"
        "seed: '42'\n",
        f);
  fclose(f);
  cr_assert_eq(cairn_params_from_yaml(path), CAIRN_ENOTINIT);
  cr_assert_eq(cairn_init(NULL), CAIRN_OK);
  cr_assert_eq(cairn_params_from_yaml(path), 7);
  char bad[512];
  snprintf(bad, sizeof bad, "%s/bad.yaml", tmp);
  f = fopen(bad, "w");
  fputs("a: [1, 2\n", f);
  fclose(f);
  cr_assert_eq(cairn_params_from_yaml(bad), CAIRN_EINVAL);
  snprintf(bad, sizeof bad, "%s/missing.yaml", tmp);
  cr_assert_eq(cairn_params_from_yaml(bad), CAIRN_EIO);
  cairn_run_info info;
  cairn_get_run_info(&info);
  cr_assert_eq(cairn_finalize(), CAIRN_OK);
  run_model m;
  cr_assert_eq(rm_read(&m, info.run_dir), CAIRN_OK);
  int seen = 0;
  for (size_t i = 0; i < m.nparams; i++) {
    const char *k = m.param_keys[i];
    const cairn_rec_param *p = &m.params[i];
    if (!strcmp(k, "model"))
      seen += p->type == CAIRN_PARAM_STRING && !strcmp(m.param_strs[i], "resnet-50");
    else if (!strcmp(k, "optimizer.name"))
      seen += p->type == CAIRN_PARAM_STRING && !strcmp(m.param_strs[i], "adamw");
    else if (!strcmp(k, "optimizer.lr"))
      seen += p->type == CAIRN_PARAM_DOUBLE && p->f64 == 3.0e-4;
    else if (!strcmp(k, "optimizer.betas"))
      seen += p->type == CAIRN_PARAM_STRING && !strcmp(m.param_strs[i], "0.9,0.999");
    else if (!strcmp(k, "batch_size"))
      seen += p->type == CAIRN_PARAM_INT64 && p->i64 == 256;
    else if (!strcmp(k, "amp"))
      seen += p->type == CAIRN_PARAM_BOOL && p->i64 == 1;
    else if (!strcmp(k, "seed"))
      seen += p->type == CAIRN_PARAM_STRING && !strcmp(m.param_strs[i], "42");
  }
  cr_assert_eq(seen, 7, "every param with its type and value");
  rm_free(&m);
}
