/*
 * drain.h — private to cairn. The drain thread: one per process in
 * standalone mode. It empties every thread's ring and the control channel,
 * compacts metric samples per (step, metric), and appends blocks to the
 * write-ahead log. It sleeps when idle and is woken early by a producer whose
 * ring passed its high-water mark.
 */
#ifndef CAIRN_DRAIN_H
#define CAIRN_DRAIN_H

#include <stddef.h>

/* Starts the drain for the current run (state in cairn__g, WAL already
 * configured by the caller through the config). Returns CAIRN_OK,
 * CAIRN_EIO (WAL), CAIRN_ETHREAD, CAIRN_ENOMEM with a message in err. */
int cairn__drain_start(char *err, size_t errlen);

/* Drains everything, writes the final block, closes the WAL, joins the
 * thread. Returns CAIRN_OK or CAIRN_EIO if any block of the run failed to be
 * written (the lost records are counted). */
int cairn__drain_stop(void);

/* Asks the drain to run now. Async-safe in the sense of lock-free: an atomic
 * store and, only if the drain was not already woken, one futex wake. */
void cairn__drain_wake(void);

#endif /* CAIRN_DRAIN_H */
