/*
 * run_view.h — private to cairn (shared by the tools, the writers and the
 * tests): one in-memory view of a run — metrics with their per-step
 * statistics across ranks and per-rank values, step markers, params, run
 * key/values, lineage tables and exact accounting — built the same way from
 * a complete HDF5 run file or from the write-ahead log of a crashed job.
 * Tools open a run directory with cairn__run_open and never care which.
 */
#ifndef CAIRN_RUN_VIEW_H
#define CAIRN_RUN_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "h5/h5_format.h"
#include "run_reader.h"

/* ---------------------------------------------------------------------- */
/* The view. Every field is read-only for tools; the functions below fill */
/* and free it. Strings are NUL-terminated and may hold any other byte.   */
/* ---------------------------------------------------------------------- */

typedef struct {
  char *name;          /* metric name (any bytes but NUL)                    */
  size_t name_len;
  size_t nsteps;
  int64_t *step;       /* [nsteps] ascending, unique; not assumed contiguous */
  /* Per-step statistics across the per-rank values of that step. */
  uint32_t *count;     /* ranks with at least one sample                     */
  double *sum, *sumsq; /* over those ranks' values (a NaN value makes it NaN) */
  double *min, *max;   /* NaN-ignoring; NaN if no rank has a non-NaN value   */
  int32_t *rank_min;   /* global rank holding min (lowest on ties), -1 none  */
  int32_t *rank_max;
  /* Per-rank detail, row-major [nsteps × ncols]; NULL when the source kept
   * statistics only (detail off). values[i*ncols+c] is the mean of rank
   * col_rank[c]'s samples at step[i]; NaN with samples == 0 when missing. */
  double *values;
  uint32_t *samples;
  /* 1: samples is the view's `ones` (every cell holds one sample), shared
   * with its other such metrics and freed with the view, not the metric.
   * Views finished from a log or a builder do this; read it, never write. */
  int samples_shared;
  uint64_t missing;    /* cells with samples == 0                            */
  /* Whether every value is NaN or exactly a float32 (the writers then store
   * values as float32): 0 not known (a writer scans the values), 1 no,
   * 2 yes. Finishing a view from the log or a builder sets it on the way,
   * while each row is in cache, so the writer need not read the values
   * once more. */
  int f32;
} cairn_view_metric;

typedef struct {
  int32_t rank;
  uint8_t type;        /* CAIRN_H5_PARAM_* (== CAIRN_PARAM_*)               */
  char *key;
  int64_t i64;
  double f64;
  char *str;           /* "" unless STRING                                   */
} cairn_view_param;

typedef struct {
  int32_t rank;
  char *key;
  char *value;
} cairn_view_kv;

typedef struct {
  uint64_t logged, stored, dropped, rejected;
} cairn_view_acct;

typedef struct {
  char *hostname;      /* "" if the rank's RUN record was not seen           */
  uint32_t pid;
  uint64_t start_ns;
} cairn_view_rank;

enum {
  CAIRN_VIEW_FROM_H5 = 1,  /* at least one complete HDF5 file was read        */
  CAIRN_VIEW_FROM_WAL = 2  /* at least one rank came from WAL segments        */
};

