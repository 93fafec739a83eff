/*
 * test_config.c — tests of the configuration loader: defaults, YAML files
 * (nested and flat keys, every kind of bad input with its exact message),
 * size suffixes, CAIRN_* environment overrides and the docs/key-table match.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "config.h"

/* Leak checks need the sanitizer runtime: GCC says so with a macro, clang
 * with __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define CAIRN_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAIRN_TEST_LSAN 1
#endif
#endif
#ifdef CAIRN_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#ifndef CAIRN_SOURCE_DIR
#error "the build must define CAIRN_SOURCE_DIR"
#endif

/* Each test runs in its own process, so this state is per test. */
static char tmpdir[64];
static int nfiles;

/* "ring.capacity" -> "CAIRN_RING_CAPACITY", as config.c documents. */
static void env_name(const char *key, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "CAIRN_");
  for (; *key != '\0' && n + 1 < len; key++, n++)
    buf[n] = *key == '.'
                 ? '_'
                 : (char)(*key >= 'a' && *key <= 'z' ? *key - 'a' + 'A' : *key);
  buf[n] = '\0';
}

/* ctest sets CAIRN_LOG_LEVEL; a developer's shell may set more. */
static void clear_cairn_env(void) {
  char var[64];
  for (size_t i = 0; i < cairn__config_key_count(); i++) {
    env_name(cairn__config_key_name(i), var, sizeof var);
    unsetenv(var);
  }
  unsetenv("CAIRN_CONFIG");
}

