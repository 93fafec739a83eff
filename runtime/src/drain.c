/*
 * drain.c — the background drain thread of a standalone process: empties the
 * per-thread metric rings and the control channel, compacts samples per
 * (step, metric) and appends blocks to the write-ahead log.
 *
 * The drain never makes a producer wait (except under ring.policy block, where
 * the producer waits for it by choice), makes no MPI and no HDF5 call, and
 * sleeps between flush intervals: when idle it wakes 1000/flush_interval_ms
 * times per second and does nothing else.
 */
#include "drain.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#endif

#include "lifecycle.h"
#include "state.h"
#include "wal.h"
#include "wal_format.h"
#include "wal_records.h"
#include "aggregator.h"

/* A block is written when the flush interval expires, on cairn_flush, at
 * finalize, or when the compaction table holds this many (step, metric)
 * entries, which bounds the drain's memory and keeps the table in cache. */
#define AGG_BLOCK_ENTRIES 32768u
#define AGG_INDEX_SLOTS (AGG_BLOCK_ENTRIES * 2u)
/* A pass that drained at least this many records is followed by another
 * pass at once instead of a sleep: the producers are busy. */
#define DRAIN_BUSY_RECORDS 4096u
/* Longest a flush waits for the aggregator to write its block out. */
#define CHANNEL_ACK_TIMEOUT_NS (10ull * 1000000000ull)
/* While working through a ring, the drain gives slots back to the producer
 * every this many records (a power of two). */
#define DRAIN_RELEASE_EVERY 1024u
/* While producers are logging, the drain looks at the rings at least this
 * often (ns), whatever the flush interval. */
#define DRAIN_ACTIVE_POLL_NS 250000u

typedef struct {
  int64_t newest_step; /* newest step of this metric in the table   */
  uint32_t entry;      /* its entry                                   */
  uint32_t block;      /* block number the two fields belong to       */
} metric_slot;

/* An encoded block on its way from the drain to the writer thread. */
typedef struct wblock {
  struct wblock *next;
  cairn_buf buf;
  uint64_t samples;   /* metric samples in it (for accounting)       */
  uint64_t nctl;      /* control records in it                       */
  uint64_t flush_req; /* cairn_flush requests it completes (0: none) */
} wblock;

/* Blocks queued for the writer before the drain waits (back-pressure). */
#define WRITER_QUEUE_MAX 32u

struct cairn_drain {
  pthread_t thread;
  _Atomic int stop;

  /* The writer thread owns the WAL: compression, write(), fdatasync. The
   * drain only compacts and encodes, so a slow disk or a long fdatasync
   * never stops it from emptying the rings. */
  pthread_t writer;
  pthread_mutex_t wlock;
  pthread_cond_t wwork, wspace;
  wblock *wq_head, *wq_tail, *wfree;
  unsigned wq_len;
  int wstop;
  cairn_wal_writer *wal;
  int io_failed;       /* a block write failed during the run (writer) */
  int logged_io_error; /* the failure was reported on stderr once */
  uint64_t m_encoded, c_encoded; /* cumulative records handed to the writer */
  uint64_t flush_enqueued;       /* newest flush request already in a block */
  int term_seen;                 /* SIGTERM flush started                    */
  _Atomic uint64_t term_req;     /* the flush request it made (drain -> writer) */

  /* Compaction table: entries in arrival order, an open-addressing index. */
  cairn_metric_agg *agg;
  uint32_t nagg;
  uint32_t *index;   /* entry + 1, 0 = empty; covers entries < indexed */
  uint32_t indexed;
  uint64_t samples;  /* samples folded into the table */
  metric_slot *slots; /* per metric id */
  uint32_t nslots;
  uint32_t block;     /* number of the block being filled (from 1) */

  /* Control records waiting for the next block, oldest first. */
  cairn_ctl *ctl_first, *ctl_last;
  uint64_t nctl;

  uint32_t names_emitted;
  int run_emitted;
  uint64_t last_logged[CAIRN_CHANNEL_COUNT_];
  uint64_t last_dropped;
  cairn_buf buf;
  cairn_rec_step *steps;
  size_t steps_cap;
};

cairn_state cairn__g;

/* ---- sleeping and waking ---------------------------------------------------- */

