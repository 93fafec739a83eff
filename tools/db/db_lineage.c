/*
 * db_lineage.c — lineage walks over the MLMD Event table: resolving a start
 * (artifact id, content hash or prefix, path, run) and an iterative BFS
 * upstream and/or downstream with a visited set and a depth limit.
 *
 * Speed: a walk costs two indexed lookups per node (Event by artifact and
 * type — idx_cairn_event_artifact — or by execution — idx_event_execution_id)
 * plus one per node for its details, with every statement prepared once.
 * Nodes and edges are deduplicated in open-addressing hash sets, so a walk
 * is linear in what it finds, whatever the size of the database.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "db.h"
#include "db_lineage.h"
#include "util.h"

static const char *const hash_schemes[] = {"cairn-merkle-sha256-v1:", "cairn-dataslice-sha256-v1:",
                                           "sha256:"};
#define NSCHEMES (sizeof hash_schemes / sizeof *hash_schemes)

/* ---------------------------------------------------------------------- */
/* Id vectors                                                              */
/* ---------------------------------------------------------------------- */

typedef struct {
  int64_t *v;
  size_t n, cap;
} idvec;

static int idvec_push(idvec *a, int64_t id) {
  for (size_t i = 0; i < a->n && a->n < 64; i++) /* cheap dedup of small sets */
    if (a->v[i] == id)
      return CAIRN_OK;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    int64_t *v = realloc(a->v, cap * sizeof *v);
    if (!v)
      return CAIRN_ENOMEM;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = id;
  return CAIRN_OK;
}

/* Appends the int64 column 0 of every row of st (bound by the caller). */
static int collect(sqlite3 *db, sqlite3_stmt *st, idvec *out, char *err, size_t errlen) {
  int rc, r = CAIRN_OK;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && !r)
    r = idvec_push(out, sqlite3_column_int64(st, 0));
  if (!r && rc != SQLITE_DONE && rc != SQLITE_ROW)
    r = cairn_db_sql_error(db, err, errlen, "query");
  sqlite3_reset(st);
  return r;
}

/* ---------------------------------------------------------------------- */
/* Resolving a start                                                       */
/* ---------------------------------------------------------------------- */

static int is_hex_run(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i]))
      return 0;
  return 1;
}

/* Artifacts whose uri is a content hash with the hex digits `hex` (a
 * complete hash or a prefix), under `scheme` or, when NULL, any scheme.
 * Fails with CAIRN_EINVAL when the prefix names two different hashes. */
static int find_by_hash(sqlite3 *db, const char *scheme, const char *hex, const char *what,
                        idvec *out, char *err, size_t errlen) {
  char lower[80];
  size_t n = strlen(hex);
  if (n == 0 || n > 64 || !is_hex_run(hex, n)) {
    cairn__fmt(err, errlen, "'%s': not a content hash (expected hex digits)", what);
    return CAIRN_EINVAL;
  }
  for (size_t i = 0; i <= n; i++)
    lower[i] = (char)tolower((unsigned char)hex[i]);
  sqlite3_stmt *range = NULL, *exact = NULL;
  int rc = cairn_db_prepare(db, &range,
                "SELECT DISTINCT uri FROM Artifact WHERE uri >= ?1 AND uri < ?1 || 'g'"
                " ORDER BY uri LIMIT 6",
                err, errlen);
  if (!rc)
    rc = cairn_db_prepare(db, &exact, "SELECT id FROM Artifact WHERE uri = ?1 ORDER BY id", err, errlen);
  char found[6][96];
  size_t nfound = 0;
  for (size_t k = 0; k < NSCHEMES && !rc; k++) {
    if (scheme && strcmp(scheme, hash_schemes[k]))
      continue;
    char key[120];
    cairn__fmt(key, sizeof key, "%s%s", hash_schemes[k], lower);
    sqlite3_bind_text(range, 1, key, -1, SQLITE_TRANSIENT);
    int s;
    while ((s = sqlite3_step(range)) == SQLITE_ROW) {
      const char *u = (const char *)sqlite3_column_text(range, 0);
      if (u && nfound < 6)
        cairn__fmt(found[nfound++], sizeof found[0], "%s", u);
    }
    if (s != SQLITE_DONE)
      rc = cairn_db_sql_error(db, err, errlen, "query Artifact");
    sqlite3_reset(range);
  }
  if (!rc && nfound > 1) {
    char list[600] = "";
    size_t o = 0;
    for (size_t i = 0; i < nfound && i < 5; i++)
      o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", found[i]);
    cairn__fmt(err, errlen, "hash prefix '%s' is ambiguous: %s%s", what, list,
               nfound > 5 ? ", ..." : "");
    rc = CAIRN_EINVAL;
  }
  if (!rc && nfound == 1) {
    sqlite3_bind_text(exact, 1, found[0], -1, SQLITE_TRANSIENT);
    rc = collect(db, exact, out, err, errlen);
  }
  sqlite3_finalize(range);
  sqlite3_finalize(exact);
  return rc;
}