static void setup(void) {
  clear_cairn_env();
  snprintf(tmpdir, sizeof tmpdir, "/tmp/cairn-test-config-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void) {
  DIR *d = opendir(tmpdir);
  if (d != NULL) {
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
      unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
  }
#ifdef CAIRN_TEST_LSAN
  /* Criterion ignores both a fini's assertions and a worker's exit status
   * after the test body, so a leak report at exit would go unnoticed; a
   * crash is the one thing it reports from here (and it fails the run). */
  if (__lsan_do_recoverable_leak_check() != 0)
    abort();
#endif
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes `text` to a new file in the test's directory; returns its path
 * (static storage, one slot per file so earlier paths stay valid). */
static const char *write_yaml(const char *text) {
  static char paths[64][128];
  cr_assert_lt(nfiles, 64);
  char *path = paths[nfiles];
  snprintf(path, sizeof paths[0], "%s/config-%d.yaml", tmpdir, nfiles);
  nfiles++;
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  cr_assert_eq(fputs(text, f) >= 0, 1);
  cr_assert_eq(fclose(f), 0);
  return path;
}

/* Loads `text` as a file on top of the defaults. */
static int load_text(const char *text, cairn_config *cfg, char *err,
                     size_t errlen) {
  cairn__config_defaults(cfg);
  return cairn__config_load_file(cfg, write_yaml(text), err, errlen);
}

static void assert_defaults(const cairn_config *c) {
  cr_assert_eq(c->enabled, true);
  cr_assert_str_eq(c->run_dir, "cairn-runs");
  cr_assert_str_eq(c->run_id, "");
  cr_assert_eq(c->ring_capacity, 65536);
  cr_assert_eq(c->ring_policy, CAIRN_POLICY_DROP);
  cr_assert_float_eq(c->ring_high_water, 0.5, 1e-12);
  cr_assert_eq(c->ring_overflow_bytes, 64ULL << 20);
  cr_assert_eq(c->flush_interval_ms, 100);
  cr_assert_eq(c->compression_level, 1);
  cr_assert_eq(c->wal_sync, CAIRN_SYNC_INTERVAL);
  cr_assert_eq(c->wal_sync_interval_ms, 1000);
  cr_assert_eq(c->wal_segment_bytes, 64ULL << 20);
  cr_assert_eq(c->max_names, 4096);
  cr_assert_eq(c->log_level, CAIRN_LOG_WARN);
  cr_assert_eq(c->hasher_threads, 0);
  cr_assert_eq(c->aggregator_huge_pages, false, "the huge-page pool is opt-in");
}

/* The values both "every key" files below set; none is a default. */
static void assert_every_key_set(const cairn_config *c) {
  cr_assert_eq(c->enabled, false);
  cr_assert_str_eq(c->run_dir, "/scratch/my runs");
  cr_assert_str_eq(c->run_id, "123e4567-e89b-42d3-a456-426614174000");
  cr_assert_eq(c->ring_capacity, 1024);
  cr_assert_eq(c->ring_policy, CAIRN_POLICY_BLOCK);
  cr_assert_float_eq(c->ring_high_water, 0.75, 1e-12);
  cr_assert_eq(c->flush_interval_ms, 250);
  cr_assert_eq(c->compression_level, -3);
  cr_assert_eq(c->wal_sync, CAIRN_SYNC_ALWAYS);
  cr_assert_eq(c->wal_sync_interval_ms, 5000);
  cr_assert_eq(c->wal_segment_bytes, 128ULL << 20);
  cr_assert_eq(c->max_names, 100);
  cr_assert_eq(c->log_level, CAIRN_LOG_DEBUG);
}

Test(config, defaults_are_the_documented_values) {
  cairn_config c;
  memset(&c, 0xa5, sizeof c);
  cairn__config_defaults(&c);
  assert_defaults(&c);
}

Test(config, load_without_file_or_env_gives_defaults) {
  cairn_config c;
  char err[256] = "stale";
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_OK);
  cr_assert_str_eq(err, "");
  assert_defaults(&c);
}

Test(config, key_table_lists_every_key_once) {
  size_t n = cairn__config_key_count();
  cr_assert_eq(n, 26);
  for (size_t i = 0; i < n; i++) {
    cr_assert_not_null(cairn__config_key_name(i));
    for (size_t j = 0; j < i; j++)
      cr_assert_str_neq(cairn__config_key_name(i), cairn__config_key_name(j));
  }
  cr_assert_null(cairn__config_key_name(n));
  cr_assert_str_eq(cairn__config_key_name(0), "enabled");
}

Test(config, nested_file_sets_every_key) {
  cairn_config c;
  char err[512] = "";
  int rc = load_text("# every key, nested\n"
                     "enabled: false\n"
                     "run:\n"
                     "  dir: /scratch/my runs\n"
                     "  id: 123E4567-E89B-42D3-A456-426614174000\n"
                     "ring:\n"
                     "  capacity: 1024\n"
                     "  policy: block\n"
                     "  high_water: 0.75\n"
                     "drain:\n"
                     "  flush_interval_ms: 250\n"
                     "wal:\n"
                     "  compression_level: -3\n"
                     "  sync: always\n"
                     "  sync_interval_ms: 5000\n"
                     "  segment_bytes: 128M\n"
                     "metrics: {max_names: 100}\n"
                     "log:\n"
                     "  level: DEBUG\n",
                     &c, err, sizeof err);
  cr_assert_eq(rc, CAIRN_OK, "%s", err);
  assert_every_key_set(&c);
}

Test(config, flat_dotted_file_sets_every_key) {
  cairn_config c;
  char err[512] = "";
  int rc = load_text("enabled: off\n"
                     "run.dir: \"/scratch/my runs\"\n"
                     "run.id: '123e4567-e89b-42d3-a456-426614174000'\n"
                     "ring.capacity: 1024\n"
                     "ring.policy: block\n"
                     "ring.high_water: 0.75\n"
                     "drain.flush_interval_ms: 250\n"
                     "wal.compression_level: -3\n"
                     "wal.sync: always\n"
                     "wal.sync_interval_ms: 5000\n"
                     "wal.segment_bytes: 134217728\n"
                     "metrics.max_names: 100\n"
                     "log.level: debug\n",
                     &c, err, sizeof err);
  cr_assert_eq(rc, CAIRN_OK, "%s", err);
  assert_every_key_set(&c);
}

Test(config, file_changes_only_the_keys_it_names) {
  cairn_config c;
  char err[256] = "";
  cr_assert_eq(load_text("ring: {policy: block}\n", &c, err, sizeof err),
               CAIRN_OK, "%s", err);
  cr_assert_eq(c.ring_policy, CAIRN_POLICY_BLOCK);
  c.ring_policy = CAIRN_POLICY_DROP;
  assert_defaults(&c);
}

Test(config, empty_and_comment_only_files_set_nothing) {
  static const char *const texts[] = {
      "", "# nothing here\n\n   # still nothing\n", "---\n", "---\n...\n",
      "ring:\n  # capacity: 1024\n"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    cairn_config c;
    char err[256] = "";
    cr_assert_eq(load_text(texts[i], &c, err, sizeof err), CAIRN_OK,
                 "case %zu: %s", i, err);
    assert_defaults(&c);
  }
}

Test(config, booleans_accept_yes_no_on_off_in_any_case) {
  static const struct {
    const char *text;
    bool value;
  } cases[] = {{"true", true}, {"True", true}, {"YES", true},
               {"on", true},   {"1", true},    {"false", false},
               {"No", false},  {"OFF", false}, {"0", false}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cairn_config c;
    char text[64], err[256] = "";
    snprintf(text, sizeof text, "enabled: %s\n", cases[i].text);
    cr_assert_eq(load_text(text, &c, err, sizeof err), CAIRN_OK, "%s: %s",
                 cases[i].text, err);
    cr_expect_eq(c.enabled, cases[i].value, "%s", cases[i].text);
  }
}

Test(config, range_limits_are_inclusive) {
  cairn_config c;
  char err[256] = "";
  cr_assert_eq(load_text("ring.capacity: 67108864\n"
                         "ring.high_water: 0.05\n"
                         "drain.flush_interval_ms: 60000\n"
                         "wal.compression_level: -7\n"
                         "wal.sync_interval_ms: 3600000\n"
                         "wal.segment_bytes: 1T\n"
                         "metrics.max_names: 1048576\n",
                         &c, err, sizeof err),
               CAIRN_OK, "%s", err);
  cr_assert_eq(c.ring_capacity, 67108864);
  cr_assert_float_eq(c.ring_high_water, 0.05, 1e-12);
  cr_assert_eq(c.flush_interval_ms, 60000);
  cr_assert_eq(c.compression_level, -7);
  cr_assert_eq(c.wal_sync_interval_ms, 3600000);
  cr_assert_eq(c.wal_segment_bytes, 1ULL << 40);
  cr_assert_eq(c.max_names, 1048576);
}

/*
 * Bad files: `expect` is the start of the message after "<path>:", so line,
 * column and wording are all checked; a final '$' demands the whole message
 * (to show that no suggestion follows).
 */
static const struct {
  const char *what, *text, *expect;
} bad_files[] = {
    {"unclosed flow sequence", "ring:\n  capacity: [1024, 2048\n",
     "3:1: YAML syntax error: did not find expected ',' or ']' (while "
     "parsing a flow sequence)"},
    {"bad indentation", "ring:\n  capacity: 1024\n   policy: drop\n",
     "3:10: YAML syntax error: mapping values are not allowed in this "
     "context"},
    {"sequence for an integer", "ring:\n  capacity: [1024]\n",
     "2:13: key 'ring.capacity': expected a power of two between 1024 and "
     "67108864, got a sequence"},
    {"mapping for a boolean", "enabled: {really: yes}\n",
     "1:10: key 'enabled': expected a boolean (true/false), got a mapping"},
    {"word for an integer", "metrics:\n  max_names: abc\n",
     "2:14: key 'metrics.max_names': expected an integer between 1 and "
     "1048576, got 'abc'"},
    {"trailing garbage after an integer", "drain.flush_interval_ms: 10ms\n",
     "1:26: key 'drain.flush_interval_ms': expected an integer between 1 "
     "and 60000, got '10ms'"},
    {"integer overflow", "metrics.max_names: 99999999999999999999\n",
     "1:20: key 'metrics.max_names': expected an integer between 1 and "
     "1048576, got '99999999999999999999'"},
    {"not a power of two", "ring.capacity: 1000\n",
     "1:16: key 'ring.capacity': expected a power of two between 1024 and "
     "67108864, got '1000'"},
    {"not a power of two, within the range", "ring.capacity: 3072\n",
     "1:16: key 'ring.capacity': expected a power of two between 1024 and "
     "67108864, got '3072'"},
    {"power of two below the minimum", "ring:\n  capacity: 512\n",
     "2:13: key 'ring.capacity': expected a power of two between 1024 and "
     "67108864, got '512'"},
    {"zero flush interval", "drain:\n  flush_interval_ms: 0\n",
     "2:22: key 'drain.flush_interval_ms': expected an integer between 1 "
     "and 60000, got '0'"},
    {"compression level above zstd's maximum",
     "wal:\n  compression_level: 20\n",
     "2:22: key 'wal.compression_level': expected an integer between -7 and "
     "19, got '20'"},
    {"fraction above one", "ring.high_water: 1.5\n",
     "1:18: key 'ring.high_water': expected a number between 0.05 and 1, "
     "got '1.5'"},
    {"NaN fraction", "ring.high_water: nan\n",
     "1:18: key 'ring.high_water': expected a number between 0.05 and 1, "
     "got 'nan'"},
    {"bad enum", "ring:\n  policy: sometimes\n",
     "2:11: key 'ring.policy': expected one of drop|block, got 'sometimes'"},
    {"bad sync enum", "wal.sync: never\n",
     "1:11: key 'wal.sync': expected one of none|interval|always, got "
     "'never'"},
    {"bad bool", "enabled: maybe\n",
     "1:10: key 'enabled': expected a boolean (true/false), got 'maybe'"},
    {"bad UUID", "run:\n  id: 123e4567-e89b-42d3-a456-42661417400\n",
     "2:7: key 'run.id': expected a UUID in canonical form (8-4-4-4-12 hex "
     "digits) or '', got '123e4567-e89b-42d3-a456-42661417400'"},
    {"UUID with a non-hex digit",
     "run.id: 123e4567-e89b-42d3-a456-42661417400g\n",
     "1:9: key 'run.id': expected a UUID in canonical form"},
    {"empty run directory", "run.dir: ''\n",
     "1:10: key 'run.dir': expected a non-empty path shorter than 4096 "
     "bytes, got ''"},
    {"misspelt flat key", "ring.capcity: 1024\n",
     "1:1: unknown key 'ring.capcity' (did you mean 'ring.capacity'?)"},
    {"misspelt nested key", "ring:\n  policy: drop\n  capcity: 1024\n",
     "3:3: unknown key 'ring.capcity' (did you mean 'ring.capacity'?)"},
    {"key in the wrong section", "capacity: 1024\n",
     "1:1: unknown key 'capacity' (did you mean 'ring.capacity'?)"},
    {"one-letter key is not taken for run.id", "a: 1\n",
     "1:1: unknown key 'a'$"},
    {"unknown key close to nothing", "enabled: true\nxyzzy: 1\n",
     "2:1: unknown key 'xyzzy'"},
    {"duplicate key across nested and flat forms",
     "ring.capacity: 1024\nring:\n  capacity: 2048\n",
     "3:3: duplicate key 'ring.capacity' (first set on line 1)"},
    {"scalar for a section", "ring: 1024\n",
     "1:7: key 'ring': expected a mapping of 'ring.*' keys, got '1024'"},
    {"top-level sequence", "- ring.capacity\n- 1024\n",
     "1:1: expected a mapping of keys at the top level"},
    {"top-level scalar", "\n  hello\n",
     "2:3: expected a mapping of keys at the top level"},
    {"second document", "enabled: true\n---\nenabled: false\n",
     "2:1: expected a single YAML document"},
    {"self-referencing alias", "x: &a {y: *a}\n",
     "1:8: unknown key 'x.y.y.y.y.y.y"},
    {"empty mapping under an unknown key", "enabeld: {}\n",
     "1:1: unknown key 'enabeld' (did you mean 'enabled'?)"},
    {"bad size suffix", "wal:\n  segment_bytes: 64MB\n",
     "2:18: key 'wal.segment_bytes': expected a size between 1MiB and 1TiB "
     "(bytes, or with a K, M, G or T suffix), got '64MB'"},
};

Test(config, bad_files_report_path_line_column_and_reason) {
  for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
    cairn_config c;
    char err[512] = "", want[1024];
    cairn__config_defaults(&c);
    const char *path = write_yaml(bad_files[i].text);
    int rc = cairn__config_load_file(&c, path, err, sizeof err);
    cr_expect_eq(rc, CAIRN_ECONFIG, "%s: rc %d", bad_files[i].what, rc);
    snprintf(want, sizeof want, "%s:%s", path, bad_files[i].expect);
    size_t len = strlen(want);
    bool whole = want[len - 1] == '$';
    if (whole)
      want[--len] = '\0';
    cr_expect(strncmp(err, want, len) == 0 && (!whole || err[len] == '\0'),
              "%s:\n  got  \"%s\"\n  want \"%s\"", bad_files[i].what, err,
              want);
  }
}

