/*
 * cairn.h — the public API of cairn, an MPI-aware metrics and lineage logging
 * runtime. This header is the whole contract: everything else in the source
 * tree is private.
 *
 * Conventions
 *   - Every function that can fail returns an int: 0 (CAIRN_OK) or a value
 *     >= 0 on success, a negative CAIRN_E* code on failure. cairn_strerror()
 *     and cairn_err_name() turn a code into text.
 *   - No function ever exits or aborts the application. A bad argument is
 *     reported with an error code and counted (cairn_counters()).
 *   - "Thread-safe" means any thread may call the function concurrently with
 *     any other cairn call except cairn_init() and cairn_finalize(), which
 *     must not race with other cairn calls (the same rule as MPI_Init and
 *     MPI_Finalize).
 *   - Hot calls (cairn_metric, cairn_metric_at) never make a system call,
 *     take a lock, allocate, or wait on I/O in the common case. Each thread
 *     logs into its own lock-free ring, created on its first call.
 *
 * Data model
 *   A run is one execution of a program. Metrics are named series of double
 *   values indexed by an int64 step. cairn_step() marks step boundaries and
 *   timestamps them. Params are typed, run-level key/values describing the
 *   inputs (learning rate, batch size); run key/values (cairn_run_set) are
 *   free-form string metadata (dataset name, notes).
 *
 *   Logging one metric several times within one step in one process is legal
 *   (e.g. once per micro-batch). The step's value is then the arithmetic mean
 *   of the samples, and the sample count is kept with it (the write-ahead
 *   log also keeps their minimum and maximum; the run file keeps the mean and
 *   the count). NaN and +/-Inf are data, not errors: a NaN sample makes the
 *   step's mean NaN; min/max ignore NaN samples.
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CAIRN_STATIC_DEFINE)
#define CAIRN_API
#elif defined(__GNUC__)
#define CAIRN_API __attribute__((visibility("default")))
#else
#define CAIRN_API
#endif

#define CAIRN_VERSION_MAJOR 0
#define CAIRN_VERSION_MINOR 1
#define CAIRN_VERSION_PATCH 0

/*
 * Error codes: X(name, value, message). One list generates the enum, the
 * names and the messages, so they cannot drift apart.
 */
#define CAIRN_ERRNO_MAP(X)                                                     \
  X(EINVAL, -1, "invalid argument")                                            \
  X(ENOTINIT, -2, "cairn is not initialized (call cairn_init first)")          \
  X(EALREADY, -3, "cairn is already initialized")                              \
  X(ENOMEM, -4, "out of memory")                                               \
  X(ECONFIG, -5, "invalid configuration")                                      \
  X(EIO, -6, "I/O error")                                                      \
  X(ENAMETOOLONG, -7, "name too long")                                         \
  X(ETOOMANY, -8, "too many distinct metric names")                            \
  X(EDROPPED, -9, "record dropped: the metric ring is full")                   \
  X(EDISABLED, -10, "cairn is disabled by configuration")                      \
  X(ECORRUPT, -11, "corrupt data (checksum or structure mismatch)")            \
  X(EFOREIGN, -12, "not a cairn file")                                         \
  X(ETRUNCATED, -13, "truncated data")                                         \
  X(EVERSION, -14, "unsupported format version")                               \
  X(ECOMPRESS, -15, "compression or decompression failed")                     \
  X(ENOTFOUND, -16, "not found")                                               \
  X(ETHREAD, -17, "could not start a background thread")                       \
  X(EBADID, -18, "unknown metric id (use the value cairn_metric_id returned)")

typedef enum {
  CAIRN_OK = 0,
#define CAIRN__ERR_ENUM(name, value, msg) CAIRN_##name = (value),
  CAIRN_ERRNO_MAP(CAIRN__ERR_ENUM)
#undef CAIRN__ERR_ENUM
} cairn_errno;

/* Returns a static, human-readable message for an error code (never NULL;
 * unknown codes give "unknown error"). Thread-safe. */
CAIRN_API const char *cairn_strerror(int err);

