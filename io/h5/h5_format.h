/*
 * h5_format.h — private to cairn: the one definition of the HDF5 run-file
 * format (v2) — file names, group, dataset and attribute names, versions,
 * chunking policy and the on-disk record layouts — shared by the writers,
 * the reader and the tests, and described for humans in docs/format.md
 * ("Run file (HDF5), format v2").
 *
 * This header does not include hdf5.h: tools that only need the names (and
 * the runtime, which only calls the finalize hook) build without HDF5's
 * headers. The HDF5 datatypes that mirror the records are built in
 * h5_schema.c. Changing anything here changes the format: bump
 * CAIRN_H5_FORMAT_VERSION and update docs/format.md in the same commit.
 */
#ifndef CAIRN_H5_FORMAT_H
#define CAIRN_H5_FORMAT_H

#include <inttypes.h> /* PRIu32 in CAIRN_H5_NAME_FMT */
#include <stdint.h>

/* The newest format this code writes and reads. A reader refuses a file
 * whose version is greater (CAIRN_EVERSION): a later writer may have moved
 * things a v1 reader would silently misread. Version 2 added the
 * `properties` column of /lineage/artifacts and the `type` and `command`
 * columns of /lineage/executions; v1 files are still read (those columns
 * then read as ""). */
#define CAIRN_H5_FORMAT_VERSION 2u

/* ---------------------------------------------------------------------- */
/* File names                                                              */
/* ---------------------------------------------------------------------- */

/* One file per aggregator group: <run dir>/run-g<group>.h5, the group
 * zero-padded to 6 digits like the WAL's ranks. A standalone run is group 0.
 * The writer creates ".<final name>.tmp" and renames it when complete, so a
 * name matching this pattern is never a half-written file; the leading dot
 * keeps temporaries out of `ls` and out of the listing pattern. */
#define CAIRN_H5_NAME_FMT "run-g%06" PRIu32 ".h5"
#define CAIRN_H5_NAME_SCAN "run-g%" SCNu32 ".h5%n"
#define CAIRN_H5_TMP_PREFIX "."
#define CAIRN_H5_TMP_SUFFIX ".tmp"

/* ---------------------------------------------------------------------- */
/* Root attributes                                                         */
/* ---------------------------------------------------------------------- */

#define CAIRN_H5_ATTR_FORMAT_VERSION "cairn_format_version" /* u32              */
#define CAIRN_H5_ATTR_RUN_ID "run_id"             /* string, canonical UUID text  */
#define CAIRN_H5_ATTR_CAIRN_VERSION "cairn_version" /* string, "MAJOR.MINOR.PATCH" */
#define CAIRN_H5_ATTR_CREATED_NS "creation_time_ns" /* u64, CLOCK_REALTIME ns      */
#define CAIRN_H5_ATTR_NRANKS "nranks"             /* u32, ranks in the whole run   */
#define CAIRN_H5_ATTR_NAGGREGATORS "naggregators" /* u32, aggregators of the run   */
#define CAIRN_H5_ATTR_GROUP "aggregator_group"    /* u32, the group this file holds */
#define CAIRN_H5_ATTR_NCOLS "nranks_in_file"      /* u32, rank columns here        */
#define CAIRN_H5_ATTR_DETAIL "detail"             /* u8, 1 = per-rank values kept  */

/* ---------------------------------------------------------------------- */
/* Groups and datasets                                                     */
/* ---------------------------------------------------------------------- */

/* String table: every metric name, param key and run key, as one 1-D
 * dataset of variable-length byte strings. Metric i's name is entry i. */
#define CAIRN_H5_NAMES "/names"

/* Rank columns: column c of every [x × rank] dataset holds global rank
 * rank[c] (ascending). Per-rank identity from each rank's RUN record. */
#define CAIRN_H5_RANKS "/ranks"
#define CAIRN_H5_RANKS_RANK "rank"         /* i32 [ncols]                        */
#define CAIRN_H5_RANKS_HOST "hostname"     /* vlen string [ncols]                */
#define CAIRN_H5_RANKS_PID "pid"           /* u32 [ncols]                        */
#define CAIRN_H5_RANKS_START "start_ns"    /* u64 [ncols]                        */

/* One group per metric, /metrics/<index> with index = position of the
 * metric in byte-wise name order (0, 1, ... in decimal). Raw names never
 * become link names: they may hold '/', '.', or any byte but NUL. */