Test(config, unknown_key_far_from_every_key_has_no_suggestion) {
  cairn_config c;
  char err[512] = "";
  cr_assert_eq(load_text("xyzzy: 1\n", &c, err, sizeof err), CAIRN_ECONFIG);
  cr_assert(strstr(err, ":1:1: unknown key 'xyzzy'") != NULL, "%s", err);
  cr_assert_null(strstr(err, "did you mean"), "%s", err);
}

Test(config, missing_file_returns_eio_and_names_the_path) {
  cairn_config c;
  char err[512] = "", path[128], want[256];
  snprintf(path, sizeof path, "%s/does-not-exist.yaml", tmpdir);
  cairn__config_defaults(&c);
  cr_assert_eq(cairn__config_load_file(&c, path, err, sizeof err), CAIRN_EIO);
  snprintf(want, sizeof want,
           "%s: cannot open configuration file: No such file or directory",
           path);
  cr_assert_str_eq(err, want);
}

Test(config, directory_as_file_returns_eio) {
  cairn_config c;
  char err[512] = "";
  cairn__config_defaults(&c);
  cr_assert_eq(cairn__config_load_file(&c, tmpdir, err, sizeof err), CAIRN_EIO);
  cr_assert(strstr(err, "cannot open configuration file: Is a directory"), "%s",
            err);
}

