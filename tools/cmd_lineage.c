/*
 * cmd_lineage.c — `cairn lineage` (the lineage DAG of an artifact or a run,
 * as a text tree, Graphviz DOT or JSON) and `cairn export` (a run's lineage
 * in the JSON shape the Common Metadata Framework exports: Pipeline ->
 * stages -> executions -> events -> artifact, as cmflib's dumptojson writes
 * it, so that CMF's merger can read it).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "cli.h"
#include "db/db_lineage.h"
#include "tool_common.h"
#include "util.h"

/* ---------------------------------------------------------------------- */
/* cairn lineage                                                           */
/* ---------------------------------------------------------------------- */

static void lineage_usage(FILE *f) {
  fprintf(f,
          "usage: cairn lineage ARTIFACT_OR_RUN [--up|--down] [--depth N] [--dot|--json]\n"
          "                     [--db PATH]\n"
          "  The lineage DAG of an artifact or a run, across runs: upstream (--up: the\n"
          "  executions that wrote it and what they read, recursively), downstream\n"
          "  (--down: what read it and what that wrote), or both (the default).\n"
          "  ARTIFACT_OR_RUN is one of\n"
          "    a path or URI as logged (relative paths are also tried as absolute)\n"
          "    a content hash (cairn-merkle-sha256-v1:<hex>) or a unique prefix of its\n"
          "      hex digits (at least 6)\n"
          "    artifact:N  the artifact with MLMD id N\n"
          "    a run UUID or a unique prefix (at least 4 hex digits): the walk starts at\n"
          "      every execution and artifact of the run\n"
          "  --depth N  at most N edges from the start (2: the producing executions and\n"
          "             their inputs); default no limit\n"
          "  --dot      a Graphviz digraph (`dot -Tsvg`); --json nodes and edges\n"
          "  --db PATH  the database (default $CAIRN_DB or ./cairn.db)\n"
          "Exit status: 0 shown, 1 no such run or artifact (or an ambiguous prefix),\n"
          "2 usage error or the database cannot be opened.\n");
}

typedef struct {
  const cairn_db_lineage_graph *g;
  size_t *in_off, *in_idx;   /* CSR: edges into node i                         */
  size_t *out_off, *out_idx; /* CSR: edges out of node i                       */
  unsigned char *shown;
} tree_ctx;

static int build_csr(tree_ctx *t) {
  const cairn_db_lineage_graph *g = t->g;
  size_t n = g->nnodes, m = g->nedges;
  t->in_off = calloc(n + 1, sizeof *t->in_off);
  t->out_off = calloc(n + 1, sizeof *t->out_off);
  t->in_idx = malloc((m + 1) * sizeof *t->in_idx);
  t->out_idx = malloc((m + 1) * sizeof *t->out_idx);
  t->shown = calloc(n + 1, 1);
  if (!t->in_off || !t->out_off || !t->in_idx || !t->out_idx || !t->shown)
    return CAIRN_ENOMEM;
  for (size_t e = 0; e < m; e++) {
    t->in_off[g->edges[e].to + 1]++;
    t->out_off[g->edges[e].from + 1]++;
  }
  for (size_t i = 0; i < n; i++) {
    t->in_off[i + 1] += t->in_off[i];
    t->out_off[i + 1] += t->out_off[i];
  }
  size_t *ip = calloc(n + 1, sizeof *ip), *op = calloc(n + 1, sizeof *op);
  if (!ip || !op) {
    free(ip);
    free(op);
    return CAIRN_ENOMEM;
  }
  for (size_t e = 0; e < m; e++) {
    size_t to = g->edges[e].to, from = g->edges[e].from;
    t->in_idx[t->in_off[to] + ip[to]++] = e;
    t->out_idx[t->out_off[from] + op[from]++] = e;
  }
  free(ip);
  free(op);
  return CAIRN_OK;
}

static void free_csr(tree_ctx *t) {
  free(t->in_off);
  free(t->out_off);
  free(t->in_idx);
  free(t->out_idx);
  free(t->shown);
}

static const char *short_hash(const char *uri) {
  const char *c = strrchr(uri, ':');
  return c && strstr(uri, "sha256") ? c + 1 : uri;
}

static void node_text(FILE *f, const cairn_db_lineage_node *n) {
  if (n->kind == CAIRN_DB_NODE_ARTIFACT) {
    cairn_tool_fput_text(f, n->type);
    fputc(' ', f);
    cairn_tool_fput_text(f, *n->path ? n->path : n->name);
    fprintf(f, "  [artifact %" PRId64, n->id);
    if (strstr(n->uri, "sha256")) {
      fputs(", ", f);
      const char *h = short_hash(n->uri);
      fprintf(f, "%.12s", h);
    }
    fputc(']', f);
  } else {
    fputs("execution ", f);
    cairn_tool_fput_text(f, *n->label ? n->label : n->name);
    fprintf(f, "  [execution %" PRId64, n->id);
    if (*n->run) {
      fputs(", run ", f);
      cairn_tool_fput_text(f, n->run);
    }
    if (*n->stage) {
      fputs(", stage ", f);
      cairn_tool_fput_text(f, n->stage);
    }
    if (n->rank >= 0)
      fprintf(f, ", rank %d", n->rank);
    fputc(']', f);
  }
}

