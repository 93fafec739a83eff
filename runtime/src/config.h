/*
 * config.h — private to cairn. The runtime configuration: built-in defaults,
 * overridden by a YAML file, overridden by CAIRN_* environment variables.
 * Every key is listed once in the table in config.c and documented in
 * docs/config.md (a test checks that the two agree).
 */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CAIRN_POLICY_DROP = 0, CAIRN_POLICY_BLOCK = 1 } cairn_ring_policy;
typedef enum {
  CAIRN_SYNC_NONE = 0,     /* never fdatasync; the OS writes back          */
  CAIRN_SYNC_INTERVAL = 1, /* fdatasync at most every wal.sync_interval_ms */
  CAIRN_SYNC_ALWAYS = 2    /* fdatasync after every block                  */
} cairn_sync_policy;
typedef enum {
  CAIRN_LOG_ERROR = 0,
  CAIRN_LOG_WARN = 1,
  CAIRN_LOG_INFO = 2,
  CAIRN_LOG_DEBUG = 3
} cairn_log_level;

typedef struct cairn_config {
  bool enabled;                  /* enabled                         */
  char run_dir[4096];            /* run.dir                         */
  char run_id[37];               /* run.id ("" = generate a UUID)   */
  uint32_t ring_capacity;        /* ring.capacity (records, 2^k)    */
  cairn_ring_policy ring_policy; /* ring.policy                     */
  double ring_high_water;        /* ring.high_water (fraction)      */
  uint64_t ring_overflow_bytes;  /* ring.overflow_bytes             */
  uint32_t flush_interval_ms;    /* drain.flush_interval_ms         */
  int compression_level;         /* wal.compression_level (zstd)    */
  cairn_sync_policy wal_sync;    /* wal.sync                        */
  uint32_t wal_sync_interval_ms; /* wal.sync_interval_ms            */
  uint64_t wal_segment_bytes;    /* wal.segment_bytes               */
  uint64_t convert_memory;       /* wal.convert_memory; 0: automatic */
  uint32_t max_names;            /* metrics.max_names               */
  cairn_log_level log_level;     /* log.level                       */
  bool sigterm;                  /* signals.sigterm                 */
  char metadata_env[1024];       /* metadata.env                    */
  char pipeline_name[256];       /* pipeline.name                   */
  uint32_t hasher_threads;       /* lineage.hasher_threads (0: auto) */
  bool mpi_enabled;              /* mpi.enabled                     */
  uint32_t ranks_per_aggregator; /* mpi.ranks_per_aggregator (0: node) */
  uint32_t aggregators_per_file; /* mpi.aggregators_per_file        */
  uint64_t channel_bytes;        /* mpi.channel_bytes               */
  uint64_t aggregator_memory;    /* mpi.aggregator_memory           */
  int aggregator_nice;           /* mpi.aggregator_nice             */
  bool aggregator_huge_pages;    /* mpi.aggregator_huge_pages       */
} cairn_config;

/* Fills *cfg with the built-in defaults. Never fails. */
void cairn__config_defaults(cairn_config *cfg);

/*
 * Applies the YAML file at `path` on top of *cfg. The file is a mapping;
 * nested mappings name dotted keys (ring: {capacity: 1024} sets
 * "ring.capacity"); dotted keys may also be written flat ("ring.capacity:
 * 1024"). On error returns CAIRN_ECONFIG (CAIRN_EIO if the file cannot be
 * read) and writes into err (errlen bytes, always NUL-terminated) a message
 * of the form
 *   <path>:<line>:<column>: key '<key>': expected <what>, got '<value>'
 * or, for an unknown key,
 *   <path>:<line>:<column>: unknown key '<key>' (did you mean '<nearest>'?)
 * Line and column are 1-based. *cfg may be partially updated on error.
 */
int cairn__config_load_file(cairn_config *cfg, const char *path, char *err,
                            size_t errlen);

/*
 * Applies CAIRN_* environment variables on top of *cfg: key "ring.capacity"
 * is CAIRN_RING_CAPACITY (dots become underscores, upper case). Unknown
 * CAIRN_* variables other than CAIRN_CONFIG are ignored (they may belong to
 * another cairn version). On a bad value returns CAIRN_ECONFIG with
 *   environment variable CAIRN_RING_CAPACITY (key 'ring.capacity'): expected ..., got '...'
 */
int cairn__config_apply_env(cairn_config *cfg, char *err, size_t errlen);

/*
 * The whole precedence chain: defaults, then the file (path, or
 * $CAIRN_CONFIG when path is NULL, or none), then the environment.
 * Returns CAIRN_OK or the first error, as above.
 */
int cairn__config_load(cairn_config *cfg, const char *path, char *err,
                       size_t errlen);

/* Number of keys and the i-th key's dotted name (for docs and tests). */
size_t cairn__config_key_count(void);
const char *cairn__config_key_name(size_t i);

#endif /* CAIRN_CONFIG_H */