Test(config, sizes_accept_plain_bytes_and_binary_suffixes) {
  static const struct {
    const char *text;
    uint64_t bytes;
  } cases[] = {{"1048576", 1ULL << 20},      {"64M", 64ULL << 20},
               {"1G", 1ULL << 30},           {"1024K", 1ULL << 20},
               {"2GiB", 2ULL << 30},         {"512MiB", 512ULL << 20},
               {"1 TiB", 1ULL << 40},        {"3g", 3ULL << 30},
               {"1099511627776", 1ULL << 40}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cairn_config c;
    char text[64], err[512] = "";
    snprintf(text, sizeof text, "wal.segment_bytes: %s\n", cases[i].text);
    cr_assert_eq(load_text(text, &c, err, sizeof err), CAIRN_OK, "%s: %s",
                 cases[i].text, err);
    cr_expect_eq(c.wal_segment_bytes, cases[i].bytes, "%s", cases[i].text);
  }
}

Test(config, sizes_outside_the_range_or_malformed_are_rejected) {
  static const char *const bad[] = {"1048575",
                                    "512K",
                                    "1025G",
                                    "2T",
                                    "1.5G",
                                    "-1M",
                                    "M",
                                    "64MB",
                                    "64 M x",
                                    "0x100000",
                                    "18446744073709551615T",
                                    "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cairn_config c;
    char text[64], err[512] = "", got[80];
    snprintf(text, sizeof text, "wal.segment_bytes: '%s'\n", bad[i]);
    cr_expect_eq(load_text(text, &c, err, sizeof err), CAIRN_ECONFIG, "%s",
                 bad[i]);
    snprintf(got, sizeof got, "got '%s'", bad[i]);
    cr_expect(strstr(err, "key 'wal.segment_bytes': expected a size between "
                          "1MiB and 1TiB") != NULL &&
                  strstr(err, got) != NULL,
              "%s: %s", bad[i], err);
    cr_expect_eq(c.wal_segment_bytes, 64ULL << 20, "%s changed the value",
                 bad[i]);
  }
}