typedef struct {
  /* Identity (root attributes of the file). */
  uint32_t format_version; /* of the HDF5 file read; 0 for a WAL-only view   */
  uint8_t run_id[16];
  int have_run_id;
  char cairn_version[32];
  uint64_t created_ns;     /* file creation; for WAL, earliest rank start    */
  uint32_t nranks;         /* ranks in the whole run                         */
  uint32_t naggregators;
  uint32_t group;          /* aggregator group (file) this view holds        */
  int detail;              /* 1 if per-rank values are present               */
  int source;              /* CAIRN_VIEW_FROM_* bits                          */

  /* Rank columns, ascending by global rank. */
  size_t ncols;
  int32_t *col_rank;       /* [ncols]                                         */
  cairn_view_rank *ranks;  /* [ncols]                                         */
  cairn_view_acct *acct;   /* [ncols × CAIRN_H5_NCHANNELS]                    */
  uint8_t *acct_reported;  /* [ncols]                                         */

  size_t nmetrics;
  cairn_view_metric *metrics; /* sorted by name, byte-wise                    */
  uint32_t *ones;      /* all 1: the samples of metrics with samples_shared  */

  /* Step markers: mark_time[i*ncols+c] is rank col_rank[c]'s earliest
   * marker of step mark_step[i] (ns since the epoch), 0 if it has none. */
  size_t nmarks;
  int64_t *mark_step;
  uint64_t *mark_time;

  /* Params and run key/values, every record kept, ordered by rank then by
   * the order logged ("last value wins" is an accessor, not a loss). */
  size_t nparams, nkv;
  cairn_view_param *params;
  cairn_view_kv *kv;

  /* Lineage tables (rows own their strings). */
  size_t nartifacts, nexecutions, nevents, ncontexts;
  cairn_h5_artifact_row *artifacts;
  cairn_h5_execution_row *executions;
  cairn_h5_event_row *events;
  cairn_h5_context_row *contexts;

  /* Private: allocated rows of the tables above (>= their counts). */
  struct {
    size_t params, kv, artifacts, executions, events, contexts;
  } cap_;
} cairn_run_view;

/* ---------------------------------------------------------------------- */
/* Reports: what was wrong and what could still be read                    */
/* ---------------------------------------------------------------------- */

typedef struct {
  /* Set by the caller (may be NULL): receives one message per problem,
   * always naming the file: "<path>: <what is wrong>[; <what was kept>]". */
  cairn_run_report_fn fn;
  void *ctx;
  /* Set by the caller (may be NULL): called by the HDF5 reader each time a
   * metric of a file has been read completely (index of total, in the
   * file's order), in the reading thread, so that a consumer can start on
   * it while the rest is read; everything of the view but its metrics is
   * complete at the first call. After the last metric (or before the
   * metrics are freed on an error) it is called once with m NULL: when that
   * call returns, the reader sorts the view's metrics by name (the structs
   * move, their arrays do not) and, if some metric had no per-rank values,
   * frees every metric's — so a consumer still using a metric's arrays
   * from another thread must finish before returning from the NULL call. */
  void (*on_metric)(void *metric_ctx, const cairn_view_metric *m, size_t index, size_t total);
  void *metric_ctx;
  /* Filled by the readers. */
  uint32_t h5_files;       /* complete HDF5 files read                       */
  uint32_t h5_bad;         /* HDF5 files rejected or partly unreadable       */
  uint32_t tmp_files;      /* leftover temporaries ignored                   */
  uint32_t wal_ranks;      /* ranks recovered from WAL segments              */
  uint64_t lost_datasets;  /* datasets of an HDF5 file that could not be read */
  uint32_t unnamed_metrics;/* metric ids whose name record was lost          */
  uint64_t over_limit;     /* what a memory-bounded read held when it passed */
                           /* its limit and stopped (0: it did not)          */
  cairn_run_damage wal;    /* damage found in WAL segments                   */
} cairn_run_report;

/* ---------------------------------------------------------------------- */
/* Run directories                                                         */
/* ---------------------------------------------------------------------- */

typedef enum {
  CAIRN_FILE_H5 = 1,     /* run-g<group>.h5: complete (renamed into place)  */
  CAIRN_FILE_H5_TMP = 2, /* .run-g<group>.h5.tmp: a writer died mid-write   */
  CAIRN_FILE_WAL = 3     /* wal-r<rank>-<seq>.cwal                          */
} cairn_run_file_kind;

typedef struct {
  char *path;
  cairn_run_file_kind kind;
  uint32_t group_or_rank;  /* group for HDF5 files, rank for WAL segments  */
  uint32_t seq;            /* WAL segment sequence number                  */
  uint64_t bytes;
} cairn_run_file;

