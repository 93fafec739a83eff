/*
 * state.h — private to cairn. The process-wide runtime state shared by the
 * API (api.c) and the drain thread (drain.c), and the lossless control
 * channel's record type.
 */
#ifndef CAIRN_STATE_H
#define CAIRN_STATE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cairn.h"
#include "config.h"
#include "names.h"
#include "ring.h"
#include "shm_channel.h"
#include "util.h"

/* "Not running": a value no thread's cached generation can ever hold. */
#define CAIRN_GEN_NONE UINT64_MAX

/* Control-channel record: steps, params, key/values. Variable length, heap
 * allocated by the logging thread, pushed on a lock-free MPSC stack, freed by
 * the drain after the block holding it is in the WAL. Never dropped. */
enum {
  CAIRN_CTL_STEP = 1,
  CAIRN_CTL_PARAM = 2,
  CAIRN_CTL_KV = 3,
  CAIRN_CTL_ARTIFACT = 4,
  CAIRN_CTL_LINEAGE = 5 /* ptype = CAIRN_LIN_*, i64 = id, step = parent, data = name|text|props */
};

typedef struct cairn_ctl {
  struct cairn_ctl *next;
  uint16_t type;  /* CAIRN_CTL_* */
  uint8_t ptype;  /* CAIRN_PARAM_* for params; cairn_artifact_kind for artifacts */
  uint8_t role;   /* ARTIFACT: cairn_role */
  uint64_t exec;  /* ARTIFACT: execution open when logged */
  uint32_t xlen;  /* ARTIFACT, LINEAGE: bytes of the third string (properties) */
  uint32_t ylen;  /* LINEAGE: bytes of the fourth string (execution type) */
  uint32_t zlen;  /* LINEAGE: bytes of the fifth string (command line) */
  uint32_t thread;
  int64_t step;   /* STEP; ARTIFACT: bytes hashed */
  uint64_t t_ns;  /* STEP: CLOCK_REALTIME */
  int64_t i64;    /* INT64 / BOOL param; ARTIFACT: id */
  double f64;     /* DOUBLE param */
  uint16_t klen;
  uint32_t vlen;
  char data[];    /* key (klen bytes) then value (vlen bytes); ARTIFACT: uri, hash,
                     properties; LINEAGE: name, text, properties, type, command */
} cairn_ctl;

typedef struct cairn_drain cairn_drain;

typedef struct {
  /* The run generation, the metric-id bound and the current step, which
   * every hot call reads, are in cairn_abi_hot (cairn.h): the inline fast path
   * reads them too. Access them with the CAIRN_HOT_* macros below. */
  /* Control channel: the MPSC stack and its counters. */
  alignas(CAIRN_CACHELINE) _Atomic(cairn_ctl *) ctl_head;
  _Atomic uint64_t ctl_logged;
  _Atomic uint64_t ctl_written;
  _Atomic uint64_t ctl_lost; /* only when the log cannot be written */
  _Atomic uint64_t artifact_seq; /* lineage ids (artifacts, stages, executions) */
  _Atomic uint64_t cur_context;  /* the stage begun last, 0 none          */
  _Atomic uint64_t cur_execution; /* the open execution, 0 none          */
  _Atomic uint64_t rejected[CAIRN_CHANNEL_COUNT_];
  /* Metric accounting that outlives rings (retired rings, write failures). */
  _Atomic uint64_t m_retired_logged;
  _Atomic uint64_t m_retired_dropped;
  _Atomic uint64_t m_written;
  _Atomic uint64_t m_lost;
  /* Wake-up word of the drain (futex): 1 = wake requested. */
  alignas(CAIRN_CACHELINE) _Atomic uint32_t wake;
  _Atomic uint64_t flush_req;  /* cairn_flush requests issued   */
  _Atomic uint64_t flush_done; /* requests whose data is in the WAL */
  _Atomic int flush_error;     /* last block write failed       */
  pthread_mutex_t flush_lock;
  pthread_cond_t flush_cond;

  /* Registry of rings, guarded by reg_lock. */
  pthread_mutex_t reg_lock;
  cairn_ring **rings;
  size_t nrings, rings_cap;
  _Atomic uint32_t next_thread_index;

  /* Set at init, constant while running. */
  cairn_config cfg;
  cairn_names names;
  uint8_t run_id[16];
  char run_id_text[37];
  char run_dir[4096];
  uint64_t start_ns;
  uint64_t generation;
  int have_run; /* a run was started in this process (info, counters) */
  uint32_t rank, nranks;   /* world rank and size; 0 of 1 standalone   */
  cairn_shm_channel *chan; /* MPI: the channel to the aggregator       */
  /* SIGTERM: set by the handler, cleared never; the drain and the writer
   * flush at once when they see it and raise sigterm_flushed. */
  _Atomic int sigterm;
  _Atomic int sigterm_flushed;
  _Atomic int sigterm_entered;   /* the handler ran once (set before sigterm) */
  pthread_key_t tls_key;
  cairn_drain *drain;
} cairn_state;

extern cairn_state cairn__g;

/* cairn_abi_hot's fields are plain integers (the public header is also C++);
 * every access goes through these, with the memory order spelled out.
 *   running_gen: release store at init/finalize, acquire where a thread
 *                goes on to use what init set up, relaxed on the hot path
 *                (a thread compares it with its own cursor's generation).
 *   metric_ids:  raised with a CAS by cairn_metric_id (release), read relaxed
 *                (an id is only valid once cairn_metric_id returned it).
 *   current_step: relaxed (a value, not a publication). */
#define CAIRN_HOT_LOAD(field, mo) __atomic_load_n(&cairn_abi_hot.field, mo)
#define CAIRN_HOT_STORE(field, v, mo) __atomic_store_n(&cairn_abi_hot.field, v, mo)

/* Sum of the metric channel's logged and dropped over live and retired rings.
 * Takes reg_lock. */
void cairn__metric_totals(uint64_t *logged, uint64_t *dropped);

#endif /* CAIRN_STATE_H */