Test(config, numbers_parse_the_same_under_a_comma_decimal_locale) {
  static const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8",
                                        "fr_FR.UTF-8", "fr_FR.utf8",
                                        "ru_RU.UTF-8", "nl_NL.UTF-8"};
  const char *used = NULL;
  for (size_t i = 0; i < sizeof locales / sizeof locales[0] && !used; i++)
    if (setlocale(LC_NUMERIC, locales[i]) != NULL)
      used = locales[i];
  if (used == NULL) {
    teardown(); /* cr_skip_test does not run the suite's fini */
    cr_skip_test("no locale with a decimal comma is installed");
  }
  cr_assert_eq(strtod("0.75", NULL), 0.0, "%s does not use a comma", used);
  cairn_config c;
  char err[256] = "";
  cr_assert_eq(load_text("ring.high_water: 0.75\n", &c, err, sizeof err),
               CAIRN_OK, "%s", err);
  cr_assert_float_eq(c.ring_high_water, 0.75, 1e-12);
}

Test(config, uuid_is_stored_in_lower_case_and_empty_means_generate) {
  cairn_config c;
  char err[256] = "";
  cr_assert_eq(load_text("run.id: ABCDEF01-2345-4789-ABCD-EF0123456789\n", &c,
                         err, sizeof err),
               CAIRN_OK, "%s", err);
  cr_assert_str_eq(c.run_id, "abcdef01-2345-4789-abcd-ef0123456789");
  cr_assert_eq(load_text("run.id: ''\n", &c, err, sizeof err), CAIRN_OK);
  cr_assert_str_eq(c.run_id, "");
}

