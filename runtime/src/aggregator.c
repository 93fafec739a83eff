/* aggregator.c — the node aggregator thread: moves the encoded blocks of its
 * group's ranks from node shared memory into its write-ahead log. */
#include "aggregator.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "cairn.h"
#include "lifecycle.h"
#include "hugemem.h"
#include "run_view.h"
#include "state.h"
#include "util.h"
#include "wal.h"
#include "wal_format.h"
#include "wal_records.h"

/* How long finalize waits for a rank that neither closes its channel nor
 * dies (a hung rank) before it gives up on it. */
#define AGG_STOP_WAIT_NS (30ull * 1000000000ull)

typedef struct {
  pthread_t thread;
  cairn_shm_channel *const *chans;
  uint32_t n;
  uint8_t *done;           /* per channel: closed and empty, or dead */
  cairn_buf *partial;      /* per channel: fragments of a message so far */
  cairn_wal_writer *wal;
  uint32_t rank;           /* the log's writer: this aggregator's world rank */
  cairn_view_builder *vb;  /* the same blocks as a view, for finalize; NULL  */
                           /* once over vb_limit (finalize reads the log)    */
  uint64_t vb_limit;
  uint64_t interval_ns;
  int nice;                /* mpi.aggregator_nice                          */
  _Atomic int stop;
  _Atomic int flushed;     /* after SIGTERM: everything seen is synced */
  _Atomic uint64_t blocks;
  int failed;
} aggregator;

static _Atomic uint32_t *doorbell;
static aggregator *agg;
static cairn_view_builder *kept_view; /* left by cairn__agg_stop */

void cairn__agg_set_doorbell(_Atomic uint32_t *word) { doorbell = word; }

void cairn__agg_wake(void) {
  _Atomic uint32_t *w = doorbell;
  if (!w || atomic_load_explicit(w, memory_order_relaxed))
    return;
  if (atomic_exchange_explicit(w, 1, memory_order_release) == 0) {
#ifdef __linux__
    /* Not FUTEX_PRIVATE: the waiter is another process on the node. */
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
#endif
  }
}

int cairn__agg_flushed(void) {
  aggregator *a = agg;
  return !a || atomic_load_explicit(&a->flushed, memory_order_acquire);
}

uint64_t cairn__agg_blocks(void) {
  aggregator *a = agg;
  return a ? atomic_load_explicit(&a->blocks, memory_order_relaxed) : 0;
}

static void doorbell_wait(uint64_t ns) {
#ifdef __linux__
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  syscall(SYS_futex, doorbell, FUTEX_WAIT, 0, &ts, NULL, 0);
#else
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
  (void)ns;
#endif
}

