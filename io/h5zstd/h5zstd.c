/*
 * h5zstd.c — private to cairn: the zstd HDF5 filter (id 32015) whose format
 * is described in h5zstd.h, compiled twice: into libcairn, where
 * cairn__h5zstd_register() hands it to H5Zregister, and, with
 * CAIRN_H5ZSTD_PLUGIN defined, into the dynamic plugin libcairn_h5zstd.so.
 *
 * The plugin build must not reference any libhdf5 symbol: it is loaded into
 * whichever HDF5 the host program uses (serial h5dump, parallel cairn,
 * h5py's own copy), and a link-time dependency on one of them would pull a
 * second, uninitialised HDF5 into the others. So the shared code below uses
 * only types and constants from the HDF5 headers, reports failure solely by
 * returning 0 (no H5Epush), and allocates with malloc/free — what HDF5's
 * default allocator uses for filter buffers, and what every community filter
 * plugin relies on, because H5allocate_memory would need libhdf5. The CMake
 * target links the plugin with -z defs so a stray H5 call fails the build.
 */
#include "h5zstd.h"

#ifdef CAIRN_H5ZSTD_PLUGIN
#include <H5PLextern.h>
#else
#include "cairn.h"
#include <hdf5.h>
#endif

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <zstd.h>

/*
 * HDF5 (1.10 and later) refuses chunks of 4 GiB or more, so a frame that
 * claims more content than this is corrupt or hostile; refusing it up front
 * avoids attempting a huge allocation on the say-so of four header bytes.
 */
#define H5ZSTD_MAX_CHUNK_BYTES ((unsigned long long)UINT32_MAX)

/*
 * cd_values[0] is an unsigned int on disk; the community plugin and
 * hdf5plugin store negative (fast) levels in two's complement. Convert
 * without relying on implementation-defined unsigned-to-int conversion.
 * Out-of-range levels need no check: ZSTD_CCtx_setParameter clamps them, so
 * a level meant for a newer zstd still compresses with an older one.
 */
static int h5zstd_level(size_t cd_nelmts, const unsigned int cd_values[])
{
  if (cd_nelmts == 0 || cd_values == NULL)
    return CAIRN_H5ZSTD_DEFAULT_LEVEL;
  unsigned int u = cd_values[0];
  return u <= (unsigned int)INT_MAX ? (int)u : -(int)(UINT_MAX - u) - 1;
}

/*
 * Compresses *buf (nbytes) into one new zstd frame with content size and
 * checksum. On success frees the old *buf, replaces it and *buf_size and
 * returns the frame's length; on failure returns 0 and leaves *buf alone.
 */
static size_t h5zstd_compress(int level, size_t nbytes, size_t *buf_size, void **buf)
{
  size_t bound = ZSTD_compressBound(nbytes);
  if (ZSTD_isError(bound))
    return 0;
  void *out = malloc(bound);
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  size_t n = 0;
  if (out != NULL && cctx != NULL &&
      !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) &&
      /* The content size is zstd's default, set anyway because the format
       * depends on it; the checksum is cairn's addition (see h5zstd.h). */
      !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)) &&
      !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)))
    n = ZSTD_compress2(cctx, out, bound, *buf, nbytes);
  ZSTD_freeCCtx(cctx);
  if (out == NULL || n == 0 || ZSTD_isError(n)) {
    free(out);
    return 0;
  }
  free(*buf);
  *buf = out;
  *buf_size = bound;
  return n;
}

/*
 * Decompresses the single frame in *buf (nbytes). On success frees the old
 * *buf, replaces it and *buf_size and returns the content size; on failure
 * returns 0 and leaves *buf alone. A content size of 0 also returns 0, which
 * HDF5 reads as failure — harmless, since HDF5 never stores empty chunks.
 */
static size_t h5zstd_decompress(size_t nbytes, size_t *buf_size, void **buf)
{
  unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
  /* UNKNOWN: a streamed frame without the size field, which the format
   * forbids and which would leave no safe way to size the buffer. */
  if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size == 0 ||
      size > H5ZSTD_MAX_CHUNK_BYTES) /* also keeps the (size_t) casts exact */
    return 0;
  void *out = malloc((size_t)size);
  if (out == NULL)
    return 0;
  /* ZSTD_decompress decodes every frame in the input, so a second data
   * frame (no room left in `out`) or trailing garbage is an error; a
   * trailing skippable frame is accepted, as by the community reader, which
   * makes the same call. */
  size_t n = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
  if (ZSTD_isError(n) || n != size) {
    free(out);
    return 0;
  }
  free(*buf);
  *buf = out;
  *buf_size = (size_t)size;
  return n;
}

/* The H5Z_func_t: reverse (read) decompresses, forward (write) compresses. */
static size_t h5zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                            size_t nbytes, size_t *buf_size, void **buf)
{
  if (buf == NULL || *buf == NULL || buf_size == NULL || nbytes == 0)
    return 0;
  if (flags & H5Z_FLAG_REVERSE)
    return h5zstd_decompress(nbytes, buf_size, buf);
  return h5zstd_compress(h5zstd_level(cd_nelmts, cd_values), nbytes, buf_size, buf);
}

/*
 * No can_apply or set_local callback: the filter works on bytes of any type
 * and its only parameter comes from the writer, exactly as in the community
 * plugin, so both describe their datasets identically.
 */
static const H5Z_class2_t h5zstd_class = {
    .version = H5Z_CLASS_T_VERS,
    .id = (H5Z_filter_t)CAIRN_H5Z_FILTER_ZSTD,
    .encoder_present = 1,
    .decoder_present = 1,
    .name = "zstd (cairn; HDF5 filter 32015)",
    .can_apply = NULL,
    .set_local = NULL,
    .filter = h5zstd_filter,
};

#ifdef CAIRN_H5ZSTD_PLUGIN

/* The two entry points HDF5's plugin loader looks up with dlsym; the only
 * symbols the plugin exports (H5PLUGIN_DLL is default visibility and the
 * target builds everything else hidden). */
H5PL_type_t H5PLget_plugin_type(void)
{
  return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
  return &h5zstd_class;
}

#else

int cairn__h5zstd_register(void)
{
  /* H5Zfilter_avail also searches HDF5_PLUGIN_PATH; if it finds a 32015
   * plugin there, that one is used (same format) and nothing is registered. */
  htri_t avail = H5Zfilter_avail((H5Z_filter_t)CAIRN_H5Z_FILTER_ZSTD);
  if (avail < 0)
    return CAIRN_ECOMPRESS;
  if (avail > 0)
    return CAIRN_OK;
  if (H5Zregister(&h5zstd_class) < 0)
    return CAIRN_ECOMPRESS;
  return CAIRN_OK;
}

#endif /* CAIRN_H5ZSTD_PLUGIN */
