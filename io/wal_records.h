/*
 * wal_records.h — private to cairn (shared by the runtime and the tools).
 * What a WAL DATA block holds: a sequence of typed sections (run identity,
 * metric names, per-step metric aggregates, step markers, params, run
 * key/values, accounting). The drain encodes them; every reader decodes them
 * through cairn__rec_decode. Layout documented in docs/format.md
 * ("WAL DATA payload"). All integers little-endian.
 */
#ifndef CAIRN_WAL_RECORDS_H
#define CAIRN_WAL_RECORDS_H

#include <stddef.h>
#include <stdint.h>

/* Section types. Readers skip unknown types (forward compatibility). */
enum {
  CAIRN_SEC_RUN = 1,      /* run identity; first block of a run          */
  CAIRN_SEC_NAMES = 2,    /* metric id -> name                           */
  CAIRN_SEC_METRICS = 3,  /* per-(step, metric) aggregates, columnar     */
  CAIRN_SEC_STEPS = 4,    /* step markers with timestamps                */
  CAIRN_SEC_PARAMS = 5,   /* typed params                                */
  CAIRN_SEC_KV = 6,       /* run-level key/values                        */
  CAIRN_SEC_COUNTERS = 7, /* cumulative accounting per channel           */
  CAIRN_SEC_SOURCE = 8,   /* the rank the following sections belong to   */
  CAIRN_SEC_ARTIFACTS = 9, /* artifacts with their content hash           */
  CAIRN_SEC_LINEAGE = 10   /* stages (contexts) and executions             */
};

enum { CAIRN_LIN_CONTEXT = 1, CAIRN_LIN_EXEC_BEGIN = 2, CAIRN_LIN_EXEC_END = 3 };

/* Section header: u16 type, u16 flags, u32 count, u32 byte length of the
 * section body that follows. flags is the section's record layout: 0 for
 * every section except ARTIFACTS and LINEAGE, which write
 * CAIRN_SEC_LAYOUT_V2 (WAL format 2: artifacts carry properties, lineage
 * records an execution type and command line) and still read layout 0 (WAL
 * format 1). A known section with an unknown layout is corrupt. */
#define CAIRN_SEC_HEADER_SIZE 12u
#define CAIRN_SEC_LAYOUT_V2 1u

enum {
  CAIRN_PARAM_INT64 = 1,
  CAIRN_PARAM_DOUBLE = 2,
  CAIRN_PARAM_STRING = 3,
  CAIRN_PARAM_BOOL = 4
};

/* A metric's aggregate for one step in one process: the step's value is
 * sum / count (the mean of its samples); min/max ignore NaN samples (both
 * NaN if every sample was NaN). */
typedef struct {
  int64_t step;
  uint32_t id;
  uint32_t count;
  double sum;
  double min;
  double max;
} cairn_metric_agg;

typedef struct {
  uint8_t run_id[16];
  uint32_t rank;
  uint32_t nranks;
  uint32_t pid;
  uint64_t start_ns;       /* CLOCK_REALTIME at cairn_init */
  const char *hostname;    /* not NUL-terminated when decoded: use lengths */
  size_t hostname_len;
  const char *version;
  size_t version_len;
} cairn_rec_run;

typedef struct {
  int type; /* CAIRN_PARAM_* */
  const char *key;
  size_t key_len;
  int64_t i64;      /* INT64 and BOOL (0/1) */
  double f64;       /* DOUBLE */
  const char *str;  /* STRING */
  size_t str_len;
} cairn_rec_param;

typedef struct {
  uint32_t channel; /* cairn_channel */
  uint64_t logged, written, dropped, rejected;
} cairn_rec_counters;

typedef struct {
  int64_t step;
  uint64_t t_ns;
  uint32_t thread;
} cairn_rec_step;

/* An artifact the application read (INPUT) or wrote (OUTPUT). hash is
 * "cairn-merkle-sha256-v1:<64 hex>" (docs/format.md, "Content hashes"),
 * "" for a URI recorded as given, or "error: <reason>" when the file could
 * not be hashed (missing, a directory, unreadable, changed while hashed). */
typedef struct {
  uint64_t id;      /* unique in the run: rank << 32 | sequence          */
  uint8_t kind;     /* CAIRN_ARTIFACT_* (cairn.h)                        */
  uint8_t role;     /* CAIRN_ROLE_INPUT / CAIRN_ROLE_OUTPUT (cairn.h)    */
  uint64_t execution_id; /* the execution open when it was logged, 0 none */
  uint64_t size;    /* bytes hashed, 0 for URIs and failures             */
  uint64_t t_ns;    /* when the application logged it (CLOCK_REALTIME)   */
  const char *uri;  /* the path or URI as given                          */
  size_t uri_len;
  const char *hash;
  size_t hash_len;
  const char *props; /* typed properties, a flat JSON object, "" if none  */
  size_t props_len;  /* (validated by the runtime; io/props.h reads it)   */
} cairn_rec_artifact;

