/*
 * h5_writer_internal.h — private to cairn's HDF5 writers: the pieces the
 * serial and parallel writers share (temporary names, the commit that
 * renames a finished file into place, file access properties, messages).
 */
#ifndef CAIRN_H5_WRITER_INTERNAL_H
#define CAIRN_H5_WRITER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "h5_layout.h"
#include "h5_writer.h"

/* "<dir>/.<name>.tmp" for "<dir>/<name>"; 0, or -1 if it does not fit. */
int cairn__h5w_tmp_path(const char *path, char *tmp, size_t len);

/* fsync(tmp), rename(tmp, path), fsync(directory). CAIRN_OK or CAIRN_EIO. */
int cairn__h5w_commit(const char *tmp, const char *path, char *err, size_t errlen);

/* File access properties with the format's library-version bounds. */
hid_t cairn__h5w_fapl(void);

/* File creation properties: chunk indexes of CAIRN_H5_ISTORE_K. */
hid_t cairn__h5w_fcpl(void);

/* A report callback (cairn_run_report.fn) that keeps the first message:
 * what finalize quotes when it keeps a damaged log. */
typedef struct {
  char *first;
  size_t len;
} first_msg;
void cairn__h5w_keep_first(void *ctx, const char *msg);

/* Creates `path` empty with mode 0600 (replacing a leftover), so that the
 * HDF5 file created over it is private to the job's user whatever the
 * umask: HDF5 opens with O_TRUNC and keeps an existing file's mode.
 * Returns 0 or -1 (errno set). */
int cairn__h5w_precreate(const char *path);

/* The options a writer uses: a copy of *opt (defaults when NULL), with a
 * zstd level of 0 meaning the default level, and a creation time of 0
 * meaning now. */
cairn_h5_write_opts cairn__h5w_resolve_opts(const cairn_h5_write_opts *opt);

/* "<path>: <what>: <HDF5's most specific message>" into err. */
void cairn__h5w_fail(char *err, size_t errlen, const char *path, const char *what);

/* cairn__h5_layout_metric; on failure CAIRN_EIO with "<tmp>: cannot write
 * metric <index>: <HDF5's message>" in err. */
int cairn__h5w_metric(const cairn_h5_part *p, const cairn_h5_metric_part *mp, const char *tmp,
                      char *err, size_t errlen);

/* Asks the kernel to start writing the dirty pages of a file open with the
 * serial (sec2) driver now (Linux sync_file_range; elsewhere nothing), so
 * that the fsync of the commit finds most of them written instead of
 * writing the whole file while finalize waits (the 16-rank bench's 28 MB
 * file: that fsync took 16-18 ms instead of 25-33). Best effort. */
void cairn__h5w_start_writeback(hid_t file);

struct cairn_h5_chunks;
/* Waits until every chunk queued on the compressor c (NULL: none) is
 * written. If one failed and rc is still CAIRN_OK, err gets "<tmp>: <what
 * failed>" and CAIRN_EIO is returned; otherwise rc. */
int cairn__h5w_chunks_wait(struct cairn_h5_chunks *c, const char *tmp, int rc, char *err,
                           size_t errlen);

/* The message for a log that needs more memory than the conversion may use:
 * it held `held` bytes when it passed `limit`. */
void cairn__h5w_over_limit(char *err, size_t errlen, const char *run_dir, uint64_t held,
                           uint64_t limit);

#endif /* CAIRN_H5_WRITER_INTERNAL_H */