#define CAIRN_H5_METRICS "/metrics"
#define CAIRN_H5_M_ATTR_NAME "name"            /* string, the metric's bytes       */
#define CAIRN_H5_M_ATTR_NAME_INDEX "name_index" /* u32, entry in /names            */
/* u8 1: the per-step statistics datasets are omitted because the file has
 * a single rank column, where they equal its values (count = samples > 0,
 * sum = min = max = value, sumsq = value^2, rank_min = rank_max = the
 * rank); readers recompute them. Absent or 0: they are stored. */
#define CAIRN_H5_M_ATTR_STATS_DERIVED "stats_derived"
#define CAIRN_H5_M_ATTR_MISSING "missing"      /* u64, (step, rank) cells without
                                                  a sample                         */
#define CAIRN_H5_M_STEP "step"         /* i64 [nsteps], ascending, unique          */
#define CAIRN_H5_M_COUNT "count"       /* u32 [nsteps], ranks with a sample        */
#define CAIRN_H5_M_SUM "sum"           /* f64 [nsteps], sum of per-rank values     */
#define CAIRN_H5_M_SUMSQ "sumsq"       /* f64 [nsteps], sum of their squares       */
#define CAIRN_H5_M_MIN "min"           /* f64 [nsteps], NaN-ignoring               */
#define CAIRN_H5_M_MAX "max"           /* f64 [nsteps]                             */
#define CAIRN_H5_M_RANK_MIN "rank_min" /* i32 [nsteps], global rank, -1 if none    */
#define CAIRN_H5_M_RANK_MAX "rank_max" /* i32 [nsteps]                             */
#define CAIRN_H5_M_VALUES "values"     /* f64 [nsteps × ncols], NaN = no sample;
                                          only when detail is on                   */
#define CAIRN_H5_M_SAMPLES "samples"   /* u32 [nsteps × ncols], samples averaged
                                          into each value, 0 = missing             */

/* Step markers: the steps any rank marked, and each rank's timestamp. */
#define CAIRN_H5_STEPS "/steps"
#define CAIRN_H5_STEPS_STEP "step"     /* i64 [nmarks], ascending, unique          */
#define CAIRN_H5_STEPS_TIME "time_ns"  /* u64 [nmarks × ncols], earliest marker of
                                          that step on that rank, 0 = none         */

/* Tables (compound datasets, one row per record; layouts below). */
#define CAIRN_H5_PARAMS "/params"
#define CAIRN_H5_RUNKV "/run"
#define CAIRN_H5_LINEAGE "/lineage"
#define CAIRN_H5_L_ARTIFACTS "/lineage/artifacts"
#define CAIRN_H5_L_EXECUTIONS "/lineage/executions"
#define CAIRN_H5_L_EVENTS "/lineage/events"
#define CAIRN_H5_L_CONTEXTS "/lineage/contexts"

/* Exact accounting, [ncols × CAIRN_H5_NCHANNELS] u64 each; channel 0 =
 * metrics, 1 = control (cairn_channel). "stored" is the WAL's "written". */
#define CAIRN_H5_ACCOUNTING "/accounting"
#define CAIRN_H5_ACCT_LOGGED "logged"
#define CAIRN_H5_ACCT_STORED "stored"
#define CAIRN_H5_ACCT_DROPPED "dropped"
#define CAIRN_H5_ACCT_REJECTED "rejected"
#define CAIRN_H5_ACCT_REPORTED "reported" /* u8 [ncols]: 1 if the rank's counters
                                             reached the log                       */
#define CAIRN_H5_ACCT_ATTR_CHANNELS "channels" /* string "metrics,control"         */
#define CAIRN_H5_NCHANNELS 2

/* ---------------------------------------------------------------------- */
/* Storage policy                                                          */
/* ---------------------------------------------------------------------- */

/* HDF5 filter id of zstd, registered with The HDF Group; cd_values[0] is
 * the compression level. Every chunked dataset is shuffle + zstd. */
#define CAIRN_H5_FILTER_ZSTD 32015
#define CAIRN_H5_ZSTD_LEVEL 3

/* Chunks aim at ~1 MiB of uncompressed data: large enough for zstd to find
 * the redundancy between steps, small enough that reading one step range of
 * one rank stays cheap. Columns per chunk are capped so a 10,000-rank file
 * still chunks along ranks too. */