void cairn__drain_wake(void) {
  /* The relaxed check keeps the common "already woken" case free of any
   * write to the shared line; the exchange makes exactly one producer issue
   * the wake-up system call. */
  if (atomic_load_explicit(&cairn__g.wake, memory_order_relaxed))
    return;
  if (atomic_exchange_explicit(&cairn__g.wake, 1, memory_order_release) == 0) {
#ifdef __linux__
    syscall(SYS_futex, &cairn__g.wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#endif
  }
}

/* Sleeps until woken or `ns` elapsed. */
static void drain_sleep(uint64_t ns) {
#ifdef __linux__
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  /* Returns at once if a wake was requested since we last cleared it. */
  syscall(SYS_futex, &cairn__g.wake, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
#else
  struct timespec ts = {0, 1000000};
  if (!atomic_load_explicit(&cairn__g.wake, memory_order_acquire))
    nanosleep(&ts, NULL);
  (void)ns;
#endif
}

/* ---- accounting ---------------------------------------------------------------- */

/* Caller holds reg_lock. */
static void metric_totals_locked(uint64_t *logged, uint64_t *dropped) {
  uint64_t l = atomic_load_explicit(&cairn__g.m_retired_logged, memory_order_relaxed);
  uint64_t d = atomic_load_explicit(&cairn__g.m_retired_dropped, memory_order_relaxed);
  for (size_t i = 0; i < cairn__g.nrings; i++) {
    cairn_ring *r = cairn__g.rings[i];
    uint64_t rd = atomic_load_explicit(&r->pub_dropped, memory_order_relaxed);
    l += atomic_load_explicit(&r->pub_head, memory_order_acquire) + rd;
    d += rd;
  }
  d += atomic_load_explicit(&cairn__g.m_lost, memory_order_relaxed);
  *logged = l;
  *dropped = d;
}

void cairn__metric_totals(uint64_t *logged, uint64_t *dropped) {
  pthread_mutex_lock(&cairn__g.reg_lock);
  metric_totals_locked(logged, dropped);
  pthread_mutex_unlock(&cairn__g.reg_lock);
}

/* ---- compaction --------------------------------------------------------------- */

/*
 * Compaction. Samples are folded into one aggregate per (step, metric) per
 * block. Most records arrive in step order per metric (a training loop logs
 * step s, then s+1), so each metric remembers the newest step it has in the
 * table and where: a sample for that step is folded in with one array
 * lookup, a sample for a newer step appends a fresh entry without hashing.
 * Only a sample for an older step (a late sample, or threads interleaving)
 * takes the hash index, which is brought up to date lazily at that point.
 */

static inline uint32_t agg_hash(int64_t step, uint32_t id) {
  uint64_t x = (uint64_t)step * 0x9E3779B97F4A7C15ull ^ ((uint64_t)id * 0xC2B2AE3D27D4EB4Full);
  return (uint32_t)(x >> 40);
}

static void agg_clear(cairn_drain *d) {
  if (d->indexed)
    memset(d->index, 0, AGG_INDEX_SLOTS * sizeof *d->index);
  d->indexed = 0;
  d->nagg = 0;
  d->samples = 0;
  d->block++; /* invalidates every metric_slot at once */
}

static inline void agg_fold(cairn_metric_agg *a, double v) {
  a->count++;
  a->sum += v;
  /* NaN samples never win a comparison; a NaN min/max (all samples so far
   * NaN) is replaced by the first real one. */
  if (v < a->min || isnan(a->min))
    a->min = v;
  if (v > a->max || isnan(a->max))
    a->max = v;
}

static inline uint32_t agg_append(cairn_drain *d, uint32_t id, int64_t step, double v) {
  cairn_metric_agg *a = &d->agg[d->nagg];
  a->step = step;
  a->id = id;
  a->count = 1;
  a->sum = v;
  a->min = v;
  a->max = v;
  return d->nagg++;
}

/* Finds the slot of (step, id) in the hash index, or the empty slot where it
 * goes. Entries appended since the last lookup are indexed first. */
static uint32_t *agg_lookup(cairn_drain *d, uint32_t id, int64_t step) {
  const uint32_t mask = AGG_INDEX_SLOTS - 1;
  for (; d->indexed < d->nagg; d->indexed++) {
    const cairn_metric_agg *a = &d->agg[d->indexed];
    uint32_t i = agg_hash(a->step, a->id) & mask;
    while (d->index[i])
      i = (i + 1) & mask;
    d->index[i] = d->indexed + 1;
  }
  for (uint32_t i = agg_hash(step, id) & mask;; i = (i + 1) & mask) {
    uint32_t e = d->index[i];
    if (e == 0 || (d->agg[e - 1].step == step && d->agg[e - 1].id == id))
      return &d->index[i];
  }
}

/* Makes the per-metric table cover `id`. Returns 0 or -1 (out of memory). */
static int agg_grow_slots(cairn_drain *d, uint32_t id) {
  uint32_t n = d->nslots ? d->nslots : 64;
  while (n <= id)
    n *= 2;
  metric_slot *s = realloc(d->slots, n * sizeof *s);
  if (!s)
    return -1;
  memset(s + d->nslots, 0, (n - d->nslots) * sizeof *s);
  d->slots = s;
  d->nslots = n;
  return 0;
}

/* Folds one sample in. Returns 0, -1 when the table is full (the caller
 * writes a block and retries), or -2 when out of memory (sample lost). */
static inline int agg_add(cairn_drain *d, uint32_t id, int64_t step, double v) {
  if (CAIRN_UNLIKELY(id >= d->nslots) && agg_grow_slots(d, id) != 0)
    return -2;
  metric_slot *m = &d->slots[id];
  if (CAIRN_LIKELY(m->block == d->block)) {
    if (step == m->newest_step) {
      cairn_metric_agg *a = &d->agg[m->entry];
      if (CAIRN_UNLIKELY(a->count == UINT32_MAX))
        return -1; /* start a fresh aggregate in the next block */
      agg_fold(a, v);
      d->samples++;
      return 0;
    }
    if (step < m->newest_step) {
      /* Older step: it may or may not have an entry already. */
      uint32_t *slot = agg_lookup(d, id, step);
      if (*slot) {
        cairn_metric_agg *a = &d->agg[*slot - 1];
        if (CAIRN_UNLIKELY(a->count == UINT32_MAX))
          return -1;
        agg_fold(a, v);
      } else {
        if (d->nagg == AGG_BLOCK_ENTRIES)
          return -1;
        *slot = agg_append(d, id, step, v) + 1;
        d->indexed++; /* the entry just appended is the one indexed */
      }
      d->samples++;
      return 0;
    }
  }
  /* Newer than anything of this metric in the table: a new entry. */
  if (d->nagg == AGG_BLOCK_ENTRIES)
    return -1;
  m->entry = agg_append(d, id, step, v);
  m->newest_step = step;
  m->block = d->block;
  d->samples++;
  return 0;
}

/* ---- blocks ------------------------------------------------------------------- */

static int write_block(cairn_drain *d, int force_counters, int reg_locked, uint64_t flush_req);

static void drain_rings(cairn_drain *d, uint64_t *drained) {
  pthread_mutex_lock(&cairn__g.reg_lock);
  for (size_t i = 0; i < cairn__g.nrings;) {
    cairn_ring *r = cairn__g.rings[i];
    /* Read orphaned before the head: a ring orphaned before our peek has its
     * final records published (the exiting thread published, then set
     * orphaned with release). */
    int orphan = atomic_load_explicit(&r->orphaned, memory_order_acquire);
    uint64_t t;
    uint64_t n = cairn__ring_peek_spsc(r, &t);
    for (uint64_t k = 0; k < n; k++) {
      /* Give slots back as we go, not only at the end: the producer may be
       * filling the rest of the ring while we work through a large backlog. */
      if ((k & (DRAIN_RELEASE_EVERY - 1)) == 0 && k)
        cairn__ring_release_spsc(r, t + k);
      const cairn_rec *rec = cairn__ring_slot(r, t + k);
      int rc;
      while ((rc = agg_add(d, rec->id, rec->step, rec->value)) == -1) {
        /* Table full: free our hands by writing a block. The registry lock
         * is held, which only delays thread registration. The records before
         * this one are folded in: release them first. */
        cairn__ring_release_spsc(r, t + k);
        write_block(d, 0, 1, 0);
      }
      if (CAIRN_UNLIKELY(rc == -2))
        atomic_fetch_add_explicit(&cairn__g.m_lost, 1, memory_order_relaxed);
    }
    cairn__ring_release_spsc(r, t + n);
    *drained += n;
    /* A ring that ran high may soon overflow: have a spare segment ready,
     * allocated here rather than by its producer. */
    if (n >= r->high_water && !orphan)
      cairn__ring_provision_spare(r);
    if (orphan) {
      /* Its owner has exited: fold its accounting into the retired totals
       * and free it. */
      uint64_t dropped = atomic_load_explicit(&r->pub_dropped, memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.m_retired_logged, t + n + dropped,
                                memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.m_retired_dropped, dropped, memory_order_relaxed);
      cairn__ring_destroy(r);
      cairn__g.rings[i] = cairn__g.rings[--cairn__g.nrings];
      continue;
    }
    i++;
  }
  pthread_mutex_unlock(&cairn__g.reg_lock);
}

static void drain_control(cairn_drain *d, uint64_t *drained) {
  /* acquire: pairs with the producers' release CAS; the records' contents
   * are visible. */
  cairn_ctl *list = atomic_exchange_explicit(&cairn__g.ctl_head, NULL, memory_order_acquire);
  if (!list)
    return;
  /* The stack is newest-first; reverse it to append in logging order. */
  cairn_ctl *rev = NULL, *last = list;
  while (list) {
    cairn_ctl *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
    (*drained)++;
    d->nctl++;
  }
  if (d->ctl_last)
    d->ctl_last->next = rev;
  else
    d->ctl_first = rev;
  d->ctl_last = last;
}

static void encode_control(cairn_drain *d) {
  size_t nsteps = 0, nparams = 0, nkv = 0, nart = 0, nlin = 0;
  for (cairn_ctl *c = d->ctl_first; c; c = c->next) {
    nsteps += c->type == CAIRN_CTL_STEP;
    nparams += c->type == CAIRN_CTL_PARAM;
    nkv += c->type == CAIRN_CTL_KV;
    nart += c->type == CAIRN_CTL_ARTIFACT;
    nlin += c->type == CAIRN_CTL_LINEAGE;
  }
  if (nsteps) {
    if (nsteps > d->steps_cap) {
      cairn_rec_step *s = realloc(d->steps, nsteps * sizeof *s);
      if (!s) {
        d->buf.failed = 1;
        return;
      }
      d->steps = s;
      d->steps_cap = nsteps;
    }
    size_t k = 0;
    for (cairn_ctl *c = d->ctl_first; c; c = c->next)
      if (c->type == CAIRN_CTL_STEP)
        d->steps[k++] = (cairn_rec_step){c->step, c->t_ns, c->thread};
    cairn__rec_put_steps(&d->buf, nsteps, d->steps);
  }
  if (nparams) {
    size_t off = cairn__rec_open(&d->buf, CAIRN_SEC_PARAMS);
    for (cairn_ctl *c = d->ctl_first; c; c = c->next) {
      if (c->type != CAIRN_CTL_PARAM)
        continue;
      cairn_rec_param p = {c->ptype, c->data, c->klen, c->i64, c->f64,
                           c->data + c->klen, c->vlen};
      cairn__rec_add_param(&d->buf, &p);
    }
    cairn__rec_close(&d->buf, off, (uint32_t)nparams);
  }
  if (nkv) {
    size_t off = cairn__rec_open(&d->buf, CAIRN_SEC_KV);
    for (cairn_ctl *c = d->ctl_first; c; c = c->next)
      if (c->type == CAIRN_CTL_KV)
        cairn__rec_add_kv(&d->buf, c->data, c->klen, c->data + c->klen, c->vlen);
    cairn__rec_close(&d->buf, off, (uint32_t)nkv);
  }
  if (nart) {
    size_t off = cairn__rec_open_artifacts(&d->buf);
    for (cairn_ctl *c = d->ctl_first; c; c = c->next)
      if (c->type == CAIRN_CTL_ARTIFACT) {
        cairn_rec_artifact a = {(uint64_t)c->i64, c->ptype,  c->role,
                                c->exec,          (uint64_t)c->step, c->t_ns,
                                c->data,          c->klen,   c->data + c->klen,
                                c->vlen,          c->data + c->klen + c->vlen, c->xlen};
        cairn__rec_add_artifact(&d->buf, &a);
      }
    cairn__rec_close(&d->buf, off, (uint32_t)nart);
  }
  if (nlin) {
    size_t off = cairn__rec_open_lineage(&d->buf);
    for (cairn_ctl *c = d->ctl_first; c; c = c->next)
      if (c->type == CAIRN_CTL_LINEAGE) {
        cairn_rec_lineage l = {c->ptype,
                               (uint64_t)c->i64,
                               (uint64_t)c->step,
                               c->t_ns,
                               c->data,
                               c->data + c->klen,
                               c->data + c->klen + c->vlen,
                               c->klen,
                               c->vlen,
                               c->xlen,
                               c->data + c->klen + c->vlen + c->xlen,
                               c->data + c->klen + c->vlen + c->xlen + c->ylen,
                               c->ylen,
                               c->zlen};
        cairn__rec_add_lineage(&d->buf, &l);
      }
    cairn__rec_close(&d->buf, off, (uint32_t)nlin);
  }
}

static void free_control(cairn_drain *d) {
  for (cairn_ctl *c = d->ctl_first, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  d->ctl_first = d->ctl_last = NULL;
  d->nctl = 0;
}

static void complete_flushes(uint64_t req);

/* Where a finished block goes: the run's WAL (standalone) or, under MPI, the
 * node shared-memory channel to this rank's aggregator, which appends it to
 * its own WAL. The channel wait is the writer's, never a producer's. */
static int sink_block(cairn_drain *d, const void *data, size_t len, int durable) {
  if (cairn__g.chan) {
    int rc = cairn__chan_send(cairn__g.chan, data, len);
    cairn__agg_wake();
    if (rc != CAIRN_OK)
      return CAIRN_EIO;
    /* cairn_flush and SIGTERM promise the block is in the log, not just in
     * node memory: wait for the aggregator to have written it. */
    if (durable)
      rc = cairn__chan_wait_acked(cairn__g.chan, atomic_load(&cairn__g.chan->sent),
                                  CHANNEL_ACK_TIMEOUT_NS);
    return rc;
  }
  return cairn__wal_append(d->wal, CAIRN_WAL_BLOCK_DATA, data, len);
}

/* Hands the encoded block in d->buf to the writer thread, waiting while the
 * queue is full. The buffer's memory moves with the block; d->buf gets a
 * recycled one. */
static void enqueue_block(cairn_drain *d, uint64_t samples, uint64_t nctl, uint64_t flush_req) {
  pthread_mutex_lock(&d->wlock);
  while (d->wq_len >= WRITER_QUEUE_MAX)
    pthread_cond_wait(&d->wspace, &d->wlock);
  wblock *b = d->wfree;
  if (b)
    d->wfree = b->next;
  pthread_mutex_unlock(&d->wlock);
  if (!b && !(b = calloc(1, sizeof *b))) {
    /* Cannot even queue it: write it from here (slow, but nothing lost). */
    int rc = sink_block(d, d->buf.data, d->buf.len, flush_req != 0);
    if (rc == CAIRN_OK) {
      atomic_fetch_add_explicit(&cairn__g.m_written, samples, memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.ctl_written, nctl, memory_order_relaxed);
    } else {
      atomic_fetch_add_explicit(&cairn__g.m_lost, samples, memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.ctl_lost, nctl, memory_order_relaxed);
    }
    if (flush_req)
      complete_flushes(flush_req);
    cairn__buf_reset(&d->buf);
    return;
  }
  cairn_buf spare = b->buf;
  b->buf = d->buf;
  d->buf = spare;
  cairn__buf_reset(&d->buf);
  b->samples = samples;
  b->nctl = nctl;
  b->flush_req = flush_req;
  b->next = NULL;
  pthread_mutex_lock(&d->wlock);
  if (d->wq_tail)
    d->wq_tail->next = b;
  else
    d->wq_head = b;
  d->wq_tail = b;
  d->wq_len++;
  pthread_cond_signal(&d->wwork);
  pthread_mutex_unlock(&d->wlock);
}

static void *writer_main(void *arg) {
  cairn_drain *d = arg;
  pthread_setname_np(pthread_self(), "cairn-writer");
#ifdef __linux__
  /* On a node whose cores are all busy, let the drain win the CPU over the
   * writer: a late write only delays durability, a late drain drops data.
   * (Per-thread nice on Linux; failure is harmless.) */
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5) != 0)
    errno = 0;
#endif
  pthread_mutex_lock(&d->wlock);
  for (;;) {
    while (!d->wq_head && !d->wstop)
      pthread_cond_wait(&d->wwork, &d->wlock);
    wblock *b = d->wq_head;
    if (!b)
      break; /* stopping and nothing left */
    d->wq_head = b->next;
    if (!d->wq_head)
      d->wq_tail = NULL;
    d->wq_len--;
    pthread_cond_signal(&d->wspace);
    pthread_mutex_unlock(&d->wlock);

    int rc = sink_block(d, b->buf.data, b->buf.len, b->flush_req != 0);
    if (rc == CAIRN_OK) {
      atomic_fetch_add_explicit(&cairn__g.m_written, b->samples, memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.ctl_written, b->nctl, memory_order_relaxed);
    } else {
      /* Counted, never hidden: logged = written + dropped still holds. */
      d->io_failed = 1;
      atomic_store_explicit(&cairn__g.flush_error, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.m_lost, b->samples, memory_order_relaxed);
      atomic_fetch_add_explicit(&cairn__g.ctl_lost, b->nctl, memory_order_relaxed);
      if (!d->logged_io_error) {
        d->logged_io_error = 1;
        cairn__log(CAIRN_LOG_ERROR,
                   "writing the write-ahead log in %s failed (%s); the block's %llu metric "
                   "samples and %llu control records are counted as dropped",
                   cairn__g.run_dir, cairn_strerror(rc), (unsigned long long)b->samples,
                   (unsigned long long)b->nctl);
      }
    }
    if (b->flush_req) {
      complete_flushes(b->flush_req);
      uint64_t term = atomic_load_explicit(&d->term_req, memory_order_relaxed);
      if (term && b->flush_req >= term) {
        if (d->wal)
          cairn__wal_sync(d->wal);
        if (cairn__g.chan)
          atomic_store_explicit(&cairn__g.chan->term_flushed, 1, memory_order_release);
        atomic_store_explicit(&cairn__g.sigterm_flushed, 1, memory_order_release);
      }
    }
    pthread_mutex_lock(&d->wlock);
    b->next = d->wfree;
    d->wfree = b;
  }
  pthread_mutex_unlock(&d->wlock);
  return NULL;
}

/*
 * Encodes one block with everything pending and queues it for the writer.
 * If encoding fails for lack of memory, the metric samples are counted as
 * lost (dropped) so that accounting stays exact, and control records stay
 * pending for the next block, because that channel is never dropped.
 */
static int write_block(cairn_drain *d, int force_counters, int reg_locked, uint64_t flush_req) {
  uint32_t names = cairn__names_count(&cairn__g.names);
  uint64_t logged[CAIRN_CHANNEL_COUNT_], dropped;
  if (reg_locked)
    metric_totals_locked(&logged[0], &dropped);
  else
    cairn__metric_totals(&logged[0], &dropped);
  logged[1] = atomic_load_explicit(&cairn__g.ctl_logged, memory_order_relaxed);
  int counters_changed = logged[0] != d->last_logged[0] || logged[1] != d->last_logged[1] ||
                         dropped != d->last_dropped;
  if (d->nagg == 0 && d->nctl == 0 && names == d->names_emitted && d->run_emitted &&
      !(force_counters && counters_changed) && !flush_req)
    return CAIRN_OK;

  cairn__buf_reset(&d->buf);
  /* Every block says whose it is: under MPI an aggregator's log holds the
   * blocks of all the ranks it serves. */
  cairn__rec_put_source(&d->buf, cairn__g.rank);
  if (!d->run_emitted) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *ver = cairn_version();
    cairn_rec_run run = {.rank = cairn__g.rank, .nranks = cairn__g.nranks,
                         .pid = (uint32_t)getpid(),
                         .start_ns = cairn__g.start_ns, .hostname = host,
                         .hostname_len = strlen(host), .version = ver,
                         .version_len = strlen(ver)};
    memcpy(run.run_id, cairn__g.run_id, 16);
    cairn__rec_put_run(&d->buf, &run);
  }
  if (names > d->names_emitted) {
    uint32_t n = names - d->names_emitted;
    uint32_t *ids = malloc(n * sizeof *ids);
    if (ids) {
      for (uint32_t i = 0; i < n; i++)
        ids[i] = d->names_emitted + i;
      cairn__rec_put_names(&d->buf, n, ids,
                           (const char *const *)cairn__g.names.names + d->names_emitted);
      free(ids);
    } else {
      d->buf.failed = 1;
    }
  }
  if (d->nagg)
    cairn__rec_put_metrics(&d->buf, d->nagg, d->agg);
  encode_control(d);

  /* "written" in a block counts the records handed to the log in this
   * block and every earlier one. */
  uint64_t m_enc = d->m_encoded + d->samples, c_enc = d->c_encoded + d->nctl;
  cairn_rec_counters ctr[2] = {
      {CAIRN_CHANNEL_METRICS, logged[0], m_enc, dropped,
       atomic_load_explicit(&cairn__g.rejected[0], memory_order_relaxed)},
      {CAIRN_CHANNEL_CONTROL, logged[1], c_enc,
       atomic_load_explicit(&cairn__g.ctl_lost, memory_order_relaxed),
       atomic_load_explicit(&cairn__g.rejected[1], memory_order_relaxed)}};
  cairn__rec_put_counters(&d->buf, 2, ctr);

  if (d->buf.failed) {
    atomic_fetch_add_explicit(&cairn__g.m_lost, d->samples, memory_order_relaxed);
    if (!d->logged_io_error) {
      d->logged_io_error = 1;
      cairn__log(CAIRN_LOG_ERROR,
                 "out of memory encoding a block; %llu metric samples counted as dropped, "
                 "control records kept for the next block",
                 (unsigned long long)d->samples);
    }
    cairn__buf_reset(&d->buf);
    agg_clear(d);
    return CAIRN_ENOMEM;
  }
  enqueue_block(d, d->samples, d->nctl, flush_req);
  d->m_encoded = m_enc;
  d->c_encoded = c_enc;
  d->run_emitted = 1;
  d->names_emitted = names;
  free_control(d);
  d->last_logged[0] = logged[0];
  d->last_logged[1] = logged[1];
  d->last_dropped = dropped;
  if (flush_req)
    d->flush_enqueued = flush_req;
  agg_clear(d);
  return CAIRN_OK;
}

