/*
 * mpi_runtime.c — cairn under MPI: what happens inside MPI_Init and
 * MPI_Finalize (see mpi_wrap.c for the interposed entry points).
 *
 * At MPI_Init, on the application's thread, right after PMPI_Init:
 *   1. the ranks are grouped: one group per node (MPI_Comm_split_type
 *      SHARED), or "virtual nodes" of mpi.ranks_per_aggregator ranks; rank 0
 *      of a group is its aggregator;
 *   2. rank 0 of the job picks the run id and start time and broadcasts them,
 *      and creates the run directory;
 *   3. each group's aggregator creates one POSIX shared-memory segment
 *      (mode 0600, unlinked as soon as every rank of the group has mapped
 *      it) holding one channel per rank, and starts its aggregator thread;
 *   4. every rank starts its runtime with its blocks going to its channel.
 * Every step is checked collectively: if any rank fails, every rank disables
 * cairn with one warning, and the application's MPI_Init result is untouched.
 *
 * During the run no MPI call is made by cairn at all: rings, drain, writer,
 * channels and aggregator use memory and POSIX I/O only, so the granted
 * thread level does not matter and is never changed.
 *
 * At MPI_Finalize, before PMPI_Finalize: every rank stops (its last blocks go
 * to its channel and the channel is closed), the group synchronises, and the
 * aggregator writes the rest and closes its WAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "aggregator.h"
#include "h5/h5_finalize.h"
#include "h5/h5_writer.h"
#include "lifecycle.h"
#include "state.h"
#include "util.h"

/* Node shared segment: a header line, then one channel per rank of the
 * group, each cairn__chan_footprint(capacity) bytes. */
typedef struct {
  alignas(CAIRN_CACHELINE) uint64_t magic;
  uint32_t nchannels;
  uint32_t reserved;
  uint64_t channel_footprint;
  alignas(CAIRN_CACHELINE) _Atomic uint32_t doorbell;
  /* Set by the aggregator once its part of the run's output is written:
   * the other ranks of the group sleep on it (a futex) in MPI_Finalize
   * instead of polling in a barrier, leaving the node's cores to it. */
  alignas(CAIRN_CACHELINE) _Atomic uint32_t written;
} seg_header;

#define SEG_MAGIC 0x434149524e53484dull /* "CAIRNSHM" */

static struct {
  int active;
  MPI_Comm group;    /* ranks sharing one aggregator */
  MPI_Comm files;    /* aggregators writing one HDF5 file (aggregators only) */
  int file_group, naggregators, world_rank;
  int group_rank, group_size;
  void *seg;
  size_t seg_bytes;
  cairn_shm_channel **chans; /* aggregator: all channels of the group */
} mpi_state;

static uint64_t pow2_floor(uint64_t v) {
  uint64_t p = 1;
  while (p <= v / 2)
    p *= 2;
  return p;
}