/* A producer that died without closing its channel. */
static int producer_dead(const cairn_shm_channel *c) {
  pid_t pid = (pid_t)atomic_load_explicit(&c->producer_pid, memory_order_acquire);
  return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

/* Adds a block just written to the log to the view kept for finalize, or
 * gives the view up (finalize then reads the log, which has everything). */
static void keep_in_view(aggregator *a, const void *msg, size_t len) {
  char err[512] = "";
  int rc = cairn__view_builder_add(a->vb, a->rank, msg, len, err, sizeof err);
  size_t bytes = cairn__view_builder_bytes(a->vb);
  if (rc == CAIRN_OK && bytes <= a->vb_limit)
    return;
  if (rc != CAIRN_OK)
    cairn__log(CAIRN_LOG_WARN,
               "aggregator: a block does not decode (%s); MPI_Finalize will read the run "
               "back from the write-ahead log, which reports what is damaged",
               err[0] ? err : cairn_strerror(rc));
  else
    cairn__log(CAIRN_LOG_INFO,
               "aggregator: the run's data passed mpi.aggregator_memory (%llu bytes); "
               "MPI_Finalize will read it back from the write-ahead log instead",
               (unsigned long long)a->vb_limit);
  cairn__view_builder_free(a->vb);
  a->vb = NULL;
}

/* Forwards everything available; with `yield_at_stop` (the aggregator
 * thread) it returns after the block in hand once stop is requested, so
 * that finalize's thread, at the application's priority, does the rest
 * instead of waiting for a niced thread to finish a long backlog. Returns
 * the number of blocks moved. */
static uint64_t forward(aggregator *a, int yield_at_stop) {
  uint64_t moved = 0;
  for (uint32_t i = 0; i < a->n; i++) {
    if (yield_at_stop && atomic_load_explicit(&a->stop, memory_order_acquire))
      break;
    cairn_shm_channel *c = a->chans[i];
    if (a->done[i] == 2)
      continue; /* corrupt: given up on */
    for (;;) {
      const void *msg;
      size_t len;
      int more = 0;
      int rc = cairn__chan_peek(c, &msg, &len, &more);
      if (rc == 0)
        break;
      if (rc < 0) {
        cairn__log(CAIRN_LOG_ERROR,
                   "aggregator: the channel of rank %u is corrupt; its further blocks are "
                   "lost (the ones already written are intact)",
                   c->rank);
        a->done[i] = 2;
        break;
      }
      cairn_buf *pb = &a->partial[i];
      if (more || pb->len) {
        /* A block in fragments: collect them, write when complete. */
        if (cairn__buf_append(pb, msg, len) != 0) {
          cairn__log(CAIRN_LOG_ERROR, "aggregator: out of memory reassembling a block");
          a->failed = 1;
        }
        cairn__chan_pop(c);
        if (more)
          continue;
        msg = pb->data;
        len = pb->len;
      }
      if (cairn__wal_append(a->wal, CAIRN_WAL_BLOCK_DATA, msg, len) != CAIRN_OK &&
          !a->failed) {
        a->failed = 1;
        cairn__log(CAIRN_LOG_ERROR, "aggregator: writing %s failed; blocks are being lost",
                   cairn__g.run_dir);
      }
      if (a->vb)
        keep_in_view(a, msg, len);
      if (pb->len)
        cairn__buf_reset(pb);
      else
        cairn__chan_pop(c);
      cairn__chan_ack(c); /* a rank waiting in cairn_flush learns its block is out */
      moved++;
      if (yield_at_stop && atomic_load_explicit(&a->stop, memory_order_acquire))
        break;
    }
  }
  atomic_fetch_add_explicit(&a->blocks, moved, memory_order_relaxed);
  return moved;
}

static int all_done(aggregator *a) {
  int all = 1;
  for (uint32_t i = 0; i < a->n; i++) {
    if (a->done[i])
      continue;
    const cairn_shm_channel *c = a->chans[i];
    int closed = atomic_load_explicit(&c->closed, memory_order_acquire);
    int empty = atomic_load_explicit(&c->head, memory_order_acquire) ==
                atomic_load_explicit(&c->tail, memory_order_relaxed);
    if (empty && (closed || producer_dead(c)))
      a->done[i] = 1;
    else
      all = 0;
  }
  return all;
}

static int all_term_flushed(aggregator *a) {
  all_done(a);
  for (uint32_t i = 0; i < a->n; i++) {
    const cairn_shm_channel *c = a->chans[i];
    if (!a->done[i] && !atomic_load_explicit(&c->term_flushed, memory_order_acquire))
      return 0;
  }
  return 1;
}

/* Lowers this thread's priority to `nice` (never raises it: that needs a
 * privilege and would take CPU from the ranks). Linux sets nice per thread. */
static void lower_priority(int nice) {
#ifdef __linux__
  id_t tid = (id_t)syscall(SYS_gettid);
  errno = 0;
  int now = getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && now < nice && setpriority(PRIO_PROCESS, tid, nice) != 0)
    cairn__log(CAIRN_LOG_WARN, "aggregator: cannot set its thread's nice value to %d: %s", nice,
               strerror(errno));
  errno = 0;
  now = getpriority(PRIO_PROCESS, tid);
  if (errno == 0)
    cairn__log(CAIRN_LOG_DEBUG, "aggregator thread at nice %d", now);
#else
  (void)nice;
#endif
}

/* One pass: forwards what is there; after SIGTERM, once every rank's flush
 * is written, makes it durable. Returns the blocks moved. */
static uint64_t agg_pass(aggregator *a, int yield_at_stop) {
  int term = atomic_load_explicit(&cairn__g.sigterm, memory_order_acquire);
  uint64_t moved = forward(a, yield_at_stop);
  if (term && !atomic_load_explicit(&a->flushed, memory_order_relaxed) && moved == 0 &&
      all_term_flushed(a)) {
    /* Every rank of the group has had its SIGTERM flush written (or has
     * finished, or died): make it durable and let the handler go on. */
    cairn__wal_sync(a->wal);
    atomic_store_explicit(&a->flushed, 1, memory_order_release);
  }
  return moved;
}

static void *agg_main(void *arg) {
  aggregator *a = arg;
  pthread_setname_np(pthread_self(), "cairn-aggr");
  lower_priority(a->nice);
  for (;;) {
    atomic_store_explicit(doorbell, 0, memory_order_relaxed);
    /* At stop, finalize's thread (at the application's priority) takes
     * over what is left: this one may be niced and behind. */
    if (atomic_load_explicit(&a->stop, memory_order_acquire))
      break;
    uint64_t moved = agg_pass(a, 1);
    if (moved == 0)
      doorbell_wait(a->interval_ns);
  }
  return NULL;
}

/* On finalize's thread, after the aggregator thread has exited: forwards
 * until every channel of the group is closed and empty, or its rank dead. */
static void agg_finish(aggregator *a) {
  uint64_t deadline = cairn__now_mono_ns() + AGG_STOP_WAIT_NS;
  for (;;) {
    atomic_store_explicit(doorbell, 0, memory_order_relaxed);
    uint64_t moved = agg_pass(a, 0);
    if (all_done(a))
      break;
    if (cairn__now_mono_ns() > deadline) {
      cairn__log(CAIRN_LOG_ERROR,
                 "aggregator: gave up waiting for ranks that neither finished nor died");
      break;
    }
    if (moved == 0)
      doorbell_wait(1000000u);
  }
}

