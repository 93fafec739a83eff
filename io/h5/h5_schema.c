/* h5_schema.c — builds the HDF5 datatypes and dataset properties of the
 * run-file format and captures HDF5 error stacks as text. */
#include "h5_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One compound member: where it lives in the C struct, its native type and
 * its on-disk type (fixed little-endian sizes, packed in declaration order). */
typedef struct {
  const char *name;
  size_t offset;
  hid_t (*mem)(void);  /* functions: HDF5's type ids are not constants */
  hid_t (*file)(void);
} member;

static hid_t t_i32(void) { return H5T_NATIVE_INT32; }
static hid_t t_u32(void) { return H5T_NATIVE_UINT32; }
static hid_t t_u8(void) { return H5T_NATIVE_UINT8; }
static hid_t t_i64(void) { return H5T_NATIVE_INT64; }
static hid_t t_u64(void) { return H5T_NATIVE_UINT64; }
static hid_t t_f64(void) { return H5T_NATIVE_DOUBLE; }
static hid_t f_i32(void) { return H5T_STD_I32LE; }
static hid_t f_u32(void) { return H5T_STD_U32LE; }
static hid_t f_u8(void) { return H5T_STD_U8LE; }
static hid_t f_i64(void) { return H5T_STD_I64LE; }
static hid_t f_u64(void) { return H5T_STD_U64LE; }
static hid_t f_f64(void) { return H5T_IEEE_F64LE; }
static hid_t t_str(void) { return -1; } /* marker: variable-length string */

#define M(T, field, mt, ft) {#field, offsetof(T, field), mt, ft}
#define S(T, field) {#field, offsetof(T, field), t_str, t_str}

static const member param_m[] = {
    M(cairn_h5_param_row, rank, t_i32, f_i32), M(cairn_h5_param_row, key, t_u32, f_u32),
    M(cairn_h5_param_row, type, t_u8, f_u8),   M(cairn_h5_param_row, i64, t_i64, f_i64),
    M(cairn_h5_param_row, f64, t_f64, f_f64),  S(cairn_h5_param_row, str)};
static const member kv_m[] = {M(cairn_h5_kv_row, rank, t_i32, f_i32),
                              M(cairn_h5_kv_row, key, t_u32, f_u32),
                              S(cairn_h5_kv_row, value)};
static const member art_m[] = {
    M(cairn_h5_artifact_row, id, t_u64, f_u64),   M(cairn_h5_artifact_row, kind, t_u8, f_u8),
    M(cairn_h5_artifact_row, rank, t_i32, f_i32), M(cairn_h5_artifact_row, size, t_u64, f_u64),
    M(cairn_h5_artifact_row, t_ns, t_u64, f_u64), S(cairn_h5_artifact_row, uri),
    S(cairn_h5_artifact_row, hash),               S(cairn_h5_artifact_row, properties)};
static const member exe_m[] = {M(cairn_h5_execution_row, id, t_u64, f_u64),
                               M(cairn_h5_execution_row, context_id, t_u64, f_u64),
                               M(cairn_h5_execution_row, rank, t_i32, f_i32),
                               M(cairn_h5_execution_row, start_ns, t_u64, f_u64),
                               M(cairn_h5_execution_row, end_ns, t_u64, f_u64),
                               S(cairn_h5_execution_row, name),
                               S(cairn_h5_execution_row, properties),
                               S(cairn_h5_execution_row, type),
                               S(cairn_h5_execution_row, command)};
static const member ev_m[] = {M(cairn_h5_event_row, execution_id, t_u64, f_u64),
                              M(cairn_h5_event_row, artifact_id, t_u64, f_u64),
                              M(cairn_h5_event_row, type, t_u8, f_u8),
                              M(cairn_h5_event_row, rank, t_i32, f_i32),
                              M(cairn_h5_event_row, t_ns, t_u64, f_u64)};
static const member ctx_m[] = {M(cairn_h5_context_row, id, t_u64, f_u64),
                               S(cairn_h5_context_row, name),
                               S(cairn_h5_context_row, pipeline),
                               S(cairn_h5_context_row, properties)};