/* A hash given with its scheme ("scheme:hex"): the scheme, the hex part. */
static const char *split_scheme(const char *text, const char **hex) {
  for (size_t k = 0; k < NSCHEMES; k++) {
    size_t n = strlen(hash_schemes[k]);
    if (!strncmp(text, hash_schemes[k], n)) {
      *hex = text + n;
      return hash_schemes[k];
    }
  }
  return NULL;
}

static int find_by_path(sqlite3 *db, const char *path, idvec *out, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = cairn_db_prepare(db, &st,
                "SELECT artifact_id FROM ArtifactProperty WHERE name = 'url'"
                " AND is_custom_property = 0 AND string_value = ?1 ORDER BY artifact_id",
                err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
  rc = collect(db, st, out, err, errlen);
  if (!rc && out->n == 0 && path[0] != '/') {
    char *abs = realpath(path, NULL);
    if (abs) {
      sqlite3_bind_text(st, 1, abs, -1, SQLITE_TRANSIENT);
      rc = collect(db, st, out, err, errlen);
      free(abs);
    }
  }
  sqlite3_finalize(st);
  return rc;
}

static int find_by_id(sqlite3 *db, int64_t id, idvec *out, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = cairn_db_prepare(db, &st, "SELECT id FROM Artifact WHERE id = ?1", err, errlen);
  if (rc)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  rc = collect(db, st, out, err, errlen);
  sqlite3_finalize(st);
  return rc;
}

static int run_members(sqlite3 *db, int64_t run_id, idvec *arts, idvec *execs, char *err,
                       size_t errlen) {
  static const char *const sql[3] = {
      "SELECT execution_id FROM cairn_run WHERE id = ?1",
      "SELECT execution_id FROM cairn_execution WHERE run_id = ?1 ORDER BY lineage_id",
      "SELECT DISTINCT artifact_id FROM cairn_artifact WHERE run_id = ?1 ORDER BY artifact_id"};
  int rc = CAIRN_OK;
  for (int i = 0; i < 3 && !rc; i++) {
    sqlite3_stmt *st = NULL;
    if ((rc = cairn_db_prepare(db, &st, sql[i], err, errlen)))
      break;
    sqlite3_bind_int64(st, 1, run_id);
    rc = collect(db, st, i < 2 ? execs : arts, err, errlen);
    sqlite3_finalize(st);
  }
  return rc;
}

static int not_found(sqlite3 *db, const char *text, char *err, size_t errlen) {
  cairn__fmt(err, errlen, "no run or artifact '%s' in DB %s", text,
             sqlite3_db_filename(db, "main"));
  return CAIRN_ENOTFOUND;
}

/* Parses "artifact:N" or a plain decimal N; 1 if it is one. */
static int parse_artifact_id(const char *s, int64_t *id) {
  if (!strncmp(s, "artifact:", 9))
    s += 9;
  if (!*s || strlen(s) > 18)
    return 0;
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p))
      return 0;
  *id = strtoll(s, NULL, 10);
  return 1;
}