/* Returns the symbolic name of an error code, e.g. "CAIRN_EINVAL" (never
 * NULL; unknown codes give "CAIRN_UNKNOWN"). Thread-safe. */
CAIRN_API const char *cairn_err_name(int err);

/* Returns the library version as "MAJOR.MINOR.PATCH". Thread-safe, may be
 * called before cairn_init. */
CAIRN_API const char *cairn_version(void);

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */
/* ---------------------------------------------------------------------- */

/*
 * Starts cairn for this process: reads the configuration, creates the run
 * directory (<run.dir>/<run-id>/, mode 0700), opens the write-ahead log,
 * starts the background drain and writer threads and records the automatic
 * run metadata (docs/metadata.md) as run key/values. Under MPI there is no
 * need to call it: cairn starts inside MPI_Init (see cairn_mpi.h); calling
 * it before MPI_Init keeps a process-local run.
 *
 * config_path: a YAML file, or NULL to use $CAIRN_CONFIG if set, else
 * defaults only. CAIRN_* environment variables override the file (see
 * docs/config.md).
 *
 * Returns CAIRN_OK; CAIRN_EALREADY if already initialized; CAIRN_ECONFIG for
 * a bad configuration (the message, naming file, line, column and key, is
 * printed once to stderr and is available from cairn_last_error());
 * CAIRN_EDISABLED if the configuration sets enabled: false (every later call
 * then returns CAIRN_ENOTINIT cheaply); CAIRN_EIO if the run directory or log
 * cannot be created; CAIRN_ETHREAD or CAIRN_ENOMEM. On failure nothing is
 * left running and cairn_init may be called again.
 *
 * Not thread-safe: call once, from one thread, before logging. cairn_init
 * after cairn_finalize starts a new run.
 */
CAIRN_API int cairn_init(const char *config_path);

/*
 * Drains every ring, writes the remaining records and the final accounting
 * to the write-ahead log, syncs it, stops the background threads and frees
 * the rings; then converts the log into the run's HDF5 file
 * (<run dir>/run-g000000.h5, written under a temporary name and renamed)
 * and removes the log once the file is complete. Under MPI it ends only the
 * calling rank's logging; MPI_Finalize completes the run's files. Records logged by the calling thread are all captured; other threads
 * must have stopped logging and either exited or called cairn_flush() (a
 * thread's last few records are published at its next cairn_step, at
 * cairn_flush or when it exits).
 *
 * Returns CAIRN_OK; CAIRN_ENOTINIT if not initialized (including a second
 * call); CAIRN_EIO if the final write failed (counters say what was lost) or
 * the HDF5 file could not be written (the log is then kept: nothing is lost,
 * and cairn_last_error() says why).
 * Not thread-safe (see cairn_init).
 */
CAIRN_API int cairn_finalize(void);

/* Returns the message of the last cairn_init / cairn_finalize failure in this
 * process ("" if none). The string is owned by cairn and valid until the next
 * cairn_init or cairn_finalize call. */
CAIRN_API const char *cairn_last_error(void);

/* Identity of the current run, for printing and for tools. */
typedef struct {
  char run_id[37];   /* canonical UUID text, NUL-terminated */
  char run_dir[4096]; /* absolute path of the run directory */
} cairn_run_info;

/* Fills *info for the current (or, after finalize, the last) run.
 * Returns CAIRN_OK, CAIRN_EINVAL for NULL, CAIRN_ENOTINIT if no run was ever
 * started in this process. Thread-safe. */
CAIRN_API int cairn_get_run_info(cairn_run_info *info);

/* ---------------------------------------------------------------------- */
/* Metrics — the hot path                                                  */
/* ---------------------------------------------------------------------- */

/* Longest metric, param or key name, in bytes, excluding the NUL. */
#define CAIRN_NAME_MAX 255