#undef M
#undef S

static const struct {
  const member *m;
  size_t n, size;
} tables[CAIRN_H5_T_COUNT] = {
    [CAIRN_H5_T_PARAM] = {param_m, sizeof param_m / sizeof *param_m, sizeof(cairn_h5_param_row)},
    [CAIRN_H5_T_KV] = {kv_m, sizeof kv_m / sizeof *kv_m, sizeof(cairn_h5_kv_row)},
    [CAIRN_H5_T_ARTIFACT] = {art_m, sizeof art_m / sizeof *art_m,
                             sizeof(cairn_h5_artifact_row)},
    [CAIRN_H5_T_EXECUTION] = {exe_m, sizeof exe_m / sizeof *exe_m,
                              sizeof(cairn_h5_execution_row)},
    [CAIRN_H5_T_EVENT] = {ev_m, sizeof ev_m / sizeof *ev_m, sizeof(cairn_h5_event_row)},
    [CAIRN_H5_T_CONTEXT] = {ctx_m, sizeof ctx_m / sizeof *ctx_m, sizeof(cairn_h5_context_row)},
};

hid_t cairn__h5_vlstr_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0)
    return t;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_ASCII) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

int cairn__h5_table_types(cairn_h5_table t, hid_t *mem, hid_t *file) {
  *mem = *file = -1;
  if ((int)t < 0 || t >= CAIRN_H5_T_COUNT)
    return -1;
  hid_t str = cairn__h5_vlstr_type();
  if (str < 0)
    return -1;
  size_t fsize = 0;
  for (size_t i = 0; i < tables[t].n; i++)
    fsize += tables[t].m[i].mem == t_str ? H5Tget_size(str) : H5Tget_size(tables[t].m[i].file());
  *mem = H5Tcreate(H5T_COMPOUND, tables[t].size);
  *file = H5Tcreate(H5T_COMPOUND, fsize);
  int rc = *mem >= 0 && *file >= 0 ? 0 : -1;
  size_t off = 0;
  for (size_t i = 0; i < tables[t].n && rc == 0; i++) {
    const member *m = &tables[t].m[i];
    hid_t mt = m->mem == t_str ? str : m->mem();
    hid_t ft = m->mem == t_str ? str : m->file();
    if (H5Tinsert(*mem, m->name, m->offset, mt) < 0 || H5Tinsert(*file, m->name, off, ft) < 0)
      rc = -1;
    off += H5Tget_size(ft);
  }
  H5Tclose(str);
  if (rc) {
    if (*mem >= 0)
      H5Tclose(*mem);
    if (*file >= 0)
      H5Tclose(*file);
    *mem = *file = -1;
  }
  return rc;
}

/* The chunk length for n elements at most `most` a chunk: n itself if it
 * fits, else n split into ceil(n / most) chunks as equal as can be. */
static hsize_t even_split(hsize_t n, hsize_t most) {
  if (n <= most)
    return n;
  hsize_t k = (n + most - 1) / most;
  return (n + k - 1) / k;
}

hid_t cairn__h5_dcpl(int rank, const hsize_t *dims, size_t elem_size, int level) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0)
    return dcpl;
#if H5_VERSION_GE(1, 10, 5)
  /* No dataset of the format has attributes: an object header without
   * room reserved for them (about 100 bytes less a dataset). */
  if (H5Pset_dset_no_attrs_hint(dcpl, 1) < 0) {
    H5Pclose(dcpl);
    return -1;
  }