cairn_view_builder *cairn__agg_take_builder(void) {
  cairn_view_builder *vb = kept_view;
  kept_view = NULL;
  size_t mapped = 0, live = 0;
  cairn__huge_stats(&mapped, &live);
  if (vb && mapped)
    cairn__log(CAIRN_LOG_DEBUG,
               "aggregator: run view held in huge-page regions (%zu MiB mapped, %zu MiB in "
               "blocks)",
               mapped >> 20, live >> 20);
  return vb;
}

int cairn__agg_start(cairn_shm_channel *const *chans, uint32_t n, const char *run_dir,
                     const uint8_t run_id[16], uint32_t rank, const cairn_config *cfg,
                     char *err, size_t errlen) {
  aggregator *a = calloc(1, sizeof *a);
  uint8_t *done = calloc(n ? n : 1, 1);
  cairn_buf *partial = calloc(n ? n : 1, sizeof *partial);
  if (!a || !done || !partial) {
    free(a);
    free(done);
    free(partial);
    return CAIRN_ENOMEM;
  }
  a->partial = partial;
  a->chans = chans;
  a->n = n;
  for (uint32_t i = 0; i < n; i++)
    atomic_store_explicit(&chans[i]->consumer_pid, (uint32_t)getpid(), memory_order_relaxed);
  a->done = done;
  a->interval_ns = (uint64_t)cfg->flush_interval_ms * 1000000u;
  a->nice = cfg->aggregator_nice;
  a->rank = rank;
  a->vb_limit = cfg->aggregator_memory;
  cairn__huge_enable(cfg->aggregator_huge_pages);
  if (a->vb_limit && cairn__view_builder_new(&a->vb) != CAIRN_OK)
    a->vb = NULL; /* finalize reads the log */
  if (a->vb)
    cairn__view_builder_expect_ranks(a->vb, n); /* one channel per rank */
  cairn_wal_options opt = {.dir = run_dir,
                           .rank = rank,
                           .compression_level = cfg->compression_level,
                           .sync_policy = (int)cfg->wal_sync,
                           .sync_interval_ms = cfg->wal_sync_interval_ms,
                           .segment_bytes = cfg->wal_segment_bytes};
  memcpy(opt.run_id, run_id, 16);
  int rc = cairn__wal_open(&a->wal, &opt, err, errlen);
  if (rc != CAIRN_OK)
    goto fail;
  rc = cairn__thread_create(&a->thread, agg_main, a);
  if (rc != 0) {
    cairn__fmt(err, errlen, "cannot start the aggregator thread: %s", strerror(rc));
    cairn__wal_close(a->wal);
    rc = CAIRN_ETHREAD;
    goto fail;
  }
  agg = a;
  return CAIRN_OK;
fail:
  cairn__view_builder_free(a->vb);
  free(done);
  free(partial);
  free(a);
  return rc;
}

int cairn__agg_stop(void) {
  aggregator *a = agg;
  if (!a)
    return CAIRN_OK;
  uint64_t t0 = cairn__now_mono_ns();
  atomic_store_explicit(&a->stop, 1, memory_order_release);
  atomic_store_explicit(doorbell, 0, memory_order_relaxed);
  cairn__agg_wake();
  pthread_join(a->thread, NULL);
  uint64_t t1 = cairn__now_mono_ns();
  uint64_t blocks0 = atomic_load_explicit(&a->blocks, memory_order_relaxed);
  uint64_t bytes0 = cairn__wal_bytes_written(a->wal);
  agg_finish(a);
  uint64_t t2 = cairn__now_mono_ns();
  uint64_t blocks = atomic_load_explicit(&a->blocks, memory_order_relaxed) - blocks0;
  uint64_t bytes = cairn__wal_bytes_written(a->wal) - bytes0;
  int rc = a->failed ? CAIRN_EIO : CAIRN_OK;
  if (cairn__wal_close(a->wal) != CAIRN_OK)
    rc = CAIRN_EIO;
  uint64_t t3 = cairn__now_mono_ns();
  cairn__log(CAIRN_LOG_DEBUG,
             "aggregator stop: its thread joined in %.3f s; finalize's thread forwarded the "
             "%llu blocks it was behind by (%.1f MiB into the log) in %.3f s; log closed in "
             "%.3f s",
             (double)(t1 - t0) * 1e-9, (unsigned long long)blocks, (double)bytes / 1048576.0,
             (double)(t2 - t1) * 1e-9, (double)(t3 - t2) * 1e-9);
  agg = NULL;
  cairn__view_builder_free(kept_view);
  kept_view = a->vb;
  for (uint32_t i = 0; i < a->n; i++)
    cairn__buf_free(&a->partial[i]);
  free(a->partial);
  free(a->done);
  free(a);
  return rc;
}