/* ---- the thread ----------------------------------------------------------------- */

static void complete_flushes(uint64_t req) {
  if (atomic_load_explicit(&cairn__g.flush_done, memory_order_relaxed) >= req)
    return;
  pthread_mutex_lock(&cairn__g.flush_lock);
  atomic_store_explicit(&cairn__g.flush_done, req, memory_order_release);
  pthread_cond_broadcast(&cairn__g.flush_cond);
  pthread_mutex_unlock(&cairn__g.flush_lock);
}

static void *drain_main(void *arg) {
  cairn_drain *d = arg;
  pthread_setname_np(pthread_self(), "cairn-drain"); /* visible in top -H, gdb */
  const uint64_t interval = (uint64_t)cairn__g.cfg.flush_interval_ms * 1000000u;
  uint64_t next_block = cairn__now_mono_ns() + interval;
  for (;;) {
    /* Clear the wake request before looking at the rings: a producer that
     * requests a wake after this point makes the next sleep return at once. */
    atomic_store_explicit(&cairn__g.wake, 0, memory_order_relaxed);
    int stopping = atomic_load_explicit(&d->stop, memory_order_acquire);
    /* acquire: records published before a cairn_flush request are visible
     * to the ring peeks below. */
    uint64_t req = atomic_load_explicit(&cairn__g.flush_req, memory_order_acquire);
    uint64_t drained = 0;
    drain_control(d, &drained);
    drain_rings(d, &drained);
    drain_control(d, &drained); /* steps that raced with the ring pass */

    uint64_t now = cairn__now_mono_ns();
    int flush = req > d->flush_enqueued;
    /* SIGTERM: write everything now and tell the handler once it is out. */
    int term = atomic_load_explicit(&cairn__g.sigterm, memory_order_acquire);
    if (term && !d->term_seen) {
      d->term_seen = 1;
      /* The handler published the interrupted thread's last records before
       * raising the flag, possibly after the pass above: take them too, or
       * they would be counted as logged and never written. */
      drain_control(d, &drained);
      drain_rings(d, &drained);
      drain_control(d, &drained);
      flush = 1;
      req = atomic_fetch_add(&cairn__g.flush_req, 1) + 1; /* a flush of our own */
      atomic_store_explicit(&d->term_req, req, memory_order_relaxed);
    }
    if (stopping || flush || now >= next_block) {
      /* The writer completes the flush requests once this block is in the
       * log. At stop, every request issued so far is covered. */
      write_block(d, 1, 0, flush || stopping ? req : 0);
      next_block = now + interval;
      if (stopping)
        break;
    }
    if (drained < DRAIN_BUSY_RECORDS) {
      /* Idle: sleep until the next block is due (or a wake). Active but
       * not saturated: poll again soon, because a wake-up from the
       * high-water mark can come late on a loaded or virtualised node and
       * the ring must not fill meanwhile. */
      uint64_t left = next_block > now ? next_block - now : 0;
      if (drained > 0 && left > DRAIN_ACTIVE_POLL_NS)
        left = DRAIN_ACTIVE_POLL_NS;
      if (left)
        drain_sleep(left);
    }
  }
  return NULL;
}

