/*
 * test_runmeta.c — tests of the automatic run metadata: secrets refused even
 * when allowlisted, process and scheduler items, command-line quoting, and
 * git commit/branch/dirty state checked against the real git CLI for clean,
 * dirty, touched, racy, detached, packed-ref, worktree, SHA-256 and index v3
 * and v4 repositories. The tests spawn git; the library never does.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "runmeta.h"

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

/* Each Criterion test runs in its own process, so this state is per test. */
static char tmpdir[PATH_MAX];
static cairn_meta meta;

/* Every variable the scheduler detection reads: a CI job may run under one. */
static const char *const sched_vars[] = {
    "FLUX_JOB_ID",        "FLUX_JOB_NNODES",    "FLUX_JOB_SIZE",
    "FLUX_URI",           "SLURM_JOB_ID",       "SLURM_JOB_NAME",
    "SLURM_JOB_NODELIST", "SLURM_NODELIST",     "SLURM_JOB_NUM_NODES",
    "SLURM_NNODES",       "SLURM_NTASKS",       "SLURM_JOB_PARTITION",
    "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "PBS_JOBID",
    "PBS_JOBNAME",        "PBS_NODEFILE",       "PBS_NUM_NODES",
    "PBS_NP",             "PBS_QUEUE",          "PBS_ARRAY_INDEX",
    "PBS_ARRAYID",        "LSB_JOBID",          "LSB_JOBNAME",
    "LSB_MCPU_HOSTS",     "LSB_HOSTS",          "LSB_DJOB_NUMPROC",
    "LSB_QUEUE",          "LSB_JOBINDEX"};

static void setup(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/cairn-runmeta-XXXXXX",
           base && *base ? base : "/tmp");
  cr_assert_not_null(mkdtemp(tmpdir));
  /* getcwd() reports the resolved path, so compare against that. */
  char real[PATH_MAX];
  cr_assert_not_null(realpath(tmpdir, real));
  snprintf(tmpdir, sizeof tmpdir, "%s", real);
  cr_assert_eq(chdir(tmpdir), 0);
  for (size_t i = 0; i < sizeof sched_vars / sizeof *sched_vars; i++)
    unsetenv(sched_vars[i]);
  /* git must not read the developer's configuration (signing, hooks, the
   * default branch name). */
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
  setenv("HOME", tmpdir, 1);
  setenv("GIT_AUTHOR_NAME", "Test", 1);
  setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
  setenv("GIT_COMMITTER_NAME", "Test", 1);
  setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
  unsetenv("GIT_DIR");
  unsetenv("GIT_WORK_TREE");
  unsetenv("GIT_INDEX_FILE");
}

static void teardown(void) {
  cairn__meta_free(&meta);
  if (chdir("/") == 0) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", tmpdir);
  }
#ifdef CAIRN_TEST_LSAN
  /* Criterion ignores a fini's assertions and the worker's exit status, so
   * a leak report at exit would go unnoticed; a crash is reported. */
  if (__lsan_do_recoverable_leak_check() != 0)
    abort();
#endif
}

TestSuite(runmeta, .init = setup, .fini = teardown);

/* Runs a shell command in the current directory; fails the test if it
 * fails. */
static void sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "command failed: %s", cmd);
}

/* Runs a shell command and returns its first line of output (static). */
static const char *capture(const char *cmd) {
  static char line[4096];
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  line[0] = '\0';
  if (!fgets(line, sizeof line, f))
    line[0] = '\0';
  pclose(f);
  line[strcspn(line, "\n")] = '\0';
  return line;
}

static void need_git(void) {
  if (system("git --version >/dev/null 2>&1") != 0)
    cr_skip_test("git is not installed");
}

static void collect(const char *allow) {
  char err[256] = "";
  cairn__meta_free(&meta);
  cr_assert_eq(cairn__meta_collect(&meta, allow, err, sizeof err), CAIRN_OK,
               "%s", err);
}

static const char *get(const char *key) { return cairn__meta_get(&meta, key); }

static void assert_kv(const char *key, const char *want) {
  const char *got = get(key);
  cr_assert_not_null(got, "key %s missing", key);
  cr_assert_str_eq(got, want, "key %s", key);
}