/* A stage of the pipeline began (CONTEXT: name, pipeline, properties), or
 * an execution began (EXEC_BEGIN: parent = its stage, name, properties,
 * type, command line) or ended (EXEC_END). Properties are JSON object text,
 * "" if none; type and command are "" except for EXEC_BEGIN (and "" when
 * decoded from a layout-0 section, which had neither). */
typedef struct {
  uint8_t what;     /* CAIRN_LIN_* */
  uint64_t id;
  uint64_t parent;
  uint64_t t_ns;
  const char *name, *text, *props;
  size_t name_len, text_len, props_len;
  const char *type, *command;
  size_t type_len, command_len;
} cairn_rec_lineage;

/* ---- growable byte buffer ----------------------------------------------- */

typedef struct {
  uint8_t *data;
  size_t len, cap;
  int failed; /* an allocation failed; contents are incomplete */
} cairn_buf;

void cairn__buf_reset(cairn_buf *b);
/* Appends n bytes; returns 0, or -1 (and sets failed) when out of memory. */
int cairn__buf_append(cairn_buf *b, const void *p, size_t n);
void cairn__buf_free(cairn_buf *b);

/* ---- encoder: each call appends one whole section ------------------------ */
/* They never fail loudly: on allocation failure b->failed is set and the
 * caller checks it once before writing the block. */

void cairn__rec_put_run(cairn_buf *b, const cairn_rec_run *run);
void cairn__rec_put_names(cairn_buf *b, size_t n, const uint32_t *ids,
                          const char *const *names);
void cairn__rec_put_metrics(cairn_buf *b, size_t n, const cairn_metric_agg *agg);
void cairn__rec_put_steps(cairn_buf *b, size_t n, const cairn_rec_step *steps);
/* Params and key/values are appended one by one inside an open section. */
size_t cairn__rec_open(cairn_buf *b, uint16_t type);
void cairn__rec_add_param(cairn_buf *b, const cairn_rec_param *p);
void cairn__rec_add_kv(cairn_buf *b, const char *key, size_t klen,
                       const char *val, size_t vlen);
void cairn__rec_close(cairn_buf *b, size_t open_offset, uint32_t count);
void cairn__rec_put_counters(cairn_buf *b, size_t n, const cairn_rec_counters *c);
void cairn__rec_put_source(cairn_buf *b, uint32_t rank);
/* Artifacts are appended one by one inside a section opened with
 * cairn__rec_open_artifacts (layout 2); lineage records likewise inside
 * cairn__rec_open_lineage. */
size_t cairn__rec_open_artifacts(cairn_buf *b);
size_t cairn__rec_open_lineage(cairn_buf *b);
void cairn__rec_add_artifact(cairn_buf *b, const cairn_rec_artifact *a);
void cairn__rec_add_lineage(cairn_buf *b, const cairn_rec_lineage *l);

/* ---- decoder ------------------------------------------------------------- */

/* Callbacks may be NULL (section skipped). A non-zero return stops decoding
 * and is returned by cairn__rec_decode. Pointers are valid during the call. */
typedef struct {
  void *ctx;
  int (*run)(void *ctx, const cairn_rec_run *run);
  int (*name)(void *ctx, uint32_t id, const char *name, size_t len);
  int (*metric)(void *ctx, const cairn_metric_agg *agg);
  int (*step)(void *ctx, const cairn_rec_step *step);
  int (*param)(void *ctx, const cairn_rec_param *param);
  int (*kv)(void *ctx, const char *key, size_t klen, const char *val, size_t vlen);
  int (*counters)(void *ctx, const cairn_rec_counters *c);
  /* The world rank that logged the sections that follow in this block
   * (every block starts with one; a block without it belongs to the
   * segment's writer). */
  int (*source)(void *ctx, uint32_t rank);
  int (*artifact)(void *ctx, const cairn_rec_artifact *a);
  int (*lineage)(void *ctx, const cairn_rec_lineage *l);
} cairn_rec_visitor;

/*
 * Decodes one DATA payload, calling the visitor for every record in order.
 * Returns CAIRN_OK, a visitor's non-zero return, or CAIRN_ECORRUPT with a
 * message (section index, byte offset, what is wrong) in err. Bounds are
 * checked everywhere: any byte string is safe to pass.
 */
int cairn__rec_decode(const void *payload, size_t len, const cairn_rec_visitor *v,
                      char *err, size_t errlen);

#endif /* CAIRN_WAL_RECORDS_H */