/*
 * Interns a metric name and returns its id (>= 0). The same name always gives
 * the same id within a run; call it once per metric, outside the loop.
 * A name is 1..CAIRN_NAME_MAX bytes of any characters except NUL.
 *
 * Returns the id, or CAIRN_EINVAL (NULL or empty name), CAIRN_ENAMETOOLONG,
 * CAIRN_ETOOMANY (more than metrics.max_names distinct names),
 * CAIRN_ENOTINIT, CAIRN_ENOMEM. Thread-safe (takes a lock; not for the loop).
 */
CAIRN_API int cairn_metric_id(const char *name);

/*
 * Logs one sample of metric `id` at the current step (the last value given
 * to cairn_step by any thread; 0 before the first cairn_step).
 *
 * A full ring first grows by an overflow segment (up to ring.overflow_bytes
 * per thread; the segment is usually one the drain prepared, else this call
 * allocates it: the full-ring path, never the common case).
 *
 * Returns CAIRN_OK; CAIRN_EDROPPED if the calling thread's ring was full, could
 * not grow, and ring.policy is "drop" (the record is counted as dropped);
 * CAIRN_EBADID for an id cairn_metric_id did not return; CAIRN_ENOTINIT before
 * init or after finalize; CAIRN_ENOMEM if the thread's first call cannot
 * allocate its ring. Under ring.policy "block" a ring that is full and cannot
 * grow makes this call wait for the drain. Thread-safe, lock-free, no system
 * call in the common case. With GCC or Clang the common case is inlined at
 * the call site (see the inline fast path below).
 */
CAIRN_API int cairn_metric(int id, double value);

/* Like cairn_metric, at an explicit step. Same returns and guarantees. */
CAIRN_API int cairn_metric_at(int id, int64_t step, double value);

/*
 * The inline fast path of cairn_metric and cairn_metric_at.
 *
 * With GCC or Clang, this header turns cairn_metric(...) and
 * cairn_metric_at(...) into calls of cairn__metric_inline, which the
 * compiler inlines at the call site: check the run generation and the id
 * bound, store one record into the calling thread's ring through its
 * thread-local cursor (a pointer to the next slot and a pointer at which to
 * stop), and call back into the library only when the cursor reaches its
 * stop: every CAIRN__PUBLISH_BATCH records (to publish them), at the end of
 * the slot array, when the ring is full as far as the thread knows, or when
 * the thread is not yet registered in the run. Behaviour, returns and
 * accounting are exactly those of the exported functions, which remain
 * (for dlopen, FFI — ctypes, Fortran bind(C) — and for taking the
 * function's address: `(cairn_metric)(id, v)` or `&cairn_metric` bypasses
 * the macro). Define CAIRN_NO_INLINE before including cairn.h to call the
 * exported functions instead.
 *
 * ABI: the layouts of cairn__rec, cairn__cursor and cairn__hot_t, the
 * thread-local object cairn_abi_tls (initial-exec model: the library must be
 * loaded at program start — linked, or LD_PRELOADed — or fit in the static
 * TLS surplus when dlopened, as it already must for its own thread-local
 * state) and the global cairn_abi_hot are part of libcairn's ABI
 * (CAIRN__INLINE_ABI; a change bumps the SONAME). Nothing in them is API:
 * never read or write them directly.
 */
#define CAIRN__INLINE_ABI 2
#define CAIRN__PUBLISH_BATCH 32u /* power of two */
#define CAIRN__REC_METRIC 1u

/* One metric record in a ring, 24 bytes. */
typedef struct cairn__rec {
  uint32_t id;   /* metric id from cairn_metric_id */
  uint32_t kind; /* CAIRN__REC_METRIC              */
  int64_t step;
  double value;
} cairn__rec;

/* A thread's producer cursor into its ring (thread-local, one cache line).
 * The fast path reads gen, next and stop, and writes next. */
typedef struct cairn__cursor {
  uint64_t gen;            /* run generation the cursor belongs to            */
  cairn__rec *next;        /* the slot the next record goes to                */
  cairn__rec *stop;        /* next == stop: call the library before storing   */
  cairn__rec *slots;       /* slot array of the segment being written         */
  uint64_t lap;            /* free-running index of slots[0] in this pass     */
  uint64_t limit;          /* index at which the ring looks full              */
  uint64_t dropped;        /* records dropped by this thread in this ring     */
  struct cairn_ring *ring; /* opaque                                          */
} cairn__cursor;