static int resolve_auto(sqlite3 *db, const char *text, idvec *arts, idvec *execs, char *err,
                        size_t errlen) {
  int64_t id;
  const char *hex;
  if (!strncmp(text, "artifact:", 9)) {
    if (!parse_artifact_id(text, &id)) {
      cairn__fmt(err, errlen, "'%s': expected artifact:N with N an artifact id", text);
      return CAIRN_EINVAL;
    }
    return find_by_id(db, id, arts, err, errlen);
  }
  const char *scheme = split_scheme(text, &hex);
  if (scheme)
    return *hex ? find_by_hash(db, scheme, hex, text, arts, err, errlen) : CAIRN_OK;
  /* A run UUID or prefix; a hash prefix; both would be ambiguous. */
  size_t digits = 0;
  int hexish = 1;
  for (const char *p = text; *p; p++) {
    if (*p == '-')
      continue;
    if (!isxdigit((unsigned char)*p))
      hexish = 0;
    digits++;
  }
  int64_t run_id = 0;
  int have_run = 0, rc;
  if (hexish && digits >= 4) {
    char e2[512];
    rc = cairn_db_find_run(db, text, &run_id, e2, sizeof e2);
    if (rc == CAIRN_OK)
      have_run = 1;
    else if (rc != CAIRN_ENOTFOUND) {
      cairn__fmt(err, errlen, "%s", e2);
      return rc;
    }
  }
  if (hexish && digits >= 6 && !strchr(text, '-')) {
    idvec h = {0};
    rc = find_by_hash(db, NULL, text, text, &h, err, errlen);
    if (rc) {
      free(h.v);
      return rc;
    }
    if (h.n && have_run) {
      free(h.v);
      cairn__fmt(err, errlen,
                 "'%s' is ambiguous: it begins a run UUID and a content hash (give more "
                 "digits, or the hash with its scheme)",
                 text);
      return CAIRN_EINVAL;
    }
    for (size_t i = 0; i < h.n && !rc; i++)
      rc = idvec_push(arts, h.v[i]);
    free(h.v);
    if (rc || arts->n)
      return rc;
  }
  if (have_run)
    return run_members(db, run_id, arts, execs, err, errlen);
  if ((rc = find_by_path(db, text, arts, err, errlen)) || arts->n)
    return rc;
  if (parse_artifact_id(text, &id))
    return find_by_id(db, id, arts, err, errlen);
  return CAIRN_OK;
}

