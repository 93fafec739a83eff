/*
 * cmd_runs.c — `cairn runs` (list runs, filtered by pipeline, param or
 * metadata) and `cairn search` (runs, artifacts, executions and contexts by
 * their properties: FAIR's "findable").
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "cli.h"
#include "db/db_query.h"
#include "tool_common.h"

/* Options every question shares. Returns -1 to go on, else an exit code. */
typedef struct {
  const char *db;
  cairn_out_format fmt;
  int allow_csv;
} common_opts;

static int parse_common(const char *cmd, int argc, char **argv, int *i, common_opts *o,
                        void (*usage)(FILE *)) {
  const char *a = argv[*i];
  if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
    usage(stdout);
    return 0;
  }
  if (cairn_cli_opt_value(argc, argv, i, "--db", &o->db)) {
    if (!o->db || !*o->db) {
      fprintf(stderr, "cairn %s: --db needs a path\n", cmd);
      return 2;
    }
    return -1;
  }
  if (!strcmp(a, "--json")) {
    o->fmt = CAIRN_OUT_JSON;
    return -1;
  }
  if (o->allow_csv && !strcmp(a, "--csv")) {
    o->fmt = CAIRN_OUT_CSV;
    return -1;
  }
  return -2; /* not a common option */
}

static void json_i64(const char *name, int64_t v, int comma) {
  printf("\"%s\": %" PRId64 "%s", name, v, comma ? ", " : "");
}

static void json_kstr(const char *name, const char *v, int comma) {
  printf("\"%s\": ", name);
  cairn_cli_json_str(stdout, v);
  if (comma)
    printf(", ");
}

/* Parses the arguments of `cairn cmd`: the common options into *o,
 * --pipeline NAME into *pipeline when pipeline is not NULL (else it is an
 * unknown option), the others into *args (*nargs of them; the caller frees
 * *args). Returns -1 to go on, else the exit code after printing the usage
 * or the error (nothing is left to free). */
static int parse_args(const char *cmd, int argc, char **argv, common_opts *o,
                      void (*usage)(FILE *), const char **pipeline, char ***args,
                      size_t *nargs) {
  *args = calloc((size_t)argc + 1, sizeof **args);
  *nargs = 0;
  if (!*args) {
    fprintf(stderr, "cairn %s: out of memory\n", cmd);
    return 1;
  }
  int rc = -1;
  for (int i = 1; i < argc && rc == -1; i++) {
    rc = parse_common(cmd, argc, argv, &i, o, usage);
    if (rc != -2)
      continue;
    rc = -1;
    if (pipeline && !strcmp(argv[i], "--pipeline")) {
      if (i + 1 < argc) {
        *pipeline = argv[++i];
      } else {
        fprintf(stderr, "cairn %s: --pipeline needs a name\n", cmd);
        rc = 2;
      }
    } else if (pipeline && !strncmp(argv[i], "--pipeline=", 11)) {
      *pipeline = argv[i] + 11;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "cairn %s: unknown option '%s' (see `cairn %s --help`)\n", cmd, argv[i],
              cmd);
      rc = 2;
    } else {
      (*args)[(*nargs)++] = argv[i];
    }
  }
  if (rc >= 0)
    free(*args);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* cairn runs                                                              */
/* ---------------------------------------------------------------------- */

static void runs_usage(FILE *f) {
  fprintf(f,
          "usage: cairn runs [--db PATH] [--pipeline NAME] [KEY=VALUE | KEY~TEXT ...]\n"
          "                  [--json | --csv]\n"
          "  Lists the runs of the lineage database, newest first: UUID, pipeline,\n"
          "  creation time (UTC), ranks, steps, samples, artifacts, where the run was\n"
          "  read from (h5: its HDF5 files; wal: the write-ahead log of a job that did\n"
          "  not finish) and the records it dropped.\n"
          "  --pipeline NAME  only the runs of this pipeline\n"
          "  KEY=VALUE        only runs whose param KEY (its last value) or run\n"
          "                   key/value KEY (metadata, e.g. experiment=x) equals VALUE;\n"
          "                   numbers compare as numbers (lr=1e-3 matches 0.001);\n"
          "                   pipeline=NAME is the same as --pipeline\n"
          "  KEY~TEXT         ... whose value contains TEXT\n"
          "                   several filters: all must match\n"
          "  --db PATH        the database (default $CAIRN_DB, else ./cairn.db)\n"
          "  --json, --csv    machine-readable output\n"
          "Exit status: 0 success (also when no run matches), 1 the database cannot\n"
          "be read, 2 usage error.\n");
}

