/*
 * lifecycle.h — private to cairn. Starting and stopping a run, shared by the
 * standalone API (cairn_init / cairn_finalize) and the MPI activation in
 * MPI_Init / MPI_Finalize, and the SIGTERM handling both use.
 */
#ifndef CAIRN_LIFECYCLE_H
#define CAIRN_LIFECYCLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "runmeta.h"
#include "shm_channel.h"

typedef struct {
  uint8_t run_id[16];
  uint64_t start_ns;        /* 0: now                                      */
  uint32_t rank, nranks;    /* world rank and size (0 of 1 standalone)     */
  const char *run_dir;      /* absolute, existing                           */
  cairn_shm_channel *chan;  /* MPI: blocks go here; NULL: straight to WAL  */
  /* Record the automatic run metadata (runmeta.h) as run key/values:
   * standalone always, under MPI on rank 0 only (the git check stats every
   * tracked file: once per job is enough on a shared file system). */
  int collect_meta;
  const cairn_meta *extra_meta; /* more key/values to record (MPI's), or NULL */
} cairn_start_opts;

/* Starts a run with a loaded configuration. Returns CAIRN_OK, CAIRN_EALREADY
 * or the error of the part that failed (message in err). Not thread-safe. */
int cairn__start(const cairn_config *cfg, const cairn_start_opts *o, char *err,
                 size_t errlen);

/* Stops the running run (drains, writes, joins threads). Returns CAIRN_OK,
 * CAIRN_ENOTINIT, CAIRN_EIO. */
int cairn__stop(void);

/* run.dir made absolute; <run.dir>/<uuid> created 0700. */
int cairn__run_parent_dir(const cairn_config *cfg, char *parent, size_t len, char *err,
                          size_t errlen);
int cairn__run_make_dir(const cairn_config *cfg, const uint8_t id[16], char *dir, size_t len,
                        char *err, size_t errlen);

/* 1 while a run is going in this process. */
int cairn__running(void);

/* Publishes the calling thread's pending metric records (signal-safe). */
void cairn__publish_self(void);

/* Creates a cairn background thread with every signal blocked in it, so
 * that signals meant for the application (SIGTERM above all) are delivered
 * to the application's threads. Same returns as pthread_create. */
int cairn__thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* SIGTERM: installs (once) a handler that flushes what was logged before the
 * previous disposition runs. See signals.c. */
void cairn__signals_install(void);

/* MPI activation (mpi_runtime.c); called by the MPI_Init and MPI_Finalize
 * wrappers after PMPI_Init / before PMPI_Finalize, on the application's
 * thread. They never fail the application's call: problems disable cairn
 * with one warning. */
void cairn__mpi_activate(int granted_thread_level);
void cairn__mpi_finalize(void);
/* 1 while cairn runs under MPI in this process. */
int cairn__mpi_active(void);

#endif /* CAIRN_LIFECYCLE_H */