typedef enum {
  CAIRN_RUN_EMPTY = 0,    /* neither HDF5 files nor WAL segments           */
  CAIRN_RUN_H5 = 1,       /* complete HDF5 files only (the normal end)     */
  CAIRN_RUN_WAL_ONLY = 2, /* only WAL segments: running, or crashed        */
  CAIRN_RUN_BOTH = 3      /* both: crashed between rename and WAL removal,
                             or some groups finished and others did not    */
} cairn_run_state;

/*
 * Lists the run files of `dir` (HDF5 files, temporaries, WAL segments),
 * sorted by kind, then group/rank, then sequence, and says which state the
 * directory is in. Other files are ignored. *files is malloc'd (free with
 * cairn__run_files_free). Returns CAIRN_OK, CAIRN_EIO (message in err),
 * CAIRN_ENOMEM.
 */
int cairn__run_list_files(const char *dir, cairn_run_file **files, size_t *n,
                          cairn_run_state *state, char *err, size_t errlen);
void cairn__run_files_free(cairn_run_file *files, size_t n);

/*
 * Opens a run directory into *view: every complete HDF5 file, plus the WAL
 * segments of any rank that no complete file holds (a crashed job, or a
 * group that did not finish), combined into one view. Damage is described
 * through report->fn and counted in *report (may be NULL); whatever could be
 * read is in the view.
 *
 * Returns CAIRN_OK when something was read (check *report for damage);
 * CAIRN_ENOTFOUND if the directory holds no run file; CAIRN_EFOREIGN,
 * CAIRN_EVERSION, CAIRN_ETRUNCATED, CAIRN_ECORRUPT when the only file there
 * is unusable (the message names it); CAIRN_EIO, CAIRN_ENOMEM. On error the
 * view is empty but valid (cairn__view_free is still fine). Not thread-safe
 * against other HDF5 use in the process (HDF5 is not).
 */
int cairn__run_open(const char *dir, cairn_run_view *view, cairn_run_report *report);

/*
 * Builds the view from the WAL segments of `dir` only, skipping the ranks
 * for which skip(ctx, rank) returns non-zero (skip may be NULL). Combines
 * partial per-(step, metric) aggregates, keeps the last COUNTERS of each
 * rank, every param and key/value. Returns CAIRN_OK (check report),
 * CAIRN_ENOTFOUND (no segment), CAIRN_EIO, CAIRN_ENOMEM.
 */
int cairn__view_from_wal(const char *dir, cairn_run_view *view, cairn_run_report *report,
                         int (*skip)(void *ctx, uint32_t rank), void *skip_ctx);

/* The same, from the segments of one WAL writer only (wal-r<writer>-*):
 * what one aggregator logged, for its share of a parallel write. */
int cairn__view_from_wal_of(const char *dir, uint32_t writer, cairn_run_view *view,
                            cairn_run_report *report);

/*
 * The same view built block by block as blocks are written, by the thread
 * that writes them (an aggregator keeps one during the run, so that
 * MPI_Finalize writes the HDF5 file without reading its log back). Fed the
 * same DATA block payloads in the same order, it gives exactly the view
 * cairn__view_from_wal_of gives for the log (same bits). Not thread-safe:
 * one thread feeds it, then finishes it.
 *
 * _add decodes one DATA payload written by WAL writer `writer` (records
 * without a SOURCE section are that writer's own). Returns CAIRN_OK, or
 * CAIRN_ECORRUPT with a message in err if the payload does not decode (the
 * records before the bad one are kept), or CAIRN_ENOMEM; after ENOMEM the
 * builder is unusable and only _free may be called.
 * _bytes is what its per-rank cells, step markers and indexes hold, for a
 * caller bounding its memory.
 * _finish turns it into *view and frees it (also on failure): CAIRN_OK,
 * CAIRN_ENOTFOUND (no block with a rank was added), CAIRN_ENOMEM.
 */