/* The runs matching every term (keep is left empty when there is none). */
static int filter_runs(sqlite3 *db, cairn_dbq_term *terms, size_t nterms, cairn_dbq_ids *keep,
                       char *err, size_t errlen) {
  for (size_t i = 0; i < nterms; i++) {
    cairn_dbq_ids m = {0};
    int rc = cairn_dbq_runs_matching(db, &terms[i], &m, err, errlen);
    if (rc) {
      cairn_dbq_ids_free(&m);
      return rc;
    }
    if (i == 0) {
      *keep = m;
    } else {
      cairn_dbq_ids_intersect(keep, &m);
      cairn_dbq_ids_free(&m);
    }
  }
  return CAIRN_OK;
}

static int parse_terms(const char *cmd, char **args, size_t nargs, cairn_dbq_term **terms) {
  *terms = calloc(nargs + 1, sizeof **terms);
  if (!*terms) {
    fprintf(stderr, "cairn %s: out of memory\n", cmd);
    return 1;
  }
  for (size_t i = 0; i < nargs; i++) {
    int r = cairn_dbq_term_parse(args[i], &(*terms)[i]);
    if (r == 1)
      continue;
    if (r == 0) {
      fprintf(stderr, "cairn %s: '", cmd);
      fflush(stderr);
      /* The argument is the user's; still never raw control bytes. */
      cairn_tool_fput_text(stderr, args[i]);
      fprintf(stderr, "' is not a filter (expected KEY=VALUE or KEY~TEXT; see `cairn %s "
                      "--help`)\n",
              cmd);
      return 2;
    }
    fprintf(stderr, "cairn %s: out of memory\n", cmd);
    return 1;
  }
  return 0;
}

static void free_terms(cairn_dbq_term *terms, size_t n) {
  if (!terms)
    return;
  for (size_t i = 0; i < n; i++)
    cairn_dbq_term_free(&terms[i]);
  free(terms);
}

/* Parses the KEY=VALUE terms of `cairn cmd` and opens the database
 * (--db). Returns 0 with *terms, *db and *path set, or the exit code after
 * printing why (args stay the caller's). */
static int open_terms_db(const char *cmd, const char *db_opt, char **args, size_t nargs,
                         cairn_dbq_term **terms, sqlite3 **db, const char **path) {
  *terms = NULL;
  int rc = parse_terms(cmd, args, nargs, terms);
  if (rc) {
    free_terms(*terms, nargs);
    *terms = NULL;
    return rc;
  }
  *path = cairn_cli_db_path(db_opt);
  *db = cairn_cli_open_db(cmd, *path);
  if (!*db) {
    free_terms(*terms, nargs);
    *terms = NULL;
    return 1;
  }
  return 0;
}

static void print_runs(const cairn_dbq_run *r, size_t n, cairn_out_format fmt, const char *path) {
  char t[40];
  if (fmt == CAIRN_OUT_JSON) {
    printf("{");
    json_kstr("database", path, 1);
    printf("\"runs\": [");
    for (size_t i = 0; i < n; i++) {
      printf("%s\n  {", i ? "," : "");
      json_kstr("uuid", r[i].uuid, 1);
      json_kstr("pipeline", r[i].pipeline, 1);
      json_kstr("created", cairn_dbq_iso_time(r[i].created_ns, 0, t), 1);
      json_i64("created_ns", r[i].created_ns, 1);
      json_i64("ranks", r[i].nranks, 1);
      json_i64("steps", r[i].steps, 1);
      json_i64("samples", r[i].samples, 1);
      json_i64("metrics", r[i].nmetrics, 1);
      json_i64("artifacts", r[i].artifacts, 1);
      json_i64("executions", r[i].executions, 1);
      json_kstr("source", r[i].source, 1);
      json_i64("recovered_ranks", r[i].recovered_ranks, 1);
      json_i64("dropped", r[i].dropped, 1);
      json_i64("rejected", r[i].rejected, 1);
      json_kstr("origin", r[i].origin, 0);
      printf("}");
    }
    printf("%s]}\n", n ? "\n" : "");
    return;
  }
  if (fmt == CAIRN_OUT_CSV) {
    printf("uuid,pipeline,created,ranks,steps,samples,artifacts,source,dropped\n");
    for (size_t i = 0; i < n; i++) {
      cairn_cli_csv_str(stdout, r[i].uuid);
      putchar(',');
      cairn_cli_csv_str(stdout, r[i].pipeline);
      printf(",%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",",
             cairn_dbq_iso_time(r[i].created_ns, 0, t), r[i].nranks, r[i].steps, r[i].samples,
             r[i].artifacts);
      cairn_cli_csv_str(stdout, r[i].source);
      printf(",%" PRId64 "\n", r[i].dropped);
    }
    return;
  }
  if (!n) {
    printf("no runs match (in %s)\n", path);
    return;
  }
  size_t pw = strlen("PIPELINE");
  for (size_t i = 0; i < n; i++) {
    size_t w = cairn_dbq_esc_width(r[i].pipeline);
    pw = w > pw ? w : pw;
  }
  if (pw > 40)
    pw = 40;
  printf("%-36s  ", "UUID");
  cairn_cli_cell("PIPELINE", pw);
  printf("  %-20s %5s %8s %10s %9s %-6s %7s\n", "CREATED (UTC)", "RANKS", "STEPS", "SAMPLES",
         "ARTIFACTS", "SOURCE", "DROPPED");
  for (size_t i = 0; i < n; i++) {
    cairn_cli_cell(r[i].uuid, 36);
    printf("  ");
    cairn_cli_cell(r[i].pipeline, pw);
    printf("  %-20s %5" PRId64 " %8" PRId64 " %10" PRId64 " %9" PRId64 " ",
           cairn_dbq_iso_time(r[i].created_ns, 0, t), r[i].nranks, r[i].steps, r[i].samples,
           r[i].artifacts);
    cairn_cli_cell(r[i].source, 6);
    printf(" %7" PRId64 "\n", r[i].dropped);
  }
}

