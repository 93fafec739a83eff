/*
 * cmd_verify.c — `cairn verify PATH_OR_HASH`: re-hashes a file with the
 * documented scheme (cairn-merkle-sha256-v1, docs/format.md) and says
 * whether it is a logged artifact; or, given a hash, re-verifies every
 * artifact logged with it whose file still exists.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "cli.h"
#include "db/db_lineage.h"
#include "hash/hash.h"
#include "util.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: cairn verify PATH_OR_HASH [--db PATH] [--json]\n"
          "  PATH  re-hashes the file (cairn-merkle-sha256-v1, docs/format.md) and says\n"
          "        whether it is a logged artifact:\n"
          "          OK <path>: matches artifact N logged by run U (kind, role)\n"
          "          MISMATCH <path>: logged hash X, file now hashes to Y\n"
          "          NOT LOGGED <path>: no artifact has its hash or was logged there\n"
          "  HASH  a content hash (cairn-merkle-sha256-v1:<hex>) or a unique prefix of\n"
          "        its hex digits (at least 6): lists the artifacts logged with it and\n"
          "        re-verifies each one's recorded path if the file still exists\n"
          "        (MISSING when it does not).\n"
          "  --json     one JSON object instead of lines\n"
          "  --db PATH  the database (default $CAIRN_DB or ./cairn.db)\n"
          "Exit status: 0 every file verified matches, 1 a mismatch, a missing or not\n"
          "logged file, or no such artifact, 2 usage error or the database cannot be\n"
          "opened.\n");
}

enum { V_OK, V_MISMATCH, V_MISSING, V_NOT_LOGGED, V_SKIPPED, V_UNREADABLE };
static const char *const status_word[] = {"OK", "MISMATCH", "MISSING", "NOT LOGGED", "SKIPPED",
                                          "UNREADABLE"};
static const char *const status_json[] = {"ok", "mismatch", "missing", "not_logged", "skipped",
                                          "unreadable"};

/* One artifact as the database knows it. */
typedef struct {
  int64_t id;
  char *path, *hash, *type; /* url property, hash (uri), MLMD type name */
  int status;               /* V_*                                       */
  char now[CAIRN_HASH_HEX_LEN + 40]; /* what the file hashes to now      */
  char note[320];
} art;

typedef struct {
  sqlite3 *db;
  sqlite3_stmt *info, *runs, *by_path, *by_hash;
  int json, nout;
} vctx;

static int load_art(vctx *v, int64_t id, art *a) {
  memset(a, 0, sizeof *a);
  a->id = id;
  sqlite3_bind_int64(v->info, 1, id);
  int row = sqlite3_step(v->info) == SQLITE_ROW;
  a->hash = cairn_db_dup_text(row ? sqlite3_column_text(v->info, 0) : NULL);
  a->type = cairn_db_dup_text(row ? sqlite3_column_text(v->info, 1) : NULL);
  a->path = cairn_db_dup_text(row ? sqlite3_column_text(v->info, 2) : NULL);
  sqlite3_reset(v->info);
  return a->hash && a->type && a->path ? CAIRN_OK : CAIRN_ENOMEM;
}

static void free_art(art *a) {
  free(a->path);
  free(a->hash);
  free(a->type);
}

/* Writes "run U (kind, role)[, run V (...)]" for artifact id: every run
 * that logged it, with the artifact's kind and its role(s) in that run. */
static void put_runs(vctx *v, FILE *f, int64_t id, const char *type) {
  sqlite3_bind_int64(v->runs, 1, id);
  int n = 0;
  while (sqlite3_step(v->runs) == SQLITE_ROW) {
    int ins = sqlite3_column_int(v->runs, 1), outs = sqlite3_column_int(v->runs, 2);
    const char *role = ins && outs ? "input and output" : ins ? "input" : outs ? "output"
                                                                                 : "logged";
    if (v->json) {
      fprintf(f, "%s{\"run\": ", n ? ", " : "");
      cairn_cli_json_str(f, (const char *)sqlite3_column_text(v->runs, 0));
      fputs(", \"kind\": ", f);
      cairn_cli_json_str(f, type);
      fputs(", \"role\": ", f);
      cairn_cli_json_str(f, role);
      fputc('}', f);
    } else {
      fprintf(f, "%srun %s (%s, %s)", n ? ", " : "", sqlite3_column_text(v->runs, 0), type,
              role);
    }
    n++;
  }
  sqlite3_reset(v->runs);
  if (!n && !v->json)
    fputs("no run", f);
}

