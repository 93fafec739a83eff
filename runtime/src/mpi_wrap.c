/*
 * mpi_wrap.c — the MPI entry points cairn interposes: MPI_Init,
 * MPI_Init_thread and MPI_Finalize, their Fortran manglings, and (in the
 * shared library, CAIRN_WRAP_PMPI=1) the PMPI_ names too, because Fortran
 * and some language bindings call PMPI_Init directly (Open MPI's mpif.h
 * bindings do). Every wrapper calls the MPI library first and returns its
 * result unchanged; cairn's own work can only disable cairn, never fail or
 * exit the application.
 *
 * Built twice: into libcairn.so with CAIRN_WRAP_PMPI=1, where the real PMPI
 * functions are found with dlsym(RTLD_NEXT) (this works for -lcairn links and
 * for LD_PRELOAD); into libcairn.a with CAIRN_WRAP_PMPI=0, where defining
 * PMPI_Init would clash with a static MPI library's strong symbol.
 */
#include <dlfcn.h>
#include <mpi.h>
#include <stdatomic.h>

#include "cairn.h"
#include "cairn_mpi.h"
#include "lifecycle.h"
#include "util.h"

#ifndef CAIRN_WRAP_PMPI
#define CAIRN_WRAP_PMPI 0
#endif

static atomic_int activated, finalized;

static void after_init(int rc, int provided) {
  if (rc != MPI_SUCCESS || atomic_exchange(&activated, 1))
    return;
  cairn__mpi_activate(provided);
}

static void before_finalize(void) {
  if (atomic_load(&activated) && !atomic_exchange(&finalized, 1))
    cairn__mpi_finalize();
}

#if CAIRN_WRAP_PMPI
typedef int (*init_fn)(int *, char ***);
typedef int (*init_thread_fn)(int *, char ***, int, int *);
typedef int (*finalize_fn)(void);

/* The next definition after us: the MPI library's. NULL if there is none,
 * in which case there is no MPI to call and we say so instead of crashing. */
static void *next_symbol(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f)
    cairn__log(CAIRN_LOG_ERROR, "cannot find the MPI library's %s; cairn is inactive", name);
  return f;
}

CAIRN_API int PMPI_Init(int *argc, char ***argv) {
  static init_fn real;
  if (!real && !(real = (init_fn)next_symbol("PMPI_Init")))
    return MPI_ERR_OTHER;
  int rc = real(argc, argv);
  int provided = MPI_THREAD_SINGLE;
  if (rc == MPI_SUCCESS)
    PMPI_Query_thread(&provided);
  after_init(rc, provided);
  return rc;
}

CAIRN_API int PMPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  static init_thread_fn real;
  if (!real && !(real = (init_thread_fn)next_symbol("PMPI_Init_thread")))
    return MPI_ERR_OTHER;
  int rc = real(argc, argv, required, provided);
  after_init(rc, provided ? *provided : MPI_THREAD_SINGLE);
  return rc;
}

CAIRN_API int PMPI_Finalize(void) {
  static finalize_fn real;
  before_finalize();
  if (!real && !(real = (finalize_fn)next_symbol("PMPI_Finalize")))
    return MPI_ERR_OTHER;
  return real();
}
#endif

CAIRN_API int MPI_Init(int *argc, char ***argv) {
  int rc = PMPI_Init(argc, argv);
#if !CAIRN_WRAP_PMPI
  int provided = MPI_THREAD_SINGLE;
  if (rc == MPI_SUCCESS)
    PMPI_Query_thread(&provided);
  after_init(rc, provided);
#endif
  return rc;
}

CAIRN_API int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  int rc = PMPI_Init_thread(argc, argv, required, provided);
#if !CAIRN_WRAP_PMPI
  after_init(rc, provided ? *provided : MPI_THREAD_SINGLE);
#endif
  return rc;
}

CAIRN_API int MPI_Finalize(void) {
#if !CAIRN_WRAP_PMPI
  before_finalize();
#endif
  return PMPI_Finalize();
}

CAIRN_API int cairn_flush_collective(MPI_Comm comm) {
  if (comm == MPI_COMM_NULL)
    return CAIRN_EINVAL;
  /* Flush first, agree after: a rank that could not flush makes the call
   * fail everywhere, so no rank believes in a consistent point that is not. */
  int rc = cairn__mpi_active() ? cairn_flush() : CAIRN_ENOTINIT;
  int mine = rc == CAIRN_OK ? 0 : rc == CAIRN_ENOTINIT ? 1 : 2, worst = 0;
  PMPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, comm);
  return worst == 0 ? CAIRN_OK : worst == 1 ? CAIRN_ENOTINIT : CAIRN_EIO;
}

/* ---- Fortran (mpif.h / use mpi) ------------------------------------------- */
/* MPI_Fint is a C int in every MPI we target. Four manglings: gfortran and
 * most compilers (lower case, one underscore), g77-style (two underscores
 * for names containing one), none, and upper case. */

#define CAIRN_FORTRAN_INIT(name)                                               \
  CAIRN_API void name(MPI_Fint *ierr);                                         \
  CAIRN_API void name(MPI_Fint *ierr) { *ierr = (MPI_Fint)MPI_Init(NULL, NULL); }
#define CAIRN_FORTRAN_INIT_THREAD(name)                                        \
  CAIRN_API void name(MPI_Fint *required, MPI_Fint *provided, MPI_Fint *ierr); \
  CAIRN_API void name(MPI_Fint *required, MPI_Fint *provided, MPI_Fint *ierr) { \
    int p = 0;                                                                 \
    *ierr = (MPI_Fint)MPI_Init_thread(NULL, NULL, (int)*required, &p);         \
    *provided = (MPI_Fint)p;                                                   \
  }
#define CAIRN_FORTRAN_FINALIZE(name)                                           \
  CAIRN_API void name(MPI_Fint *ierr);                                         \
  CAIRN_API void name(MPI_Fint *ierr) { *ierr = (MPI_Fint)MPI_Finalize(); }

CAIRN_FORTRAN_INIT(mpi_init_)
CAIRN_FORTRAN_INIT(mpi_init__)
CAIRN_FORTRAN_INIT(mpi_init)
CAIRN_FORTRAN_INIT(MPI_INIT)
CAIRN_FORTRAN_INIT_THREAD(mpi_init_thread_)
CAIRN_FORTRAN_INIT_THREAD(mpi_init_thread__)
CAIRN_FORTRAN_INIT_THREAD(mpi_init_thread)
CAIRN_FORTRAN_INIT_THREAD(MPI_INIT_THREAD)
CAIRN_FORTRAN_FINALIZE(mpi_finalize_)
CAIRN_FORTRAN_FINALIZE(mpi_finalize__)
CAIRN_FORTRAN_FINALIZE(mpi_finalize)
CAIRN_FORTRAN_FINALIZE(MPI_FINALIZE)