int cairn_cmd_runs(int argc, char **argv) {
  common_opts o = {NULL, CAIRN_OUT_TEXT, 1};
  const char *pipeline = NULL;
  char **args;
  size_t nargs;
  int rc = parse_args("runs", argc, argv, &o, runs_usage, &pipeline, &args, &nargs);
  if (rc >= 0)
    return rc;
  cairn_dbq_term *terms;
  sqlite3 *db;
  const char *path;
  rc = open_terms_db("runs", o.db, args, nargs, &terms, &db, &path);
  if (rc) {
    free(args);
    return rc;
  }
  char err[1024];
  cairn_dbq_run *runs = NULL;
  size_t n = 0;
  cairn_dbq_ids keep = {0};
  rc = filter_runs(db, terms, nargs, &keep, err, sizeof err);
  if (!rc)
    rc = cairn_dbq_run_list(db, pipeline, &runs, &n, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn runs: %s\n", err);
  } else {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (nargs && !cairn_dbq_ids_has(&keep, runs[i].id)) {
        cairn_dbq_run_free(&runs[i]);
        continue;
      }
      runs[k++] = runs[i];
    }
    print_runs(runs, k, o.fmt, path);
    n = k;
  }
  cairn_dbq_runs_free(runs, n);
  cairn_dbq_ids_free(&keep);
  free_terms(terms, nargs);
  free(args);
  cairn_db_close(db);
  return rc ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* cairn search                                                            */
/* ---------------------------------------------------------------------- */

static void search_usage(FILE *f) {
  fprintf(f,
          "usage: cairn search KEY=VALUE|KEY~TEXT ... [--db PATH] [--json]\n"
          "  Finds runs, artifacts, executions and contexts (pipelines, stages) by\n"
          "  their properties: run params and key/values (metadata), and the ML\n"
          "  Metadata properties, custom or not, of artifacts, executions and\n"
          "  contexts. Examples:\n"
          "    cairn search experiment=lineage-fixture\n"
          "    cairn search hash=cairn-merkle-sha256-v1:054325...\n"
          "    cairn search type=Model url~ckpt\n"
          "  KEY=VALUE  the value equals VALUE (numbers compare as numbers)\n"
          "  KEY~TEXT   the value contains TEXT\n"
          "             several terms: an item matches when it matches all of them\n"
          "             (a run matches through its params, key/values, its context's\n"
          "             and its execution's properties)\n"
          "  Keys with a meaning of their own: pipeline (a run's pipeline), type (an\n"
          "  artifact's type: Dataset, Model, Dataslice, ...).\n"
          "  --db PATH  the database (default $CAIRN_DB, else ./cairn.db)\n"
          "  --json     machine-readable output\n"
          "Exit status: 0 success (also when nothing matches), 1 the database cannot\n"
          "be read, 2 usage error.\n");
}

typedef struct {
  cairn_dbq_ids runs, artifacts, executions, contexts;
} found;

