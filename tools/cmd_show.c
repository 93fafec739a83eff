/*
 * cmd_show.c — `cairn show RUN` (everything the database knows about one
 * run) and `cairn diff RUN_A RUN_B` (only what differs between two runs:
 * params, metadata, final metric values, artifacts by role and content).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "cli.h"
#include "db/db_query.h"
#include "tool_common.h"
#include "wal_records.h"

static void esc(const char *s) {
  s = s ? s : "";
  cairn_tool_put_escaped(s, strlen(s));
}

static void jstr(const char *s) {
  cairn_cli_json_str(stdout, s ? s : "");
}

static void jkey(const char *k, int comma) {
  printf("%s\"%s\": ", comma ? ", " : "", k);
}

static void jnum(double d) {
  char b[40];
  if (isfinite(d))
    printf("%s", cairn_dbq_fmt_double(d, b));
  else
    printf("null");
}

/* A typed value as JSON: numbers, true/false, strings. */
static void jvalue(const cairn_dbq_value *v) {
  if (!v) {
    printf("null");
    return;
  }
  switch (v->type) {
  case CAIRN_PARAM_INT64: printf("%" PRId64, v->i64); break;
  case CAIRN_PARAM_DOUBLE: jnum(v->f64); break;
  case CAIRN_PARAM_BOOL: printf("%s", v->i64 ? "true" : "false"); break;
  default: jstr(v->str);
  }
}

/* A typed value as text: strings quoted and escaped. */
static void tvalue(const cairn_dbq_value *v) {
  char b[64];
  if (!v) {
    printf("(absent)");
  } else if (v->type == CAIRN_PARAM_STRING) {
    putchar('"');
    esc(v->str);
    putchar('"');
  } else {
    printf("%s", cairn_dbq_value_text(v, b, sizeof b));
  }
}

static const char *role_name(int in, int out) {
  return in && out ? "input+output" : in ? "input" : out ? "output" : "logged";
}

/* Opens the database and finds RUN. Returns 0 or the exit code. */
static int open_run(const char *cmd, const char *dbopt, const char *run, sqlite3 **db,
                    cairn_dbq_run *r) {
  if (!*db && !(*db = cairn_cli_open_db(cmd, cairn_cli_db_path(dbopt))))
    return 1;
  char err[1024];
  int64_t id;
  int rc = cairn_db_find_run(*db, run, &id, err, sizeof err);
  if (!rc)
    rc = cairn_dbq_run_load(*db, id, r, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn %s: %s\n", cmd, err);
    return rc == CAIRN_EINVAL && strstr(err, "not a run id") ? 2 : 1;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* cairn show                                                              */
/* ---------------------------------------------------------------------- */

static void show_usage(FILE *f) {
  fprintf(f,
          "usage: cairn show RUN [--db PATH] [--json]\n"
          "  Everything the lineage database knows about one run: its identity and\n"
          "  totals, metadata (run key/values, the last value of each key), params\n"
          "  (last value of each key), stages, executions (name, type, rank, start,\n"
          "  end, duration, command), artifacts (kind, role: input or output of an\n"
          "  execution, path or URI, content hash or the error hashing it, size,\n"
          "  rank), accounting per channel (records logged, stored, dropped,\n"
          "  rejected; complete or not) and the metrics' summaries.\n"
          "  RUN        a run UUID or a unique prefix of it (at least 4 hex digits)\n"
          "  --db PATH  the database (default $CAIRN_DB, else ./cairn.db)\n"
          "  --json     machine-readable output\n"
          "Exit status: 0 success, 1 a problem (no such run; the database cannot be\n"
          "read), 2 usage error.\n");
}

static int show_values(const char *title, const cairn_dbq_value *v, size_t n, int json,
                       int typed) {
  if (json) {
    printf(",\n\"%s\": [", title);
    for (size_t i = 0; i < n; i++) {
      printf("%s\n  {\"key\": ", i ? "," : "");
      jstr(v[i].key);
      jkey("value", 1);
      jvalue(&v[i]);
      if (typed)
        printf(", \"type\": \"%s\"", cairn_dbq_type_name(v[i].type));
      printf(", \"rank\": %d}", v[i].rank);
    }
    printf("%s]", n ? "\n" : "");
    return 0;
  }
  printf("%s (last value per key):%s\n", title, n ? "" : " none");
  for (size_t i = 0; i < n; i++) {
    printf("  ");
    esc(v[i].key);
    printf(" = ");
    tvalue(&v[i]);
    if (typed)
      printf(" (%s)", cairn_dbq_type_name(v[i].type));
    putchar('\n');
  }
  return 0;
}

static int fail_sql(sqlite3 *db, sqlite3_stmt *st) {
  fprintf(stderr, "cairn show: %s: %s\n", sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return 1;
}

/* Prepares a list's query with ?1 bound to run_id and prints the list's
 * opening (",\n"title": [" in JSON, "title:" in text). Returns the
 * statement, or NULL after printing the error. */
static sqlite3_stmt *begin_list(sqlite3 *db, const char *sql, int64_t run_id, const char *title,
                                int json) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fail_sql(db, NULL);
    return NULL;
  }
  sqlite3_bind_int64(st, 1, run_id);
  if (json)
    printf(",\n\"%s\": [", title);
  else
    printf("%s:", title);
  return st;
}

/* Finishes a list of n rows whose last sqlite3_step returned s: finalizes
 * st and prints the list's end ("]" in JSON, " none" in text when empty).
 * Returns 0, or 1 after printing the error when s is not SQLITE_DONE. */
static int end_list(sqlite3 *db, sqlite3_stmt *st, int s, int n, int json) {
  if (s != SQLITE_DONE)
    return fail_sql(db, st);
  sqlite3_finalize(st);
  if (json)
    printf("%s]", n ? "\n" : "");
  else if (!n)
    printf(" none\n");
  return 0;
}

static int show_stages(sqlite3 *db, int64_t run_id, int json) {
  sqlite3_stmt *st = begin_list(db,
                                "SELECT pipeline, name, properties, count(*) FROM cairn_stage"
                                " WHERE run_id=?1 GROUP BY pipeline, name ORDER BY min(rowid)",
                                run_id, "stages", json);
  if (!st)
    return 1;
  int n = 0, s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    const char *pipe = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *props = (const char *)sqlite3_column_text(st, 2);
    int ranks = sqlite3_column_int(st, 3);
    if (json) {
      printf("%s\n  {\"pipeline\": ", n ? "," : "");
      jstr(pipe);
      jkey("name", 1);
      jstr(name);
      jkey("properties", 1);
      jstr(props);
      printf(", \"ranks\": %d}", ranks);
    } else {
      printf("%s  ", n ? "" : "\n");
      esc(pipe);
      putchar('/');
      esc(name);
      printf("  (%d rank%s)", ranks, ranks == 1 ? "" : "s");
      if (props && *props) {
        printf("  ");
        esc(props);
      }
      putchar('\n');
    }
    n++;
  }
  return end_list(db, st, s, n, json);
}