int cairn__drain_start(char *err, size_t errlen) {
  cairn_drain *d = calloc(1, sizeof *d);
  if (!d)
    return CAIRN_ENOMEM;
  d->agg = malloc(AGG_BLOCK_ENTRIES * sizeof *d->agg);
  d->index = calloc(AGG_INDEX_SLOTS, sizeof *d->index);
  if (!d->agg || !d->index) {
    free(d->agg);
    free(d->index);
    free(d);
    return CAIRN_ENOMEM;
  }
  cairn_wal_options opt = {.dir = cairn__g.run_dir,
                           .rank = 0,
                           .compression_level = cairn__g.cfg.compression_level,
                           .sync_policy = (int)cairn__g.cfg.wal_sync,
                           .sync_interval_ms = cairn__g.cfg.wal_sync_interval_ms,
                           .segment_bytes = cairn__g.cfg.wal_segment_bytes};
  memcpy(opt.run_id, cairn__g.run_id, 16);
  int rc = CAIRN_OK;
  if (!cairn__g.chan && (rc = cairn__wal_open(&d->wal, &opt, err, errlen)) != CAIRN_OK)
    goto fail;
  atomic_init(&d->stop, 0);
  d->block = 1; /* zeroed metric slots (block 0) are invalid */
  pthread_mutex_init(&d->wlock, NULL);
  pthread_cond_init(&d->wwork, NULL);
  pthread_cond_init(&d->wspace, NULL);
  rc = cairn__thread_create(&d->writer, writer_main, d);
  if (rc != 0) {
    cairn__fmt(err, errlen, "cannot start the WAL writer thread: %s", strerror(rc));
    cairn__wal_close(d->wal);
    rc = CAIRN_ETHREAD;
    goto fail;
  }
  rc = cairn__thread_create(&d->thread, drain_main, d);
  if (rc != 0) {
    cairn__fmt(err, errlen, "cannot start the drain thread: %s", strerror(rc));
    pthread_mutex_lock(&d->wlock);
    d->wstop = 1;
    pthread_cond_signal(&d->wwork);
    pthread_mutex_unlock(&d->wlock);
    pthread_join(d->writer, NULL);
    cairn__wal_close(d->wal);
    rc = CAIRN_ETHREAD;
    goto fail;
  }
  cairn__g.drain = d;
  return CAIRN_OK;
fail:
  free(d->agg);
  free(d->index);
  free(d);
  return rc;
}