static void found_free(found *f) {
  cairn_dbq_ids_free(&f->runs);
  cairn_dbq_ids_free(&f->artifacts);
  cairn_dbq_ids_free(&f->executions);
  cairn_dbq_ids_free(&f->contexts);
}

/* Moves the ids of `from` that are a run's context (col "context_id") or
 * execution into `runs`, keeps the others. */
static int split_run_ids(sqlite3 *db, const char *sql, cairn_dbq_ids *from, cairn_dbq_ids *runs,
                         char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    return CAIRN_EIO;
  }
  size_t o = 0;
  int rc = CAIRN_OK;
  for (size_t i = 0; i < from->n && !rc; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, from->v[i]);
    if (sqlite3_step(st) == SQLITE_ROW)
      rc = cairn_dbq_ids_add(runs, sqlite3_column_int64(st, 0));
    else
      from->v[o++] = from->v[i];
  }
  from->n = rc ? from->n : o;
  sqlite3_finalize(st);
  if (rc)
    snprintf(err, errlen, "out of memory");
  return rc;
}

static int search_term(sqlite3 *db, const cairn_dbq_term *t, found *f, char *err,
                       size_t errlen) {
  int rc = cairn_dbq_runs_matching(db, t, &f->runs, err, errlen);
  if (!rc)
    rc = cairn_dbq_mlmd_matching(db, CAIRN_DBQ_ARTIFACT, t, &f->artifacts, err, errlen);
  if (!rc)
    rc = cairn_dbq_mlmd_matching(db, CAIRN_DBQ_EXECUTION, t, &f->executions, err, errlen);
  if (!rc)
    rc = cairn_dbq_mlmd_matching(db, CAIRN_DBQ_CONTEXT, t, &f->contexts, err, errlen);
  if (!rc)
    rc = split_run_ids(db, "SELECT id FROM cairn_run WHERE context_id=?1", &f->contexts,
                       &f->runs, err, errlen);
  if (!rc)
    rc = split_run_ids(db, "SELECT id FROM cairn_run WHERE execution_id=?1", &f->executions,
                       &f->runs, err, errlen);
  cairn_dbq_ids_normalize(&f->runs);
  return rc;
}

/* Steps st, a query of one item, again with ?1 bound to id. Returns 1 when
 * the item was found (a row to read), else 0. */
static int step_id(sqlite3_stmt *st, int64_t id) {
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, id);
  return sqlite3_step(st) == SQLITE_ROW;
}

static int print_search_runs(sqlite3 *db, const cairn_dbq_ids *ids, int json, char *err,
                             size_t errlen) {
  cairn_dbq_run *all;
  size_t n;
  int rc = cairn_dbq_run_list(db, NULL, &all, &n, err, errlen);
  if (rc)
    return rc;
  char t[40];
  size_t shown = 0;
  if (!json)
    printf("runs (%zu):\n", ids->n);
  for (size_t i = 0; i < n; i++) {
    if (!cairn_dbq_ids_has(ids, all[i].id))
      continue;
    if (json) {
      printf("%s\n  {", shown ? "," : "");
      json_kstr("uuid", all[i].uuid, 1);
      json_kstr("pipeline", all[i].pipeline, 1);
      json_kstr("created", cairn_dbq_iso_time(all[i].created_ns, 0, t), 0);
      printf("}");
    } else {
      printf("  %s  ", all[i].uuid);
      cairn_tool_put_escaped(all[i].pipeline, strlen(all[i].pipeline));
      printf("  %s\n", cairn_dbq_iso_time(all[i].created_ns, 0, t));
    }
    shown++;
  }
  cairn_dbq_runs_free(all, n);
  return CAIRN_OK;
}

