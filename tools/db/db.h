/*
 * db.h — private to cairn's tools: the lineage database (SQLite).
 *
 * One database holds many runs. Lineage is stored in the ML Metadata (MLMD)
 * schema version 10 tables with the Common Metadata Framework's type names,
 * so MLMD- and CMF-based tools read it; cairn's own tables (prefix cairn_)
 * keep every run losslessly: identity, ranks, accounting, params, run
 * key/values, the run's lineage rows as logged, step markers, and metric
 * series as compressed chunks (a summary row per metric, statistics across
 * ranks and per-rank values in chunks of CAIRN_DB_CHUNK steps). The layout
 * is documented in docs/database.md.
 *
 * Every function returns CAIRN_OK or a negative cairn error code and writes
 * a message naming what was wrong into err (errlen bytes) when it fails.
 */
#ifndef CAIRN_TOOLS_DB_H
#define CAIRN_TOOLS_DB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "run_view.h"

#define CAIRN_DB_MLMD_SCHEMA_VERSION 10 /* MLMDEnv.schema_version             */
#define CAIRN_DB_SCHEMA_VERSION 1       /* cairn_meta 'schema_version'        */
#define CAIRN_DB_CHUNK 65536            /* steps per series chunk             */
#define CAIRN_DB_ZSTD_LEVEL (-3)        /* zstd fast level for series chunks  */

/* MLMD Type.type_kind values. */
enum { CAIRN_DB_EXECUTION_TYPE = 0, CAIRN_DB_ARTIFACT_TYPE = 1, CAIRN_DB_CONTEXT_TYPE = 2 };
/* MLMD Event.type values used here. */
enum { CAIRN_DB_EVENT_INPUT = 3, CAIRN_DB_EVENT_OUTPUT = 4 };
/* MLMD Artifact.state values used here. */
enum { CAIRN_DB_STATE_UNKNOWN = 0, CAIRN_DB_STATE_LIVE = 2, CAIRN_DB_STATE_REFERENCE = 6 };
/* The MLMD type name (CMF's) of an artifact kind (CAIRN_H5_ARTIFACT_*):
 * "Dataset", "Model", ...; "Artifact" for any other kind. */
const char *cairn_db_artifact_type_name(int kind);
/* Whether h is a content hash recorded by the runtime, as opposed to NULL,
 * "" (a URI recorded as given) or "error: <reason>". */
int cairn_db_is_hash(const char *h);
/* MLMD PropertyType (TypeProperty.data_type). */
enum { CAIRN_DB_PROP_INT = 1, CAIRN_DB_PROP_DOUBLE = 2, CAIRN_DB_PROP_STRING = 3,
       CAIRN_DB_PROP_BOOL = 6 };

/* Series fields of cairn_series_chunk.field (one compressed array each). */
enum {
  CAIRN_DB_F_STEP = 0,    /* int64, delta-encoded                           */
  CAIRN_DB_F_COUNT = 1,   /* uint32: ranks with a sample                    */
  CAIRN_DB_F_SUM = 2,     /* double                                         */
  CAIRN_DB_F_SUMSQ = 3,   /* double                                         */
  CAIRN_DB_F_MIN = 4,     /* double                                         */
  CAIRN_DB_F_MAX = 5,     /* double                                         */
  CAIRN_DB_F_RANK_MIN = 6,/* int32                                          */
  CAIRN_DB_F_RANK_MAX = 7,/* int32                                          */
  CAIRN_DB_NFIELDS = 8
};

/*
 * Opens (creating when `create`) the database at path: WAL journal, a busy
 * timeout so that concurrent merges wait for each other, foreign tables
 * created if missing. An existing file must be a cairn lineage database of
 * this schema version (or an empty SQLite file). Returns CAIRN_OK,
 * CAIRN_ENOTFOUND (no file and !create), CAIRN_EFOREIGN (not SQLite, or
 * SQLite without cairn's tables), CAIRN_EVERSION, CAIRN_EIO.
 */
int cairn_db_open(const char *path, int create, sqlite3 **db, char *err, size_t errlen);
void cairn_db_close(sqlite3 *db);

/* Writes "<database>: <what>: <SQLite's message>" into err; returns CAIRN_EIO. */
int cairn_db_sql_error(sqlite3 *db, char *err, size_t errlen, const char *what);
/* sqlite3_prepare_v2 with the error reported as above (*st NULL on failure);
 * CAIRN_OK or CAIRN_EIO. */
int cairn_db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, char *err, size_t errlen);

/* Prepares sql, a query of one run's rows (its first parameter is the run
 * id), and binds run_id. CAIRN_OK, or CAIRN_EIO with "<database>: read:
 * <SQLite's message>" in err and *st NULL (sqlite3_finalize(NULL) does
 * nothing). */
int cairn_db_query_run(sqlite3 *db, sqlite3_stmt **st, const char *sql, int64_t run_id,
                       char *err, size_t errlen);

/* A malloc'd copy of a column's text (sqlite3_column_text; NULL copies as
 * ""), or NULL when out of memory. */
char *cairn_db_dup_text(const unsigned char *s);

/* Runs one SQL statement without results; CAIRN_OK or CAIRN_EIO. */
int cairn_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/* The CREATE statements of the whole schema (MLMD then cairn), for docs and
 * tests. */
extern const char *const cairn_db_schema_sql;

/*
 * Finds a run by its UUID or a unique prefix of it (at least 4 hex digits,
 * dashes optional). Returns CAIRN_OK with *run_id set (cairn_run.id),
 * CAIRN_ENOTFOUND (no run; the message says so), CAIRN_EINVAL (ambiguous
 * prefix: the message lists the candidates).
 */
