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
#include <sys/syscall.h>
#endif

#include "state.h"
#include "wal.h"
#include "wal_records.h"

/* A block is written when the flush interval expires, on cairn_flush, at
 * finalize, or when the compaction table holds this many (step, metric)
 * entries, which bounds the drain's memory and keeps the table in cache. */
#define AGG_BLOCK_ENTRIES 65536u
#define AGG_INDEX_SLOTS (AGG_BLOCK_ENTRIES * 2u)
/* A pass that drained at least this many records is followed by another
 * pass at once instead of a sleep: the producers are busy. */
#define DRAIN_BUSY_RECORDS 4096u

struct cairn_drain {
  pthread_t thread;
  _Atomic int stop;
  cairn_wal_writer *wal;
  int io_failed;       /* a block write failed during the run */
  int logged_io_error; /* the failure was reported on stderr once */

  /* Compaction table: entries in arrival order, an open-addressing index. */
  cairn_metric_agg *agg;
  uint32_t nagg;
  uint32_t *index; /* entry + 1, 0 = empty */
  uint64_t samples; /* samples folded into the table */

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

static inline uint32_t agg_hash(int64_t step, uint32_t id) {
  uint64_t x = (uint64_t)step * 0x9E3779B97F4A7C15ull ^ ((uint64_t)id * 0xC2B2AE3D27D4EB4Full);
  return (uint32_t)(x >> 40);
}

static void agg_clear(cairn_drain *d) {
  if (d->nagg)
    memset(d->index, 0, AGG_INDEX_SLOTS * sizeof *d->index);
  d->nagg = 0;
  d->samples = 0;
}

/* Folds one sample in. Returns 0, or -1 when the table is full (the caller
 * writes a block and retries). */
static inline int agg_add(cairn_drain *d, uint32_t id, int64_t step, double v) {
  uint32_t mask = AGG_INDEX_SLOTS - 1;
  for (uint32_t i = agg_hash(step, id) & mask;; i = (i + 1) & mask) {
    uint32_t e = d->index[i];
    if (e == 0) {
      if (d->nagg == AGG_BLOCK_ENTRIES)
        return -1;
      cairn_metric_agg *a = &d->agg[d->nagg];
      a->step = step;
      a->id = id;
      a->count = 1;
      a->sum = v;
      a->min = v;
      a->max = v;
      d->index[i] = ++d->nagg;
      d->samples++;
      return 0;
    }
    cairn_metric_agg *a = &d->agg[e - 1];
    if (a->step == step && a->id == id) {
      if (CAIRN_UNLIKELY(a->count == UINT32_MAX))
        return -1; /* start a fresh aggregate in the next block */
      a->count++;
      a->sum += v;
      /* NaN samples never win a comparison; a NaN min/max (all samples so
       * far NaN) is replaced by the first real one. */
      if (v < a->min || isnan(a->min))
        a->min = v;
      if (v > a->max || isnan(a->max))
        a->max = v;
      d->samples++;
      return 0;
    }
  }
}

/* ---- blocks ------------------------------------------------------------------- */

static int write_block(cairn_drain *d, int force_counters, int reg_locked);

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
      const cairn_rec *rec = &r->slots[(t + k) & r->mask];
      while (agg_add(d, rec->id, rec->step, rec->value) != 0) {
        /* Table full: free our hands by writing a block. The registry lock
         * is held, which only delays thread registration. */
        write_block(d, 0, 1);
      }
    }
    cairn__ring_release_spsc(r, t + n);
    *drained += n;
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
  size_t nsteps = 0, nparams = 0, nkv = 0;
  for (cairn_ctl *c = d->ctl_first; c; c = c->next) {
    nsteps += c->type == CAIRN_CTL_STEP;
    nparams += c->type == CAIRN_CTL_PARAM;
    nkv += c->type == CAIRN_CTL_KV;
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
}