static int show_executions(sqlite3 *db, const cairn_dbq_run *r, const char *cmdline,
                           int json) {
  sqlite3_stmt *st =
      begin_list(db,
                 "SELECT e.lineage_id, e.name, e.type, coalesce(s.name, ''), e.rank,"
                 " e.start_ns, e.end_ns, e.command, e.properties FROM cairn_execution e"
                 " LEFT JOIN cairn_stage s ON s.run_id=e.run_id AND"
                 " s.lineage_id=e.stage_lineage_id WHERE e.run_id=?1"
                 " ORDER BY e.start_ns, e.rank, e.lineage_id",
                 r->id, "executions", json);
  if (!st)
    return 1;
  int n = 0, s;
  char t0[40], t1[40];
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *type = (const char *)sqlite3_column_text(st, 2);
    const char *stage = (const char *)sqlite3_column_text(st, 3);
    int rank = sqlite3_column_int(st, 4);
    int64_t start = sqlite3_column_int64(st, 5), end = sqlite3_column_int64(st, 6);
    const char *cmd = (const char *)sqlite3_column_text(st, 7);
    const char *props = (const char *)sqlite3_column_text(st, 8);
    /* As in the MLMD tables: the type is the name when none was given, the
     * command the run's command line. */
    if (!type || !*type)
      type = name;
    const char *command = cmd && *cmd ? cmd : cmdline;
    double dur = end >= start && end ? (double)(end - start) * 1e-9 : NAN;
    if (json) {
      printf("%s\n  {\"id\": %" PRId64 ", \"name\": ", n ? "," : "", id);
      jstr(name);
      jkey("type", 1);
      jstr(type);
      jkey("stage", 1);
      jstr(stage);
      printf(", \"rank\": %d, \"start\": ", rank);
      jstr(cairn_dbq_iso_time(start, 1, t0));
      jkey("end", 1);
      if (end)
        jstr(cairn_dbq_iso_time(end, 1, t1));
      else
        printf("null");
      printf(", \"start_ns\": %" PRId64 ", \"end_ns\": ", start);
      if (end)
        printf("%" PRId64, end);
      else
        printf("null");
      jkey("duration_s", 1);
      jnum(dur);
      jkey("command", 1);
      jstr(command);
      jkey("properties", 1);
      jstr(props);
      printf("}");
    } else {
      if (!n)
        printf("\n  %-4s  %-12s %-20s %-20s %-24s %10s\n", "RANK", "STAGE", "NAME", "TYPE",
               "START (UTC)", "DURATION");
      printf("  %4d  ", rank);
      cairn_cli_cell(stage, 12);
      putchar(' ');
      cairn_cli_cell(name, 20);
      putchar(' ');
      cairn_cli_cell(type, 20);
      printf(" %-24s ", cairn_dbq_iso_time(start, 1, t0));
      if (isfinite(dur))
        printf("%9.3fs\n", dur);
      else
        printf("%10s\n", "unfinished");
      printf("        command: ");
      if (cmd && *cmd)
        esc(cmd);
      else
        printf("(the run's command line)");
      if (props && *props) {
        printf("\n        properties: ");
        esc(props);
      }
      putchar('\n');
    }
    n++;
  }
  return end_list(db, st, s, n, json);
}

