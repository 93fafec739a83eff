/*
 * h5zstd.h — private to cairn: the zstd HDF5 filter (registered id 32015),
 * registered in-process by cairn's HDF5 writer and also built from the same
 * source as the HDF5 dynamic plugin libcairn_h5zstd.so for other readers.
 *
 * On-disk format (identical to the community zstd filter of HDFGroup's
 * hdf5_plugins and of hdf5plugin's Zstd, so files written by either are
 * readable by the other):
 *
 *   - every stored chunk is exactly one zstd frame, with nothing before or
 *     after it, whose header records the uncompressed size of the chunk
 *     (readers size their output from ZSTD_getFrameContentSize());
 *   - no dictionary, no skippable frames;
 *   - cd_values[0], if present, is the compression level, read as a signed
 *     int (negative levels are zstd's fast modes) and clamped to what the
 *     linked zstd supports; with cd_nelmts == 0 the level is
 *     CAIRN_H5ZSTD_DEFAULT_LEVEL. Other cd_values are ignored.
 *
 * cairn's frames also set zstd's content-checksum flag (a standard frame
 * header bit that every zstd decoder, the community plugin's included,
 * verifies): a flipped bit in a stored chunk then fails the read instead of
 * returning wrong numbers.
 *
 * Byte shuffle is not part of this filter. For floating-point data the writer
 * adds HDF5's built-in shuffle filter BEFORE zstd in the pipeline, which is
 * what the community tools expect and what makes doubles compress well:
 *
 *     cairn__h5zstd_register();
 *     H5Pset_chunk(dcpl, rank, chunk_dims);
 *     H5Pset_shuffle(dcpl);                          (filter 2, runs first)
 *     unsigned level = 3;
 *     H5Pset_filter(dcpl, CAIRN_H5Z_FILTER_ZSTD, H5Z_FLAG_OPTIONAL, 1, &level);
 *
 * With H5Z_FLAG_OPTIONAL a chunk that zstd cannot compress is stored raw
 * (HDF5 records that in the chunk's filter mask) instead of failing the write.
 *
 * Decompression fails (the filter returns 0, HDF5's failure convention, and
 * the H5Dread returns a negative value) when the frame records no content
 * size, records one above HDF5's 4 GiB chunk limit or different from what it
 * decodes to, or when zstd's decoder rejects the bytes (not a frame,
 * truncated, followed by more data, checksum mismatch).
 *
 * Reading cairn files from other programs: point HDF5_PLUGIN_PATH at the
 * directory holding libcairn_h5zstd.so (<build>/hdf5-plugins in the build
 * tree, <libdir>/hdf5/plugin when installed), or use any other zstd plugin
 * with id 32015. The plugin links zstd but not libhdf5, so the one file
 * loads into serial and parallel HDF5 alike.
 */
#ifndef CAIRN_H5ZSTD_H
#define CAIRN_H5ZSTD_H

/* The id The HDF Group registered for Zstandard; fixed, part of the format. */
#define CAIRN_H5Z_FILTER_ZSTD 32015

/* The level used when cd_nelmts == 0; zstd's own default. */
#define CAIRN_H5ZSTD_DEFAULT_LEVEL 3

/*
 * Makes filter 32015 available to the HDF5 library this process uses.
 * Idempotent: if the filter is already available — registered by an earlier
 * call, by the application, or found by HDF5 as a dynamic plugin on
 * HDF5_PLUGIN_PATH — it is left as is (every such filter writes the same
 * format), otherwise cairn's implementation is registered with H5Zregister.
 *
 * Returns CAIRN_OK (0), or CAIRN_ECOMPRESS if HDF5 could not report or
 * register the filter (HDF5's error stack says why). Not thread-safe, like
 * the (non-thread-safe) HDF5 library it calls: call it from the thread that
 * does the HDF5 I/O, before creating or reading zstd-filtered datasets.
 */
int cairn__h5zstd_register(void);

#endif /* CAIRN_H5ZSTD_H */