int cairn_db_lineage_resolve(sqlite3 *db, const cairn_db_lineage_start *s, int64_t **arts_out,
                             size_t *narts, int64_t **execs_out, size_t *nexecs, char *err,
                             size_t errlen) {
  idvec arts = {0}, execs = {0};
  int rc = CAIRN_OK;
  const char *text = s->text ? s->text : "";
  *arts_out = *execs_out = NULL;
  *narts = *nexecs = 0;
  if (s->kind != CAIRN_DB_START_ARTIFACT_ID && !*text) {
    cairn__fmt(err, errlen, "no artifact or run given");
    return CAIRN_EINVAL;
  }
  switch (s->kind) {
  case CAIRN_DB_START_ARTIFACT_ID:
    rc = find_by_id(db, s->id, &arts, err, errlen);
    break;
  case CAIRN_DB_START_HASH: {
    const char *hex = text;
    const char *scheme = split_scheme(text, &hex);
    rc = find_by_hash(db, scheme, hex, text, &arts, err, errlen);
    break;
  }
  case CAIRN_DB_START_PATH:
    rc = find_by_path(db, text, &arts, err, errlen);
    break;
  case CAIRN_DB_START_RUN: {
    int64_t run_id;
    rc = cairn_db_find_run(db, text, &run_id, err, errlen);
    if (rc == CAIRN_ENOTFOUND) {
      cairn__fmt(err, errlen, "no run '%s' in %s", text, sqlite3_db_filename(db, "main"));
    } else if (!rc) {
      rc = run_members(db, run_id, &arts, &execs, err, errlen);
    }
    break;
  }
  case CAIRN_DB_START_AUTO:
  default:
    rc = resolve_auto(db, text, &arts, &execs, err, errlen);
    break;
  }
  if (!rc && arts.n == 0 && execs.n == 0) {
    if (s->kind == CAIRN_DB_START_ARTIFACT_ID) {
      cairn__fmt(err, errlen, "no artifact %lld in %s", (long long)s->id,
                 sqlite3_db_filename(db, "main"));
      rc = CAIRN_ENOTFOUND;
    } else {
      rc = not_found(db, text, err, errlen);
    }
  }
  if (rc) {
    free(arts.v);
    free(execs.v);
    return rc;
  }
  *arts_out = arts.v;
  *narts = arts.n;
  *execs_out = execs.v;
  *nexecs = execs.n;
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* The graph                                                               */
/* ---------------------------------------------------------------------- */

static uint64_t mix(uint64_t x) { /* splitmix64's finalizer */
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static uint64_t node_key(int kind, int64_t id) {
  return ((uint64_t)id << 1 | (uint64_t)kind) + 1; /* never 0: 0 marks a free slot */
}

/* nmap holds (key, index) pairs; grows at half load. */
static int nmap_grow(cairn_db_lineage_graph *g) {
  size_t cap = g->nmap_cap ? g->nmap_cap * 2 : 256;
  uint64_t *m = calloc(cap * 2, sizeof *m);
  if (!m)
    return CAIRN_ENOMEM;
  for (size_t i = 0; i < g->nnodes; i++) {
    uint64_t k = node_key(g->nodes[i].kind, g->nodes[i].id);
    size_t s = (size_t)mix(k) & (cap - 1);
    while (m[2 * s])
      s = (s + 1) & (cap - 1);
    m[2 * s] = k;
    m[2 * s + 1] = i;
  }
  free(g->nmap);
  g->nmap = m;
  g->nmap_cap = cap;
  return CAIRN_OK;
}

/* Index of node (kind, id), added if new (*added set). */
static int node_get(cairn_db_lineage_graph *g, int kind, int64_t id, size_t *idx, int *added) {
  if ((g->nnodes + 1) * 2 > g->nmap_cap && nmap_grow(g))
    return CAIRN_ENOMEM;
  uint64_t k = node_key(kind, id);
  size_t s = (size_t)mix(k) & (g->nmap_cap - 1);
  while (g->nmap[2 * s]) {
    if (g->nmap[2 * s] == k) {
      *idx = (size_t)g->nmap[2 * s + 1];
      *added = 0;
      return CAIRN_OK;
    }
    s = (s + 1) & (g->nmap_cap - 1);
  }
  if (g->nnodes == g->cap_nodes) {
    size_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
    cairn_db_lineage_node *n = realloc(g->nodes, cap * sizeof *n);
    if (!n)
      return CAIRN_ENOMEM;
    g->nodes = n;
    g->cap_nodes = cap;
  }
  cairn_db_lineage_node *n = &g->nodes[g->nnodes];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->id = id;
  n->depth = INT_MAX;
  n->rank = -1;
  g->nmap[2 * s] = k;
  g->nmap[2 * s + 1] = g->nnodes;
  *idx = g->nnodes++;
  *added = 1;
  return CAIRN_OK;
}

static int emap_grow(cairn_db_lineage_graph *g) {
  size_t cap = g->emap_cap ? g->emap_cap * 2 : 256;
  uint64_t *m = calloc(cap, sizeof *m);
  if (!m)
    return CAIRN_ENOMEM;
  for (size_t i = 0; i < g->nedges; i++) {
    uint64_t k = ((uint64_t)g->edges[i].from << 32 | (uint64_t)g->edges[i].to) + 1;
    size_t s = (size_t)mix(k) & (cap - 1);
    while (m[s])
      s = (s + 1) & (cap - 1);
    m[s] = k;
  }
  free(g->emap);
  g->emap = m;
  g->emap_cap = cap;
  return CAIRN_OK;
}

static int edge_add(cairn_db_lineage_graph *g, size_t from, size_t to, int type) {
  if (from > UINT32_MAX || to > UINT32_MAX)
    return CAIRN_ENOMEM; /* four billion nodes: out of memory long before */
  if ((g->nedges + 1) * 2 > g->emap_cap && emap_grow(g))
    return CAIRN_ENOMEM;
  uint64_t k = ((uint64_t)from << 32 | (uint64_t)to) + 1;
  size_t s = (size_t)mix(k) & (g->emap_cap - 1);
  while (g->emap[s]) {
    if (g->emap[s] == k)
      return CAIRN_OK;
    s = (s + 1) & (g->emap_cap - 1);
  }
  if (g->nedges == g->cap_edges) {
    size_t cap = g->cap_edges ? g->cap_edges * 2 : 64;
    cairn_db_lineage_edge *e = realloc(g->edges, cap * sizeof *e);
    if (!e)
      return CAIRN_ENOMEM;
    g->edges = e;
    g->cap_edges = cap;
  }
  g->emap[s] = k;
  g->edges[g->nedges].from = from;
  g->edges[g->nedges].to = to;
  g->edges[g->nedges].type = type;
  g->nedges++;
  return CAIRN_OK;
}

void cairn_db_lineage_free(cairn_db_lineage_graph *g) {
  if (!g)
    return;
  for (size_t i = 0; i < g->nnodes; i++) {
    cairn_db_lineage_node *n = &g->nodes[i];
    free(n->type);
    free(n->name);
    free(n->uri);
    free(n->path);
    free(n->run);
    free(n->label);
    free(n->stage);
  }
  free(g->nodes);
  free(g->edges);
  free(g->nmap);
  free(g->emap);
  memset(g, 0, sizeof *g);
}

/* ---------------------------------------------------------------------- */
/* The walk                                                                */
/* ---------------------------------------------------------------------- */

typedef struct {
  size_t node;
  int depth;
} qitem;

typedef struct {
  qitem *v;
  size_t head, n, cap;
} queue;

static int q_push(queue *q, size_t node, int depth) {
  if (q->n == q->cap) {
    if (q->head > 0 && q->head * 2 >= q->n) { /* reuse the consumed front */
      memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
      q->n -= q->head;
      q->head = 0;
    } else {
      size_t cap = q->cap ? q->cap * 2 : 64;
      qitem *v = realloc(q->v, cap * sizeof *v);
      if (!v)
        return CAIRN_ENOMEM;
      q->v = v;
      q->cap = cap;
    }
  }
  q->v[q->n].node = node;
  q->v[q->n++].depth = depth;
  return CAIRN_OK;
}

/* One breadth-first walk in direction dir (UP or DOWN) from the start
 * nodes. by_art: Event rows of an artifact with a type; by_exec: of an
 * execution with a type. */
static int walk(sqlite3 *db, cairn_db_lineage_graph *g, int dir, int max_depth,
                sqlite3_stmt *by_art, sqlite3_stmt *by_exec, char *err, size_t errlen) {
  queue q = {0};
  int rc = CAIRN_OK;
  for (size_t i = 0; i < g->nstart && !rc; i++) {
    g->nodes[i].dirs |= (unsigned)dir;
    rc = q_push(&q, i, 0);
  }
  /* Up: an artifact's producers (OUTPUT events), an execution's inputs
   * (INPUT events). Down: an artifact's consumers (INPUT), an execution's
   * outputs (OUTPUT). */
  int art_type = dir == CAIRN_DB_LINEAGE_UP ? CAIRN_DB_EVENT_OUTPUT : CAIRN_DB_EVENT_INPUT;
  int exec_type = dir == CAIRN_DB_LINEAGE_UP ? CAIRN_DB_EVENT_INPUT : CAIRN_DB_EVENT_OUTPUT;
  while (!rc && q.head < q.n) {
    qitem it = q.v[q.head++];
    int kind = g->nodes[it.node].kind;
    sqlite3_stmt *st = kind == CAIRN_DB_NODE_ARTIFACT ? by_art : by_exec;
    sqlite3_bind_int64(st, 1, g->nodes[it.node].id);
    sqlite3_bind_int(st, 2, kind == CAIRN_DB_NODE_ARTIFACT ? art_type : exec_type);
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
      if (max_depth > 0 && it.depth >= max_depth) {
        g->truncated = 1; /* there is more beyond the limit */
        break;
      }
      int64_t other = sqlite3_column_int64(st, 0);
      int okind = kind == CAIRN_DB_NODE_ARTIFACT ? CAIRN_DB_NODE_EXECUTION : CAIRN_DB_NODE_ARTIFACT;
      size_t j;
      int added;
      if ((rc = node_get(g, okind, other, &j, &added)))
        break;
      /* The edge in the direction of the data. */
      size_t from = it.node, to = j;
      if (dir == CAIRN_DB_LINEAGE_UP) {
        from = j;
        to = it.node;
      }
      int etype = g->nodes[from].kind == CAIRN_DB_NODE_ARTIFACT ? CAIRN_DB_EVENT_INPUT
                                                                 : CAIRN_DB_EVENT_OUTPUT;
      if ((rc = edge_add(g, from, to, etype)))
        break;
      cairn_db_lineage_node *n = &g->nodes[j];
      if (it.depth + 1 < n->depth)
        n->depth = it.depth + 1;
      if (!(n->dirs & (unsigned)dir)) { /* first visit in this direction */
        n->dirs |= (unsigned)dir;
        rc = q_push(&q, j, it.depth + 1);
      }
    }
    if (!rc && s != SQLITE_DONE && s != SQLITE_ROW)
      rc = cairn_db_sql_error(db, err, errlen, "query Event");
    sqlite3_reset(st);
  }
  free(q.v);
  return rc;
}

/* Fills types, names, runs of every node. */
static int details(sqlite3 *db, cairn_db_lineage_graph *g, char *err, size_t errlen) {
  sqlite3_stmt *art = NULL, *ex = NULL;
  int rc = cairn_db_prepare(db, &art,
                "SELECT a.uri, a.name, a.state, t.name,"
                " (SELECT p.string_value FROM ArtifactProperty p WHERE p.artifact_id = a.id"
                "  AND p.name = 'url' AND p.is_custom_property = 0)"
                " FROM Artifact a LEFT JOIN Type t ON t.id = a.type_id WHERE a.id = ?1",
                err, errlen);
  if (!rc)
    rc = cairn_db_prepare(db, &ex,
              "SELECT e.name, t.name, r.uuid, ce.rank, ce.name, s.name, ce.execution_id,"
              " (SELECT r2.uuid FROM cairn_run r2 WHERE r2.uuid = e.name)"
              " FROM Execution e LEFT JOIN Type t ON t.id = e.type_id"
              " LEFT JOIN cairn_execution ce ON ce.execution_id = e.id"
              " LEFT JOIN cairn_run r ON r.id = ce.run_id"
              " LEFT JOIN cairn_stage s ON s.run_id = ce.run_id"
              "  AND s.lineage_id = ce.stage_lineage_id"
              " WHERE e.id = ?1 LIMIT 1",
              err, errlen);
  for (size_t i = 0; i < g->nnodes && !rc; i++) {
    cairn_db_lineage_node *n = &g->nodes[i];
    sqlite3_stmt *st = n->kind == CAIRN_DB_NODE_ARTIFACT ? art : ex;
    sqlite3_bind_int64(st, 1, n->id);
    int s = sqlite3_step(st);
    int row = s == SQLITE_ROW;
    if (s != SQLITE_ROW && s != SQLITE_DONE) {
      rc = cairn_db_sql_error(db, err, errlen, "query details");
      sqlite3_reset(st);
      break;
    }
    if (n->kind == CAIRN_DB_NODE_ARTIFACT) {
      n->uri = cairn_db_dup_text(row ? sqlite3_column_text(st, 0) : NULL);
      n->name = cairn_db_dup_text(row ? sqlite3_column_text(st, 1) : NULL);
      n->state = row ? sqlite3_column_int(st, 2) : 0;
      n->type = cairn_db_dup_text(row ? sqlite3_column_text(st, 3) : NULL);
      n->path = cairn_db_dup_text(row ? sqlite3_column_text(st, 4) : NULL);
      n->run = cairn_db_dup_text(NULL);
      n->label = cairn_db_dup_text(NULL);
      n->stage = cairn_db_dup_text(NULL);
    } else {
      int in_run = row && sqlite3_column_type(st, 6) != SQLITE_NULL;
      n->name = cairn_db_dup_text(row ? sqlite3_column_text(st, 0) : NULL);
      n->type = cairn_db_dup_text(row ? sqlite3_column_text(st, 1) : NULL);
      if (in_run) {
        n->run = cairn_db_dup_text(sqlite3_column_text(st, 2));
        n->rank = sqlite3_column_int(st, 3);
        n->label = cairn_db_dup_text(sqlite3_column_text(st, 4));
        n->stage = cairn_db_dup_text(sqlite3_column_text(st, 5));
      } else { /* the execution standing for a whole run, or foreign */
        n->run = cairn_db_dup_text(row ? sqlite3_column_text(st, 7) : NULL);
        n->rank = -1;
        n->label = cairn_db_dup_text(
            (const unsigned char *)(row && sqlite3_column_type(st, 7) != SQLITE_NULL ? "run" : ""));
        n->stage = cairn_db_dup_text(NULL);
      }
      n->uri = cairn_db_dup_text(NULL);
      n->path = cairn_db_dup_text(NULL);
    }
    sqlite3_reset(st);
    if (!n->type || !n->name || !n->uri || !n->path || !n->run || !n->label || !n->stage)
      rc = CAIRN_ENOMEM;
  }
  sqlite3_finalize(art);
  sqlite3_finalize(ex);
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, errlen, "out of memory");
  return rc;
}