static int show_artifacts(sqlite3 *db, int64_t run_id, int json) {
  sqlite3_stmt *st = begin_list(
      db,
      "SELECT a.lineage_id, a.kind, a.rank, a.size, a.t_ns, a.uri, a.hash, a.properties,"
      " EXISTS (SELECT 1 FROM cairn_event e WHERE e.run_id=a.run_id AND"
      "  e.artifact_lineage_id=a.lineage_id AND e.type=1),"
      " EXISTS (SELECT 1 FROM cairn_event e WHERE e.run_id=a.run_id AND"
      "  e.artifact_lineage_id=a.lineage_id AND e.type=2)"
      " FROM cairn_artifact a WHERE a.run_id=?1 ORDER BY a.t_ns, a.lineage_id",
      run_id, "artifacts", json);
  if (!st)
    return 1;
  int n = 0, s;
  char t[40];
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    int kind = sqlite3_column_int(st, 1), rank = sqlite3_column_int(st, 2);
    int64_t size = sqlite3_column_int64(st, 3), t_ns = sqlite3_column_int64(st, 4);
    const char *uri = (const char *)sqlite3_column_text(st, 5);
    const char *hash = (const char *)sqlite3_column_text(st, 6);
    const char *props = (const char *)sqlite3_column_text(st, 7);
    const char *role = role_name(sqlite3_column_int(st, 8), sqlite3_column_int(st, 9));
    int hashed = cairn_db_is_hash(hash), failed = !hashed && hash && *hash;
    if (json) {
      printf("%s\n  {\"id\": %" PRId64 ", \"kind\": \"%s\", \"role\": \"%s\", \"path\": ",
             n ? "," : "", id, cairn_db_artifact_type_name(kind), role);
      jstr(uri);
      jkey("hash", 1);
      if (hashed)
        jstr(hash);
      else
        printf("null");
      jkey("error", 1);
      if (failed)
        jstr(hash);
      else
        printf("null");
      printf(", \"size\": %" PRId64 ", \"rank\": %d, \"time\": ", size, rank);
      jstr(cairn_dbq_iso_time(t_ns, 1, t));
      jkey("properties", 1);
      jstr(props);
      printf("}");
    } else {
      if (!n)
        printf("\n  %-11s %-12s %4s %10s  %s\n", "KIND", "ROLE", "RANK", "SIZE",
               "PATH / HASH OR ERROR");
      printf("  %-11s %-12s %4d %10" PRId64 "  ", cairn_db_artifact_type_name(kind), role, rank, size);
      esc(uri);
      printf("\n  %40s", "");
      if (hashed || failed)
        esc(hash);
      else
        printf("(recorded as given, not hashed)");
      putchar('\n');
    }
    n++;
  }
  return end_list(db, st, s, n, json);
}