static int print_search_artifacts(sqlite3 *db, const cairn_dbq_ids *ids, int json, char *err,
                                  size_t errlen) {
  sqlite3_stmt *st = NULL, *rs = NULL;
  const char *sql =
      "SELECT t.name, a.uri, a.name,"
      " (SELECT string_value FROM ArtifactProperty WHERE artifact_id=a.id AND name='url'"
      "  AND is_custom_property=0),"
      " (SELECT string_value FROM ArtifactProperty WHERE artifact_id=a.id AND name='hash'"
      "  AND is_custom_property=0),"
      " (SELECT int_value FROM ArtifactProperty WHERE artifact_id=a.id AND name='size'"
      "  AND is_custom_property=0),"
      " (SELECT string_value FROM ArtifactProperty WHERE artifact_id=a.id AND name='error')"
      " FROM Artifact a JOIN Type t ON t.id=a.type_id WHERE a.id=?1";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT DISTINCT r.uuid, r.created_ns FROM cairn_artifact c JOIN"
                         " cairn_run r ON r.id=c.run_id WHERE c.artifact_id=?1"
                         " ORDER BY r.created_ns, r.uuid",
                         -1, &rs, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return CAIRN_EIO;
  }
  if (!json)
    printf("artifacts (%zu):\n", ids->n);
  size_t shown = 0;
  for (size_t i = 0; i < ids->n; i++) {
    if (!step_id(st, ids->v[i]))
      continue;
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *uri = (const char *)sqlite3_column_text(st, 1);
    const char *name = (const char *)sqlite3_column_text(st, 2);
    const char *url = (const char *)sqlite3_column_text(st, 3);
    const char *hash = (const char *)sqlite3_column_text(st, 4);
    int has_size = sqlite3_column_type(st, 5) != SQLITE_NULL;
    int64_t size = sqlite3_column_int64(st, 5);
    const char *error = (const char *)sqlite3_column_text(st, 6);
    if (json) {
      printf("%s\n  {", shown ? "," : "");
      json_i64("id", ids->v[i], 1);
      json_kstr("type", type, 1);
      json_kstr("uri", uri, 1);
      json_kstr("name", name, 1);
      json_kstr("path", url ? url : uri, 1);
      printf("\"hash\": ");
      if (hash)
        cairn_cli_json_str(stdout, hash);
      else
        printf("null");
      printf(", \"size\": ");
      if (has_size)
        printf("%" PRId64, size);
      else
        printf("null");
      if (error) {
        printf(", ");
        json_kstr("error", error, 0);
      }
      printf(", \"runs\": [");
    } else {
      printf("  %-11s ", type ? type : "?");
      const char *p = url ? url : uri ? uri : "";
      cairn_tool_put_escaped(p, strlen(p));
      printf("\n              ");
      const char *h = hash ? hash : error ? error : "(not hashed)";
      cairn_tool_put_escaped(h, strlen(h));
      if (has_size)
        printf("  %" PRId64 " bytes", size);
      printf("  runs:");
    }
    sqlite3_reset(rs);
    sqlite3_bind_int64(rs, 1, ids->v[i]);
    int k = 0;
    while (sqlite3_step(rs) == SQLITE_ROW) {
      const char *u = (const char *)sqlite3_column_text(rs, 0);
      if (json) {
        printf("%s", k ? ", " : "");
        cairn_cli_json_str(stdout, u);
      } else {
        printf(" %.8s", u ? u : "?");
      }
      k++;
    }
    if (json)
      printf("]}");
    else
      printf("%s\n", k ? "" : " (none)");
    shown++;
  }
  sqlite3_finalize(st);
  sqlite3_finalize(rs);
  return CAIRN_OK;
}

static int print_search_executions(sqlite3 *db, const cairn_dbq_ids *ids, int json, char *err,
                                   size_t errlen) {
  sqlite3_stmt *st;
  if (cairn_db_prepare(
          db, &st,
          "SELECT t.name, coalesce(ce.name, e.name), r.uuid, ce.rank FROM Execution e"
          " JOIN Type t ON t.id=e.type_id LEFT JOIN cairn_execution ce ON ce.execution_id=e.id"
          " LEFT JOIN cairn_run r ON r.id=ce.run_id WHERE e.id=?1 LIMIT 1",
          err, errlen))
    return CAIRN_EIO;
  if (!json)
    printf("executions (%zu):\n", ids->n);
  size_t shown = 0;
  for (size_t i = 0; i < ids->n; i++) {
    if (!step_id(st, ids->v[i]))
      continue;
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *run = (const char *)sqlite3_column_text(st, 2);
    int has_rank = sqlite3_column_type(st, 3) != SQLITE_NULL;
    int rank = sqlite3_column_int(st, 3);
    if (json) {
      printf("%s\n  {", shown ? "," : "");
      json_i64("id", ids->v[i], 1);
      json_kstr("type", type, 1);
      json_kstr("name", name, 1);
      printf("\"run\": ");
      if (run)
        cairn_cli_json_str(stdout, run);
      else
        printf("null");
      printf(", \"rank\": ");
      if (has_rank)
        printf("%d}", rank);
      else
        printf("null}");
    } else {
      printf("  ");
      cairn_tool_fput_text(stdout, name);
      printf(" (type ");
      cairn_tool_fput_text(stdout, type);
      printf(")");
      if (run)
        printf("  run %.8s", run);
      if (has_rank)
        printf("  rank %d", rank);
      printf("\n");
    }
    shown++;
  }
  sqlite3_finalize(st);
  return CAIRN_OK;
}

