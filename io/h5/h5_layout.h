/*
 * h5_layout.h — private to cairn's HDF5 writers: writes each part of a run
 * file (root attributes, tables, step markers, one metric group). Every
 * function takes "this process's share" of the rows and columns, so the
 * serial writer (one process holding everything) and the parallel writer
 * (many processes, collective transfers) run the very same code that
 * decides the file's content.
 */
#ifndef CAIRN_H5_LAYOUT_H
#define CAIRN_H5_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "h5_chunks.h"
#include "h5_writer.h"

typedef struct {
  hid_t file;
  hid_t dxpl;              /* H5P_DEFAULT, or collective MPI-IO transfers   */
  int level;               /* zstd level                                     */
  size_t ncols;            /* rank columns in the file                       */
  const size_t *my_cols;   /* this process's columns (file indexes, ascending) */
  size_t my_ncols;
  cairn_h5_chunks *chunks;  /* serial writer: compresses and writes chunks   */
                            /* of whole datasets directly; NULL in parallel  */
} cairn_h5_part;

/* Root attributes of `v`'s identity, with the writer's options. */
int cairn__h5_layout_root(hid_t file, const cairn_run_view *v, const cairn_h5_write_opts *o,
                          int detail);

/* /names, /ranks, /params, /run, /lineage/ *, /accounting from a view that
 * holds every column of the file (serial; process 0 of the parallel
 * writer after gathering). Metric names are taken from v->metrics. */
int cairn__h5_layout_tables(hid_t file, const cairn_run_view *v, int level);

/* /steps: all processes pass the same steps; rows [0, nmarks) of time are
 * this process's columns. Process p writes the step list only if
 * write_steps is set. */
int cairn__h5_layout_marks(const cairn_h5_part *p, size_t nmarks, const int64_t *steps,
                           int write_steps, const uint64_t *time);

/* One metric group /metrics/<index>. `steps` (all rows) is written only if
 * write_steps; statistics are given for rows [s0, s0+ns); values/samples
 * ([nsteps × my_ncols]) only when detail. as_f32 (every value of the
 * metric is exactly a float32) stores values, min and max as float32.
 * Collective in parallel. */
typedef struct {
  size_t index;
  const char *name;
  size_t name_len;
  uint64_t missing;
  size_t nsteps;
  const int64_t *steps;
  int write_steps;
  size_t s0, ns;
  const uint32_t *count;
  const double *sum, *sumsq, *min, *max;
  const int32_t *rank_min, *rank_max;
  int detail, as_f32;
  const double *values;
  const uint32_t *samples;
} cairn_h5_metric_part;

int cairn__h5_layout_metric(const cairn_h5_part *p, const cairn_h5_metric_part *m);

/* 1 if every value is NaN or exactly representable as a float32. */
int cairn__h5_fits_f32(const double *v, size_t n);

#endif /* CAIRN_H5_LAYOUT_H */