static int show_accounting(sqlite3 *db, int64_t run_id, int json) {
  sqlite3_stmt *st;
  uint64_t tot[2][4];
  memset(tot, 0, sizeof tot);
  int complete = 1;
  if (sqlite3_prepare_v2(db,
                         "SELECT rank, channel, logged, stored, dropped, rejected FROM"
                         " cairn_accounting WHERE run_id=?1 ORDER BY rank, channel",
                         -1, &st, NULL) != SQLITE_OK)
    return fail_sql(db, NULL);
  sqlite3_bind_int64(st, 1, run_id);
  int s, rows = 0;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int ch = sqlite3_column_int(st, 1);
    if (ch < 0 || ch > 1)
      continue;
    uint64_t rk[2][4];
    memset(rk, 0, sizeof rk);
    for (int k = 0; k < 4; k++)
      rk[ch][k] = (uint64_t)sqlite3_column_int64(st, 2 + k);
    cairn_tool_acct_add(tot, &complete, (const uint64_t(*)[4])rk);
    rows++;
  }
  if (s != SQLITE_DONE)
    return fail_sql(db, st);
  sqlite3_finalize(st);
  /* Every rank must also have reported its counters. */
  int64_t ranks = 0, reported = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT count(*), coalesce(sum(acct_reported != 0), 0) FROM cairn_rank"
                         " WHERE run_id=?1",
                         -1, &st, NULL) != SQLITE_OK)
    return fail_sql(db, NULL);
  sqlite3_bind_int64(st, 1, run_id);
  if (sqlite3_step(st) == SQLITE_ROW) {
    ranks = sqlite3_column_int64(st, 0);
    reported = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  complete = complete && rows > 0 && reported == ranks;
  if (json) {
    static const char *ch[] = {"metrics", "control"};
    printf(",\n\"accounting\": {\"channels\": [");
    for (int c = 0; c < 2; c++)
      printf("%s{\"channel\": \"%s\", \"logged\": %" PRIu64 ", \"stored\": %" PRIu64
             ", \"dropped\": %" PRIu64 ", \"rejected\": %" PRIu64 "}",
             c ? ", " : "", ch[c], tot[c][0], tot[c][1], tot[c][2], tot[c][3]);
    printf("], \"ranks\": %" PRId64 ", \"ranks_reported\": %" PRId64 ", \"complete\": %s}",
           ranks, reported, complete ? "true" : "false");
  } else {
    cairn_tool_print_acct((const uint64_t(*)[4])tot, complete);
    if (reported != ranks)
      printf("  %" PRId64 " of %" PRId64 " ranks reported their counters\n", reported, ranks);
  }
  return 0;
}

static int show_metrics(sqlite3 *db, int64_t run_id, int json) {
  cairn_dbq_metric *m;
  size_t n;
  char err[1024];
  if (cairn_dbq_metrics(db, run_id, &m, &n, err, sizeof err)) {
    fprintf(stderr, "cairn show: %s\n", err);
    return 1;
  }
  if (json) {
    printf(",\n\"metrics\": [");
    for (size_t i = 0; i < n; i++) {
      printf("%s\n  {\"name\": ", i ? "," : "");
      jstr(m[i].name);
      printf(", \"steps\": %" PRId64 ", \"samples\": %" PRId64 ", \"last_mean\": ",
             m[i].nsteps, m[i].samples);
      jnum(m[i].last_mean);
      jkey("last_min", 1);
      jnum(m[i].last_min);
      jkey("last_max", 1);
      jnum(m[i].last_max);
      printf("}");
    }
    printf("%s]", n ? "\n" : "");
  } else {
    printf("metrics:%s\n", n ? "" : " none");
    size_t w = 4;
    for (size_t i = 0; i < n; i++) {
      size_t k = cairn_dbq_esc_width(m[i].name);
      w = k > w ? k : w;
    }
    w = w > 48 ? 48 : w;
    if (n)
      printf("  %-*s %8s %10s  %-12s %-12s %s\n", (int)w, "NAME", "STEPS", "SAMPLES",
             "LAST MEAN", "LAST MIN", "LAST MAX");
    for (size_t i = 0; i < n; i++) {
      char a[40], b[40], c[40];
      printf("  ");
      cairn_cli_cell(m[i].name, w);
      /* Six digits for reading; --json and `cairn metrics` give them exactly. */
      snprintf(a, sizeof a, "%.6g", m[i].last_mean);
      snprintf(b, sizeof b, "%.6g", m[i].last_min);
      snprintf(c, sizeof c, "%.6g", m[i].last_max);
      printf(" %8" PRId64 " %10" PRId64 "  %-12s %-12s %s\n", m[i].nsteps, m[i].samples, a, b, c);
    }
  }
  cairn_dbq_metrics_free(m, n);
  return 0;
}