/* Prints the subtree of node i in direction dir (UP: what it came from;
 * DOWN: what came from it); a node already printed is named, not repeated. */
static void tree(FILE *f, tree_ctx *t, size_t i, unsigned dir, char *prefix, size_t plen,
                 size_t cap) {
  const cairn_db_lineage_graph *g = t->g;
  size_t lo = dir == CAIRN_DB_LINEAGE_UP ? t->in_off[i] : t->out_off[i];
  size_t hi = dir == CAIRN_DB_LINEAGE_UP ? t->in_off[i + 1] : t->out_off[i + 1];
  size_t last = 0;
  for (size_t k = lo; k < hi; k++) {
    size_t e = dir == CAIRN_DB_LINEAGE_UP ? t->in_idx[k] : t->out_idx[k];
    size_t j = dir == CAIRN_DB_LINEAGE_UP ? g->edges[e].from : g->edges[e].to;
    if (g->nodes[j].dirs & dir)
      last = k;
  }
  for (size_t k = lo; k < hi; k++) {
    size_t e = dir == CAIRN_DB_LINEAGE_UP ? t->in_idx[k] : t->out_idx[k];
    size_t j = dir == CAIRN_DB_LINEAGE_UP ? g->edges[e].from : g->edges[e].to;
    if (!(g->nodes[j].dirs & dir))
      continue;
    int is_last = k == last;
    fprintf(f, "%.*s%s", (int)plen, prefix, is_last ? "`-- " : "|-- ");
    node_text(f, &g->nodes[j]);
    if (t->shown[j]) {
      fputs(" (see above)\n", f);
      continue;
    }
    fputc('\n', f);
    t->shown[j] = 1;
    if (plen + 4 < cap) {
      memcpy(prefix + plen, is_last ? "    " : "|   ", 4);
      tree(f, t, j, dir, prefix, plen + 4, cap);
    } else {
      fprintf(f, "%.*s    ...\n", (int)plen, prefix);
    }
  }
}

static void print_tree(FILE *f, const cairn_db_lineage_graph *g, int direction, int max_depth) {
  tree_ctx t = {g, NULL, NULL, NULL, NULL, NULL};
  if (build_csr(&t)) {
    free_csr(&t);
    fprintf(stderr, "cairn lineage: out of memory\n");
    return;
  }
  static const unsigned dirs[2] = {CAIRN_DB_LINEAGE_UP, CAIRN_DB_LINEAGE_DOWN};
  char prefix[4 * 64 + 8];
  for (int d = 0; d < 2; d++) {
    if (!(direction & (int)dirs[d]))
      continue;
    memset(t.shown, 0, g->nnodes + 1);
    size_t nedges = 0;
    for (size_t e = 0; e < g->nedges; e++)
      if (g->nodes[g->edges[e].from].dirs & g->nodes[g->edges[e].to].dirs & dirs[d])
        nedges++;
    fprintf(f, "%s:\n", d == 0 ? "upstream (what it was made from)"
                                   : "downstream (what was made from it)");
    for (size_t i = 0; i < g->nstart; i++) {
      size_t lo = d == 0 ? t.in_off[i] : t.out_off[i];
      size_t hi = d == 0 ? t.in_off[i + 1] : t.out_off[i + 1];
      /* A run's members with nothing to show in this direction are left out
       * (they appear inside the others' trees). */
      if (g->nstart > 1 && (lo == hi || t.shown[i]))
        continue;
      node_text(f, &g->nodes[i]);
      if (t.shown[i]) {
        fputs(" (see above)\n", f);
        continue;
      }
      fputc('\n', f);
      t.shown[i] = 1;
      tree(f, &t, i, dirs[d], prefix, 0, sizeof prefix - 8);
    }
    if (nedges == 0)
      fprintf(f, "  (nothing %s)\n", d == 0 ? "upstream" : "downstream");
  }
  if (g->truncated)
    fprintf(f, "(stopped at depth %d: --depth N to see further)\n", max_depth);
  free_csr(&t);
}

/* A DOT double-quoted string: quotes and backslashes escaped (so that no
 * \N, \G, \l escapes of Graphviz apply), control characters dropped. */
