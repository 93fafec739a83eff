/*
 * signals.c — SIGTERM, what batch schedulers send before SIGKILL: the
 * handler asks the drain and the writer (and, on an aggregator, the
 * aggregator thread) to flush everything logged so far to the write-ahead
 * log, waits a bounded time for them, then lets the previous disposition
 * run (the default one terminates the process).
 *
 * The handler does only async-signal-safe work: atomic stores, a futex wake
 * (a raw system call), nanosleep, sigaction and raise.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "drain.h"
#include "lifecycle.h"
#include "state.h"

/* How long the handler waits for the flush before it gives up. Slurm's
 * default grace between SIGTERM and SIGKILL is 30 s; stay well inside. */
#define SIGTERM_FLUSH_WAIT_MS 3000

static struct sigaction previous;
static _Atomic int installed;

static void on_sigterm(int sig, siginfo_t *info, void *uctx) {
  int saved_errno = errno;
  if (CAIRN_HOT_LOAD(running_gen, __ATOMIC_ACQUIRE) != CAIRN_GEN_NONE &&
      !atomic_exchange_explicit(&cairn__g.sigterm_entered, 1, memory_order_acq_rel)) {
    /* This thread's last records first, then the flag: a drain that sees
     * the flag (acquire) sees them published, and drains again before it
     * writes its final block. */
    cairn__publish_self();
    atomic_store_explicit(&cairn__g.sigterm, 1, memory_order_release);
    cairn__drain_wake();
    cairn__agg_wake();
    struct timespec ts = {0, 10 * 1000000};
    for (int waited = 0; waited < SIGTERM_FLUSH_WAIT_MS; waited += 10) {
      if (atomic_load_explicit(&cairn__g.sigterm_flushed, memory_order_acquire) &&
          cairn__agg_flushed())
        break;
      nanosleep(&ts, NULL);
    }
  }
  /* Chain: the application's own handler, or the default action. */
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction)
      previous.sa_sigaction(sig, info, uctx);
  } else if (previous.sa_handler == SIG_IGN) {
    /* the application ignores SIGTERM: so do we */
  } else if (previous.sa_handler == SIG_DFL) {
    sigaction(SIGTERM, &previous, NULL);
    raise(SIGTERM); /* delivered when this handler returns */
  } else if (previous.sa_handler) {
    previous.sa_handler(sig);
  }
  errno = saved_errno;
}

void cairn__signals_install(void) {
  if (atomic_exchange(&installed, 1))
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigterm;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, &previous) != 0)
    atomic_store(&installed, 0);
}

int cairn__thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}