int cairn_cmd_show(int argc, char **argv) {
  const char *dbopt = NULL, *run = NULL;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      show_usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--db", &dbopt)) {
      if (!dbopt) {
        fprintf(stderr, "cairn show: --db needs a path\n");
        return 2;
      }
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "cairn show: unknown option '%s' (see `cairn show --help`)\n", argv[i]);
      return 2;
    } else if (run) {
      fprintf(stderr, "cairn show: one run only (see `cairn diff` to compare two)\n");
      return 2;
    } else {
      run = argv[i];
    }
  }
  if (!run) {
    fprintf(stderr, "cairn show: no run given (see `cairn show --help`)\n");
    return 2;
  }
  sqlite3 *db = NULL;
  cairn_dbq_run r;
  int rc = open_run("show", dbopt, run, &db, &r);
  if (rc) {
    cairn_db_close(db);
    return rc;
  }
  char err[1024], t[40], t2[40];
  cairn_dbq_value *params = NULL, *kv = NULL;
  size_t np = 0, nkv = 0;
  if (cairn_dbq_params(db, r.id, &params, &np, err, sizeof err) ||
      cairn_dbq_kv(db, r.id, &kv, &nkv, err, sizeof err)) {
    fprintf(stderr, "cairn show: %s\n", err);
    rc = 1;
    goto out;
  }
  const char *cmdline = "";
  for (size_t i = 0; i < nkv; i++)
    if (!strcmp(kv[i].key, "cmdline"))
      cmdline = kv[i].str;
  if (json) {
    printf("{\"run\": {\"uuid\": ");
    jstr(r.uuid);
    jkey("pipeline", 1);
    jstr(r.pipeline);
    jkey("created", 1);
    jstr(cairn_dbq_iso_time(r.created_ns, 1, t));
    printf(", \"created_ns\": %" PRId64, r.created_ns);
    jkey("merged", 1);
    jstr(cairn_dbq_iso_time(r.merged_ns, 1, t2));
    jkey("source", 1);
    jstr(r.source);
    jkey("origin", 1);
    jstr(r.origin);
    jkey("cairn_version", 1);
    jstr(r.cairn_version);
    printf(", \"format_version\": %" PRId64 ", \"ranks\": %" PRId64 ", \"aggregators\": %" PRId64
           ", \"per_rank_detail\": %s, \"metrics\": %" PRId64 ", \"steps\": %" PRId64
           ", \"samples\": %" PRId64 ", \"artifacts\": %" PRId64 ", \"executions\": %" PRId64
           ", \"recovered_ranks\": %" PRId64 ", \"damaged\": %" PRId64 ", \"logged\": %" PRId64
           ", \"stored\": %" PRId64 ", \"dropped\": %" PRId64 ", \"rejected\": %" PRId64 "}",
           r.format_version, r.nranks, r.naggregators, r.detail ? "true" : "false", r.nmetrics,
           r.steps, r.samples, r.artifacts, r.executions, r.recovered_ranks, r.damaged,
           r.logged, r.stored, r.dropped, r.rejected);
  } else {
    printf("run %s\n", r.uuid);
    printf("  pipeline   ");
    esc(r.pipeline);
    printf("\n  created    %s\n", cairn_dbq_iso_time(r.created_ns, 1, t));
    printf("  merged     %s\n", cairn_dbq_iso_time(r.merged_ns, 1, t));
    printf("  source     %s (", r.source);
    esc(r.origin);
    printf(")\n  ranks      %" PRId64 " (%" PRId64 " aggregator%s)%s\n", r.nranks, r.naggregators,
           r.naggregators == 1 ? "" : "s", r.detail ? ", per-rank values kept" : "");
    printf("  cairn      %s, format %" PRId64 "\n", r.cairn_version, r.format_version);
    printf("  totals     %" PRId64 " steps, %" PRId64 " samples, %" PRId64 " metrics, %" PRId64
           " artifacts, %" PRId64 " executions\n",
           r.steps, r.samples, r.nmetrics, r.artifacts, r.executions);
    printf("  recovered  %" PRId64 " rank%s from write-ahead logs; %" PRId64
           " damage report%s\n",
           r.recovered_ranks, r.recovered_ranks == 1 ? "" : "s", r.damaged,
           r.damaged == 1 ? "" : "s");
  }
  show_values("metadata", kv, nkv, json, 0);
  show_values("params", params, np, json, 1);
  rc = show_stages(db, r.id, json);
  if (!rc)
    rc = show_executions(db, &r, cmdline, json);
  if (!rc)
    rc = show_artifacts(db, r.id, json);
  if (!rc)
    rc = show_accounting(db, r.id, json);
  if (!rc)
    rc = show_metrics(db, r.id, json);
  if (json)
    printf("}\n");
out:
  cairn_dbq_values_free(params, np);
  cairn_dbq_values_free(kv, nkv);
  cairn_dbq_run_free(&r);
  cairn_db_close(db);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* cairn diff                                                              */
/* ---------------------------------------------------------------------- */

static void diff_usage(FILE *f) {
  fprintf(f,
          "usage: cairn diff RUN_A RUN_B [--db PATH] [--json]\n"
          "  What differs between two runs, and how many items are equal:\n"
          "    run        pipeline, ranks, steps, samples, metrics, artifacts, ...\n"
          "    params     the last value of each key (type and value)\n"
          "    metadata   run key/values, the last value of each key\n"
          "    metrics    the final value (last step's mean across ranks)\n"
          "    artifacts  by role (input/output) and content hash: only in A, only\n"
          "               in B, or the same path with a different hash\n"
          "  RUN_A, RUN_B  run UUIDs or unique prefixes (at least 4 hex digits)\n"
          "  --db PATH     the database (default $CAIRN_DB, else ./cairn.db)\n"
          "  --json        machine-readable output\n"
          "Exit status: 0 success (whether or not the runs differ), 1 a problem (no\n"
          "such run; the database cannot be read), 2 usage error.\n");
}

