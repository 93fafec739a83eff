/* h5_writer.c — the serial HDF5 run-file writer, the write-then-rename
 * commit shared with the parallel writer, and the standalone finalize step
 * that converts a run's write-ahead log into its run file. */
#include "h5_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "h5_finalize.h"
#include "h5_layout.h"
#include "h5_schema.h"
#include "h5_writer_internal.h"
#include "h5zstd/h5zstd.h"
#include "util.h"

size_t cairn__h5_stream_bytes = CAIRN_H5_STREAM_BYTES;

void cairn__h5_write_opts_init(cairn_h5_write_opts *o) {
  memset(o, 0, sizeof *o);
  o->detail = 1;
  o->zstd_level = CAIRN_H5_ZSTD_LEVEL;
}

int cairn__h5w_tmp_path(const char *path, char *tmp, size_t len) {
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  int n = snprintf(tmp, len, "%.*s" CAIRN_H5_TMP_PREFIX "%s" CAIRN_H5_TMP_SUFFIX, (int)dirlen,
                   path, path + dirlen);
  return n > 0 && (size_t)n < len ? 0 : -1;
}

static int fsync_path(const char *path, int dir) {
  int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int cairn__h5w_commit(const char *tmp, const char *path, char *err, size_t errlen) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
  else
    snprintf(dir, sizeof dir, ".");
  /* Data first, then the name: after a crash the final name either does not
   * exist or names a complete file. */
  if (fsync_path(tmp, 0) != 0) {
    snprintf(err, errlen, "%s: fsync failed: %s", tmp, strerror(errno));
    return CAIRN_EIO;
  }
  if (rename(tmp, path) != 0) {
    snprintf(err, errlen, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    return CAIRN_EIO;
  }
  if (fsync_path(dir, 1) != 0) {
    snprintf(err, errlen, "%s: fsync of the directory failed: %s", dir, strerror(errno));
    return CAIRN_EIO;
  }
  return CAIRN_OK;
}

int cairn__h5w_precreate(const char *path) {
  if (unlink(path) != 0 && errno != ENOENT)
    return -1;
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  return close(fd);
}

hid_t cairn__h5w_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* The 1.8 file format: readable by every HDF5 since 1.8 (h5py, h5dump,
   * site installs), with a checksummed v2 superblock and object headers. */
  if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

hid_t cairn__h5w_fcpl(void) {
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  if (fcpl >= 0 && H5Pset_istore_k(fcpl, CAIRN_H5_ISTORE_K) < 0) {
    H5Pclose(fcpl);
    return -1;
  }
  return fcpl;
}

cairn_h5_write_opts cairn__h5w_resolve_opts(const cairn_h5_write_opts *opt) {
  cairn_h5_write_opts o;
  if (opt)
    o = *opt;
  else
    cairn__h5_write_opts_init(&o);
  if (!o.zstd_level)
    o.zstd_level = CAIRN_H5_ZSTD_LEVEL;
  if (!o.created_ns) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o.created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  }
  return o;
}

int cairn__h5w_metric(const cairn_h5_part *p, const cairn_h5_metric_part *mp, const char *tmp,
                      char *err, size_t errlen) {
  if (cairn__h5_layout_metric(p, mp) >= 0)
    return CAIRN_OK;
  char what[128];
  snprintf(what, sizeof what, "cannot write metric %zu", mp->index);
  cairn__h5w_fail(err, errlen, tmp, what);
  return CAIRN_EIO;
}

int cairn__h5w_chunks_wait(cairn_h5_chunks *c, const char *tmp, int rc, char *err,
                           size_t errlen) {
  char cerr[512] = "";
  if (c && cairn__h5_chunks_finish(c, cerr, sizeof cerr) != 0 && rc == CAIRN_OK) {
    cairn__h5w_fail(err, errlen, tmp, cerr);
    rc = CAIRN_EIO;
  }
  return rc;
}

