/*
 * h5_writer.h — private to cairn: writes a run view as an HDF5 run file
 * (format v2, h5_format.h), serially for a standalone run or collectively
 * by the aggregators of one group through MPI-IO. Both write the file under
 * a temporary name and rename it into place only when it is complete and
 * synced, so a run directory never holds a half-written run-g*.h5.
 *
 * HDF5 is not thread-safe in the builds cairn targets: call these from the
 * thread that owns the process's HDF5 use, never from a background thread.
 */
#ifndef CAIRN_H5_WRITER_H
#define CAIRN_H5_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "run_view.h"

typedef struct {
  int detail;             /* 1: keep per-rank values and sample counts        */
  int zstd_level;         /* 0: CAIRN_H5_ZSTD_LEVEL                           */
  uint32_t group;         /* the aggregator group this file holds             */
  uint32_t naggregators;  /* 0: the view's                                     */
  uint64_t created_ns;    /* creation_time_ns attribute; 0: now                */
} cairn_h5_write_opts;

/* Defaults: detail on, level CAIRN_H5_ZSTD_LEVEL, group 0. */
void cairn__h5_write_opts_init(cairn_h5_write_opts *o);

/*
 * Writes `view` to `path` (normally <run dir>/run-g<group>.h5): creates
 * ".<name>.tmp" beside it, writes, closes and fsyncs it, renames it to
 * `path` and fsyncs the directory. An existing file at `path` is replaced
 * atomically. opt may be NULL (defaults). Returns CAIRN_OK; CAIRN_EIO,
 * CAIRN_ECOMPRESS (filter unavailable), CAIRN_ENOMEM, CAIRN_EINVAL, with a
 * message naming the file in err. On failure the temporary is removed and
 * `path` is untouched.
 */
int cairn__h5_write(const cairn_run_view *view, const char *path,
                    const cairn_h5_write_opts *opt, char *err, size_t errlen);

/* What a streamed write holds of finished metrics at most (one range of
 * cairn__view_pending_fill; a single larger metric is taken whole). The
 * variable starts at the default; tests lower it to make many ranges. */
#define CAIRN_H5_STREAM_BYTES ((size_t)256 << 20)
extern size_t cairn__h5_stream_bytes;

/*
 * The same file as cairn__h5_write, from a view whose metrics are still
 * pending (cairn__view_builder_finish_pending, cairn__view_from_wal_pending):
 * each range of metrics is finished, written, and released before the next
 * is finished, so memory stays at the cells plus CAIRN_H5_STREAM_BYTES.
 * Metrics already written are left with their names only; the caller still
 * frees `view` and `pending`. Same returns as cairn__h5_write.
 */
int cairn__h5_write_pending(cairn_run_view *view, cairn_view_pending *pending,
                            const char *path, const cairn_h5_write_opts *opt, char *err,
                            size_t errlen);

/*
 * Collective over `comm` (the aggregators of one group; MPI must be
 * initialized). Each process passes the view of its own ranks (disjoint
 * rank columns, per-rank values present); together they write one file at
 * `path` (the same string on every process) whose content equals what
 * cairn__h5_write writes for the union of the views. Shapes are agreed
 * collectively, per-step statistics are computed over all ranks in rank
 * order (by process 0, or in the collective way by the process owning each
 * step range), and the small tables are gathered to process 0, which
 * writes them, syncs and renames.
 * The per-rank columns go one of two ways. When every metric's
 * [steps × ranks] values and samples (12 bytes a cell) fit in
 * cairn__h5_gather_bytes, each metric in turn is gathered to process 0,
 * which writes the file alone, as cairn__h5_write does (chunks compressed
 * on its threads, written directly): HDF5 1.10's collective filtered
 * writes allocate every chunk of a dataset at creation and write it
 * compressed once with zeros and once with the data, which made them 5x
 * slower (bench/README.md). Otherwise the columns are written with
 * collective MPI-IO, every process its own.
 * Returns the same code on every process (CAIRN_OK, CAIRN_EIO, CAIRN_EINVAL
 * for overlapping ranks or a view without per-rank values, CAIRN_ENOMEM,
 * CAIRN_ECOMPRESS); err is filled on every process on failure.
 */
int cairn__h5_write_parallel(MPI_Comm comm, const cairn_run_view *mine, const char *path,
                             const cairn_h5_write_opts *opt, char *err, size_t errlen);

/* The largest metric (12 bytes a cell of [steps × ranks]) the parallel
 * writer gathers to process 0; starts at CAIRN_H5_STREAM_BYTES (what the
 * serial writer holds of finished metrics). Process 0 holds about twice
 * that while a metric is gathered (what it receives, and the same in file
 * column order). Tests set it to 0 to take the collective MPI-IO path. */
extern size_t cairn__h5_gather_bytes;

/*
 * The MPI finalize step of one aggregator group, collective over `comm`
 * (the group's aggregators): each process reads the WAL segments it wrote
 * (wal-r<writer>-*, every rank it serves), they write
 * <run_dir>/run-g<group>.h5 together with cairn__h5_write_parallel, and
 * only after that file is renamed into place and the directory synced does
 * each process remove its own segments. A process whose log was damaged
 * keeps its segments and returns CAIRN_ECORRUPT (the file holds what was
 * readable); an aggregator without segments contributes nothing. A process
 * that passes `kept`, the builder of everything it wrote to its log fed
 * while it wrote (cairn__view_builder_*), writes that instead of reading
 * the log back; the builder is taken (freed here). A group of one process
 * finishes its view a range of metrics at a time as it writes
 * (cairn__h5_write_pending); a larger group needs whole views for the
 * collective write. A group of one that reads its log back holds at most
 * `memory` bytes of cells (0: no bound; see cairn__h5_finalize_run).
 * Returns CAIRN_OK or the writer's error (the same on every process), err
 * filled.
 */
int cairn__h5_finalize_group(MPI_Comm comm, const char *run_dir, uint32_t writer,
                             uint32_t group, uint32_t naggregators, cairn_view_builder *kept,
                             uint64_t memory, char *err, size_t errlen);

#endif /* CAIRN_H5_WRITER_H */