static int print_search_contexts(sqlite3 *db, const cairn_dbq_ids *ids, int json, char *err,
                                 size_t errlen) {
  sqlite3_stmt *st;
  if (cairn_db_prepare(db, &st,
                       "SELECT t.name, c.name FROM Context c JOIN Type t ON t.id=c.type_id"
                       " WHERE c.id=?1",
                       err, errlen))
    return CAIRN_EIO;
  if (!json)
    printf("contexts (%zu):\n", ids->n);
  size_t shown = 0;
  for (size_t i = 0; i < ids->n; i++) {
    if (!step_id(st, ids->v[i]))
      continue;
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    if (json) {
      printf("%s\n  {", shown ? "," : "");
      json_i64("id", ids->v[i], 1);
      json_kstr("type", type, 1);
      json_kstr("name", name, 0);
      printf("}");
    } else {
      printf("  %-15s ", type ? type : "?");
      cairn_tool_fput_text(stdout, name);
      printf("\n");
    }
    shown++;
  }
  sqlite3_finalize(st);
  return CAIRN_OK;
}

int cairn_cmd_search(int argc, char **argv) {
  common_opts o = {NULL, CAIRN_OUT_TEXT, 0};
  char **args;
  size_t nargs;
  int rc = parse_args("search", argc, argv, &o, search_usage, NULL, &args, &nargs);
  if (rc >= 0)
    return rc;
  if (!nargs) {
    fprintf(stderr, "cairn search: no KEY=VALUE given (see `cairn search --help`)\n");
    free(args);
    return 2;
  }
  cairn_dbq_term *terms;
  sqlite3 *db;
  const char *path;
  rc = open_terms_db("search", o.db, args, nargs, &terms, &db, &path);
  if (rc) {
    free(args);
    return rc;
  }
  char err[1024];
  found all = {0};
  for (size_t i = 0; i < nargs && !rc; i++) {
    found f = {0};
    rc = search_term(db, &terms[i], &f, err, sizeof err);
    if (rc) {
      found_free(&f);
      break;
    }
    if (i == 0) {
      all = f;
    } else {
      cairn_dbq_ids_intersect(&all.runs, &f.runs);
      cairn_dbq_ids_intersect(&all.artifacts, &f.artifacts);
      cairn_dbq_ids_intersect(&all.executions, &f.executions);
      cairn_dbq_ids_intersect(&all.contexts, &f.contexts);
      found_free(&f);
    }
  }
  int json = o.fmt == CAIRN_OUT_JSON;
  if (!rc && json) {
    printf("{\"terms\": [");
    for (size_t i = 0; i < nargs; i++) {
      printf("%s{", i ? ", " : "");
      json_kstr("key", terms[i].key, 1);
      json_kstr("op", terms[i].substr ? "~" : "=", 1);
      json_kstr("value", terms[i].value, 0);
      printf("}");
    }
    printf("],\n\"runs\": [");
  }
  if (!rc)
    rc = print_search_runs(db, &all.runs, json, err, sizeof err);
  if (!rc && json)
    printf("%s],\n\"artifacts\": [", all.runs.n ? "\n" : "");
  if (!rc)
    rc = print_search_artifacts(db, &all.artifacts, json, err, sizeof err);
  if (!rc && json)
    printf("%s],\n\"executions\": [", all.artifacts.n ? "\n" : "");
  if (!rc && (json || all.executions.n))
    rc = print_search_executions(db, &all.executions, json, err, sizeof err);
  if (!rc && json)
    printf("%s],\n\"contexts\": [", all.executions.n ? "\n" : "");
  if (!rc && (json || all.contexts.n))
    rc = print_search_contexts(db, &all.contexts, json, err, sizeof err);
  if (!rc && json)
    printf("%s]}\n", all.contexts.n ? "\n" : "");
  if (!rc && !json && !all.runs.n && !all.artifacts.n && !all.executions.n && !all.contexts.n)
    printf("nothing matches\n");
  if (rc) {
    fflush(stdout);
    fprintf(stderr, "cairn search: %s\n", err);
  }
  found_free(&all);
  free_terms(terms, nargs);
  free(args);
  cairn_db_close(db);
  return rc ? 1 : 0;
}