/* Process-wide values every fast-path call reads; two cache lines, so the
 * step (written at each cairn_step) does not share the read-mostly one. */
typedef struct cairn__hot_t {
  uint64_t running_gen; /* generation of the running run; UINT64_MAX none */
  uint32_t metric_ids;  /* ids below this are valid                       */
  uint32_t reserved0_;
  uint64_t reserved1_[6];
  int64_t current_step; /* the last cairn_step                            */
  uint64_t reserved2_[7];
} cairn__hot_t;

CAIRN_API extern cairn__hot_t cairn_abi_hot;
/* The out-of-line half of the fast path (not API): registration, the
 * publication of a batch, the end of the slot array, a full ring. */
CAIRN_API int cairn_abi_metric_slow(int id, int64_t step, double value);

#if defined(__GNUC__)
CAIRN_API extern __thread cairn__cursor cairn_abi_tls
    __attribute__((tls_model("initial-exec")));
#endif

#if defined(__GNUC__) && !defined(CAIRN_NO_INLINE)
static inline __attribute__((always_inline)) int cairn__metric_inline(int id, int64_t step,
                                                                      double value) {
  cairn__cursor *c = &cairn_abi_tls;
  cairn__rec *s = c->next;
  if (__builtin_expect(
          c->gen == __atomic_load_n(&cairn_abi_hot.running_gen, __ATOMIC_RELAXED) &&
              (uint32_t)id < __atomic_load_n(&cairn_abi_hot.metric_ids, __ATOMIC_RELAXED) &&
              s != c->stop,
          1)) {
    /* The line a few records ahead was last read by the drain on another
     * core: ask for it now (a write prefetch where the target has one). A
     * hint: no fault, no effect, also past the end of the slot array. */
    __builtin_prefetch((const void *)((uintptr_t)s + 8 * sizeof *s), 1, 3);
    s->id = (uint32_t)id;
    s->kind = CAIRN__REC_METRIC;
    s->step = step;
    s->value = value;
    /* The record is complete before next covers it, also for a signal
     * handler of this thread that publishes (compiler barrier only). */
    __atomic_signal_fence(__ATOMIC_RELEASE);
    c->next = s + 1;
    return 0;
  }
  return cairn_abi_metric_slow(id, step, value);
}
#define cairn_metric_at(id, step, value) cairn__metric_inline((id), (step), (value))
#define cairn_metric(id, value)                                                            \
  cairn__metric_inline((id), __atomic_load_n(&cairn_abi_hot.current_step, __ATOMIC_RELAXED), \
                       (value))
#endif

/*
 * Marks the start of `step`: later cairn_metric calls (from any thread) log
 * at this step, and a timestamped step marker (CLOCK_REALTIME, ns) is
 * recorded on the lossless channel. Also publishes the calling thread's
 * pending metric records to the drain.
 *
 * Returns CAIRN_OK, CAIRN_ENOTINIT, CAIRN_ENOMEM. Thread-safe and
 * lock-free (a compare-and-swap push); it allocates one small record, so
 * call it once per step, not per sample.
 */
CAIRN_API int cairn_step(int64_t step);

/*
 * Publishes the calling thread's pending records and waits until everything
 * logged by this thread before the call has been written to the write-ahead
 * log (or counted as dropped). Blocking; meant for checkpoints and shutdown
 * of worker threads, not for the loop.
 *
 * Returns CAIRN_OK, CAIRN_ENOTINIT, CAIRN_EIO (the write failed). Thread-safe.
 */
CAIRN_API int cairn_flush(void);

/* ---------------------------------------------------------------------- */
/* Params and run key/values — the lossless channel                        */
/* ---------------------------------------------------------------------- */