/* Every rank learns whether all ranks succeeded. */
static int all_ok(int ok) {
  int all = 0;
  PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

static void disable(const char *why, int world_rank) {
  if (world_rank == 0)
    cairn__log(CAIRN_LOG_WARN, "disabled for this job: %s", why);
}

void cairn__mpi_activate(int granted) {
  (void)granted; /* no cairn thread ever calls MPI: any level will do */
  int rank = 0, size = 1;
  PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
  PMPI_Comm_size(MPI_COMM_WORLD, &size);

  char err[1024] = "";
  cairn_config cfg;
  int ok = cairn__config_load(&cfg, NULL, err, sizeof err) == CAIRN_OK;
  if (!all_ok(ok)) {
    if (!ok)
      cairn__log(CAIRN_LOG_ERROR, "rank %d: configuration: %s", rank, err);
    disable("invalid configuration (see the messages above)", rank);
    return;
  }
  cairn__log_set_level((int)cfg.log_level);
  if (!cfg.enabled || !cfg.mpi_enabled)
    return;
  if (cairn__g.have_run && CAIRN_HOT_LOAD(running_gen, __ATOMIC_SEQ_CST) != CAIRN_GEN_NONE) {
    /* The application called cairn_init before MPI_Init: that standalone
     * run continues; say so once per job. */
    disable("cairn_init was called before MPI_Init; that process-local run continues",
            rank);
    return;
  }

  /* 1. Groups. */
  MPI_Comm node = MPI_COMM_NULL, group = MPI_COMM_NULL;
  PMPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int node_rank = 0, node_size = 1, max_node = 1;
  PMPI_Comm_rank(node, &node_rank);
  PMPI_Comm_size(node, &node_size);
  PMPI_Allreduce(&node_size, &max_node, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  int color = cfg.ranks_per_aggregator ? node_rank / (int)cfg.ranks_per_aggregator : 0;
  PMPI_Comm_split(node, color, node_rank, &group);
  PMPI_Comm_free(&node);
  int grank = 0, gsize = 1;
  PMPI_Comm_rank(group, &grank);
  PMPI_Comm_size(group, &gsize);

  /* 2. Run identity and directory. */
  struct {
    uint8_t id[16];
    uint64_t start_ns;
  } ident;
  memset(&ident, 0, sizeof ident);
  char dir[4096] = "";
  if (rank == 0) {
    ok = (cfg.run_id[0] ? cairn__uuid_parse(cfg.run_id, ident.id)
                        : cairn__uuid_generate(ident.id)) == CAIRN_OK;
    ident.start_ns = cairn__now_realtime_ns();
    if (ok)
      ok = cairn__run_make_dir(&cfg, ident.id, dir, sizeof dir, err, sizeof err) == CAIRN_OK;
    if (!ok)
      cairn__log(CAIRN_LOG_ERROR, "rank 0: %s", err[0] ? err : "cannot create a run id");
  }
  PMPI_Bcast(&ident, (int)sizeof ident, MPI_BYTE, 0, MPI_COMM_WORLD);
  if (!all_ok(ok)) {
    disable("the run directory could not be created", rank);
    PMPI_Comm_free(&group);
    return;
  }
  if (rank != 0) {
    char parent[4096], text[37];
    cairn__uuid_format(ident.id, text);
    if (cairn__run_parent_dir(&cfg, parent, sizeof parent, err, sizeof err) != CAIRN_OK ||
        (size_t)snprintf(dir, sizeof dir, "%s/%s", parent, text) >= sizeof dir)
      ok = 0;
  }

  /* 3. Node shared memory. */
  uint64_t cap = pow2_floor(cfg.channel_bytes);
  size_t fp = cairn__chan_footprint(cap);
  size_t bytes = sizeof(seg_header) + (size_t)gsize * fp;
  char shm_name[64];
  {
    char text[37];
    cairn__uuid_format(ident.id, text);
    int agg_world = rank;
    PMPI_Bcast(&agg_world, 1, MPI_INT, 0, group);
    snprintf(shm_name, sizeof shm_name, "/cairn-%.8s-%d", text, agg_world);
  }
  void *seg = MAP_FAILED;
  if (ok && grank == 0) {
    int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
      cairn__log(CAIRN_LOG_ERROR, "rank %d: shared memory %s (%zu bytes): %s", rank, shm_name,
                 bytes, strerror(errno));
      ok = 0;
    } else {
      seg = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      ok = seg != MAP_FAILED;
    }
    if (fd >= 0)
      close(fd);
    if (ok) {
      seg_header *h = seg;
      h->nchannels = (uint32_t)gsize;
      h->channel_footprint = fp;
      atomic_init(&h->doorbell, 0);
      atomic_init(&h->written, 0);
      for (int i = 0; i < gsize; i++)
        cairn__chan_init((cairn_shm_channel *)((char *)seg + sizeof(seg_header) + (size_t)i * fp),
                         cap, 0);
      h->magic = SEG_MAGIC;
    }
  }
  /* The creator's result first, so nobody opens a segment that is not there. */
  int created = ok;
  PMPI_Bcast(&created, 1, MPI_INT, 0, group);
  if (ok && created && grank != 0) {
    int fd = shm_open(shm_name, O_RDWR, 0);
    if (fd >= 0) {
      seg = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      close(fd);
    }
    ok = seg != MAP_FAILED && ((seg_header *)seg)->magic == SEG_MAGIC;
    if (!ok)
      cairn__log(CAIRN_LOG_ERROR, "rank %d: cannot map node shared memory %s: %s", rank,
                 shm_name, strerror(errno));
  }
  ok = ok && created;
  PMPI_Barrier(group);
  /* Everyone has mapped it (or failed): the name can go, the memory stays
   * until the last rank unmaps it, and nothing is left behind on the node. */
  if (grank == 0 && created)
    shm_unlink(shm_name);
  if (!all_ok(ok)) {
    if (seg != MAP_FAILED)
      munmap(seg, bytes);
    PMPI_Comm_free(&group);
    disable("node shared memory could not be set up (see the messages above)", rank);
    return;
  }

  seg_header *h = seg;
  cairn_shm_channel *mine =
      (cairn_shm_channel *)((char *)seg + sizeof(seg_header) + (size_t)grank * fp);
  mine->rank = (uint32_t)rank;
  atomic_store_explicit(&mine->producer_pid, (uint32_t)getpid(), memory_order_release);
  cairn__agg_set_doorbell(&h->doorbell);
  PMPI_Barrier(group); /* channel ranks are set before the aggregator reads them */

  /* 3b. The aggregator thread. */
  if (grank == 0) {
    mpi_state.chans = calloc((size_t)gsize, sizeof *mpi_state.chans);
    ok = mpi_state.chans != NULL;
    for (int i = 0; ok && i < gsize; i++)
      mpi_state.chans[i] =
          (cairn_shm_channel *)((char *)seg + sizeof(seg_header) + (size_t)i * fp);
    if (ok && cairn__agg_start(mpi_state.chans, (uint32_t)gsize, dir, ident.id,
                               (uint32_t)rank, &cfg, err, sizeof err) != CAIRN_OK) {
      cairn__log(CAIRN_LOG_ERROR, "rank %d: aggregator: %s", rank, err);
      ok = 0;
    }
  }
  /* 3c. Run metadata of the job as a whole, gathered to rank 0, which
   * records it with its own (user, command line, job, git ...). */
  cairn_meta extra = {0};
  {
    enum { HOST = 256 };
    char host[HOST] = "";
    gethostname(host, HOST - 1);
    char *all = rank == 0 ? calloc((size_t)size, HOST) : NULL;
    PMPI_Gather(host, HOST, MPI_CHAR, all, HOST, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0 && all) {
      /* Distinct hosts, in rank order of first appearance. */
      size_t list_cap = (size_t)size * HOST + 1, used = 0;
      char *list = calloc(list_cap, 1);
      int nhosts = 0;
      for (int r = 0; list && r < size; r++) {
        const char *name = all + (size_t)r * HOST;
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
          seen = strcmp(name, all + (size_t)q * HOST) == 0;
        if (!seen) {
          used += (size_t)snprintf(list + used, list_cap - used, "%s%s", nhosts ? "," : "", name);
          nhosts++;
        }
      }
      char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
      int vlen = 0;
      PMPI_Get_library_version(version, &vlen);
      if (list)
        cairn__meta_add_mpi(&extra, version, size, max_node, list, nhosts);
      free(list);
    }
    free(all);
  }

  /* 4. Every rank's runtime. */
  if (all_ok(ok)) {
    cairn_start_opts o = {.start_ns = ident.start_ns,
                          .rank = (uint32_t)rank,
                          .nranks = (uint32_t)size,
                          .run_dir = dir,
                          .chan = mine,
                          .collect_meta = rank == 0,
                          .extra_meta = &extra};
    memcpy(o.run_id, ident.id, 16);
    err[0] = '\0';
    ok = cairn__start(&cfg, &o, err, sizeof err) == CAIRN_OK;
    if (!ok)
      cairn__log(CAIRN_LOG_ERROR, "rank %d: %s", rank, err);
  } else {
    ok = 0;
  }
  cairn__meta_free(&extra);
  if (!all_ok(ok)) {
    if (CAIRN_HOT_LOAD(running_gen, __ATOMIC_SEQ_CST) != CAIRN_GEN_NONE)
      cairn__stop();
    atomic_store(&mine->closed, 1);
    cairn__agg_stop();
    cairn__agg_set_doorbell(NULL);
    free(mpi_state.chans);
    mpi_state.chans = NULL;
    munmap(seg, bytes);
    PMPI_Comm_free(&group);
    disable("the runtime could not start on every rank", rank);
    return;
  }
  /* Aggregators are grouped mpi.aggregators_per_file at a time; each group
   * writes one HDF5 file at MPI_Finalize. */
  MPI_Comm aggs = MPI_COMM_NULL;
  PMPI_Comm_split(MPI_COMM_WORLD, grank == 0 ? 0 : MPI_UNDEFINED, rank, &aggs);
  mpi_state.files = MPI_COMM_NULL;
  if (aggs != MPI_COMM_NULL) {
    int ai = 0;
    PMPI_Comm_rank(aggs, &ai);
    PMPI_Comm_size(aggs, &mpi_state.naggregators);
    mpi_state.file_group = ai / (int)cfg.aggregators_per_file;
    PMPI_Comm_split(aggs, mpi_state.file_group, ai, &mpi_state.files);
    PMPI_Comm_free(&aggs);
  }
  mpi_state.world_rank = rank;
  mpi_state.active = 1;
  mpi_state.group = group;
  mpi_state.group_rank = grank;
  mpi_state.group_size = gsize;
  mpi_state.seg = seg;
  mpi_state.seg_bytes = bytes;
  if (rank == 0)
    cairn__log(CAIRN_LOG_INFO, "run %s: %d ranks, groups of up to %d, output in %s",
               cairn__g.run_id_text, size, gsize, dir);
}

/* The aggregator's output is written: wake the group's ranks sleeping in
 * wait_written (not FUTEX_PRIVATE: they are other processes). */
static void set_written(seg_header *h) {
  atomic_store_explicit(&h->written, 1, memory_order_release);
#ifdef __linux__
  syscall(SYS_futex, &h->written, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
#endif
}

/* A rank that is not the aggregator waits for it to finish writing, asleep,
 * checking every 100 ms that the aggregator is alive (if it died, the
 * barrier that follows reports it the way MPI does). */
static void wait_written(seg_header *h, const cairn_shm_channel *mine) {
  while (!atomic_load_explicit(&h->written, memory_order_acquire)) {
    pid_t agg = mine ? (pid_t)atomic_load_explicit(&mine->consumer_pid, memory_order_relaxed)
                     : 0;
    if (agg > 0 && kill(agg, 0) != 0 && errno == ESRCH)
      return;
#ifdef __linux__
    struct timespec ts = {0, 100000000};
    syscall(SYS_futex, &h->written, FUTEX_WAIT, 0, &ts, NULL, 0);
#else
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
#endif
  }
}

int cairn__mpi_active(void) {
  return mpi_state.active &&
         CAIRN_HOT_LOAD(running_gen, __ATOMIC_ACQUIRE) != CAIRN_GEN_NONE;
}

void cairn__mpi_finalize(void) {
  if (!mpi_state.active)
    return;
  uint64_t t_start = cairn__now_mono_ns(), t_stopped = t_start, t_view = t_start,
           t_file = t_start;
  /* This rank's last records go to its channel, which is then closed. */
  if (CAIRN_HOT_LOAD(running_gen, __ATOMIC_SEQ_CST) != CAIRN_GEN_NONE)
    cairn__stop();
  else if (cairn__g.chan)
    atomic_store_explicit(&cairn__g.chan->closed, 1, memory_order_release);
  cairn__agg_wake();
  /* The aggregator waits for every channel of its group to close (or its
   * rank to die), writes the rest and closes its log. */
  if (mpi_state.group_rank == 0 && cairn__agg_stop() != CAIRN_OK)
    cairn__log(CAIRN_LOG_ERROR, "aggregator: some blocks could not be written");
  t_stopped = cairn__now_mono_ns();
  /* The aggregators of each file group write their logs into one HDF5
   * file together (collective MPI-IO); each removes its log only once the
   * file is complete. No cairn thread is running any more. */
  if (mpi_state.files != MPI_COMM_NULL) {
    char err[1024] = "";
    /* The view the aggregator built while it wrote its log, if it kept
     * one (mpi.aggregator_memory): then the log is not read back. The
     * writer finishes it (and frees it). */
    cairn_view_builder *kept = cairn__agg_take_builder();
    int have_kept = kept != NULL;
    t_view = cairn__now_mono_ns();
    int rc = cairn__h5_finalize_group(mpi_state.files, cairn__g.run_dir,
                                      (uint32_t)mpi_state.world_rank,
                                      (uint32_t)mpi_state.file_group,
                                      (uint32_t)mpi_state.naggregators, kept,
                                      cairn__h5_convert_memory(cairn__g.cfg.convert_memory),
                                      err, sizeof err);
    /* No malloc_trim here (cairn_finalize does it): nothing of cairn runs
     * after MPI_Finalize, the process normally exits, and the trim cost
     * 0.03-0.05 s of the 16-rank finalize. */
    if (rc == CAIRN_ECORRUPT)
      cairn__log(CAIRN_LOG_WARN, "%s (the write-ahead log is kept)", err);
    else if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
      cairn__log(CAIRN_LOG_ERROR, "writing the run file failed: %s; the write-ahead logs "
                                  "in %s are kept and hold everything",
                 err, cairn__g.run_dir);
    PMPI_Comm_free(&mpi_state.files);
    t_file = cairn__now_mono_ns();
    cairn__log(CAIRN_LOG_DEBUG,
               "finalize (writer %d): aggregator drained and stopped %.3f s, kept run view %s "
               "%.3f s, run file written (view finished on the way) and log removed %.3f s",
               mpi_state.world_rank, (double)(t_stopped - t_start) * 1e-9,
               have_kept ? "taken" : "absent (the log is read back)",
               (double)(t_view - t_stopped) * 1e-9, (double)(t_file - t_view) * 1e-9);
  }
  seg_header *h = mpi_state.seg;
  if (mpi_state.group_rank == 0)
    set_written(h);
  else
    wait_written(h, cairn__g.chan);
  PMPI_Barrier(mpi_state.group);
  cairn__agg_set_doorbell(NULL);
  cairn__g.chan = NULL;
  munmap(mpi_state.seg, mpi_state.seg_bytes);
  free(mpi_state.chans);
  PMPI_Comm_free(&mpi_state.group);
  memset(&mpi_state, 0, sizeof mpi_state);
}
