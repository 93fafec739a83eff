/*
 * db_lineage.h — private to cairn's tools: walks the lineage DAG of the
 * lineage database (MLMD Event rows) from an artifact or a run, upstream
 * (what an artifact was made from) and/or downstream (what was made from
 * it), across runs: artifacts are identified by content, so the model one
 * run wrote and the next one read is one node.
 *
 * The graph is bipartite: artifact nodes and execution nodes. An edge
 * follows the data: artifact -> execution for an INPUT event, execution ->
 * artifact for an OUTPUT event. The walk is an iterative breadth-first
 * search with a visited set (cycles, e.g. a file read and written back
 * unchanged by one execution, end it) and an optional depth limit; it reads
 * Event through its two indexes (by execution, by artifact and type) with
 * statements prepared once per walk.
 *
 * Functions return CAIRN_OK or a negative cairn error code and write what
 * was wrong into err (errlen bytes). None keeps state between calls; a
 * graph belongs to the caller (cairn_db_lineage_free). A connection must
 * not be used by two threads at once (SQLite's rule), otherwise
 * thread-safe.
 */
#ifndef CAIRN_TOOLS_DB_LINEAGE_H
#define CAIRN_TOOLS_DB_LINEAGE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Directions of a walk (bits). */
enum {
  CAIRN_DB_LINEAGE_UP = 1,   /* ancestors: producers and their inputs      */
  CAIRN_DB_LINEAGE_DOWN = 2, /* descendants: consumers and their outputs   */
  CAIRN_DB_LINEAGE_BOTH = 3
};

/* What a start names. */
typedef enum {
  /* text decides, in this order: "artifact:N" (an MLMD artifact id); a
   * hash with its scheme ("cairn-merkle-sha256-v1:<hex>", or a prefix of
   * it); a run UUID or unique prefix (>= 4 hex digits); a unique prefix of
   * a content hash's hex digits (>= 6); a path or URI as logged (also tried
   * as an absolute path). A string that names both a run and an artifact
   * is refused as ambiguous. */
  CAIRN_DB_START_AUTO = 0,
  CAIRN_DB_START_ARTIFACT_ID, /* id: an MLMD Artifact.id                     */
  CAIRN_DB_START_HASH,        /* text: a hash, with or without scheme, or a
                                 unique prefix of its hex digits (>= 6)      */
  CAIRN_DB_START_PATH,        /* text: a path or URI as logged              */
  CAIRN_DB_START_RUN          /* text: a run UUID or unique prefix: starts
                                 at all its executions and artifacts        */
} cairn_db_lineage_start_kind;

typedef struct {
  cairn_db_lineage_start_kind kind;
  const char *text; /* for every kind but ARTIFACT_ID                       */
  int64_t id;       /* for ARTIFACT_ID                                      */
} cairn_db_lineage_start;

enum { CAIRN_DB_NODE_ARTIFACT = 0, CAIRN_DB_NODE_EXECUTION = 1 };

/* A node. Strings are never NULL ("" when unknown). */
typedef struct {
  int kind;      /* CAIRN_DB_NODE_*                                          */
  int64_t id;    /* MLMD Artifact.id or Execution.id                         */
  int depth;     /* edges from the nearest start node (0: a start node)      */
  unsigned dirs; /* CAIRN_DB_LINEAGE_* bits of the walks that reached it      */
  char *type;    /* MLMD type name: Dataset, Model, ... / the execution type */
  char *name;    /* MLMD name ("<path>:<hash>" for a hashed artifact)        */
  /* Artifacts. */
  char *uri;     /* MLMD uri: the content hash, or the URI as given          */
  char *path;    /* the path or URI as logged ("url" property)               */
  int state;     /* MLMD Artifact.state                                      */
  /* Executions. */
  char *run;     /* UUID of the run it belongs to                            */
  char *label;   /* the execution's name as logged ("train-epoch"); "run"
                    for the execution standing for a whole run               */
  char *stage;   /* its stage's name ("" none)                               */
  int rank;      /* the rank that ran it (-1 for a whole run)                */
} cairn_db_lineage_node;

/* An edge between nodes[from] and nodes[to], in the direction of the data:
 * type CAIRN_DB_EVENT_INPUT (artifact -> execution that read it) or
 * CAIRN_DB_EVENT_OUTPUT (execution -> artifact it wrote). */
typedef struct {
  size_t from, to;
  int type;
} cairn_db_lineage_edge;

typedef struct {
  cairn_db_lineage_node *nodes; /* nodes[0 .. nstart) are the start         */
  size_t nnodes, nstart;
  cairn_db_lineage_edge *edges; /* in the order found, no duplicates        */
  size_t nedges;
  int truncated; /* 1: the depth limit left some node unexpanded            */
  /* private */
  size_t cap_nodes, cap_edges;
  uint64_t *nmap, *emap; /* open-addressing sets (node keys, edge keys)     */
  size_t nmap_cap, emap_cap, emap_n;
} cairn_db_lineage_graph;

/*
 * Resolves `start` to its MLMD ids: artifacts into *arts (*narts) and, for
 * a run, its executions (the whole-run one included) into *execs (*nexecs).
 * Arrays are malloc'd (the caller frees them; NULL when empty). Returns
 * CAIRN_OK; CAIRN_ENOTFOUND ("no run or artifact 'X' in DB"); CAIRN_EINVAL
 * (an ambiguous prefix or name, the candidates listed; an empty start);
 * CAIRN_ENOMEM; CAIRN_EIO.
 */
int cairn_db_lineage_resolve(sqlite3 *db, const cairn_db_lineage_start *start, int64_t **arts,
                             size_t *narts, int64_t **execs, size_t *nexecs, char *err,
                             size_t errlen);

/*
 * Walks the lineage from `start` in `direction` (CAIRN_DB_LINEAGE_* bits;
 * with both, the ancestors and the descendants, not the descendants of the
 * ancestors) at most max_depth edges away (<= 0: no limit), filling *g
 * (which it initializes; on failure it is left empty). Node details
 * (types, names, runs) are filled in. Errors as cairn_db_lineage_resolve.
 */
int cairn_db_lineage(sqlite3 *db, const cairn_db_lineage_start *start, int direction,
                     int max_depth, cairn_db_lineage_graph *g, char *err, size_t errlen);

/* Frees what a graph holds and empties it (a NULL or empty graph is fine). */
void cairn_db_lineage_free(cairn_db_lineage_graph *g);

#endif /* CAIRN_TOOLS_DB_LINEAGE_H */