int cairn__drain_stop(void) {
  cairn_drain *d = cairn__g.drain;
  if (!d)
    return CAIRN_OK;
  atomic_store_explicit(&d->stop, 1, memory_order_release);
  atomic_store_explicit(&cairn__g.wake, 0, memory_order_relaxed);
  cairn__drain_wake();
  pthread_join(d->thread, NULL);
  /* The drain queued its final block; let the writer finish the queue. */
  pthread_mutex_lock(&d->wlock);
  d->wstop = 1;
  pthread_cond_signal(&d->wwork);
  pthread_mutex_unlock(&d->wlock);
  pthread_join(d->writer, NULL);
  int rc = d->io_failed ? CAIRN_EIO : CAIRN_OK;
  /* Control records still pending here could not be written even at the
   * end: report them rather than pretend. */
  if (d->nctl) {
    cairn__log(CAIRN_LOG_ERROR, "%llu control records could not be written to %s",
               (unsigned long long)d->nctl, cairn__g.run_dir);
    rc = CAIRN_EIO;
  }
  if (d->wal && cairn__wal_close(d->wal) != CAIRN_OK)
    rc = CAIRN_EIO;
  if (cairn__g.chan) /* the aggregator knows this rank has finished */
    atomic_store_explicit(&cairn__g.chan->closed, 1, memory_order_release);
  complete_flushes(atomic_load_explicit(&cairn__g.flush_req, memory_order_acquire));
  free_control(d);
  cairn__buf_free(&d->buf);
  for (wblock *b = d->wfree, *n; b; b = n) {
    n = b->next;
    cairn__buf_free(&b->buf);
    free(b);
  }
  pthread_mutex_destroy(&d->wlock);
  pthread_cond_destroy(&d->wwork);
  pthread_cond_destroy(&d->wspace);
  free(d->steps);
  free(d->agg);
  free(d->index);
  free(d->slots);
  free(d);
  cairn__g.drain = NULL;
  return rc;
}
