/*
 * h5_finalize.h — private to cairn: the standalone finalize step that turns
 * a run directory's write-ahead log into its HDF5 run file. Declared apart
 * from h5_writer.h so that the runtime can call it without HDF5's or MPI's
 * headers.
 */
#ifndef CAIRN_H5_FINALIZE_H
#define CAIRN_H5_FINALIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Converts every WAL segment of `run_dir` into <run_dir>/run-g000000.h5
 * (written as .run-g000000.h5.tmp, fsynced, renamed, directory fsynced) and
 * only then removes the segments. If the log had damage (torn tail, bad
 * block), the readable part is converted but the segments are kept and
 * CAIRN_ECORRUPT is returned with the first damage message: the evidence is
 * not deleted. Returns CAIRN_OK; CAIRN_ENOTFOUND (no segment: nothing to
 * do); CAIRN_ECORRUPT as above; CAIRN_EIO, CAIRN_ENOMEM, CAIRN_ECOMPRESS;
 * err gets a message naming the file. Must be called from the thread that
 * may use HDF5, after the WAL writer has closed its last segment.
 *
 * memory bounds what reading the log may hold (wal.convert_memory; 0: no
 * bound): a log that needs more is not converted and is left as it is;
 * CAIRN_ENOMEM, and err says how much it needed and how to convert it.
 */
int cairn__h5_finalize_run(const char *run_dir, uint64_t memory, char *err, size_t errlen);

/* wal.convert_memory as configured (non-zero), else 80% of
 * cairn__memory_available() (0 if that is unknown: no bound). */
uint64_t cairn__h5_convert_memory(uint64_t configured);

#endif /* CAIRN_H5_FINALIZE_H */