static void free_control(cairn_drain *d) {
  for (cairn_ctl *c = d->ctl_first, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  d->ctl_first = d->ctl_last = NULL;
  d->nctl = 0;
}

/*
 * Writes one block with everything pending. Metric samples whose block
 * cannot be written are counted as lost (dropped) so that accounting stays
 * exact; control records stay pending and are retried with the next block,
 * because that channel is never dropped.
 */
static int write_block(cairn_drain *d, int force_counters, int reg_locked) {
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
      !(force_counters && counters_changed))
    return CAIRN_OK;

  cairn__buf_reset(&d->buf);
  if (!d->run_emitted) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *ver = cairn_version();
    cairn_rec_run run = {.rank = 0, .nranks = 1, .pid = (uint32_t)getpid(),
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

  uint64_t m_written = atomic_load_explicit(&cairn__g.m_written, memory_order_relaxed);
  uint64_t c_written = atomic_load_explicit(&cairn__g.ctl_written, memory_order_relaxed);
  cairn_rec_counters ctr[2] = {
      {CAIRN_CHANNEL_METRICS, logged[0], m_written + d->samples, dropped,
       atomic_load_explicit(&cairn__g.rejected[0], memory_order_relaxed)},
      {CAIRN_CHANNEL_CONTROL, logged[1], c_written + d->nctl, 0,
       atomic_load_explicit(&cairn__g.rejected[1], memory_order_relaxed)}};
  cairn__rec_put_counters(&d->buf, 2, ctr);

  int rc = d->buf.failed ? CAIRN_ENOMEM
                         : cairn__wal_append(d->wal, 1 /* CAIRN_WAL_BLOCK_DATA */,
                                             d->buf.data, d->buf.len);
  if (rc == CAIRN_OK) {
    d->run_emitted = 1;
    d->names_emitted = names;
    atomic_fetch_add_explicit(&cairn__g.m_written, d->samples, memory_order_relaxed);
    atomic_fetch_add_explicit(&cairn__g.ctl_written, d->nctl, memory_order_relaxed);
    free_control(d);
    d->last_logged[0] = logged[0];
    d->last_logged[1] = logged[1];
    d->last_dropped = dropped;
  } else {
    d->io_failed = 1;
    atomic_store_explicit(&cairn__g.flush_error, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&cairn__g.m_lost, d->samples, memory_order_relaxed);
    if (!d->logged_io_error) {
      d->logged_io_error = 1;
      cairn__log(CAIRN_LOG_ERROR,
                 "writing the write-ahead log in %s failed (%s); %llu metric samples "
                 "counted as dropped, control records kept for retry",
                 cairn__g.run_dir, cairn_strerror(rc), (unsigned long long)d->samples);
    }
  }
  agg_clear(d);
  return rc;
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
    int flush = req != atomic_load_explicit(&cairn__g.flush_done, memory_order_relaxed);
    if (stopping || flush || now >= next_block) {
      write_block(d, 1, 0);
      next_block = now + interval;
      if (stopping)
        break;
      complete_flushes(req);
    }
    if (drained < DRAIN_BUSY_RECORDS) {
      uint64_t left = next_block > now ? next_block - now : 0;
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
  int rc = cairn__wal_open(&d->wal, &opt, err, errlen);
  if (rc != CAIRN_OK)
    goto fail;
  atomic_init(&d->stop, 0);
  rc = pthread_create(&d->thread, NULL, drain_main, d);
  if (rc != 0) {
    cairn__fmt(err, errlen, "cannot start the drain thread: %s", strerror(rc));
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
  int rc = d->io_failed ? CAIRN_EIO : CAIRN_OK;
  /* Control records still pending here could not be written even at the
   * end: report them rather than pretend. */
  if (d->nctl) {
    cairn__log(CAIRN_LOG_ERROR, "%llu control records could not be written to %s",
               (unsigned long long)d->nctl, cairn__g.run_dir);
    rc = CAIRN_EIO;
  }
  if (cairn__wal_close(d->wal) != CAIRN_OK)
    rc = CAIRN_EIO;
  complete_flushes(atomic_load_explicit(&cairn__g.flush_req, memory_order_acquire));
  free_control(d);
  cairn__buf_free(&d->buf);
  free(d->steps);
  free(d->agg);
  free(d->index);
  free(d);
  cairn__g.drain = NULL;
  return rc;
}