Test(config, long_run_dir_is_rejected_and_value_quoted_short) {
  static char text[8192];
  cairn_config c;
  char err[512] = "";
  int n = snprintf(text, sizeof text, "run.dir: /");
  memset(text + n, 'a', 4095);
  strcpy(text + n + 4095, "\n");
  cr_assert_eq(load_text(text, &c, err, sizeof err), CAIRN_ECONFIG);
  cr_assert(strstr(err, "expected a non-empty path shorter than 4096 bytes, "
                        "got '/aaaa") != NULL,
            "%s", err);
  cr_assert(strstr(err, "...'") != NULL, "%s", err);
  cr_assert_str_eq(c.run_dir, "cairn-runs");
}

Test(config, env_overrides_file_which_overrides_defaults) {
  char err[512] = "";
  cairn_config c;
  const char *path = write_yaml("ring:\n  capacity: 2048\n  policy: block\n"
                                "log.level: info\n");
  cr_assert_eq(setenv("CAIRN_RING_CAPACITY", "4096", 1), 0);
  cr_assert_eq(setenv("CAIRN_WAL_SEGMENT_BYTES", "256M", 1), 0);
  cr_assert_eq(cairn__config_load(&c, path, err, sizeof err), CAIRN_OK, "%s",
               err);
  cr_assert_eq(c.ring_capacity, 4096);             /* env beats file */
  cr_assert_eq(c.ring_policy, CAIRN_POLICY_BLOCK); /* file beats default */
  cr_assert_eq(c.log_level, CAIRN_LOG_INFO);       /* file beats default */
  cr_assert_eq(c.wal_segment_bytes, 256ULL << 20); /* env beats default */
  cr_assert_eq(c.flush_interval_ms, 100);          /* default */
}

Test(config, every_key_has_an_environment_variable) {
  static const char *const env[][2] = {
      {"CAIRN_ENABLED", "no"},
      {"CAIRN_RUN_DIR", "/scratch/my runs"},
      {"CAIRN_RUN_ID", "123e4567-e89b-42d3-a456-426614174000"},
      {"CAIRN_RING_CAPACITY", "1024"},
      {"CAIRN_RING_POLICY", "block"},
      {"CAIRN_RING_HIGH_WATER", "0.75"},
      {"CAIRN_DRAIN_FLUSH_INTERVAL_MS", "250"},
      {"CAIRN_WAL_COMPRESSION_LEVEL", "-3"},
      {"CAIRN_WAL_SYNC", "always"},
      {"CAIRN_WAL_SYNC_INTERVAL_MS", "5000"},
      {"CAIRN_WAL_SEGMENT_BYTES", "128MiB"},
      {"CAIRN_METRICS_MAX_NAMES", "100"},
      {"CAIRN_LOG_LEVEL", "debug"}};
  for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
    cr_assert_eq(setenv(env[i][0], env[i][1], 1), 0);
  cairn_config c;
  char err[512] = "";
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_OK, "%s",
               err);
  assert_every_key_set(&c);
}