#endif
  for (int i = 0; i < rank; i++)
    if (dims[i] == 0)
      return dcpl; /* empty: contiguous, nothing to compress */
  /* A dimension longer than its most per chunk is split into equal
   * chunks: 10,000 rows at most 8,192 a chunk are 2 of 5,000, not 8,192
   * and an edge chunk of 1,808 rows padded to 8,192 (which the writer
   * shuffles and compresses whole, and readers decompress whole). */
  hsize_t chunk[2];
  if (rank == 1) {
    chunk[0] = even_split(dims[0], CAIRN_H5_CHUNK_BYTES / elem_size);
  } else {
    hsize_t cols = even_split(dims[1], CAIRN_H5_CHUNK_MAX_COLS);
    hsize_t rows = CAIRN_H5_CHUNK_BYTES / (elem_size * cols);
    chunk[0] = even_split(dims[0], rows < 1 ? 1 : rows);
    chunk[1] = cols;
  }
  unsigned cd = (unsigned)level;
  /* No fill: every element is written. Incremental allocation is required
   * for filtered datasets written in parallel (a chunk's size is known only
   * after it is compressed). */
  if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
      H5Pset_filter(dcpl, CAIRN_H5_FILTER_ZSTD, H5Z_FLAG_OPTIONAL, 1, &cd) < 0 ||
      H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
      H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR) < 0) {
    H5Pclose(dcpl);
    return -1;
  }
  return dcpl;
}

static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  if (sp < 0)
    return -1;
  hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a >= 0 && H5Awrite(a, mtype, v) >= 0 ? 0 : -1;
  if (a >= 0)
    H5Aclose(a);
  H5Sclose(sp);
  return rc;
}

int cairn__h5_attr_u32(hid_t obj, const char *name, uint32_t v) {
  return attr_write(obj, name, H5T_STD_U32LE, H5T_NATIVE_UINT32, &v);
}

int cairn__h5_attr_u64(hid_t obj, const char *name, uint64_t v) {
  return attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

int cairn__h5_attr_u8(hid_t obj, const char *name, uint8_t v) {
  return attr_write(obj, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, &v);
}

int cairn__h5_attr_str(hid_t obj, const char *name, const char *s, size_t len) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0)
    return -1;
  char nul = '\0';
  int rc = H5Tset_size(t, len ? len : 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLPAD) >= 0 &&
                   H5Tset_cset(t, H5T_CSET_ASCII) >= 0
               ? attr_write(obj, name, t, t, len ? s : &nul)
               : -1;
  H5Tclose(t);
  return rc;
}

int cairn__h5_read_attr_u64(hid_t obj, const char *name, uint64_t *v) {
  if (H5Aexists(obj, name) <= 0)
    return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0)
    return -1;
  hid_t t = H5Aget_type(a);
  int rc = -1;
  if (t >= 0 && H5Tget_class(t) == H5T_INTEGER)
    rc = H5Aread(a, H5T_NATIVE_UINT64, v) >= 0 ? 0 : -1;
  if (t >= 0)
    H5Tclose(t);
  H5Aclose(a);
  return rc;
}

int cairn__h5_read_attr_str(hid_t obj, const char *name, char **s, size_t *len) {
  *s = NULL;
  if (H5Aexists(obj, name) <= 0)
    return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0)
    return -1;
  hid_t t = H5Aget_type(a);
  int rc = -1;
  if (t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0) {
    size_t n = H5Tget_size(t);
    char *buf = malloc(n + 1);
    if (buf && H5Aread(a, t, buf) >= 0) {
      buf[n] = '\0';
      while (n > 0 && buf[n - 1] == '\0')
        n--;
      *s = buf;
      *len = n;
      rc = 0;
    } else {
      free(buf);
    }
  }
  if (t >= 0)
    H5Tclose(t);
  H5Aclose(a);
  return rc;
}

void cairn__h5_quiet_begin(cairn_h5_quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void cairn__h5_quiet_end(const cairn_h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

typedef struct {
  char *buf;
  size_t len;
} err_text;

/* Walking upward, entry 0 is where the failure was detected; its
 * description is the most specific ("truncated file: eof = ..."). */
static herr_t err_walk(unsigned n, const H5E_error2_t *e, void *ctx) {
  err_text *t = ctx;
  if (n == 0 && e->desc)
    snprintf(t->buf, t->len, "%s", e->desc);
  return 0;
}

void cairn__h5_error_text(char *buf, size_t len) {
  if (!len)
    return;
  buf[0] = '\0';
  err_text t = {buf, len};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, err_walk, &t);
}