#define CAIRN_H5_CHUNK_BYTES (1u << 20)
#define CAIRN_H5_CHUNK_MAX_COLS 256u

/* Half the fan-out of a chunked dataset's chunk index (a version 1 B-tree
 * in the 1.8 format; HDF5's default is 32). Its nodes are written at full
 * size however few chunks they hold: at 32 a node takes about 1.9 KB, and
 * most datasets of a run with many metrics and few steps have one chunk,
 * so the index was the larger part of such a file (10,000 datasets: 19.4
 * of 25 MB). At 2 a node holds 4 chunks (about 180 bytes); a dataset of
 * 1,000 chunks is then 5 levels deep instead of 2, which its readers do
 * not notice beside decompressing a chunk. */
#define CAIRN_H5_ISTORE_K 2u

/* ---------------------------------------------------------------------- */
/* Table records                                                           */
/* ---------------------------------------------------------------------- */

/*
 * In-memory mirrors of the compound rows. Strings are HDF5 variable-length
 * byte strings (char *, NUL-terminated in memory, cset ASCII so readers get
 * bytes, not decoded text); "key" columns are indexes into /names. These
 * structs are only ever handed to HDF5 with the matching compound type from
 * h5_schema.c, which converts to the little-endian file layout (never
 * written to disk as raw struct bytes).
 */
enum { CAIRN_H5_PARAM_INT64 = 1, CAIRN_H5_PARAM_DOUBLE, CAIRN_H5_PARAM_STRING,
       CAIRN_H5_PARAM_BOOL }; /* the same numbers as CAIRN_PARAM_* in the WAL */

typedef struct {
  int32_t rank;   /* rank that logged it                                    */
  uint32_t key;   /* index into /names                                      */
  uint8_t type;   /* CAIRN_H5_PARAM_*                                       */
  int64_t i64;    /* INT64, and BOOL as 0/1                                 */
  double f64;     /* DOUBLE                                                 */
  char *str;      /* STRING ("" for other types)                            */
} cairn_h5_param_row;

typedef struct {
  int32_t rank;
  uint32_t key;   /* index into /names */
  char *value;
} cairn_h5_kv_row;

/* Lineage rows (CMF concepts). Ids are unique within a run; the lineage
 * issue fills these tables, v1 defines and writes them (empty is valid). */
enum { CAIRN_H5_ARTIFACT_OTHER = 0, CAIRN_H5_ARTIFACT_DATASET,
       CAIRN_H5_ARTIFACT_MODEL, CAIRN_H5_ARTIFACT_DATASLICE,
       CAIRN_H5_ARTIFACT_METRICS, CAIRN_H5_ARTIFACT_STEP_METRICS,
       CAIRN_H5_ARTIFACT_ENVIRONMENT };
enum { CAIRN_H5_EVENT_INPUT = 1, CAIRN_H5_EVENT_OUTPUT = 2 };

typedef struct {
  uint64_t id;
  uint8_t kind;        /* CAIRN_H5_ARTIFACT_*                              */
  int32_t rank;        /* rank that logged it                              */
  uint64_t size;       /* bytes, 0 if unknown                              */
  uint64_t t_ns;       /* when it was logged                               */
  char *uri;           /* path or URI                                      */
  char *hash;          /* "cairn-merkle-sha256-v1:<hex>" (docs/format.md),
                          "" for a URI, "error: <reason>" if it failed     */
  char *properties;    /* typed properties, a flat JSON object (io/props.h);
                          "" if none (v2)                                  */
} cairn_h5_artifact_row;

typedef struct {
  uint64_t id;
  uint64_t context_id; /* a /lineage/contexts id                           */
  int32_t rank;
  uint64_t start_ns, end_ns;
  char *name;
  char *properties;    /* JSON object text, "" if none                     */
  char *type;          /* execution type, e.g. "train" (v2)                */
  char *command;       /* command line, "" if unknown (v2)                 */
} cairn_h5_execution_row;

typedef struct {
  uint64_t execution_id;
  uint64_t artifact_id;
  uint8_t type;        /* CAIRN_H5_EVENT_*                                 */
  int32_t rank;
  uint64_t t_ns;
} cairn_h5_event_row;

typedef struct {
  uint64_t id;
  char *name;          /* stage name                                       */
  char *pipeline;
  char *properties;    /* JSON object text, "" if none                     */
} cairn_h5_context_row;

#endif /* CAIRN_H5_FORMAT_H */
