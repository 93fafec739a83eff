/*
 * h5_schema.h — private to cairn's HDF5 module: the HDF5 objects that
 * implement the format of h5_format.h (compound and string datatypes,
 * dataset creation properties with chunking, shuffle and zstd, attribute
 * helpers) and the capture of HDF5's error stack into cairn's messages.
 * Shared by the serial writer, the parallel writer and the reader so that
 * all three agree on every type and property.
 */
#ifndef CAIRN_H5_SCHEMA_H
#define CAIRN_H5_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "h5_format.h"

/* The tables' row types: memory (native, the structs of h5_format.h) and
 * file (packed, little-endian) compound types. */
typedef enum {
  CAIRN_H5_T_PARAM,
  CAIRN_H5_T_KV,
  CAIRN_H5_T_ARTIFACT,
  CAIRN_H5_T_EXECUTION,
  CAIRN_H5_T_EVENT,
  CAIRN_H5_T_CONTEXT,
  CAIRN_H5_T_COUNT
} cairn_h5_table;

/* Creates the memory and file compound types of a table; the caller closes
 * both with H5Tclose. Returns 0, or -1 (HDF5 error stack set). */
int cairn__h5_table_types(cairn_h5_table t, hid_t *mem, hid_t *file);

/* Variable-length byte string (cset ASCII, so readers get bytes back, not
 * decoded text: values may hold any byte but NUL). Close with H5Tclose. */
hid_t cairn__h5_vlstr_type(void);

/*
 * Dataset creation properties for an array of `rank` dims (1 or 2) of
 * elements of `elem_size` bytes: chunked ~CAIRN_H5_CHUNK_BYTES, shuffle +
 * zstd(level), no fill value written, space allocated incrementally (what
 * parallel filtered writes need). Empty arrays (a zero dimension) cannot be
 * chunked and get the default contiguous layout. Close with H5Pclose.
 */
hid_t cairn__h5_dcpl(int rank, const hsize_t *dims, size_t elem_size, int level);

/* Attribute writers on `obj`; 0 or -1. Strings are fixed-length,
 * null-padded, exact bytes (an empty string takes one NUL byte). */
int cairn__h5_attr_u32(hid_t obj, const char *name, uint32_t v);
int cairn__h5_attr_u64(hid_t obj, const char *name, uint64_t v);
int cairn__h5_attr_u8(hid_t obj, const char *name, uint8_t v);
int cairn__h5_attr_str(hid_t obj, const char *name, const char *s, size_t len);

/* Attribute readers; 0, or -1 if missing or of an unusable type. */
int cairn__h5_read_attr_u64(hid_t obj, const char *name, uint64_t *v);
/* Reads a string attribute into a malloc'd NUL-terminated buffer (trailing
 * padding NULs removed); *len gets its length. */
int cairn__h5_read_attr_str(hid_t obj, const char *name, char **s, size_t *len);

/* Turns off HDF5's automatic error printing for the calling code (cairn
 * reports errors itself; the application's own handler is restored by
 * cairn__h5_quiet_end). */
typedef struct {
  H5E_auto2_t func;
  void *data;
} cairn_h5_quiet;
void cairn__h5_quiet_begin(cairn_h5_quiet *q);
void cairn__h5_quiet_end(const cairn_h5_quiet *q);

/* Writes the most specific message of HDF5's current error stack
 * ("<function>: <description>") into buf, or "" if the stack is empty. */
void cairn__h5_error_text(char *buf, size_t len);

#endif /* CAIRN_H5_SCHEMA_H */