/* Hashes path; fills digest text ("scheme:hex") or the reason. */
static int hash_file(const char *path, char *out, size_t outlen, char *why, size_t whylen) {
  cairn_hash_result r;
  cairn__hash_file(path, 0, 0, &r);
  if (r.status != CAIRN_OK) {
    cairn__fmt(why, whylen, "%s", r.reason[0] ? r.reason : cairn_strerror(r.status));
    return r.status;
  }
  cairn__fmt(out, outlen, "%s:%s", CAIRN_HASH_SCHEME, r.hex);
  return CAIRN_OK;
}

static void put_art_json(vctx *v, FILE *f, const art *a) {
  fprintf(f, "%s\n  {\"artifact\": %" PRId64 ", \"path\": ", v->nout++ ? "," : "", a->id);
  cairn_cli_json_str(f, a->path);
  fputs(", \"type\": ", f);
  cairn_cli_json_str(f, a->type);
  fputs(", \"logged_hash\": ", f);
  cairn_cli_json_str(f, a->hash);
  fputs(", \"file_hash\": ", f);
  if (a->now[0])
    cairn_cli_json_str(f, a->now);
  else
    fputs("null", f);
  fprintf(f, ", \"status\": \"%s\", \"note\": ", status_json[a->status]);
  cairn_cli_json_str(f, a->note);
  fputs(", \"runs\": [", f);
  put_runs(v, f, a->id, a->type);
  fputs("]}", f);
}

/* Verifies one file given by path. Returns the exit status. */
static int verify_path(vctx *v, const char *path, char *err, size_t errlen) {
  char now[CAIRN_HASH_HEX_LEN + 40], why[CAIRN_HASH_REASON_LEN + 64];
  int hrc = hash_file(path, now, sizeof now, why, sizeof why);
  if (hrc != CAIRN_OK) {
    cairn__fmt(err, errlen, "%s: cannot hash: %s", path, why);
    return -1;
  }
  /* Artifacts logged at this path (as given, then as an absolute path)
   * and artifacts with this content wherever they were logged. */
  int64_t at_path[64], same[64];
  size_t nat = 0, nsame = 0;
  char *abs = realpath(path, NULL);
  for (int k = 0; k < 2; k++) {
    const char *p = k == 0 ? path : abs;
    if (!p || (k == 1 && !strcmp(abs, path)))
      continue;
    sqlite3_bind_text(v->by_path, 1, p, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(v->by_path) == SQLITE_ROW && nat < 64)
      at_path[nat++] = sqlite3_column_int64(v->by_path, 0);
    sqlite3_reset(v->by_path);
    if (nat)
      break;
  }
  sqlite3_bind_text(v->by_hash, 1, now, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(v->by_hash) == SQLITE_ROW && nsame < 64)
    same[nsame++] = sqlite3_column_int64(v->by_hash, 0);
  sqlite3_reset(v->by_hash);
  FILE *f = stdout;
  int status = V_NOT_LOGGED;
  art match, logged;
  memset(&match, 0, sizeof match);
  memset(&logged, 0, sizeof logged);
  int have_match = 0, have_logged = 0;
  /* The best answer: logged here with this content; else logged here with
   * other content (a mismatch); else the content logged elsewhere. */
  for (size_t i = 0; i < nat && !have_match; i++)
    for (size_t j = 0; j < nsame; j++)
      if (at_path[i] == same[j] && !load_art(v, at_path[i], &match)) {
        have_match = 1;
        break;
      }
  if (!have_match && nat && !load_art(v, at_path[nat - 1], &logged))
    have_logged = 1; /* the latest artifact logged at this path */
  if (!have_match && !have_logged && nsame && !load_art(v, same[0], &match))
    have_match = 2; /* same content, logged at another path */
  if (have_match)
    status = V_OK;
  else if (have_logged)
    status = V_MISMATCH;
  if (v->json) {
    fputs("{\"target\": ", f);
    cairn_cli_json_str(f, path);
    fputs(", \"file_hash\": ", f);
    cairn_cli_json_str(f, now);
    fprintf(f, ", \"status\": \"%s\", \"same_path\": %s, \"artifacts\": [",
            status_json[status], have_match == 2 ? "false" : "true");
    art *a = have_match ? &match : have_logged ? &logged : NULL;
    if (a) {
      cairn__fmt(a->now, sizeof a->now, "%s", now);
      a->status = status;
      if (have_match == 2)
        cairn__fmt(a->note, sizeof a->note, "the same content was logged at another path");
      put_art_json(v, f, a);
    }
    fputs("]}\n", f);
  } else if (status == V_OK) {
    printf("OK %s: matches artifact %" PRId64 " logged by ", path, match.id);
    put_runs(v, f, match.id, match.type);
    putchar('\n');
    if (have_match == 2)
      printf("  (the same content, logged at another path: %s)\n", match.path);
    printf("  hash %s\n", now);
  } else if (status == V_MISMATCH) {
    printf("MISMATCH %s: logged hash %s, file now hashes to %s\n", path, logged.hash, now);
    printf("  artifact %" PRId64 " logged by ", logged.id);
    put_runs(v, f, logged.id, logged.type);
    putchar('\n');
  } else {
    printf("NOT LOGGED %s: no artifact has its hash %s, and none was logged at this path\n",
           path, now);
  }
  free(abs);
  free_art(&match);
  free_art(&logged);
  return status == V_OK ? 0 : 1;
}