static void dot_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\')
      fputc('\\', f);
    if (*p < 0x20 || *p == 0x7f)
      continue;
    fputc(*p, f);
  }
  fputc('"', f);
}

/* The label as one string: lines joined by "\n" (DOT's line break). */
static void dot_node(FILE *f, const cairn_db_lineage_node *n, int start) {
  char idbuf[48];
  size_t cap = 1024, len = 0;
  char *lab = malloc(cap);
  if (!lab)
    return;
  lab[0] = '\0';
#define APPEND(...)                                                                             \
  do {                                                                                          \
    int w_ = snprintf(lab + len, cap - len, __VA_ARGS__);                                       \
    if (w_ > 0 && (size_t)w_ >= cap - len) {                                                    \
      size_t nc_ = len + (size_t)w_ + 256;                                                      \
      char *nl_ = realloc(lab, nc_);                                                            \
      if (!nl_)                                                                                 \
        break;                                                                                  \
      lab = nl_;                                                                                \
      cap = nc_;                                                                                \
      w_ = snprintf(lab + len, cap - len, __VA_ARGS__);                                         \
    }                                                                                           \
    if (w_ > 0)                                                                                 \
      len += (size_t)w_;                                                                        \
  } while (0)
  if (n->kind == CAIRN_DB_NODE_ARTIFACT) {
    snprintf(idbuf, sizeof idbuf, "a%" PRId64, n->id);
    APPEND("%s\n%s", n->type, *n->path ? n->path : n->name);
    if (strstr(n->uri, "sha256"))
      APPEND("\n%.12s", short_hash(n->uri));
  } else {
    snprintf(idbuf, sizeof idbuf, "x%" PRId64, n->id);
    APPEND("%s", *n->label ? n->label : n->name);
    if (*n->stage)
      APPEND("\nstage %s", n->stage);
    if (*n->run)
      APPEND("\nrun %.8s", n->run);
    if (n->rank >= 0)
      APPEND(" rank %d", n->rank);
  }
#undef APPEND
  fprintf(f, "  %s [shape=%s, label=", idbuf,
          n->kind == CAIRN_DB_NODE_ARTIFACT ? "ellipse" : "box");
  /* dot_str drops newlines: emit line by line with DOT's \n between. */
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)lab; *p; p++) {
    if (*p == '\n') {
      fputs("\\n", f);
      continue;
    }
    if (*p == '"' || *p == '\\')
      fputc('\\', f);
    if (*p < 0x20 || *p == 0x7f)
      continue;
    fputc(*p, f);
  }
  fputc('"', f);
  fputs(", tooltip=", f);
  dot_str(f, n->name);
  if (start)
    fputs(", style=\"bold,filled\", fillcolor=\"#ffe9a8\"", f);
  fputs("];\n", f);
  free(lab);
}

static void print_dot(FILE *f, const cairn_db_lineage_graph *g) {
  fputs("digraph lineage {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
        f);
  for (size_t i = 0; i < g->nnodes; i++)
    dot_node(f, &g->nodes[i], i < g->nstart);
  for (size_t e = 0; e < g->nedges; e++) {
    const cairn_db_lineage_node *a = &g->nodes[g->edges[e].from], *b = &g->nodes[g->edges[e].to];
    fprintf(f, "  %c%" PRId64 " -> %c%" PRId64 " [label=\"%s\"];\n",
            a->kind == CAIRN_DB_NODE_ARTIFACT ? 'a' : 'x', a->id,
            b->kind == CAIRN_DB_NODE_ARTIFACT ? 'a' : 'x', b->id,
            g->edges[e].type == CAIRN_DB_EVENT_INPUT ? "input" : "output");
  }
  fputs("}\n", f);
}

