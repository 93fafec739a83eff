/*
 * h5_chunks.h — private to cairn's serial HDF5 writer: compresses the
 * chunks of filtered datasets on a few threads and writes them with
 * H5Dwrite_chunk, so that the filter pipeline (one thread, a fresh buffer
 * and zstd context per chunk) is not on the path of a large write.
 *
 * The bytes of every chunk are exactly what the dataset's filters produce
 * (HDF5's byte shuffle, then one zstd frame with content size and checksum
 * at the dataset's level; see io/h5zstd/h5zstd.h), so files are identical
 * in content and readable by any HDF5 with the zstd filter.
 *
 * Only the calling thread makes HDF5 calls; the workers only shuffle and
 * compress. Not for parallel (MPI-IO) writes, which need the collective
 * filtered path.
 */
#ifndef CAIRN_H5_CHUNKS_H
#define CAIRN_H5_CHUNKS_H

#include <stddef.h>

#include <hdf5.h>

typedef struct cairn_h5_chunks cairn_h5_chunks;

/* A compressor at zstd `level` with `workers` threads besides the caller
 * (0: the caller compresses everything). NULL when out of memory or when
 * a thread cannot be started. */
cairn_h5_chunks *cairn__h5_chunks_new(int level, unsigned workers);

/* Worker threads worth starting on this machine: the CPUs this process
 * may run on, minus the caller's, at most 7. */
unsigned cairn__h5_chunks_default_workers(void);

/*
 * Queues every chunk of dataset `d` (rank 1 or 2, chunked, filtered with
 * shuffle + zstd, elements of esize bytes in the file) with the data
 * [dims[0]] or [dims[0] × dims[1]] row-major at src, which must stay valid
 * until cairn__h5_chunks_finish returns. f64_to_f32: src holds doubles
 * that the file stores as float32 (esize 4; exactly representable, checked
 * by the caller). skip_fill, if not NULL, is one element (esize bytes, as
 * in the file): a chunk whose elements all equal it is not stored, and
 * reads back as the dataset's fill value, which the caller set to it.
 * dcpl: the creation property list d was made with, if the caller still
 * holds it (its layout and chunk shape are read from it), or -1 to ask d
 * for a copy of it (H5Dget_create_plist, which copies every property: a
 * measurable part of a small dataset's cost).
 * Takes d: it is closed once its last chunk is written.
 * Returns 0, or -1 when the dataset is not one it can write directly (the
 * caller then writes it through the filter pipeline and still owns d).
 * May write chunks of earlier datasets and compress chunks while waiting
 * for room.
 */
int cairn__h5_chunks_put(cairn_h5_chunks *c, hid_t d, hid_t dcpl, const hsize_t *dims,
                         size_t esize, const void *src, int f64_to_f32, const void *skip_fill);

/* Waits for every queued chunk, writes it and closes its dataset. Returns
 * 0, or -1 if a chunk could not be compressed or written (the first such
 * failure is described in err). */
int cairn__h5_chunks_finish(cairn_h5_chunks *c, char *err, size_t errlen);

/* Stops the workers and frees everything; datasets still open are closed. */
void cairn__h5_chunks_free(cairn_h5_chunks *c);

#endif /* CAIRN_H5_CHUNKS_H */