/* Verifies every artifact with the hash (or unique prefix) given. */
static int verify_hash(vctx *v, const char *hash, char *err, size_t errlen, int *found) {
  cairn_db_lineage_start s = {CAIRN_DB_START_HASH, hash, 0};
  int64_t *ids = NULL, *execs = NULL;
  size_t n = 0, nx = 0;
  int rc = cairn_db_lineage_resolve(v->db, &s, &ids, &n, &execs, &nx, err, errlen);
  free(execs);
  if (rc) {
    *found = 0;
    return rc;
  }
  *found = 1;
  FILE *f = stdout;
  int bad = 0;
  if (v->json) {
    fputs("{\"target\": ", f);
    cairn_cli_json_str(f, hash);
    fputs(", \"artifacts\": [", f);
  }
  for (size_t i = 0; i < n; i++) {
    art a;
    if (load_art(v, ids[i], &a)) {
      free_art(&a);
      free(ids);
      cairn__fmt(err, errlen, "out of memory");
      return CAIRN_ENOMEM;
    }
    struct stat sb;
    if (strncmp(a.hash, CAIRN_HASH_SCHEME ":", strlen(CAIRN_HASH_SCHEME) + 1)) {
      a.status = V_SKIPPED; /* a dataslice or a reference: no one file to hash */
      cairn__fmt(a.note, sizeof a.note, "%s",
                 strncmp(a.hash, "cairn-dataslice", 15)
                     ? "not a file hash: nothing to re-hash"
                     : "a dataslice: verify its member files one by one");
    } else if (stat(a.path, &sb) != 0) {
      a.status = V_MISSING;
      cairn__fmt(a.note, sizeof a.note, "%s", strerror(errno));
    } else {
      char why[CAIRN_HASH_REASON_LEN + 64];
      if (hash_file(a.path, a.now, sizeof a.now, why, sizeof why) != CAIRN_OK) {
        a.status = V_UNREADABLE;
        cairn__fmt(a.note, sizeof a.note, "%s", why);
      } else {
        a.status = strcmp(a.now, a.hash) ? V_MISMATCH : V_OK;
      }
    }
    if (a.status == V_MISMATCH || a.status == V_MISSING || a.status == V_UNREADABLE)
      bad = 1;
    if (v->json) {
      put_art_json(v, f, &a);
    } else {
      printf("%s %s: artifact %" PRId64 " (%s) logged by ", status_word[a.status], a.path,
             a.id, a.type);
      put_runs(v, f, a.id, a.type);
      putchar('\n');
      if (a.status == V_MISMATCH)
        printf("  logged hash %s, file now hashes to %s\n", a.hash, a.now);
      else
        printf("  hash %s%s%s\n", a.hash, a.note[0] ? "; " : "", a.note);
    }
    free_art(&a);
  }
  if (v->json)
    fprintf(f, "\n ], \"status\": \"%s\"}\n", bad ? "problem" : "ok");
  free(ids);
  return bad ? 1 : 0;
}