typedef struct cairn_view_builder cairn_view_builder;

int cairn__view_builder_new(cairn_view_builder **out);
/* The number of ranks the blocks will come from, when the caller knows it
 * (an aggregator serves a fixed group): each metric's rows are then
 * allocated that wide from the first record, rather than widened by
 * doubling as ranks show up (copies while the first blocks arrive, and up
 * to twice the cells' memory for the rest of the run when the count is
 * not a power of two). Only a hint: fewer ranks or more work as without
 * it. Call before the first _add. */
void cairn__view_builder_expect_ranks(cairn_view_builder *vb, size_t nranks);
/* The finished view's metrics get per-rank values, sample counts, missing
 * counts and the float32 finding, and no per-step statistics: count, sum,
 * sumsq, min, max, rank_min and rank_max are NULL. For a caller that
 * computes the statistics over more ranks than these (the parallel writer,
 * whose group's aggregators each hold some of the file's ranks), to which
 * the aggregator's own were wasted work and memory (about 40 bytes a step
 * of every metric, written once and never read). Call before _finish;
 * such a view is only for that caller. */
void cairn__view_builder_values_only(cairn_view_builder *vb);
int cairn__view_builder_add(cairn_view_builder *vb, uint32_t writer, const void *payload,
                            size_t len, char *err, size_t errlen);
size_t cairn__view_builder_bytes(const cairn_view_builder *vb);
int cairn__view_builder_finish(cairn_view_builder *vb, cairn_run_view *view);
void cairn__view_builder_free(cairn_view_builder *vb);

/*
 * Streamed finish, for writers that must not hold a whole finished view
 * (about 64 bytes per per-rank sample with one rank) beside the cells it
 * is made from: the view is finished except for its metrics' arrays, and
 * the metrics are finished later, in name order, a range at a time, so a
 * writer can write and release each range before the next one exists.
 *
 * _finish_pending is _finish (it frees vb, also on failure) except that
 * every view->metrics[k] holds only its name; *pending keeps the cells.
 * _from_wal_pending is cairn__view_from_wal (writer < 0: every writer) or
 * cairn__view_from_wal_of (writer >= 0) in the same form; with limit > 0
 * it stops reading once the cells it holds pass `limit` bytes and returns
 * CAIRN_ENOMEM with report->over_limit set (the log is not touched). Both
 * leave *pending NULL on failure. `view` must stay at the same address until the
 * pending state is freed.
 *
 * _fill finishes the next metrics (starting where the previous call ended)
 * while their finished arrays fit in `budget` bytes (at least one metric),
 * on every usable CPU, and sets *next to one past the last one finished
 * (view->nmetrics when all are done). Returns CAIRN_OK or CAIRN_ENOMEM.
 * The caller owns the finished metrics' arrays: cairn__view_metric_release
 * frees them early, else cairn__view_free does. Not thread-safe.
 */
typedef struct cairn_view_pending cairn_view_pending;

int cairn__view_builder_finish_pending(cairn_view_builder *vb, cairn_run_view *view,
                                       cairn_view_pending **pending);
int cairn__view_from_wal_pending(const char *dir, long writer, uint64_t limit,
                                 cairn_run_view *view, cairn_run_report *report,
                                 cairn_view_pending **pending);
int cairn__view_pending_fill(cairn_view_pending *p, size_t budget, size_t *next);
void cairn__view_pending_free(cairn_view_pending *p);

/*
 * Reads one HDF5 run file into *view (h5_reader.c). Returns CAIRN_OK (some
 * datasets may still have been unreadable: see report->lost_datasets),
 * CAIRN_EFOREIGN (not HDF5, or HDF5 without cairn's root attributes),
 * CAIRN_EVERSION, CAIRN_ETRUNCATED (shorter than its superblock says: what
 * lies in the intact part is read), CAIRN_ECORRUPT, CAIRN_EIO, CAIRN_ENOMEM.
 * Messages name the file.
 */