static void print_json(FILE *f, const cairn_db_lineage_graph *g, const char *start,
                       int direction, int max_depth) {
  fputs("{\"start\": ", f);
  cairn_cli_json_str(f, start);
  fprintf(f, ", \"direction\": \"%s\", \"depth\": ",
          direction == CAIRN_DB_LINEAGE_BOTH ? "both"
          : direction == CAIRN_DB_LINEAGE_UP ? "up"
                                              : "down");
  if (max_depth > 0)
    fprintf(f, "%d", max_depth);
  else
    fputs("null", f);
  fprintf(f, ", \"truncated\": %s,\n \"nodes\": [", g->truncated ? "true" : "false");
  for (size_t i = 0; i < g->nnodes; i++) {
    const cairn_db_lineage_node *n = &g->nodes[i];
    int art = n->kind == CAIRN_DB_NODE_ARTIFACT;
    fprintf(f, "%s\n  {\"id\": \"%c%" PRId64 "\", \"kind\": \"%s\", \"mlmd_id\": %" PRId64,
            i ? "," : "", art ? 'a' : 'x', n->id, art ? "artifact" : "execution", n->id);
    fputs(", \"type\": ", f);
    cairn_cli_json_str(f, n->type);
    fputs(", \"name\": ", f);
    cairn_cli_json_str(f, n->name);
    if (art) {
      fputs(", \"uri\": ", f);
      cairn_cli_json_str(f, n->uri);
      fputs(", \"path\": ", f);
      cairn_cli_json_str(f, n->path);
      fprintf(f, ", \"state\": %d", n->state);
    } else {
      fputs(", \"run\": ", f);
      cairn_cli_json_str(f, n->run);
      fputs(", \"label\": ", f);
      cairn_cli_json_str(f, n->label);
      fputs(", \"stage\": ", f);
      cairn_cli_json_str(f, n->stage);
      fprintf(f, ", \"rank\": %d", n->rank);
    }
    fprintf(f, ", \"depth\": %d, \"up\": %s, \"down\": %s, \"start\": %s}", n->depth,
            n->dirs & CAIRN_DB_LINEAGE_UP ? "true" : "false",
            n->dirs & CAIRN_DB_LINEAGE_DOWN ? "true" : "false", i < g->nstart ? "true" : "false");
  }
  fputs("\n ],\n \"edges\": [", f);
  for (size_t e = 0; e < g->nedges; e++) {
    const cairn_db_lineage_node *a = &g->nodes[g->edges[e].from], *b = &g->nodes[g->edges[e].to];
    fprintf(f, "%s\n  {\"from\": \"%c%" PRId64 "\", \"to\": \"%c%" PRId64 "\", \"type\": \"%s\"}",
            e ? "," : "", a->kind == CAIRN_DB_NODE_ARTIFACT ? 'a' : 'x', a->id,
            b->kind == CAIRN_DB_NODE_ARTIFACT ? 'a' : 'x', b->id,
            g->edges[e].type == CAIRN_DB_EVENT_INPUT ? "INPUT" : "OUTPUT");
  }
  fputs("\n ]}\n", f);
}