typedef struct {
  cairn_dbq_run r;
  cairn_dbq_value *params, *kv;
  size_t np, nkv;
  cairn_dbq_metric *m;
  size_t nm;
  struct art {
    const char *role;
    int kind;
    char *path, *hash; /* hash: the content hash, "" for a URI, or the error */
    int matched;
  } *a;
  size_t na;
} side;

static void side_free(side *s) {
  cairn_dbq_run_free(&s->r);
  cairn_dbq_values_free(s->params, s->np);
  cairn_dbq_values_free(s->kv, s->nkv);
  cairn_dbq_metrics_free(s->m, s->nm);
  for (size_t i = 0; i < s->na; i++) {
    free(s->a[i].path);
    free(s->a[i].hash);
  }
  free(s->a);
}

/* The run's distinct (role, kind, path, hash) artifacts; an artifact used
 * both ways counts once per role. */
static int load_artifacts(sqlite3 *db, side *s, char *err, size_t errlen) {
  sqlite3_stmt *st;
  if (cairn_db_prepare(
          db, &st,
          "SELECT DISTINCT CASE e.type WHEN 1 THEN 'input' WHEN 2 THEN 'output' ELSE 'logged'"
          " END, a.kind, a.uri, a.hash FROM cairn_artifact a LEFT JOIN cairn_event e ON"
          " e.run_id=a.run_id AND e.artifact_lineage_id=a.lineage_id WHERE a.run_id=?1"
          " ORDER BY 1, 3, 4",
          err, errlen))
    return CAIRN_EIO;
  sqlite3_bind_int64(st, 1, s->r.id);
  size_t cap = 0;
  int rc = CAIRN_OK;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (s->na == cap) {
      cap = cap ? cap * 2 : 16;
      struct art *t = realloc(s->a, cap * sizeof *t);
      if (!t) {
        rc = CAIRN_ENOMEM;
        break;
      }
      s->a = t;
    }
    const char *role = (const char *)sqlite3_column_text(st, 0);
    struct art *x = &s->a[s->na];
    x->role = !strcmp(role, "input") ? "input" : !strcmp(role, "output") ? "output" : "logged";
    x->kind = sqlite3_column_int(st, 1);
    x->path = strdup((const char *)sqlite3_column_text(st, 2));
    x->hash = strdup((const char *)sqlite3_column_text(st, 3));
    x->matched = 0;
    s->na++;
    if (!x->path || !x->hash) {
      rc = CAIRN_ENOMEM;
      break;
    }
  }
  sqlite3_finalize(st);
  if (rc)
    snprintf(err, errlen, "out of memory");
  return rc;
}

static int load_side(sqlite3 *db, side *s, char *err, size_t errlen) {
  int rc = cairn_dbq_params(db, s->r.id, &s->params, &s->np, err, errlen);
  if (!rc)
    rc = cairn_dbq_kv(db, s->r.id, &s->kv, &s->nkv, err, errlen);
  if (!rc)
    rc = cairn_dbq_metrics(db, s->r.id, &s->m, &s->nm, err, errlen);
  if (!rc)
    rc = load_artifacts(db, s, err, errlen);
  return rc;
}

typedef struct {
  int json;
  int first;         /* first item of the current JSON list */
  size_t differ, equal;
} dctx;

static void section_begin(dctx *d, const char *name, int comma) {
  if (d->json)
    printf("%s\n\"%s\": {\"differ\": [", comma ? "," : "", name);
  d->first = 1;
}

static void section_end(dctx *d, const char *name, size_t differ, size_t equal) {
  if (d->json)
    printf("%s], \"equal\": %zu}", d->first ? "" : "\n  ", equal);
  else if (differ || equal)
    printf("%s: %zu differ, %zu equal\n", name, differ, equal);
  d->differ += differ;
  d->equal += equal;
}

static void item_begin(dctx *d) {
  if (d->json)
    printf("%s\n  {", d->first ? "" : ",");
  d->first = 0;
}