int cairn__view_from_h5(const char *path, cairn_run_view *view, cairn_run_report *report);

/* Files of at most this many bytes are read into memory whole when opened
 * (one read instead of a pread per metadata object); larger ones are read
 * in place. The variable starts at the default; tests set it to 0. */
#define CAIRN_H5_READ_IN_MEMORY ((size_t)256 << 20)
extern size_t cairn__h5_read_in_memory;

/* ---------------------------------------------------------------------- */
/* Building, combining, freeing                                            */
/* ---------------------------------------------------------------------- */

void cairn__view_init(cairn_run_view *view);
void cairn__view_free(cairn_run_view *view);

/*
 * Moves the content of *src into *dst and empties *src. The two must hold
 * disjoint rank columns (two group files, or a file and the WAL of other
 * ranks). Statistics of steps both hold are combined: counts and sums add,
 * min/max compare (lower rank wins ties). Returns CAIRN_OK, CAIRN_EINVAL
 * (overlapping ranks: nothing moved), CAIRN_ENOMEM (dst unchanged).
 */
int cairn__view_merge(cairn_run_view *dst, cairn_run_view *src);

/* Computes one step's statistics from its row of per-rank values, in column
 * (= rank) order; shared by every writer so files agree to the bit. */
void cairn__view_stats_row(const double *values, const uint32_t *samples,
                           const int32_t *col_rank, size_t ncols, uint32_t *count,
                           double *sum, double *sumsq, double *min, double *max,
                           int32_t *rank_min, int32_t *rank_max);

/* Allocates a metric's arrays for nsteps rows (values/samples too when
 * detail); contents uninitialised. Returns CAIRN_OK or CAIRN_ENOMEM. */
int cairn__view_metric_alloc(cairn_view_metric *m, size_t nsteps, size_t ncols, int detail);
void cairn__view_metric_free(cairn_view_metric *m);
/* Frees a metric's arrays but keeps its name (a streamed write releases
 * each metric once it is written). */
void cairn__view_metric_release(cairn_view_metric *m);

/* Append copies of a row (strings duplicated). CAIRN_OK or CAIRN_ENOMEM. */
int cairn__view_add_param(cairn_run_view *v, const cairn_view_param *p);
int cairn__view_add_kv(cairn_run_view *v, int32_t rank, const char *key, const char *value);
int cairn__view_add_artifact(cairn_run_view *v, const cairn_h5_artifact_row *r);
int cairn__view_add_execution(cairn_run_view *v, const cairn_h5_execution_row *r);
int cairn__view_add_event(cairn_run_view *v, const cairn_h5_event_row *r);
int cairn__view_add_context(cairn_run_view *v, const cairn_h5_context_row *r);

/* ---------------------------------------------------------------------- */
/* Accessors                                                               */
/* ---------------------------------------------------------------------- */

/* Index of the metric named `name` (len bytes), or -1. O(log n). */
long cairn__view_metric_find(const cairn_run_view *v, const char *name, size_t len);
/* Row of `step` in a metric, or -1. O(log n). */
long cairn__view_step_find(const cairn_view_metric *m, int64_t step);
/* Column of a global rank, or -1. */
long cairn__view_col_of_rank(const cairn_run_view *v, int32_t rank);
/* The last value logged for a param key; rank < 0 means any rank (the
 * highest rank's last record). NULL if none. */
const cairn_view_param *cairn__view_param_last(const cairn_run_view *v, const char *key,
                                               int32_t rank);
const cairn_view_kv *cairn__view_kv_last(const cairn_run_view *v, const char *key,
                                         int32_t rank);
/* Seconds from rank column c's marker of step mark_step[i] to its next
 * marker (the step's duration); NaN if either marker is missing. */
double cairn__view_step_seconds(const cairn_run_view *v, size_t i, size_t c);

#endif /* CAIRN_RUN_VIEW_H */