/* What git itself says: is there any change to a tracked file? */
static const char *git_says_dirty(void) {
  return capture("git status --porcelain --untracked-files=no")[0] ? "true"
                                                                    : "false";
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  cr_assert_eq(fclose(f), 0);
}

/* A repository in tmpdir/repo with three committed files (one executable,
 * one in a subdirectory); the current directory becomes the subdirectory so
 * discovery has to walk up. */
static void make_repo(const char *init_flags) {
  sh("git init -q -b main %s repo", init_flags);
  cr_assert_eq(chdir("repo"), 0);
  sh("mkdir -p src && printf 'hello\\n' > README && printf 'int x;\\n' > "
     "src/a.c && printf '#!/bin/sh\\n' > run.sh && chmod +x run.sh");
  sh("git add -A && git commit -q -m first");
  cr_assert_eq(chdir("src"), 0);
}

static void set_mtime(const char *path, time_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "%s", strerror(errno));
}

/* ---------------------------------------------------------------------- */
/* The list                                                                */
/* ---------------------------------------------------------------------- */

Test(runmeta, add_replaces_an_existing_key_in_place) {
  cr_assert_eq(cairn__meta_add(&meta, "a", "1"), CAIRN_OK);
  cr_assert_eq(cairn__meta_add(&meta, "b", "2"), CAIRN_OK);
  cr_assert_eq(cairn__meta_add(&meta, "a", "3"), CAIRN_OK);
  cr_assert_eq(meta.n, 2);
  cr_assert_str_eq(meta.kv[0].key, "a");
  cr_assert_str_eq(meta.kv[0].value, "3");
  cr_assert_str_eq(get("b"), "2");
  cr_assert_null(get("c"));
}

Test(runmeta, add_rejects_bad_arguments) {
  char longkey[CAIRN_NAME_MAX + 2];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  cr_assert_eq(cairn__meta_add(NULL, "a", "b"), CAIRN_EINVAL);
  cr_assert_eq(cairn__meta_add(&meta, NULL, "b"), CAIRN_EINVAL);
  cr_assert_eq(cairn__meta_add(&meta, "", "b"), CAIRN_EINVAL);
  cr_assert_eq(cairn__meta_add(&meta, "a", NULL), CAIRN_EINVAL);
  cr_assert_eq(cairn__meta_add(&meta, longkey, "b"), CAIRN_ENAMETOOLONG);
  cr_assert_eq(meta.n, 0);
  char err[64];
  cr_assert_eq(cairn__meta_collect(NULL, NULL, err, sizeof err), CAIRN_EINVAL);
}

Test(runmeta, long_values_are_truncated_at_a_character_boundary) {
  size_t n = CAIRN_VALUE_MAX + 10;
  char *v = malloc(n + 1);
  cr_assert_not_null(v);
  /* "é" is two bytes; an odd limit would split one. */
  for (size_t i = 0; i + 1 < n; i += 2)
    memcpy(v + i, "\xc3\xa9", 2);
  v[n - (n % 2)] = '\0';
  cr_assert_eq(cairn__meta_add(&meta, "long", v), CAIRN_OK);
  size_t got = strlen(get("long"));
  cr_assert_leq(got, CAIRN_VALUE_MAX);
  cr_assert_eq(got % 2, 0, "cut inside a character");
  free(v);
}

Test(runmeta, mpi_items_are_formatted) {
  cr_assert_eq(cairn__meta_add_mpi(&meta, "Open MPI v4.1.5\n", 64, 16,
                                   "nid001,nid002,nid003,nid004", 4),
               CAIRN_OK);
  assert_kv("mpi.library", "Open MPI v4.1.5");
  assert_kv("mpi.ranks", "64");
  assert_kv("mpi.ranks_per_node", "16");
  assert_kv("hosts", "nid001,nid002,nid003,nid004");
  assert_kv("hosts.count", "4");
  cr_assert_eq(cairn__meta_add_mpi(&meta, NULL, -1, 1, NULL, 1), CAIRN_EINVAL);
}

/* ---------------------------------------------------------------------- */
/* Secrets and the environment allowlist                                   */
/* ---------------------------------------------------------------------- */