int cairn_cmd_lineage(int argc, char **argv) {
  const char *dbopt = NULL, *target = NULL, *v;
  int direction = 0, max_depth = 0, fmt = 0; /* 0 text, 1 dot, 2 json */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      lineage_usage(stdout);
      return 0;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--db", &v)) {
      if (!v) {
        fprintf(stderr, "cairn lineage: --db needs a path\n");
        return 2;
      }
      dbopt = v;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--depth", &v)) {
      char *end = NULL;
      long d = v ? strtol(v, &end, 10) : -1;
      if (!v || !*v || *end || d < 0 || d > 1000000) {
        fprintf(stderr, "cairn lineage: --depth needs a number of edges (0: no limit)\n");
        return 2;
      }
      max_depth = (int)d;
    } else if (!strcmp(argv[i], "--up")) {
      direction |= CAIRN_DB_LINEAGE_UP;
    } else if (!strcmp(argv[i], "--down")) {
      direction |= CAIRN_DB_LINEAGE_DOWN;
    } else if (!strcmp(argv[i], "--dot")) {
      fmt = 1;
    } else if (!strcmp(argv[i], "--json")) {
      fmt = 2;
    } else if (cairn_cli_target("lineage", "artifact or run", argc, argv, &i, &target)) {
      return 2;
    }
  }
  if (!target) {
    fprintf(stderr, "cairn lineage: no artifact or run given (see `cairn lineage --help`)\n");
    return 2;
  }
  if (!direction)
    direction = CAIRN_DB_LINEAGE_BOTH;
  sqlite3 *db = cairn_cli_open_db("lineage", cairn_cli_db_path(dbopt));
  if (!db)
    return 2;
  cairn_db_lineage_start s = {CAIRN_DB_START_AUTO, target, 0};
  cairn_db_lineage_graph g;
  char err[1024];
  int rc = cairn_db_lineage(db, &s, direction, max_depth, &g, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn lineage: %s\n", err);
    cairn_db_close(db);
    return rc == CAIRN_ENOTFOUND || rc == CAIRN_EINVAL ? 1 : 2;
  }
  if (fmt == 1)
    print_dot(stdout, &g);
  else if (fmt == 2)
    print_json(stdout, &g, target, direction, max_depth);
  else
    print_tree(stdout, &g, direction, max_depth);
  cairn_db_lineage_free(&g);
  cairn_db_close(db);
  if (fflush(stdout) || ferror(stdout)) {
    fprintf(stderr, "cairn lineage: cannot write the output\n");
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* cairn export                                                            */
/* ---------------------------------------------------------------------- */

static void export_usage(FILE *f) {
  fprintf(f,
          "usage: cairn export RUN --format cmf-json [-o FILE] [--db PATH]\n"
          "  Writes a run's lineage in the JSON shape the Common Metadata Framework\n"
          "  exports (cmflib's dumptojson; CMF's merger reads it):\n"
          "    {\"Pipeline\": [{name, stages: [{name, executions: [{name, type,\n"
          "      properties, custom_properties, events: [{type, artifact: {name, uri,\n"
          "      type, properties, custom_properties}}]}]}]}]}\n"
          "  with MLMD's ids, type ids and times on every node, and event type 3 for\n"
          "  INPUT, 4 for OUTPUT, as MLMD numbers them. Stages are the run's\n"
          "  Pipeline_Stage contexts; artifacts logged outside any execution appear in\n"
          "  a stage named after the run (its cairn_Run context).\n"
          "  RUN       a run UUID or a unique prefix (at least 4 hex digits)\n"
          "  --format  cmf-json (the only format)\n"
          "  -o FILE   write to FILE (default standard output)\n"
          "  --db PATH the database (default $CAIRN_DB or ./cairn.db)\n"
          "Exit status: 0 written, 1 no such run, 2 usage error or the database cannot\n"
          "be opened.\n");
}

typedef struct {
  sqlite3 *db;
  FILE *f;
  sqlite3_stmt *props[3];  /* Artifact, Execution, Context properties */
  sqlite3_stmt *events;    /* events of an execution                   */
  sqlite3_stmt *artifact;  /* one artifact with its type name          */
  sqlite3_stmt *execution; /* one execution with its type name         */
  sqlite3_stmt *context;   /* one context with its type name           */
  int failed;
} exporter;

static void json_double(FILE *f, double d) {
  if (isfinite(d))
    fprintf(f, "%.17g", d);
  else
    cairn_cli_json_str(f, isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
}

/* Writes "properties": {...}, "custom_properties": {...} of node id from
 * the property table kind (0 Artifact, 1 Execution, 2 Context). */
static void put_props(exporter *x, int kind, int64_t id) {
  sqlite3_stmt *st = x->props[kind];
  for (int custom = 0; custom < 2; custom++) {
    fprintf(x->f, ", \"%s\": {", custom ? "custom_properties" : "properties");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, custom);
    int n = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(st, 0);
      /* CMF renames a custom property "type" to "user_type" (it would
       * collide with the node's type). */
      fputs(n++ ? ", " : "", x->f);
      cairn_cli_json_str(x->f, custom && name && !strcmp(name, "type") ? "user_type" : name);
      fputs(": ", x->f);
      if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        fprintf(x->f, "%" PRId64, (int64_t)sqlite3_column_int64(st, 1));
      else if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        json_double(x->f, sqlite3_column_double(st, 2));
      else if (sqlite3_column_type(st, 3) != SQLITE_NULL)
        cairn_cli_json_str(x->f, (const char *)sqlite3_column_text(st, 3));
      else if (sqlite3_column_type(st, 4) != SQLITE_NULL)
        fputs(sqlite3_column_int(st, 4) ? "true" : "false", x->f);
      else
        fputs("null", x->f);
    }
    if (s != SQLITE_DONE)
      x->failed = 1;
    sqlite3_reset(st);
    fputc('}', x->f);
  }
}

/* The common MLMD attributes: id, type_id, type, name, times; st is
 * positioned on a row of (id, type_id, type name, name, create, update). */
static void put_node_head(exporter *x, sqlite3_stmt *st) {
  fprintf(x->f, "\"id\": %" PRId64 ", \"type_id\": %" PRId64 ", \"type\": ",
          (int64_t)sqlite3_column_int64(st, 0), (int64_t)sqlite3_column_int64(st, 1));
  cairn_cli_json_str(x->f, (const char *)sqlite3_column_text(st, 2));
  fputs(", \"name\": ", x->f);
  cairn_cli_json_str(x->f, (const char *)sqlite3_column_text(st, 3));
  fprintf(x->f, ", \"create_time_since_epoch\": %" PRId64
                ", \"last_update_time_since_epoch\": %" PRId64,
          (int64_t)sqlite3_column_int64(st, 4), (int64_t)sqlite3_column_int64(st, 5));
}

static int put_context_head(exporter *x, int64_t ctx) {
  sqlite3_bind_int64(x->context, 1, ctx);
  int ok = sqlite3_step(x->context) == SQLITE_ROW;
  if (ok)
    put_node_head(x, x->context);
  sqlite3_reset(x->context);
  if (ok)
    put_props(x, 2, ctx);
  return ok;
}