int cairn_db_find_run(sqlite3 *db, const char *uuid_or_prefix, int64_t *run_id, char *err,
                      size_t errlen);

/* ---------------------------------------------------------------------- */
/* Series chunks                                                           */
/* ---------------------------------------------------------------------- */

/*
 * Encodes n elements of `esize` bytes (8 for int64/double, 4 for
 * int32/uint32): delta for steps (delta != 0), byte shuffle, zstd.
 * *out is malloc'd. Returns CAIRN_OK or CAIRN_ENOMEM/CAIRN_EIO.
 */
int cairn_db_chunk_encode(const void *data, size_t n, size_t esize, int delta, void **out,
                          size_t *outlen);
/* Reusable buffers for encoding many chunks (merge): no allocation per
 * chunk. Two output slots so that two blobs can be bound to one statement. */
typedef struct {
  uint8_t *tmp, *sh, *z[2];
  size_t tmp_cap, sh_cap, z_cap[2];
  struct ZSTD_CCtx_s *cctx;
} cairn_db_scratch;
/* As cairn_db_chunk_encode, into sc's output slot (0 or 1): *out stays
 * valid until that slot is used again or sc is freed. */
int cairn_db_chunk_encode_into(cairn_db_scratch *sc, int slot, const void *data, size_t n,
                               size_t esize, int delta, const void **out, size_t *outlen);
void cairn_db_scratch_free(cairn_db_scratch *sc);

/* Decodes into dst (n × esize bytes). CAIRN_OK, CAIRN_ECORRUPT (wrong size
 * or bad frame). */
int cairn_db_chunk_decode(const void *blob, size_t bloblen, size_t n, size_t esize, int delta,
                          void *dst);

/* One metric series as read from the database (cairn_db_series_load). */
typedef struct {
  size_t n;
  int64_t *step;
  uint32_t *count;
  double *sum, *sumsq, *min, *max;
  int32_t *rank_min, *rank_max;
  double *values;     /* per-rank mode: the rank's value per step (NaN if none) */
  uint32_t *samples;  /* per-rank mode: samples of the rank at each step      */
} cairn_db_series;

/*
 * Loads the steps [lo, hi] (inclusive) of metric `metric_id`. With rank < 0
 * the statistics across ranks are loaded (only the fields whose bit
 * (1 << CAIRN_DB_F_*) is set in `fields`; the step field always); with
 * rank >= 0 that rank's values and sample counts. Reads only the chunks that
 * overlap [lo, hi]. Returns CAIRN_OK, CAIRN_ENOTFOUND (no such rank
 * detail), CAIRN_ECORRUPT, CAIRN_ENOMEM, CAIRN_EIO.
 */
int cairn_db_series_load(sqlite3 *db, int64_t metric_id, int64_t lo, int64_t hi, int rank,
                         unsigned fields, cairn_db_series *s, char *err, size_t errlen);
void cairn_db_series_free(cairn_db_series *s);

/* ---------------------------------------------------------------------- */
/* Merge                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct {
  /* Progress: called now and then with done/total units; may be NULL. */
  void (*progress)(void *ctx, const char *what, uint64_t done, uint64_t total);
  void *ctx;
  /* Damage found while reading a run (names the file); may be NULL. */
  cairn_run_report_fn report;
  /* A run whose HDF5 files are damaged is refused unless salvage is set
   * (then what could be read is merged and the damage counted). A crashed
   * run's write-ahead log (torn tail) is never refused: that is recovery. */
  int salvage;
} cairn_db_merge_opts;

typedef struct {
  uint64_t runs_added, runs_unchanged;
  uint64_t steps, samples, artifacts, executions;
  uint64_t recovered_ranks;  /* ranks read from a write-ahead log          */
  uint64_t dropped;          /* records the runs dropped (accounting)      */
  uint64_t damaged;          /* problems reported while reading            */
} cairn_db_merge_stats;

/*
 * Folds the run view `v` (read from run_dir) into the database, in one
 * transaction: all of it or nothing. A run already present with the same
 * content is left alone (runs_unchanged); one present with different
 * content is refused with CAIRN_EINVAL and the difference named.
 */
int cairn_db_merge_view(sqlite3 *db, const cairn_run_view *v, const char *origin,
                        const cairn_run_report *rep, const cairn_db_merge_opts *o,
                        cairn_db_merge_stats *st, char *err, size_t errlen);

/* Reads a run directory with the shared readers and merges it. */
int cairn_db_merge_dir(sqlite3 *db, const char *run_dir, const cairn_db_merge_opts *o,
                       cairn_db_merge_stats *st, char *err, size_t errlen);

/* Merges every run of another cairn database (sharing lineage between
 * sites or users); runs already present are left alone. */
int cairn_db_merge_db(sqlite3 *db, const char *src_path, const cairn_db_merge_opts *o,
                      cairn_db_merge_stats *st, char *err, size_t errlen);

/* Appends the run's lineage rows as logged (stages, executions, artifacts,
 * events) to v: the lineage part of cairn_db_load_view. */
int cairn_db_load_lineage(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err,
                          size_t errlen);

/* Rebuilds a run's view from the database (the inverse of merge_view). */
int cairn_db_load_view(sqlite3 *db, int64_t run_id, cairn_run_view *v, char *err,
                       size_t errlen);

#endif /* CAIRN_TOOLS_DB_H */