/* Run fields: only the differences. */
static void diff_run(dctx *d, const cairn_dbq_run *a, const cairn_dbq_run *b) {
  struct {
    const char *name;
    int64_t x, y;
  } f[] = {{"ranks", a->nranks, b->nranks},
           {"steps", a->steps, b->steps},
           {"samples", a->samples, b->samples},
           {"metrics", a->nmetrics, b->nmetrics},
           {"artifacts", a->artifacts, b->artifacts},
           {"executions", a->executions, b->executions},
           {"dropped", a->dropped, b->dropped},
           {"recovered_ranks", a->recovered_ranks, b->recovered_ranks}};
  size_t differ = 0, equal = 0;
  section_begin(d, "run", 1);
  const char *sa[][3] = {{"pipeline", a->pipeline, b->pipeline},
                         {"source", a->source, b->source},
                         {"cairn_version", a->cairn_version, b->cairn_version}};
  for (size_t i = 0; i < 3; i++) {
    if (!strcmp(sa[i][1], sa[i][2])) {
      equal++;
      continue;
    }
    differ++;
    item_begin(d);
    if (d->json) {
      printf("\"field\": \"%s\", \"a\": ", sa[i][0]);
      jstr(sa[i][1]);
      jkey("b", 1);
      jstr(sa[i][2]);
      printf("}");
    } else {
      printf("  run %s: A \"", sa[i][0]);
      esc(sa[i][1]);
      printf("\", B \"");
      esc(sa[i][2]);
      printf("\"\n");
    }
  }
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
    if (f[i].x == f[i].y) {
      equal++;
      continue;
    }
    differ++;
    item_begin(d);
    if (d->json)
      printf("\"field\": \"%s\", \"a\": %" PRId64 ", \"b\": %" PRId64 "}", f[i].name, f[i].x,
             f[i].y);
    else
      printf("  run %s: A %" PRId64 ", B %" PRId64 "\n", f[i].name, f[i].x, f[i].y);
  }
  section_end(d, "run", differ, equal);
}

/* Key/value lists, both sorted by key. */
static void diff_values(dctx *d, const char *name, const cairn_dbq_value *a, size_t na,
                        const cairn_dbq_value *b, size_t nb) {
  size_t i = 0, j = 0, differ = 0, equal = 0;
  section_begin(d, name, 1);
  while (i < na || j < nb) {
    int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].key, b[j].key);
    const cairn_dbq_value *x = c <= 0 ? &a[i] : NULL, *y = c >= 0 ? &b[j] : NULL;
    i += c <= 0;
    j += c >= 0;
    if (x && y && cairn_dbq_value_equal(x, y)) {
      equal++;
      continue;
    }
    differ++;
    item_begin(d);
    const char *key = x ? x->key : y->key;
    if (d->json) {
      printf("\"key\": ");
      jstr(key);
      jkey("a", 1);
      jvalue(x);
      jkey("b", 1);
      jvalue(y);
      printf("}");
    } else {
      printf("  %s ", name);
      esc(key);
      printf(": A ");
      tvalue(x);
      printf(", B ");
      tvalue(y);
      putchar('\n');
    }
  }
  section_end(d, name, differ, equal);
}

static int same_double(double x, double y) {
  return x == y || (isnan(x) && isnan(y));
}

static void diff_metrics(dctx *d, const side *A, const side *B) {
  size_t i = 0, j = 0, differ = 0, equal = 0;
  char bx[40], by[40];
  section_begin(d, "metrics", 1);
  while (i < A->nm || j < B->nm) {
    int c = i == A->nm ? 1 : j == B->nm ? -1 : strcmp(A->m[i].name, B->m[j].name);
    const cairn_dbq_metric *x = c <= 0 ? &A->m[i] : NULL, *y = c >= 0 ? &B->m[j] : NULL;
    i += c <= 0;
    j += c >= 0;
    if (x && y && same_double(x->last_mean, y->last_mean)) {
      equal++;
      continue;
    }
    differ++;
    item_begin(d);
    const char *name = x ? x->name : y->name;
    if (d->json) {
      printf("\"name\": ");
      jstr(name);
      jkey("a", 1);
      if (x)
        jnum(x->last_mean);
      else
        printf("null");
      jkey("b", 1);
      if (y)
        jnum(y->last_mean);
      else
        printf("null");
      printf(", \"in_a\": %s, \"in_b\": %s}", x ? "true" : "false", y ? "true" : "false");
    } else {
      printf("  metric ");
      esc(name);
      printf(" (final mean): A %s, B %s",
             x ? cairn_dbq_fmt_double(x->last_mean, bx) : "(absent)",
             y ? cairn_dbq_fmt_double(y->last_mean, by) : "(absent)");
      if (x && y && isfinite(x->last_mean) && isfinite(y->last_mean))
        printf(" (%+g)", y->last_mean - x->last_mean);
      putchar('\n');
    }
  }
  section_end(d, "metrics", differ, equal);
}

static void art_json(const struct art *x, const char *hash_key) {
  printf("\"role\": \"%s\", \"kind\": \"%s\", \"path\": ", x->role, cairn_db_artifact_type_name(x->kind));
  jstr(x->path);
  jkey(hash_key, 1);
  jstr(x->hash);
}

static void art_text(const char *tag, const struct art *x) {
  printf("  artifact %s: %s %s ", tag, x->role, cairn_db_artifact_type_name(x->kind));
  esc(x->path);
  printf("  ");
  if (*x->hash)
    esc(x->hash);
  else
    printf("(not hashed)");
  putchar('\n');
}

/* The content of an artifact: its hash, or for a URI recorded as given,
 * the URI itself. */
static const char *content(const struct art *x) {
  return *x->hash ? x->hash : x->path;
}