int cairn_db_lineage(sqlite3 *db, const cairn_db_lineage_start *start, int direction,
                     int max_depth, cairn_db_lineage_graph *g, char *err, size_t errlen) {
  memset(g, 0, sizeof *g);
  if (!(direction & CAIRN_DB_LINEAGE_BOTH)) {
    cairn__fmt(err, errlen, "no direction to walk (up, down or both)");
    return CAIRN_EINVAL;
  }
  int64_t *arts = NULL, *execs = NULL;
  size_t narts = 0, nexecs = 0;
  int rc = cairn_db_lineage_resolve(db, start, &arts, &narts, &execs, &nexecs, err, errlen);
  if (rc)
    return rc;
  size_t idx;
  int added;
  for (size_t i = 0; i < nexecs && !rc; i++)
    rc = node_get(g, CAIRN_DB_NODE_EXECUTION, execs[i], &idx, &added);
  for (size_t i = 0; i < narts && !rc; i++)
    rc = node_get(g, CAIRN_DB_NODE_ARTIFACT, arts[i], &idx, &added);
  free(arts);
  free(execs);
  g->nstart = g->nnodes;
  for (size_t i = 0; i < g->nstart; i++)
    g->nodes[i].depth = 0;
  sqlite3_stmt *by_art = NULL, *by_exec = NULL;
  if (!rc)
    rc = cairn_db_prepare(db, &by_art,
              "SELECT execution_id FROM Event"
              " WHERE artifact_id = ?1 AND type = ?2 ORDER BY execution_id",
              err, errlen);
  if (!rc)
    rc = cairn_db_prepare(db, &by_exec,
              "SELECT artifact_id FROM Event"
              " WHERE execution_id = ?1 AND type = ?2 ORDER BY artifact_id",
              err, errlen);
  if (!rc && (direction & CAIRN_DB_LINEAGE_UP))
    rc = walk(db, g, CAIRN_DB_LINEAGE_UP, max_depth, by_art, by_exec, err, errlen);
  if (!rc && (direction & CAIRN_DB_LINEAGE_DOWN))
    rc = walk(db, g, CAIRN_DB_LINEAGE_DOWN, max_depth, by_art, by_exec, err, errlen);
  sqlite3_finalize(by_art);
  sqlite3_finalize(by_exec);
  if (!rc)
    rc = details(db, g, err, errlen);
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, errlen, "out of memory");
  if (rc)
    cairn_db_lineage_free(g);
  return rc;
}