static void put_artifact(exporter *x, int64_t aid) {
  fputs("{", x->f);
  sqlite3_bind_int64(x->artifact, 1, aid);
  if (sqlite3_step(x->artifact) == SQLITE_ROW) {
    put_node_head(x, x->artifact);
    fputs(", \"uri\": ", x->f);
    cairn_cli_json_str(x->f, (const char *)sqlite3_column_text(x->artifact, 6));
    fprintf(x->f, ", \"state\": %d", sqlite3_column_int(x->artifact, 7));
  } else {
    x->failed = 1;
  }
  sqlite3_reset(x->artifact);
  put_props(x, 0, aid);
  fputs("}", x->f);
}

static void put_execution(exporter *x, int64_t xid, int first) {
  fprintf(x->f, "%s\n      {", first ? "" : ",");
  sqlite3_bind_int64(x->execution, 1, xid);
  if (sqlite3_step(x->execution) == SQLITE_ROW) {
    put_node_head(x, x->execution);
    fprintf(x->f, ", \"last_known_state\": %d", sqlite3_column_int(x->execution, 6));
  } else {
    x->failed = 1;
  }
  sqlite3_reset(x->execution);
  put_props(x, 1, xid);
  fputs(", \"events\": [", x->f);
  sqlite3_bind_int64(x->events, 1, xid);
  int n = 0, s;
  while ((s = sqlite3_step(x->events)) == SQLITE_ROW) {
    int64_t aid = sqlite3_column_int64(x->events, 0);
    int type = sqlite3_column_int(x->events, 1);
    fprintf(x->f, "%s\n        {\"type\": %d, \"artifact_id\": %" PRId64
                  ", \"execution_id\": %" PRId64 ", \"milliseconds_since_epoch\": %" PRId64
                  ", \"artifact\": ",
            n++ ? "," : "", type, aid, xid, (int64_t)sqlite3_column_int64(x->events, 2));
    put_artifact(x, aid);
    fputs("}", x->f);
  }
  if (s != SQLITE_DONE)
    x->failed = 1;
  sqlite3_reset(x->events);
  fputs("]}", x->f);
}