void cairn__h5w_fail(char *err, size_t errlen, const char *path, const char *what) {
  char h5[512];
  cairn__h5_error_text(h5, sizeof h5);
  snprintf(err, errlen, "%s: %s%s%s", path, what, h5[0] ? ": " : "", h5);
}

void cairn__h5w_start_writeback(hid_t file) {
#ifdef SYNC_FILE_RANGE_WRITE
  int *fd = NULL;
  if (H5Fget_vfd_handle(file, H5P_DEFAULT, (void **)&fd) >= 0 && fd && *fd >= 0)
    (void)sync_file_range(*fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
  (void)file;
#endif
}

/* Writes every part of the file in an order that puts the bulk metric data
 * last: if the file is ever cut short (a partial copy), the tables and the
 * early metrics are what survive. */
static int write_all(hid_t file, const cairn_run_view *v, cairn_run_view *streamed,
                     cairn_view_pending *pending, size_t ready, const cairn_h5_write_opts *o,
                     int detail, const char *tmp, char *err, size_t errlen) {
  if (cairn__h5_layout_root(file, v, o, detail) < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot write root attributes");
    return CAIRN_EIO;
  }
  if (cairn__h5_layout_tables(file, v, o->zstd_level) < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot write the tables");
    return CAIRN_EIO;
  }
  size_t *cols = malloc((v->ncols + 1) * sizeof *cols);
  if (!cols)
    return CAIRN_ENOMEM;
  for (size_t c = 0; c < v->ncols; c++)
    cols[c] = c;
  /* Chunks of whole datasets are shuffled and compressed on every CPU this
   * process may use and written directly (h5_chunks.h); without the
   * compressor (no memory or thread) the filter pipeline does it. */
  cairn_h5_chunks *chunks =
      cairn__h5_chunks_new(o->zstd_level, cairn__h5_chunks_default_workers());
  cairn_h5_part p = {file, H5P_DEFAULT, o->zstd_level, v->ncols, cols, v->ncols, chunks};
  int rc = CAIRN_OK;
  if (cairn__h5_layout_marks(&p, v->nmarks, v->mark_step, 1, v->mark_time) < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot write step markers");
    rc = CAIRN_EIO;
  }
  hid_t g = rc ? -1 : H5Gcreate2(file, CAIRN_H5_METRICS, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (!rc && g < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot create " CAIRN_H5_METRICS);
    rc = CAIRN_EIO;
  }
  /* Streamed (pending != NULL): metrics are finished a range at a time
   * (the first one, up to `ready`, before the file was created); once a
   * range's chunks are all stored its arrays are released, so the write
   * holds at most cairn__h5_stream_bytes of finished metrics. */
  size_t range = 0;
  for (size_t i = 0; i < v->nmetrics && rc == CAIRN_OK; i++) {
    if (i == ready) {
      if (chunks && cairn__h5_chunks_finish(chunks, NULL, 0) != 0)
        break; /* the failure is reported by the last finish below */
      for (size_t k = range; k < i; k++)
        cairn__view_metric_release(&streamed->metrics[k]);
      range = i;
      if (cairn__view_pending_fill(pending, cairn__h5_stream_bytes, &ready) != CAIRN_OK) {
        cairn__h5w_fail(err, errlen, tmp, "out of memory finishing the metrics");
        rc = CAIRN_ENOMEM;
        break;
      }
    }
    const cairn_view_metric *m = &v->metrics[i];
    int md = detail && m->values != NULL;
    /* Without detail, min and max are the values left to judge by. */
    int f32 = m->values ? (m->f32 ? m->f32 == 2
                                  : cairn__h5_fits_f32(m->values, m->nsteps * v->ncols))
                        : cairn__h5_fits_f32(m->min, m->nsteps) &&
                              cairn__h5_fits_f32(m->max, m->nsteps);
    cairn_h5_metric_part mp = {
        i,      m->name, m->name_len, m->missing,  m->nsteps,   m->step,    1,
        0,      m->nsteps, m->count,  m->sum,      m->sumsq,    m->min,     m->max,
        m->rank_min, m->rank_max, md, f32,         m->values,   m->samples};
    rc = cairn__h5w_metric(&p, &mp, tmp, err, errlen);
    if (i % 16 == 15)
      cairn__h5w_start_writeback(file);
  }
  rc = cairn__h5w_chunks_wait(chunks, tmp, rc, err, errlen);
  cairn__h5_chunks_free(chunks);
  if (g >= 0)
    H5Gclose(g);
  free(cols);
  cairn__h5w_start_writeback(file); /* the last chunks, while HDF5 closes */
  return rc;
}

static int write_file(const cairn_run_view *v, cairn_run_view *streamed,
                      cairn_view_pending *pending, const char *path,
                      const cairn_h5_write_opts *opt, char *err, size_t errlen) {
  cairn_h5_write_opts o = cairn__h5w_resolve_opts(opt);
  int detail = o.detail != 0;
  char tmp[4096];
  if (cairn__h5w_tmp_path(path, tmp, sizeof tmp)) {
    snprintf(err, errlen, "%s: path too long", path);
    return CAIRN_EINVAL;
  }
  /* The first range of a streamed view is finished before the file
   * exists (for most runs that is every metric). */
  size_t ready = v->nmetrics;
  if (pending && cairn__view_pending_fill(pending, cairn__h5_stream_bytes, &ready) != CAIRN_OK) {
    snprintf(err, errlen, "%s: out of memory finishing the metrics", path);
    return CAIRN_ENOMEM;
  }
  cairn_h5_quiet q;
  cairn__h5_quiet_begin(&q);
  if (cairn__h5zstd_register() != 0) {
    cairn__h5w_fail(err, errlen, path, "cannot register the zstd filter (id 32015)");
    cairn__h5_quiet_end(&q);
    return CAIRN_ECOMPRESS;
  }
  hid_t fapl = cairn__h5w_fapl(), fcpl = cairn__h5w_fcpl();
  hid_t file = fapl >= 0 && fcpl >= 0 && cairn__h5w_precreate(tmp) == 0
                   ? H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)
                   : -1;
  if (fcpl >= 0)
    H5Pclose(fcpl);
  int rc;
  if (file < 0) {
    cairn__h5w_fail(err, errlen, tmp, "cannot create");
    rc = CAIRN_EIO;
  } else {
    rc = write_all(file, v, streamed, pending, ready, &o, detail, tmp, err, errlen);
    if (H5Fclose(file) < 0 && rc == CAIRN_OK) {
      cairn__h5w_fail(err, errlen, tmp, "cannot close (flush failed)");
      rc = CAIRN_EIO;
    }
  }
  if (fapl >= 0)
    H5Pclose(fapl);
  cairn__h5_quiet_end(&q);
  if (rc == CAIRN_OK)
    rc = cairn__h5w_commit(tmp, path, err, errlen);
  if (rc != CAIRN_OK)
    unlink(tmp);
  return rc;
}

int cairn__h5_write(const cairn_run_view *v, const char *path, const cairn_h5_write_opts *opt,
                    char *err, size_t errlen) {
  return write_file(v, NULL, NULL, path, opt, err, errlen);
}

int cairn__h5_write_pending(cairn_run_view *v, cairn_view_pending *pending, const char *path,
                            const cairn_h5_write_opts *opt, char *err, size_t errlen) {
  return write_file(v, v, pending, path, opt, err, errlen);
}

/* ---------------------------------------------------------------------- */
/* Standalone finalize                                                     */
/* ---------------------------------------------------------------------- */


void cairn__h5w_keep_first(void *ctx, const char *msg) {
  first_msg *f = ctx;
  if (f->first[0] == '\0')
    snprintf(f->first, f->len, "%s", msg);
}

uint64_t cairn__h5_convert_memory(uint64_t configured) {
  if (configured)
    return configured;
  uint64_t avail = cairn__memory_available();
  uint64_t bound = avail / 10 * 8;
  return avail && !bound ? 1 : bound; /* 0 only when nothing is known */
}

void cairn__h5w_over_limit(char *err, size_t errlen, const char *run_dir, uint64_t held,
                           uint64_t limit) {
  snprintf(err, errlen,
           "%s: the write-ahead log is too large to convert into the run file here: reading "
           "it held %.1f MiB, over the %.1f MiB it may use (wal.convert_memory; by default "
           "80%% of the memory available), and was stopped; `cairn merge %s` reads the log "
           "on a machine with more memory",
           run_dir, (double)held / 1048576.0, (double)limit / 1048576.0, run_dir);
}

int cairn__h5_finalize_run(const char *run_dir, uint64_t memory, char *err, size_t errlen) {
  char damage[1024] = "";
  first_msg fm = {damage, sizeof damage};
  cairn_run_report rep = {.fn = cairn__h5w_keep_first, .ctx = &fm};
  /* Finished a range of metrics at a time as they are written: the write
   * holds the log's cells (about 20 bytes per sample) and one range, not a
   * whole finished view beside them. */
  cairn_run_view v;
  cairn_view_pending *pending;
  int rc = cairn__view_from_wal_pending(run_dir, -1, memory, &v, &rep, &pending);
  if (rc == CAIRN_ENOMEM && rep.over_limit) {
    cairn__h5w_over_limit(err, errlen, run_dir, rep.over_limit, memory);
    return rc;
  }
  if (rc == CAIRN_ENOTFOUND) {
    snprintf(err, errlen, "%s: no write-ahead log segments to convert", run_dir);
    return rc;
  }
  if (rc != CAIRN_OK) {
    snprintf(err, errlen, "%s: cannot read the write-ahead log: %s", run_dir,
             damage[0] ? damage : cairn_strerror(rc));
    return rc;
  }
  char path[4096], name[64];
  snprintf(name, sizeof name, CAIRN_H5_NAME_FMT, (uint32_t)0);
  if (snprintf(path, sizeof path, "%s/%s", run_dir, name) >= (int)sizeof path) {
    cairn__view_pending_free(pending);
    cairn__view_free(&v);
    snprintf(err, errlen, "%s: path too long", run_dir);
    return CAIRN_EINVAL;
  }
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  o.naggregators = 1;
  rc = cairn__h5_write_pending(&v, pending, path, &o, err, errlen);
  cairn__view_pending_free(pending);
  cairn__view_free(&v);
  if (rc != CAIRN_OK)
    return rc;
  int damaged = rep.wal.corrupt_regions || rep.wal.torn_tails || rep.wal.bad_files ||
                rep.wal.bad_blocks || rep.unnamed_metrics;
  if (damaged) {
    snprintf(err, errlen, "%s: converted what was readable, but kept the write-ahead log "
             "because it is damaged: %s", path, damage);
    return CAIRN_ECORRUPT;
  }
  /* The run file is durable under its final name: the log can go. */
  cairn_run_file *files;
  size_t n;
  rc = cairn__run_list_files(run_dir, &files, &n, NULL, err, errlen);
  if (rc != CAIRN_OK)
    return rc;
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
    if (files[i].kind == CAIRN_FILE_WAL && unlink(files[i].path) != 0 && errno != ENOENT) {
      snprintf(err, errlen, "%s: cannot remove after conversion: %s", files[i].path,
               strerror(errno));
      rc = CAIRN_EIO;
    }
  cairn__run_files_free(files, n);
  if (rc == CAIRN_OK && fsync_path(run_dir, 1) != 0) {
    snprintf(err, errlen, "%s: fsync of the directory failed: %s", run_dir, strerror(errno));
    rc = CAIRN_EIO;
  }
  return rc;
}