/*
 * Record a typed run parameter. Keys follow the metric-name rules; string
 * values are at most CAIRN_VALUE_MAX bytes. Setting a key again records the
 * new value; readers take the last one. These records travel on the lossless
 * channel: they are never dropped.
 *
 * Return CAIRN_OK, CAIRN_EINVAL (NULL/empty key, NULL string value),
 * CAIRN_ENAMETOOLONG (key or value too long), CAIRN_ENOTINIT, CAIRN_ENOMEM.
 * Thread-safe, non-blocking (they allocate; keep them out of the loop).
 */
#define CAIRN_VALUE_MAX 65535
CAIRN_API int cairn_param_int64(const char *key, int64_t value);
CAIRN_API int cairn_param_double(const char *key, double value);
CAIRN_API int cairn_param_string(const char *key, const char *value);
CAIRN_API int cairn_param_bool(const char *key, int value);

/*
 * Records the run parameters of a YAML file (e.g. the training config) as
 * typed params: nested mappings become dotted keys ("optimizer: {lr: 1e-3}"
 * is optimizer.lr = 0.001, a double); unquoted integers, floats and
 * true/false are int64, double and bool params, everything else strings; a
 * sequence of scalars is one string param, comma-separated.
 *
 * Returns the number of params recorded (>= 0), or CAIRN_EINVAL (a YAML
 * syntax error, or not a mapping: the message, naming file, line and column,
 * goes to stderr), CAIRN_EIO (cannot read the file), CAIRN_ENAMETOOLONG (a
 * dotted key longer than CAIRN_NAME_MAX), CAIRN_ENOTINIT. Params before the
 * error stay recorded. Thread-safe; reads the file, so not for the loop.
 */
CAIRN_API int cairn_params_from_yaml(const char *path);

/* Record a run-level key/value (free-form metadata). Same rules and returns
 * as the cairn_param_* functions. Thread-safe. */
CAIRN_API int cairn_run_set(const char *key, const char *value);

/* ---------------------------------------------------------------------- */
/* Artifacts — lineage by content hash                                     */
/* ---------------------------------------------------------------------- */

/* What an artifact is (the Common Metadata Framework's artifact types). */
typedef enum {
  CAIRN_ARTIFACT_OTHER = 0,
  CAIRN_ARTIFACT_DATASET = 1,
  CAIRN_ARTIFACT_MODEL = 2,
  CAIRN_ARTIFACT_DATASLICE = 3,
  CAIRN_ARTIFACT_METRICS = 4,
  CAIRN_ARTIFACT_ENVIRONMENT = 6
} cairn_artifact_kind;

/* Whether the run read the artifact or wrote it. */
typedef enum { CAIRN_ROLE_INPUT = 1, CAIRN_ROLE_OUTPUT = 2 } cairn_role;

/*
 * Records an artifact the run read (CAIRN_ROLE_INPUT) or wrote
 * (CAIRN_ROLE_OUTPUT), as an event of the open execution (if any). A path is
 * identified by its content hash (cairn-merkle-sha256-v1, docs/format.md:
 * equal to `sha256sum` for files up to 4 MiB), computed by the background
 * hasher pool (lineage.hasher_threads): the call itself never reads the file
 * and never waits. A URI ("scheme://...", e.g. s3://, https://, file://) is
 * recorded as given, without hashing. A file that cannot be hashed
 * (missing, a directory, unreadable, changed while being hashed) is
 * recorded with the reason instead of a hash; the run goes on. Artifacts
 * logged before cairn_finalize are hashed before it returns.
 *
 * Returns the artifact's id (> 0, unique in the run), or CAIRN_EINVAL (NULL
 * or empty path, bad kind or role), CAIRN_ENAMETOOLONG (longer than 4095
 * bytes), CAIRN_ENOTINIT, CAIRN_ENOMEM, CAIRN_ETHREAD (no hasher thread
 * could start). Thread-safe; allocates, so keep it out of the inner loop.
 * cairn_artifact(p, k, r) is cairn_artifact_props(p, k, r, NULL).
 */
CAIRN_API int64_t cairn_artifact(const char *path_or_uri, cairn_artifact_kind kind,
                                 cairn_role role);