static void assert_nowhere(const char *needle) {
  for (size_t i = 0; i < meta.n; i++) {
    cr_assert_null(strstr(meta.kv[i].key, needle), "found in key %s",
                   meta.kv[i].key);
    cr_assert_null(strstr(meta.kv[i].value, needle), "found in value of %s",
                   meta.kv[i].key);
  }
}

Test(runmeta, secrets_are_refused_even_when_allowlisted) {
  setenv("MY_API_TOKEN", "s3cr3t", 1);
  setenv("DB_PASSWORD", "s3cr3t", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t", 1);
  setenv("SSH_KEY_PATH", "s3cr3t", 1);
  setenv("LDAP_PASSWD", "s3cr3t", 1);
  setenv("GCP_CREDENTIALS", "s3cr3t", 1);
  setenv("github_token", "s3cr3t", 1);
  setenv("CAIRN_TEST_HARMLESS", "hello world", 1);
  collect("MY_API_TOKEN, DB_PASSWORD,AWS_SECRET_ACCESS_KEY,SSH_KEY_PATH,"
          "LDAP_PASSWD,GCP_CREDENTIALS,github_token,CAIRN_TEST_HARMLESS");
  assert_nowhere("s3cr3t");
  assert_kv("env.CAIRN_TEST_HARMLESS", "hello world");
  assert_kv("env.refused", "MY_API_TOKEN,DB_PASSWORD,AWS_SECRET_ACCESS_KEY,"
                           "SSH_KEY_PATH,LDAP_PASSWD,GCP_CREDENTIALS,"
                           "github_token");
  cr_assert_null(get("env.MY_API_TOKEN"));
  cr_assert_null(get("env.SSH_KEY_PATH"));
}

Test(runmeta, prefix_patterns_refuse_secrets_too) {
  setenv("MYAPP_MODE", "fast", 1);
  setenv("MYAPP_THREADS", "8", 1);
  setenv("MYAPP_AUTH_TOKEN", "s3cr3t", 1);
  setenv("MYAPP_SIGNING_KEY", "s3cr3t", 1);
  setenv("NOTMYAPP_MODE", "slow", 1);
  collect("MYAPP_*");
  assert_nowhere("s3cr3t");
  assert_kv("env.MYAPP_MODE", "fast");
  assert_kv("env.MYAPP_THREADS", "8");
  cr_assert_null(get("env.NOTMYAPP_MODE"));
  const char *refused = get("env.refused");
  cr_assert_not_null(refused);
  cr_assert_not_null(strstr(refused, "MYAPP_AUTH_TOKEN"));
  cr_assert_not_null(strstr(refused, "MYAPP_SIGNING_KEY"));
}

Test(runmeta, the_environment_is_never_recorded_wholesale) {
  setenv("CAIRN_TEST_HARMLESS", "hello", 1);
  setenv("SECRET_PATTERN_VALUE", "s3cr3t", 1);
  collect(NULL);
  for (size_t i = 0; i < meta.n; i++)
    cr_assert_neq(strncmp(meta.kv[i].key, "env.", 4), 0, "%s", meta.kv[i].key);
  collect("*, ,=,BAD-NAME,UNSET_VARIABLE_FOR_CAIRN_TEST,*SECRET*");
  for (size_t i = 0; i < meta.n; i++)
    cr_assert_neq(strncmp(meta.kv[i].key, "env.", 4), 0, "%s", meta.kv[i].key);
  assert_nowhere("s3cr3t");
}

/* ---------------------------------------------------------------------- */
/* Process and scheduler                                                   */
/* ---------------------------------------------------------------------- */

Test(runmeta, process_items_describe_this_process) {
  collect(NULL);
  assert_kv("cairn.version", cairn_version());
  char buf[64];
  snprintf(buf, sizeof buf, "%lu", (unsigned long)getuid());
  assert_kv("uid", buf);
  snprintf(buf, sizeof buf, "%ld", (long)getpid());
  assert_kv("pid", buf);
  assert_kv("cwd", tmpdir);
  char host[256];
  cr_assert_eq(gethostname(host, sizeof host), 0);
  assert_kv("hostname", host);
  const char *exe = get("executable");
  cr_assert_not_null(exe);
  cr_assert_not_null(strstr(exe, "test_runmeta"), "%s", exe);
  cr_assert_not_null(get("cmdline"));
  /* The process started before this test, and not long before. */
  const char *ns = get("launch.time_ns");
  cr_assert_not_null(ns);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long start = atoll(ns), nowns = now.tv_sec * 1000000000LL + now.tv_nsec;
  cr_assert(start <= nowns && start > nowns - 3600LL * 1000000000LL);
  const char *iso = get("launch.time");
  cr_assert_not_null(iso);
  cr_assert_eq(strlen(iso), strlen("2024-01-01T00:00:00.000Z"), "%s", iso);
  cr_assert(iso[4] == '-' && iso[10] == 'T' && iso[19] == '.' && iso[23] == 'Z',
            "%s", iso);
  cr_assert_null(get("job.scheduler"));
}

/* The command line of this very process is Criterion's; to test quoting, the
 * test binary re-executes itself with chosen arguments and this constructor,
 * running before Criterion's main, prints what was collected. */
__attribute__((constructor)) static void cmdline_child(void) {
  if (!getenv("CAIRN_RUNMETA_CMDLINE_CHILD"))
    return;
  cairn_meta m = {0};
  char err[128];
  int rc = cairn__meta_collect(&m, NULL, err, sizeof err);
  const char *v = cairn__meta_get(&m, "cmdline");
  printf("%s", rc == CAIRN_OK && v ? v : "(none)");
  fflush(stdout);
  cairn__meta_free(&m);
  _exit(0);
}

Test(runmeta, command_line_arguments_are_shell_quoted) {
  int fd[2];
  cr_assert_eq(pipe(fd), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    setenv("CAIRN_RUNMETA_CMDLINE_CHILD", "1", 1);
    char *argv[] = {"runmeta-child", "plain", "two words", "it's", "",
                    "--opt=x,y/z@1%", "$HOME", NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(fd[1]);
  char out[1024];
  size_t got = 0;
  ssize_t r;
  while ((r = read(fd[0], out + got, sizeof out - 1 - got)) > 0)
    got += (size_t)r;
  out[got] = '\0';
  close(fd[0]);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  cr_assert_str_eq(out, "runmeta-child plain 'two words' 'it'\\''s' '' "
                        "--opt=x,y/z@1% '$HOME'");
}

Test(runmeta, slurm_job_is_recorded) {
  setenv("SLURM_JOB_ID", "123456", 1);
  setenv("SLURM_JOB_NAME", "train", 1);
  setenv("SLURM_JOB_NODELIST", "nid[001-004]", 1);
  setenv("SLURM_NODELIST", "ignored-older-name", 1);
  setenv("SLURM_NNODES", "4", 1);
  setenv("SLURM_NTASKS", "16", 1);
  setenv("SLURM_JOB_PARTITION", "gpu", 1);
  collect(NULL);
  assert_kv("job.scheduler", "slurm");
  assert_kv("job.id", "123456");
  assert_kv("job.name", "train");
  assert_kv("job.nodes", "nid[001-004]");
  assert_kv("job.nnodes", "4");
  assert_kv("job.ntasks", "16");
  assert_kv("job.queue", "gpu");
}

Test(runmeta, flux_inside_slurm_wins) {
  setenv("SLURM_JOB_ID", "123456", 1);
  setenv("SLURM_JOB_NAME", "outer", 1);
  setenv("FLUX_JOB_ID", "f2XqzN3", 1);
  setenv("FLUX_JOB_SIZE", "8", 1);
  collect(NULL);
  assert_kv("job.scheduler", "flux");
  assert_kv("job.id", "f2XqzN3");
  assert_kv("job.ntasks", "8");
  cr_assert_null(get("job.name"));
}

Test(runmeta, pbs_and_lsf_jobs_are_recorded) {
  setenv("PBS_JOBID", "42.pbs01", 1);
  setenv("PBS_JOBNAME", "sim", 1);
  setenv("PBS_NODEFILE", "/var/spool/pbs/aux/42.pbs01", 1);
  collect(NULL);
  assert_kv("job.scheduler", "pbs");
  assert_kv("job.id", "42.pbs01");
  assert_kv("job.name", "sim");
  assert_kv("job.nodefile", "/var/spool/pbs/aux/42.pbs01");
  unsetenv("PBS_JOBID");
  setenv("LSB_JOBID", "777", 1);
  setenv("LSB_JOBNAME", "lsfjob", 1);
  setenv("LSB_MCPU_HOSTS", "hostA 4 hostB 4", 1);
  setenv("LSB_HOSTS", "hostA hostA hostA hostA hostB hostB hostB hostB", 1);
  collect(NULL);
  assert_kv("job.scheduler", "lsf");
  assert_kv("job.id", "777");
  assert_kv("job.name", "lsfjob");
  assert_kv("job.nodes", "hostA 4 hostB 4");
}

/* ---------------------------------------------------------------------- */
/* Git                                                                     */
/* ---------------------------------------------------------------------- */

Test(runmeta, no_repository_no_git_keys) {
  need_git();
  /* Only meaningful if tmpdir itself is not inside a repository. */
  if (system("git rev-parse --git-dir >/dev/null 2>&1") == 0)
    cr_skip_test("the temporary directory is inside a git repository");
  collect(NULL);
  for (size_t i = 0; i < meta.n; i++)
    cr_assert_neq(strncmp(meta.kv[i].key, "git.", 4), 0, "%s", meta.kv[i].key);
}

Test(runmeta, clean_repository_matches_git) {
  need_git();
  make_repo("");
  collect(NULL);
  assert_kv("git.commit", capture("git rev-parse HEAD"));
  assert_kv("git.branch", "main");
  assert_kv("git.root", capture("git rev-parse --show-toplevel"));
  assert_kv("git.dirty", "false");
  cr_assert_str_eq(git_says_dirty(), "false");
}

Test(runmeta, edited_file_is_dirty) {
  need_git();
  make_repo("");
  write_file("a.c", "int x = 1;\n");
  collect(NULL);
  assert_kv("git.dirty", "true");
  cr_assert_str_eq(git_says_dirty(), "true");
}

Test(runmeta, same_size_edit_with_new_mtime_is_dirty) {
  need_git();
  make_repo("");
  struct stat st;
  cr_assert_eq(stat("a.c", &st), 0);
  write_file("a.c", "int y;\n");
  set_mtime("a.c", st.st_mtim.tv_sec + 5, 0);
  collect(NULL);
  assert_kv("git.dirty", "true");
  cr_assert_str_eq(git_says_dirty(), "true");
}

Test(runmeta, touched_but_unchanged_file_is_clean) {
  need_git();
  make_repo("");
  struct stat st;
  cr_assert_eq(stat("a.c", &st), 0);
  set_mtime("a.c", st.st_mtim.tv_sec + 7, 123456789);
  sh("touch ../README");
  collect(NULL);
  assert_kv("git.dirty", "false");
  cr_assert_str_eq(git_says_dirty(), "false");
}

Test(runmeta, racy_same_size_same_mtime_edit_is_dirty) {
  need_git();
  make_repo("");
  /* The edit keeps size and mtime, and the index claims to be no newer than
   * the file: only the content can tell, as git's racy-git check knows. */
  struct stat st;
  cr_assert_eq(stat("a.c", &st), 0);
  write_file("a.c", "int z;\n");
  set_mtime("a.c", st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  set_mtime("../.git/index", st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  collect(NULL);
  assert_kv("git.dirty", "true");
  cr_assert_str_eq(git_says_dirty(), "true");
}

Test(runmeta, deleted_file_and_mode_change_are_dirty) {
  need_git();
  make_repo("");
  cr_assert_eq(unlink("../README"), 0);
  collect(NULL);
  assert_kv("git.dirty", "true");
  sh("cd .. && git checkout -q -- README");
  collect(NULL);
  assert_kv("git.dirty", "false");
  sh("chmod -x ../run.sh");
  collect(NULL);
  assert_kv("git.dirty", "true");
  cr_assert_str_eq(git_says_dirty(), "true");
}

Test(runmeta, detached_head_has_a_commit_and_no_branch) {
  need_git();
  make_repo("");
  sh("git commit -q --allow-empty -m second && git checkout -q --detach HEAD~1");
  collect(NULL);
  assert_kv("git.commit", capture("git rev-parse HEAD"));
  cr_assert_null(get("git.branch"));
  assert_kv("git.dirty", "false");
}

Test(runmeta, packed_refs_are_resolved) {
  need_git();
  make_repo("");
  sh("git pack-refs --all");
  struct stat st;
  cr_assert_neq(stat("../.git/refs/heads/main", &st), 0, "ref still loose");
  collect(NULL);
  assert_kv("git.commit", capture("git rev-parse HEAD"));
  assert_kv("git.branch", "main");
  assert_kv("git.dirty", "false");
}

Test(runmeta, linked_worktree_via_dot_git_file) {
  need_git();
  make_repo("");
  sh("git worktree add -q -b feature ../../wt");
  cr_assert_eq(chdir("../../wt"), 0);
  sh("git commit -q --allow-empty -m on-feature");
  struct stat st;
  cr_assert_eq(stat(".git", &st), 0);
  cr_assert(S_ISREG(st.st_mode), ".git should be a file in a worktree");
  collect(NULL);
  assert_kv("git.commit", capture("git rev-parse HEAD"));
  cr_assert_str_neq(get("git.commit"), capture("git rev-parse main"));
  assert_kv("git.branch", "feature");
  assert_kv("git.root", capture("git rev-parse --show-toplevel"));
  assert_kv("git.dirty", "false");
  write_file("README", "changed in the worktree\n");
  collect(NULL);
  assert_kv("git.dirty", "true");
}

Test(runmeta, unborn_branch_has_no_commit) {
  need_git();
  sh("git init -q -b trunk fresh");
  cr_assert_eq(chdir("fresh"), 0);
  collect(NULL);
  assert_kv("git.branch", "trunk");
  cr_assert_null(get("git.commit"));
  assert_kv("git.dirty", "false");
}

Test(runmeta, index_version_4_is_read) {
  need_git();
  make_repo("");
  sh("git update-index --index-version 4");
  char v[8];
  int fd = open("../.git/index", O_RDONLY);
  cr_assert_geq(fd, 0);
  cr_assert_eq(read(fd, v, 8), 8);
  close(fd);
  cr_assert_eq(v[7], 4);
  collect(NULL);
  assert_kv("git.dirty", "false");
  write_file("a.c", "int x = 2;\n");
  collect(NULL);
  assert_kv("git.dirty", "true");
}

Test(runmeta, intent_to_add_entry_in_index_v3_is_dirty) {
  need_git();
  make_repo("");
  write_file("new.c", "int n;\n");
  sh("git add -N new.c");
  char v[8];
  int fd = open("../.git/index", O_RDONLY);
  cr_assert_geq(fd, 0);
  cr_assert_eq(read(fd, v, 8), 8);
  close(fd);
  cr_assert_eq(v[7], 3);
  collect(NULL);
  assert_kv("git.dirty", "true");
  cr_assert_str_eq(git_says_dirty(), "true");
}

Test(runmeta, sha256_repository) {
  need_git();
  if (system("git init -q --object-format=sha256 probe >/dev/null 2>&1") != 0)
    cr_skip_test("this git cannot create SHA-256 repositories");
  make_repo("--object-format=sha256");
  collect(NULL);
  const char *commit = get("git.commit");
  cr_assert_not_null(commit);
  cr_assert_eq(strlen(commit), 64);
  assert_kv("git.commit", capture("git rev-parse HEAD"));
  assert_kv("git.dirty", "false");
  struct stat st;
  cr_assert_eq(stat("a.c", &st), 0);
  set_mtime("a.c", st.st_mtim.tv_sec + 3, 0);
  collect(NULL);
  assert_kv("git.dirty", "false"); /* content hashed with SHA-256 */
  write_file("a.c", "int w;\n");
  collect(NULL);
  assert_kv("git.dirty", "true");
}

Test(runmeta, corrupt_index_is_unknown) {
  need_git();
  make_repo("");
  /* Flip a byte in the first entry: the checksum no longer matches. */
  int fd = open("../.git/index", O_RDWR);
  cr_assert_geq(fd, 0);
  char b;
  cr_assert_eq(pread(fd, &b, 1, 20), 1);
  b ^= 0x55;
  cr_assert_eq(pwrite(fd, &b, 1, 20), 1);
  close(fd);
  collect(NULL);
  assert_kv("git.dirty", "unknown");
  assert_kv("git.commit", capture("git rev-parse HEAD"));
}