Test(config, bad_env_value_names_the_variable_and_the_key) {
  cairn_config c;
  char err[512] = "";
  cr_assert_eq(setenv("CAIRN_RING_CAPACITY", "1000", 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_ECONFIG);
  cr_assert_str_eq(err, "environment variable CAIRN_RING_CAPACITY (key "
                        "'ring.capacity'): expected a power of two between "
                        "1024 and 67108864, got '1000'");
}

Test(config, empty_env_value_is_an_error_for_non_string_keys) {
  cairn_config c;
  char err[512] = "";
  cr_assert_eq(setenv("CAIRN_LOG_LEVEL", "", 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_ECONFIG);
  cr_assert_str_eq(err, "environment variable CAIRN_LOG_LEVEL (key "
                        "'log.level'): expected one of "
                        "error|warn|info|debug, got ''");
  /* For run.id the empty string is a value: "generate one". */
  cr_assert_eq(unsetenv("CAIRN_LOG_LEVEL"), 0);
  cr_assert_eq(setenv("CAIRN_RUN_ID", "", 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_OK, "%s",
               err);
  cr_assert_str_eq(c.run_id, "");
}

Test(config, unknown_cairn_env_vars_are_ignored) {
  cairn_config c;
  char err[512] = "";
  cr_assert_eq(setenv("CAIRN_RING_CAPCITY", "garbage", 1), 0);
  cr_assert_eq(setenv("CAIRN_FUTURE_OPTION", "1", 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_OK, "%s",
               err);
  assert_defaults(&c);
}

Test(config, cairn_config_names_the_file_when_path_is_null) {
  cairn_config c;
  char err[512] = "";
  const char *path = write_yaml("drain.flush_interval_ms: 7\n");
  cr_assert_eq(setenv("CAIRN_CONFIG", path, 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_OK, "%s",
               err);
  cr_assert_eq(c.flush_interval_ms, 7);
}

Test(config, explicit_path_wins_over_cairn_config) {
  cairn_config c;
  char err[512] = "";
  const char *from_env = write_yaml("drain.flush_interval_ms: 7\n");
  const char *explicit = write_yaml("drain.flush_interval_ms: 9\n");
  cr_assert_eq(setenv("CAIRN_CONFIG", from_env, 1), 0);
  cr_assert_eq(cairn__config_load(&c, explicit, err, sizeof err), CAIRN_OK,
               "%s", err);
  cr_assert_eq(c.flush_interval_ms, 9);
}

Test(config, missing_cairn_config_file_is_eio_and_empty_means_none) {
  cairn_config c;
  char err[512] = "", path[128];
  snprintf(path, sizeof path, "%s/nope.yaml", tmpdir);
  cr_assert_eq(setenv("CAIRN_CONFIG", path, 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_EIO);
  cr_assert(strncmp(err, path, strlen(path)) == 0, "%s", err);
  cr_assert_eq(setenv("CAIRN_CONFIG", "", 1), 0);
  cr_assert_eq(cairn__config_load(&c, NULL, err, sizeof err), CAIRN_OK, "%s",
               err);
  assert_defaults(&c);
}

Test(config, file_error_stops_before_env_is_applied) {
  cairn_config c;
  char err[512] = "";
  const char *path = write_yaml("ring.capacity: 3\n");
  cr_assert_eq(setenv("CAIRN_LOG_LEVEL", "nonsense", 1), 0);
  cr_assert_eq(cairn__config_load(&c, path, err, sizeof err), CAIRN_ECONFIG);
  cr_assert(strstr(err, "key 'ring.capacity'") != NULL, "%s", err);
}

Test(config, error_text_is_truncated_and_nul_terminated) {
  cairn_config c;
  char err[16];
  memset(err, 'x', sizeof err);
  cr_assert_eq(load_text("ring.capcity: 1\n", &c, err, sizeof err),
               CAIRN_ECONFIG);
  cr_assert_eq(strlen(err), sizeof err - 1);
  /* No buffer at all is allowed too; the code still says what went wrong. */
  cr_assert_eq(load_text("ring.capcity: 1\n", &c, NULL, 0), CAIRN_ECONFIG);
  cr_assert_eq(cairn__config_load(&c, "/nonexistent/cairn.yaml", NULL, 0),
               CAIRN_EIO);
}

/* Reads a whole small file into a malloc'ed string. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  char *buf = malloc(1 << 20);
  cr_assert_not_null(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

Test(config, docs_list_every_key_and_its_environment_variable) {
  char *doc = slurp(CAIRN_SOURCE_DIR "/docs/config.md");
  for (size_t i = 0; i < cairn__config_key_count(); i++) {
    char want[96], var[64];
    snprintf(want, sizeof want, "`%s`", cairn__config_key_name(i));
    cr_expect(strstr(doc, want) != NULL, "docs/config.md lacks %s", want);
    env_name(cairn__config_key_name(i), var, sizeof var);
    snprintf(want, sizeof want, "`%s`", var);
    cr_expect(strstr(doc, want) != NULL, "docs/config.md lacks %s", want);
  }
  free(doc);
}

Test(config, hasher_threads_is_bounded) {
  cairn_config c;
  char err[512];
  cr_assert_eq(load_text("lineage:\n  hasher_threads: 4\n", &c, err, sizeof err), CAIRN_OK, "%s",
               err);
  cr_assert_eq(c.hasher_threads, 4);
  cr_assert_eq(load_text("lineage.hasher_threads: 257\n", &c, err, sizeof err), CAIRN_ECONFIG);
  cr_assert(strstr(err, "lineage.hasher_threads") != NULL, "%s", err);
}