static void diff_artifacts(dctx *d, side *A, side *B) {
  size_t equal = 0, differ = 0;
  /* Equal: same role and content in both runs. */
  for (size_t i = 0; i < A->na; i++)
    for (size_t j = 0; j < B->na; j++)
      if (!B->a[j].matched && !strcmp(A->a[i].role, B->a[j].role) &&
          !strcmp(content(&A->a[i]), content(&B->a[j]))) {
        A->a[i].matched = B->a[j].matched = 1;
        equal++;
        break;
      }
  if (d->json)
    printf(",\n\"artifacts\": {\"changed\": [");
  d->first = 1;
  /* Changed: same role and path, different content. */
  for (size_t i = 0; i < A->na; i++) {
    if (A->a[i].matched)
      continue;
    for (size_t j = 0; j < B->na; j++) {
      if (B->a[j].matched || strcmp(A->a[i].role, B->a[j].role) ||
          strcmp(A->a[i].path, B->a[j].path))
        continue;
      A->a[i].matched = B->a[j].matched = 2;
      differ++;
      item_begin(d);
      if (d->json) {
        art_json(&A->a[i], "a_hash");
        jkey("b_hash", 1);
        jstr(B->a[j].hash);
        printf("}");
      } else {
        printf("  artifact changed: %s %s ", A->a[i].role, cairn_db_artifact_type_name(A->a[i].kind));
        esc(A->a[i].path);
        printf("\n    A ");
        esc(*A->a[i].hash ? A->a[i].hash : "(not hashed)");
        printf("\n    B ");
        esc(*B->a[j].hash ? B->a[j].hash : "(not hashed)");
        putchar('\n');
      }
      break;
    }
  }
  for (int k = 0; k < 2; k++) {
    side *s = k ? B : A;
    if (d->json)
      printf("%s], \"only_%s\": [", d->first ? "" : "\n  ", k ? "b" : "a");
    d->first = 1;
    for (size_t i = 0; i < s->na; i++) {
      if (s->a[i].matched)
        continue;
      differ++;
      item_begin(d);
      if (d->json) {
        art_json(&s->a[i], "hash");
        printf("}");
      } else {
        art_text(k ? "only in B" : "only in A", &s->a[i]);
      }
    }
  }
  section_end(d, "artifacts", differ, equal);
}

int cairn_cmd_diff(int argc, char **argv) {
  const char *dbopt = NULL, *runs[2] = {NULL, NULL};
  int json = 0, nruns = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      diff_usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--db", &dbopt)) {
      if (!dbopt) {
        fprintf(stderr, "cairn diff: --db needs a path\n");
        return 2;
      }
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "cairn diff: unknown option '%s' (see `cairn diff --help`)\n", argv[i]);
      return 2;
    } else if (nruns == 2) {
      fprintf(stderr, "cairn diff: two runs only (see `cairn diff --help`)\n");
      return 2;
    } else {
      runs[nruns++] = argv[i];
    }
  }
  if (nruns != 2) {
    fprintf(stderr, "cairn diff: two runs needed, RUN_A and RUN_B (see `cairn diff --help`)\n");
    return 2;
  }
  sqlite3 *db = NULL;
  side A, B;
  memset(&A, 0, sizeof A);
  memset(&B, 0, sizeof B);
  int rc = open_run("diff", dbopt, runs[0], &db, &A.r);
  if (!rc)
    rc = open_run("diff", dbopt, runs[1], &db, &B.r);
  char err[1024];
  if (!rc && (load_side(db, &A, err, sizeof err) || load_side(db, &B, err, sizeof err))) {
    fprintf(stderr, "cairn diff: %s\n", err);
    rc = 1;
  }
  if (!rc) {
    dctx d = {json, 1, 0, 0};
    if (json) {
      printf("{\"a\": ");
      jstr(A.r.uuid);
      jkey("b", 1);
      jstr(B.r.uuid);
    } else {
      printf("diff A %s\n     B %s\n", A.r.uuid, B.r.uuid);
    }
    diff_run(&d, &A.r, &B.r);
    diff_values(&d, "params", A.params, A.np, B.params, B.np);
    diff_values(&d, "metadata", A.kv, A.nkv, B.kv, B.nkv);
    diff_metrics(&d, &A, &B);
    diff_artifacts(&d, &A, &B);
    if (json)
      printf(",\n\"differences\": %zu, \"equal\": %zu}\n", d.differ, d.equal);
    else if (!d.differ)
      printf("no differences; %zu equal items\n", d.equal);
    else
      printf("%zu difference%s shown; %zu equal items not shown\n", d.differ,
             d.differ == 1 ? "" : "s", d.equal);
  }
  side_free(&A);
  side_free(&B);
  cairn_db_close(db);
  return rc;
}