/*
 * Typed custom properties. properties_json is a flat JSON object,
 * {"key": value, ...}, whose values are strings, integers (int64), other
 * numbers (double), true or false: e.g. {"rows": 1000, "split": "train",
 * "shuffled": true}. Nested objects, arrays, null, duplicate keys and
 * invalid UTF-8 are refused. NULL or "" means none. The text is checked when
 * the call is made and stored as given (at most CAIRN_VALUE_MAX bytes) in
 * the run's files (docs/format.md). An invalid object makes the call return
 * CAIRN_EINVAL and record nothing (the reason, with its byte offset, is
 * logged at the warn level).
 */

/*
 * cairn_artifact with typed custom properties (see above).
 * Returns as cairn_artifact does, and CAIRN_EINVAL for invalid properties,
 * CAIRN_ENAMETOOLONG for properties longer than CAIRN_VALUE_MAX.
 * Thread-safe; allocates.
 */
CAIRN_API int64_t cairn_artifact_props(const char *path_or_uri, cairn_artifact_kind kind,
                                       cairn_role role, const char *properties_json);

/*
 * Records a model (a checkpoint, an exported network) as an artifact of kind
 * CAIRN_ARTIFACT_MODEL, hashed like any file (or recorded as given for a
 * URI). framework (e.g. "pytorch"), model_type (e.g. "resnet50") and name
 * (e.g. "classifier") are stored as the string properties "framework",
 * "model_type" and "model_name", first, followed by the members of
 * properties_json; each may be NULL (left out). Giving one of those keys in
 * properties_json as well is a duplicate key: CAIRN_EINVAL.
 *
 * Returns the artifact's id (> 0), or what cairn_artifact_props returns.
 * Thread-safe; allocates.
 */
CAIRN_API int64_t cairn_model(const char *path_or_uri, cairn_role role, const char *framework,
                              const char *model_type, const char *name,
                              const char *properties_json);

/*
 * Records execution-level metrics (final accuracy, test loss: the
 * Common Metadata Framework's "metrics" artifact) as an artifact of kind
 * CAIRN_ARTIFACT_METRICS, an OUTPUT of the open execution. The values are
 * its properties, e.g. {"accuracy": 0.931, "test_loss": 0.212}; name
 * (1..CAIRN_NAME_MAX bytes) becomes its uri. Nothing is read or hashed: its
 * hash is "" like a URI's.
 *
 * Returns the artifact's id (> 0), or CAIRN_EINVAL (NULL/empty name,
 * invalid properties), CAIRN_ENAMETOOLONG, CAIRN_ENOTINIT, CAIRN_ENOMEM.
 * Thread-safe; allocates.
 */
CAIRN_API int64_t cairn_metrics_artifact(const char *name, const char *properties_json);

/*
 * Dataslices: a named set of files used together (a shard list, a
 * validation split). cairn_dataslice_create returns its id; add files with
 * cairn_dataslice_add; cairn_dataslice_commit records it as an INPUT or
 * OUTPUT of the open execution. Each member is hashed (off the caller's
 * thread) and recorded as a DATASET artifact; the slice is a DATASLICE
 * artifact whose uri is its name and whose hash is
 * "cairn-dataslice-sha256-v1:" + SHA-256 of its members' hex hashes, sorted
 * and each followed by a newline: the same in whatever order members were
 * added (docs/format.md). A member that cannot be hashed makes the slice's
 * hash "error: member <path>: <reason>".
 *
 * create returns the id (> 0) or CAIRN_EINVAL, CAIRN_ENAMETOOLONG,
 * CAIRN_ENOTINIT, CAIRN_ENOMEM; add returns CAIRN_OK, CAIRN_ENOTFOUND (no
 * such slice, or already committed), CAIRN_EINVAL, CAIRN_ENAMETOOLONG;
 * commit returns the id or CAIRN_ENOTFOUND, CAIRN_EINVAL (role). A slice
 * never committed is reported at finalize and not recorded. Thread-safe.
 */