static int looks_like_hash(const char *s) {
  if (strstr(s, "sha256") && strchr(s, ':'))
    return 1;
  size_t n = strlen(s);
  if (n < 6 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdefABCDEF", s[i]))
      return 0;
  return 1;
}

int cairn_cmd_verify(int argc, char **argv) {
  const char *dbopt = NULL, *target = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--db", &dbopt)) {
      if (!dbopt) {
        fprintf(stderr, "cairn verify: --db needs a path\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (cairn_cli_target("verify", "file or hash", argc, argv, &i, &target)) {
      return 2;
    }
  }
  if (!target) {
    fprintf(stderr, "cairn verify: no file or hash given (see `cairn verify --help`)\n");
    return 2;
  }
  sqlite3 *db = cairn_cli_open_db("verify", cairn_cli_db_path(dbopt));
  if (!db)
    return 2;
  vctx v;
  memset(&v, 0, sizeof v);
  v.db = db;
  v.json = json;
  int ok =
      sqlite3_prepare_v2(db,
                         "SELECT a.uri, t.name, (SELECT p.string_value FROM ArtifactProperty p"
                         " WHERE p.artifact_id = a.id AND p.name = 'url'"
                         " AND p.is_custom_property = 0)"
                         " FROM Artifact a LEFT JOIN Type t ON t.id = a.type_id WHERE a.id = ?1",
                         -1, &v.info, NULL) == SQLITE_OK &&
      /* Runs that logged the artifact, with its roles there (MLMD events of
       * the run's executions, the whole-run execution included). */
      sqlite3_prepare_v2(db,
                         "SELECT r.uuid,"
                         " (SELECT count(*) FROM Event ev WHERE ev.artifact_id = ?1"
                         "  AND ev.type = 3 AND (ev.execution_id = r.execution_id OR"
                         "  ev.execution_id IN (SELECT execution_id FROM cairn_execution"
                         "   WHERE run_id = r.id))),"
                         " (SELECT count(*) FROM Event ev WHERE ev.artifact_id = ?1"
                         "  AND ev.type = 4 AND (ev.execution_id = r.execution_id OR"
                         "  ev.execution_id IN (SELECT execution_id FROM cairn_execution"
                         "   WHERE run_id = r.id)))"
                         " FROM cairn_run r WHERE r.id IN"
                         " (SELECT run_id FROM cairn_artifact WHERE artifact_id = ?1)"
                         " ORDER BY r.created_ns, r.id",
                         -1, &v.runs, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db,
                         "SELECT artifact_id FROM ArtifactProperty WHERE name = 'url'"
                         " AND is_custom_property = 0 AND string_value = ?1"
                         " ORDER BY artifact_id",
                         -1, &v.by_path, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT id FROM Artifact WHERE uri = ?1 ORDER BY id", -1,
                         &v.by_hash, NULL) == SQLITE_OK;
  char err[1024];
  int rc;
  if (!ok) {
    fprintf(stderr, "cairn verify: %s: %s\n", sqlite3_db_filename(db, "main"),
            sqlite3_errmsg(db));
    rc = 2;
    goto out;
  }
  struct stat sb;
  if (stat(target, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
    rc = verify_path(&v, target, err, sizeof err);
    if (rc < 0) {
      fprintf(stderr, "cairn verify: %s\n", err);
      rc = 1;
    }
  } else if (stat(target, &sb) == 0) {
    fprintf(stderr, "cairn verify: %s: is a directory (give a file or a hash)\n", target);
    rc = 1;
  } else if (looks_like_hash(target)) {
    int found;
    rc = verify_hash(&v, target, err, sizeof err, &found);
    if (rc < 0) {
      if (rc == CAIRN_ENOTFOUND)
        fprintf(stderr, "cairn verify: no run or artifact '%s' in DB %s\n", target,
                sqlite3_db_filename(db, "main"));
      else
        fprintf(stderr, "cairn verify: %s\n", err);
      rc = 1;
    }
  } else {
    /* Not a file (any more) and not a hash: was something logged there? */
    sqlite3_bind_text(v.by_path, 1, target, -1, SQLITE_TRANSIENT);
    int64_t id = sqlite3_step(v.by_path) == SQLITE_ROW ? sqlite3_column_int64(v.by_path, 0) : 0;
    sqlite3_reset(v.by_path);
    if (id) {
      art a;
      if (!load_art(&v, id, &a)) {
        a.status = V_MISSING;
        cairn__fmt(a.note, sizeof a.note, "%s", strerror(ENOENT));
        if (json) {
          fputs("{\"target\": ", stdout);
          cairn_cli_json_str(stdout, target);
          fputs(", \"status\": \"missing\", \"artifacts\": [", stdout);
          put_art_json(&v, stdout, &a);
          fputs("]}\n", stdout);
        } else {
          printf("MISSING %s: no such file; logged as artifact %" PRId64 " (hash %s) by ",
                 target, id, a.hash);
          put_runs(&v, stdout, id, a.type);
          putchar('\n');
        }
      }
      free_art(&a);
    } else {
      fprintf(stderr, "cairn verify: %s: no such file, and no run or artifact '%s' in DB %s\n",
              target, target, sqlite3_db_filename(db, "main"));
    }
    rc = 1;
  }
out:
  sqlite3_finalize(v.info);
  sqlite3_finalize(v.runs);
  sqlite3_finalize(v.by_path);
  sqlite3_finalize(v.by_hash);
  cairn_db_close(db);
  if (fflush(stdout) || ferror(stdout)) {
    fprintf(stderr, "cairn verify: cannot write the output\n");
    return 1;
  }
  return rc;
}