static int export_run(sqlite3 *db, int64_t run_id, FILE *f, char *err, size_t errlen) {
  exporter x;
  memset(&x, 0, sizeof x);
  x.db = db;
  x.f = f;
  /* The run's pipelines (a run's stages may belong to more than one), its
   * stages (contexts) with their executions, in MLMD id order. */
  sqlite3_stmt *pipes = NULL, *stages = NULL, *execs = NULL, *runrow = NULL, *loose = NULL;
  const struct {
    sqlite3_stmt **st;
    const char *sql;
  } run_sql[] = {
      {&pipes, "SELECT DISTINCT p.id FROM cairn_stage s"
               " JOIN ParentContext pc ON pc.context_id = s.context_id"
               " JOIN Context p ON p.id = pc.parent_context_id"
               " WHERE s.run_id = ?1"
               " UNION SELECT pc.parent_context_id FROM cairn_run r"
               " JOIN ParentContext pc ON pc.context_id = r.context_id"
               " WHERE r.id = ?1 ORDER BY 1"},
      {&stages, "SELECT DISTINCT s.context_id FROM cairn_stage s"
                " JOIN ParentContext pc ON pc.context_id = s.context_id"
                " WHERE s.run_id = ?1 AND pc.parent_context_id = ?2 ORDER BY 1"},
      {&execs, "SELECT DISTINCT ce.execution_id FROM cairn_execution ce"
               " JOIN cairn_stage s ON s.run_id = ce.run_id"
               "  AND s.lineage_id = ce.stage_lineage_id"
               " WHERE ce.run_id = ?1 AND s.context_id = ?2 ORDER BY 1"},
      {&runrow, "SELECT r.context_id, r.execution_id,"
                " (SELECT count(*) FROM Event WHERE execution_id = r.execution_id),"
                " (SELECT pc.parent_context_id FROM ParentContext pc"
                "  WHERE pc.context_id = r.context_id LIMIT 1)"
                " FROM cairn_run r WHERE r.id = ?1"},
      /* Executions of the run in no known stage (their stage record was lost). */
      {&loose, "SELECT ce.execution_id FROM cairn_execution ce WHERE ce.run_id = ?1"
               " AND NOT EXISTS (SELECT 1 FROM cairn_stage s WHERE s.run_id ="
               " ce.run_id AND s.lineage_id = ce.stage_lineage_id) ORDER BY 1"}};
  const struct {
    sqlite3_stmt **st;
    const char *sql;
  } item_sql[] = {
      {&x.props[0], "SELECT name, int_value, double_value, string_value, bool_value"
                     " FROM ArtifactProperty WHERE artifact_id = ?1 AND is_custom_property = ?2"
                     " ORDER BY name"},
      {&x.props[1], "SELECT name, int_value, double_value, string_value, bool_value"
                     " FROM ExecutionProperty WHERE execution_id = ?1 AND is_custom_property = ?2"
                     " ORDER BY name"},
      {&x.props[2], "SELECT name, int_value, double_value, string_value, bool_value"
                     " FROM ContextProperty WHERE context_id = ?1 AND is_custom_property = ?2"
                     " ORDER BY name"},
      {&x.events, "SELECT artifact_id, type, milliseconds_since_epoch FROM Event"
                  " WHERE execution_id = ?1 ORDER BY id"},
      {&x.artifact, "SELECT a.id, a.type_id, t.name, a.name, a.create_time_since_epoch,"
                    " a.last_update_time_since_epoch, a.uri, a.state FROM Artifact a"
                    " LEFT JOIN Type t ON t.id = a.type_id WHERE a.id = ?1"},
      {&x.execution, "SELECT e.id, e.type_id, t.name, e.name, e.create_time_since_epoch,"
                     " e.last_update_time_since_epoch, e.last_known_state FROM Execution e"
                     " LEFT JOIN Type t ON t.id = e.type_id WHERE e.id = ?1"},
      {&x.context, "SELECT c.id, c.type_id, t.name, c.name, c.create_time_since_epoch,"
                   " c.last_update_time_since_epoch FROM Context c"
                   " LEFT JOIN Type t ON t.id = c.type_id WHERE c.id = ?1"}};
  /* Prepared in order, stopping at the first that fails, so that the
   * message is that statement's. */
  int ok = 1;
  for (size_t k = 0; ok && k < sizeof item_sql / sizeof *item_sql; k++)
    ok = sqlite3_prepare_v2(db, item_sql[k].sql, -1, item_sql[k].st, NULL) == SQLITE_OK;
  for (size_t k = 0; ok && k < sizeof run_sql / sizeof *run_sql; k++)
    ok = sqlite3_prepare_v2(db, run_sql[k].sql, -1, run_sql[k].st, NULL) == SQLITE_OK;
  int rc = CAIRN_OK;
  if (!ok) {
    cairn__fmt(err, errlen, "%s: prepare: %s", sqlite3_db_filename(db, "main"),
               sqlite3_errmsg(db));
    rc = CAIRN_EIO;
    goto out;
  }
  int64_t run_ctx = 0, run_exec = 0, run_events = 0, run_pipe = 0;
  sqlite3_bind_int64(runrow, 1, run_id);
  if (sqlite3_step(runrow) == SQLITE_ROW) {
    run_ctx = sqlite3_column_int64(runrow, 0);
    run_exec = sqlite3_column_int64(runrow, 1);
    run_events = sqlite3_column_int64(runrow, 2);
    run_pipe = sqlite3_column_int64(runrow, 3);
  }
  fputs("{\"Pipeline\": [", f);
  sqlite3_bind_int64(pipes, 1, run_id);
  int np = 0;
  while (sqlite3_step(pipes) == SQLITE_ROW) {
    int64_t pid = sqlite3_column_int64(pipes, 0);
    fprintf(f, "%s\n {", np++ ? "," : "");
    if (!put_context_head(&x, pid))
      x.failed = 1;
    fputs(", \"stages\": [", f);
    int ns = 0;
    sqlite3_bind_int64(stages, 1, run_id);
    sqlite3_bind_int64(stages, 2, pid);
    /* Stage ids first: the statements below reuse the connection. */
    int64_t *sids = NULL;
    size_t nsids = 0, cap = 0;
    while (sqlite3_step(stages) == SQLITE_ROW) {
      if (nsids == cap) {
        cap = cap ? cap * 2 : 8;
        int64_t *p = realloc(sids, cap * sizeof *p);
        if (!p) {
          x.failed = 1;
          break;
        }
        sids = p;
      }
      sids[nsids++] = sqlite3_column_int64(stages, 0);
    }
    sqlite3_reset(stages);
    for (size_t k = 0; k < nsids; k++) {
      fprintf(f, "%s\n   {", ns++ ? "," : "");
      put_context_head(&x, sids[k]);
      fputs(", \"executions\": [", f);
      sqlite3_bind_int64(execs, 1, run_id);
      sqlite3_bind_int64(execs, 2, sids[k]);
      int ne = 0;
      while (sqlite3_step(execs) == SQLITE_ROW)
        put_execution(&x, sqlite3_column_int64(execs, 0), ne++ == 0);
      sqlite3_reset(execs);
      fputs("]}", f);
    }
    free(sids);
    /* The run's own context as a stage, holding the execution standing for
     * the whole run when it has events (artifacts logged outside any
     * execution) and executions whose stage is unknown. */
    if (pid == run_pipe) {
      sqlite3_bind_int64(loose, 1, run_id);
      int have_loose = sqlite3_step(loose) == SQLITE_ROW;
      if (run_events > 0 || have_loose) {
        fprintf(f, "%s\n   {", ns++ ? "," : "");
        put_context_head(&x, run_ctx);
        fputs(", \"executions\": [", f);
        int ne = 0;
        if (run_events > 0)
          put_execution(&x, run_exec, ne++ == 0);
        while (have_loose) {
          put_execution(&x, sqlite3_column_int64(loose, 0), ne++ == 0);
          have_loose = sqlite3_step(loose) == SQLITE_ROW;
        }
        fputs("]}", f);
      }
      sqlite3_reset(loose);
    }
    fputs("]}", f);
  }
  fputs("\n]}\n", f);
  if (x.failed) {
    cairn__fmt(err, errlen, "%s: reading the run's lineage failed: %s",
               sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
    rc = CAIRN_EIO;
  }
out:
  for (int k = 0; k < 3; k++)
    sqlite3_finalize(x.props[k]);
  sqlite3_finalize(x.events);
  sqlite3_finalize(x.artifact);
  sqlite3_finalize(x.execution);
  sqlite3_finalize(x.context);
  sqlite3_finalize(pipes);
  sqlite3_finalize(stages);
  sqlite3_finalize(execs);
  sqlite3_finalize(runrow);
  sqlite3_finalize(loose);
  return rc;
}

int cairn_cmd_export(int argc, char **argv) {
  const char *dbopt = NULL, *run = NULL, *format = NULL, *out = NULL, *v;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      export_usage(stdout);
      return 0;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--db", &v)) {
      if (!v) {
        fprintf(stderr, "cairn export: --db needs a path\n");
        return 2;
      }
      dbopt = v;
    } else if (cairn_cli_opt_value(argc, argv, &i, "--format", &v)) {
      if (!v) {
        fprintf(stderr, "cairn export: --format needs a format (cmf-json)\n");
        return 2;
      }
      format = v;
    } else if (cairn_cli_opt_value(argc, argv, &i, "-o", &v) || cairn_cli_opt_value(argc, argv, &i, "--output", &v)) {
      if (!v) {
        fprintf(stderr, "cairn export: -o needs a file name\n");
        return 2;
      }
      out = v;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "cairn export: unknown option '%s' (see `cairn export --help`)\n",
              argv[i]);
      return 2;
    } else if (run) {
      fprintf(stderr, "cairn export: one run at a time ('%s' and '%s')\n", run, argv[i]);
      return 2;
    } else {
      run = argv[i];
    }
  }
  if (!run) {
    fprintf(stderr, "cairn export: no run given (see `cairn export --help`)\n");
    return 2;
  }
  if (!format || strcmp(format, "cmf-json")) {
    fprintf(stderr, "cairn export: %s%s%s (the format is cmf-json: --format cmf-json)\n",
            format ? "unknown format '" : "no --format given", format ? format : "",
            format ? "'" : "");
    return 2;
  }
  sqlite3 *db = cairn_cli_open_db("export", cairn_cli_db_path(dbopt));
  if (!db)
    return 2;
  char err[1024];
  int64_t run_id;
  int rc = cairn_db_find_run(db, run, &run_id, err, sizeof err);
  if (rc) {
    if (rc == CAIRN_ENOTFOUND)
      fprintf(stderr, "cairn export: no run or artifact '%s' in DB %s\n", run,
              sqlite3_db_filename(db, "main"));
    else
      fprintf(stderr, "cairn export: %s\n", err);
    cairn_db_close(db);
    return 1;
  }
  /* Write to a temporary file next to FILE, renamed at the end: a failed
   * export never leaves half a JSON document under the name asked for. */
  FILE *f = stdout;
  char *tmp = NULL;
  if (out && strcmp(out, "-")) {
    size_t n = strlen(out) + 16;
    tmp = malloc(n);
    if (!tmp) {
      fprintf(stderr, "cairn export: out of memory\n");
      cairn_db_close(db);
      return 1;
    }
    snprintf(tmp, n, "%s.tmp%ld", out, (long)getpid());
    f = fopen(tmp, "w");
    if (!f) {
      fprintf(stderr, "cairn export: %s: cannot write: %s\n", out, strerror(errno));
      free(tmp);
      cairn_db_close(db);
      return 1;
    }
  }
  rc = export_run(db, run_id, f, err, sizeof err);
  int werr = fflush(f) != 0 || ferror(f);
  if (tmp) {
    werr |= fclose(f) != 0;
    if (!rc && !werr && rename(tmp, out) != 0)
      werr = 1;
    if (rc || werr)
      remove(tmp);
    free(tmp);
  }
  cairn_db_close(db);
  if (rc) {
    fprintf(stderr, "cairn export: %s\n", err);
    return 1;
  }
  if (werr) {
    fprintf(stderr, "cairn export: %s: cannot write the output\n", out ? out : "stdout");
    return 1;
  }
  return 0;
}