CAIRN_API int64_t cairn_dataslice_create(const char *name);
CAIRN_API int cairn_dataslice_add(int64_t slice, const char *path);
CAIRN_API int64_t cairn_dataslice_commit(int64_t slice, cairn_role role);

/*
 * Stages and executions (the Common Metadata Framework's contexts and
 * executions). cairn_stage begins a stage of the pipeline (configuration
 * key pipeline.name); executions begun afterwards belong to it.
 * cairn_execution_begin_ex opens an execution (e.g. an epoch, an
 * evaluation) and makes it the current one: artifacts logged while it is
 * open are its INPUT/OUTPUT events. type says what kind of execution it is
 * (e.g. "train", "evaluate"; the CMF execution type), name which one (e.g.
 * "epoch-3"); command_line is what ran it, NULL meaning this process's
 * command line (as the run's "cmdline" key records it; "" records none).
 * cairn_execution_begin(name, properties) is
 * cairn_execution_begin_ex(name, name, NULL, properties). properties: typed
 * custom properties (see above), validated, or NULL. Names and types follow
 * the metric-name rules; a command line is at most CAIRN_VALUE_MAX bytes.
 *
 * cairn_stage and cairn_execution_begin(_ex) return the new id (> 0, unique
 * in the run, shared id space with artifacts) or CAIRN_EINVAL (NULL/empty
 * name or type, invalid properties: nothing is recorded),
 * CAIRN_ENAMETOOLONG, CAIRN_ENOTINIT, CAIRN_ENOMEM. cairn_execution_end
 * returns CAIRN_OK, CAIRN_EINVAL (id <= 0), CAIRN_ENOTINIT, CAIRN_ENOMEM;
 * ending the current execution leaves none open. Thread-safe; they
 * allocate, so not for the loop. The current stage and execution are per
 * process.
 */
CAIRN_API int64_t cairn_stage(const char *name, const char *properties);
/*
 * Ends the current stage: executions begun afterwards belong to no stage
 * (to the run itself) until the next cairn_stage. Beginning another stage
 * also ends the current one. A stage's extent is the executions it holds
 * (its MLMD Context has no times). Returns CAIRN_OK, CAIRN_EINVAL (id <= 0),
 * CAIRN_ENOTFOUND (id is not the current stage: nothing changes),
 * CAIRN_ENOTINIT. Thread-safe; per process, like cairn_stage.
 */
CAIRN_API int cairn_stage_end(int64_t id);
CAIRN_API int64_t cairn_execution_begin_ex(const char *type, const char *name,
                                           const char *command_line, const char *properties);
CAIRN_API int64_t cairn_execution_begin(const char *name, const char *properties);
CAIRN_API int cairn_execution_end(int64_t id);

/* ---------------------------------------------------------------------- */
/* Accounting                                                              */
/* ---------------------------------------------------------------------- */

typedef enum {
  CAIRN_CHANNEL_METRICS = 0, /* cairn_metric*: may drop when a ring is full  */
  CAIRN_CHANNEL_CONTROL = 1, /* steps, params, key/values: never dropped     */
  CAIRN_CHANNEL_COUNT_ = 2
} cairn_channel;

typedef struct {
  uint64_t logged;  /* records accepted by the API (published ones)           */
  uint64_t written; /* records whose data is in the write-ahead log           */
  uint64_t dropped; /* records lost because a ring was full                   */
  uint64_t rejected; /* calls refused for a bad argument (EINVAL, EBADID...)  */
} cairn_counters;

/*
 * Fills *out with the process-wide counters of `channel`. Once everything is
 * drained (after cairn_flush in every logging thread, or after finalize),
 * logged == written + dropped exactly. Counters remain readable after
 * cairn_finalize until the next cairn_init.
 *
 * Returns CAIRN_OK, CAIRN_EINVAL (NULL or unknown channel), CAIRN_ENOTINIT if
 * no run was ever started. Thread-safe.
 */
CAIRN_API int cairn_get_counters(cairn_channel channel, cairn_counters *out);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_H */
