/* h5_layout.c — writes the parts of an HDF5 run file (format v2) from this
 * process's share of a run view; shared by the serial and parallel writers. */
#include "h5_layout.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "h5_schema.h"

/* ---------------------------------------------------------------------- */
/* Arrays                                                                  */
/* ---------------------------------------------------------------------- */

/* Hands dataset d, holding all of buf, to the serial writer's chunk
 * compressor when there is one and the bytes in memory are the file's
 * (same type; or doubles stored as float32 when cvt). 1: d was taken. */
static int put_direct(const cairn_h5_part *p, hid_t d, hid_t dcpl, const hsize_t *dims,
                      hid_t ftype, hid_t mtype, const void *buf, int cvt, const void *fill) {
  if (!p->chunks || H5Tequal(cvt ? H5T_NATIVE_FLOAT : mtype, ftype) <= 0)
    return 0;
  return cairn__h5_chunks_put(p->chunks, d, dcpl, dims, H5Tget_size(ftype), buf, cvt, fill) ==
         0;
}

/* buf as float32 when cvt (the caller checked the values are exact), else
 * buf itself; *tmp is what to free. */
static const void *as_stored(const void *buf, size_t n, int cvt, float **tmp) {
  *tmp = NULL;
  if (!cvt)
    return buf;
  *tmp = malloc((n ? n : 1) * sizeof **tmp);
  if (*tmp)
    for (size_t i = 0; i < n; i++)
      (*tmp)[i] = (float)((const double *)buf)[i];
  return *tmp;
}

/* H5Dwrite of this process's nelem elements of buf (doubles stored as
 * float32 if cvt) into the selection, when the dataset is not empty (any). */
static int write_selected(const cairn_h5_part *p, hid_t d, hid_t ms, hid_t fs, hid_t mtype,
                          const void *buf, size_t nelem, int cvt, int any) {
  float *tmp;
  const void *data = as_stored(buf, nelem, cvt, &tmp);
  int rc = cvt && nelem && !data ? -1 : 0;
  if (rc == 0 && any && H5Dwrite(d, cvt ? H5T_NATIVE_FLOAT : mtype, ms, fs, p->dxpl, data) < 0)
    rc = -1;
  free(tmp);
  return rc;
}

/* Creates a 1-D dataset of n elements and writes rows [r0, r0+nr) from buf
 * (nr elements of mtype; doubles to store as float32 if cvt). Every process
 * of a parallel write calls it, with nr = 0 when it has no share. */
static int write_1d_as(const cairn_h5_part *p, hid_t loc, const char *name, hid_t ftype,
                       hid_t mtype, hsize_t n, hsize_t r0, hsize_t nr, const void *buf,
                       int cvt) {
  hid_t fs = H5Screate_simple(1, &n, NULL);
  hid_t dcpl = cairn__h5_dcpl(1, &n, H5Tget_size(ftype), p->level);
  hid_t d = fs >= 0 && dcpl >= 0
                ? H5Dcreate2(loc, name, ftype, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT)
                : -1;
  int rc = d >= 0 ? 0 : -1;
  if (rc == 0 && n && r0 == 0 && nr == n && put_direct(p, d, dcpl, &n, ftype, mtype, buf, cvt, NULL))
  {
    /* d was taken: written and closed by the chunk compressor */
  } else if (rc == 0) {
    hsize_t mn = nr ? nr : 1;
    hid_t ms = H5Screate_simple(1, &mn, NULL);
    rc = ms >= 0 ? 0 : -1;
    if (rc == 0) {
      if (nr && n) {
        rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &r0, NULL, &nr, NULL) < 0 ? -1 : 0;
      } else {
        rc = H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0 ? -1 : 0;
      }
    }
    /* An empty dataset (a metric named but never logged) has nothing to
     * write; every process knows n, so all of them skip the collective call. */
    if (rc == 0)
      rc = write_selected(p, d, ms, fs, mtype, buf, (size_t)nr, cvt, n != 0);
    if (ms >= 0)
      H5Sclose(ms);
    if (H5Dclose(d) < 0)
      rc = -1;
  }
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (fs >= 0)
    H5Sclose(fs);
  return rc;
}

static int write_1d(const cairn_h5_part *p, hid_t loc, const char *name, hid_t ftype,
                    hid_t mtype, hsize_t n, hsize_t r0, hsize_t nr, const void *buf) {
  return write_1d_as(p, loc, name, ftype, mtype, n, r0, nr, buf, 0);
}

/* Creates an [nrows × p->ncols] dataset and writes this process's columns
 * from buf ([nrows × p->my_ncols], row-major; doubles to store as float32
 * if cvt). File elements are visited row by row, selected columns
 * ascending, which is the memory order. fill (one mtype element, or NULL):
 * the serial writer makes it the dataset's fill value and does not store
 * chunks holding nothing else (they read back as the fill value). */
static int write_cols_as(const cairn_h5_part *p, hid_t loc, const char *name, hid_t ftype,
                         hid_t mtype, hsize_t nrows, const void *buf, int cvt,
                         const void *fill) {
  hsize_t dims[2] = {nrows, p->ncols};
  hid_t fs = H5Screate_simple(2, dims, NULL);
  hid_t dcpl = cairn__h5_dcpl(2, dims, H5Tget_size(ftype), p->level);
  if (!p->chunks)
    fill = NULL; /* parallel: every chunk is written, collectively */
  if (dcpl >= 0 && fill &&
      (H5Pset_fill_value(dcpl, mtype, fill) < 0 ||
       H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET) < 0)) {
    H5Pclose(dcpl);
    dcpl = -1;
  }
  hid_t d = fs >= 0 && dcpl >= 0
                ? H5Dcreate2(loc, name, ftype, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT)
                : -1;
  int rc = d >= 0 ? 0 : -1;
  if (rc == 0 && nrows && p->ncols && p->my_ncols == p->ncols &&
      put_direct(p, d, dcpl, dims, ftype, mtype, buf, cvt, fill))
  {
    /* d was taken: written and closed by the chunk compressor */
  } else if (rc == 0) {
    hsize_t mdims[2] = {nrows ? nrows : 1, p->my_ncols ? p->my_ncols : 1};
    hid_t ms = H5Screate_simple(2, mdims, NULL);
    rc = ms >= 0 ? 0 : -1;
    if (rc == 0) {
      if (nrows && p->my_ncols) {
        rc = H5Sselect_none(fs) < 0 ? -1 : 0;
        /* one hyperslab per run of consecutive columns */
        for (size_t c = 0; c < p->my_ncols && rc == 0;) {
          size_t e = c + 1;
          while (e < p->my_ncols && p->my_cols[e] == p->my_cols[e - 1] + 1)
            e++;
          hsize_t start[2] = {0, p->my_cols[c]}, count[2] = {nrows, e - c};
          if (H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL) < 0)
            rc = -1;
          c = e;
        }
      } else {
        rc = H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0 ? -1 : 0;
      }
    }
    if (rc == 0)
      rc = write_selected(p, d, ms, fs, mtype, buf, (size_t)nrows * p->my_ncols, cvt,
                          nrows && p->ncols);
    if (ms >= 0)
      H5Sclose(ms);
    if (H5Dclose(d) < 0)
      rc = -1;
  }
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (fs >= 0)
    H5Sclose(fs);
  return rc;
}

static int write_cols(const cairn_h5_part *p, hid_t loc, const char *name, hid_t ftype,
                      hid_t mtype, hsize_t nrows, const void *buf) {
  return write_cols_as(p, loc, name, ftype, mtype, nrows, buf, 0, NULL);
}

int cairn__h5_fits_f32(const double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isnan(v[i]) && (double)(float)v[i] != v[i])
      return 0;
  return 1;
}

/* ---------------------------------------------------------------------- */
/* Root attributes                                                         */
/* ---------------------------------------------------------------------- */

int cairn__h5_layout_root(hid_t file, const cairn_run_view *v, const cairn_h5_write_opts *o,
                          int detail) {
  static const char hex[] = "0123456789abcdef";
  char id[37];
  size_t k = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      id[k++] = '-';
    id[k++] = hex[v->run_id[i] >> 4];
    id[k++] = hex[v->run_id[i] & 15];
  }
  id[k] = '\0';
  const char *ver = v->cairn_version[0] ? v->cairn_version : cairn_version();
  uint32_t nranks = v->nranks > v->ncols ? v->nranks : (uint32_t)v->ncols;
  uint32_t naggr = o->naggregators ? o->naggregators : v->naggregators;
  if (cairn__h5_attr_u32(file, CAIRN_H5_ATTR_FORMAT_VERSION, CAIRN_H5_FORMAT_VERSION) ||
      cairn__h5_attr_str(file, CAIRN_H5_ATTR_RUN_ID, v->have_run_id ? id : "", v->have_run_id ? 36 : 0) ||
      cairn__h5_attr_str(file, CAIRN_H5_ATTR_CAIRN_VERSION, ver, strlen(ver)) ||
      cairn__h5_attr_u64(file, CAIRN_H5_ATTR_CREATED_NS, o->created_ns) ||
      cairn__h5_attr_u32(file, CAIRN_H5_ATTR_NRANKS, nranks) ||
      cairn__h5_attr_u32(file, CAIRN_H5_ATTR_NAGGREGATORS, naggr) ||
      cairn__h5_attr_u32(file, CAIRN_H5_ATTR_GROUP, o->group) ||
      cairn__h5_attr_u32(file, CAIRN_H5_ATTR_NCOLS, (uint32_t)v->ncols) ||
      cairn__h5_attr_u8(file, CAIRN_H5_ATTR_DETAIL, (uint8_t)(detail != 0)))
    return -1;
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Tables                                                                  */
/* ---------------------------------------------------------------------- */

/* The string table: metric names first (entry i = metric i), then every
 * other key once, in order of first use (params, then run key/values). */
typedef struct {
  const char **s;
  size_t n, cap;
  size_t *slot; /* open addressing: index + 1 */
  size_t nslot;
} strtab;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (uint8_t)*s;
    h *= 1099511628211ull;
  }
  return h;
}

/* Returns the index of s (added if new), or -1 on allocation failure. For
 * metric names (unique by construction) dedup=0 appends unconditionally. */
static long strtab_add(strtab *t, const char *s, int dedup) {
  if ((t->n + 1) * 2 > t->nslot) {
    size_t ns = t->nslot ? t->nslot * 2 : 256;
    size_t *sl = calloc(ns, sizeof *sl);
    if (!sl)
      return -1;
    for (size_t i = 0; i < t->n; i++) {
      size_t h = (size_t)hash_str(t->s[i]) & (ns - 1);
      while (sl[h])
        h = (h + 1) & (ns - 1);
      sl[h] = i + 1;
    }
    free(t->slot);
    t->slot = sl;
    t->nslot = ns;
  }
  size_t h = (size_t)hash_str(s) & (t->nslot - 1);
  while (t->slot[h]) {
    if (dedup && strcmp(t->s[t->slot[h] - 1], s) == 0)
      return (long)(t->slot[h] - 1);
    h = (h + 1) & (t->nslot - 1);
  }
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 64;
    const char **ns = realloc(t->s, nc * sizeof *ns);
    if (!ns)
      return -1;
    t->s = ns;
    t->cap = nc;
  }
  t->s[t->n] = s;
  t->slot[h] = ++t->n;
  return (long)(t->n - 1);
}

/* Every table is written ordered by its rank column (contexts, which have
 * none, by id), ties kept in the order logged: the same rows then give the
 * same file whichever processes held them. */
typedef struct {
  int64_t key;
  size_t at;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->at < y->at ? -1 : x->at > y->at;
}

/* A shallow copy of n rows of `size` bytes ordered by the i32 (is_id 0) or
 * u64 (is_id 1) field at key_off. NULL on allocation failure. */
static void *ordered_rows(const void *rows, size_t n, size_t size, size_t key_off, int is_id) {
  keyed *k = malloc((n ? n : 1) * sizeof *k);
  char *out = malloc((n ? n : 1) * size);
  if (!k || !out) {
    free(k);
    free(out);
    return NULL;
  }
  const char *r = rows;
  for (size_t i = 0; i < n; i++) {
    if (is_id) {
      uint64_t id;
      memcpy(&id, r + i * size + key_off, sizeof id);
      k[i].key = (int64_t)(id ^ (1ull << 63)); /* unsigned order in a signed key */
    } else {
      int32_t rank;
      memcpy(&rank, r + i * size + key_off, sizeof rank);
      k[i].key = rank;
    }
    k[i].at = i;
  }
  qsort(k, n, sizeof *k, cmp_keyed);
  for (size_t i = 0; i < n; i++)
    memcpy(out + i * size, r + k[i].at * size, size);
  free(k);
  return out;
}

/* Writes n rows of a compound table (contiguous: the tables are small and
 * may hold variable-length strings). */
static int write_table(hid_t loc, const char *name, cairn_h5_table t, size_t n,
                       const void *unordered, size_t size, size_t key_off, int is_id) {
  void *rows = ordered_rows(unordered, n, size, key_off, is_id);
  hid_t mt, ft;
  if (!rows)
    return -1;
  if (cairn__h5_table_types(t, &mt, &ft)) {
    free(rows);
    return -1;
  }
  hsize_t dims = n;
  hid_t sp = H5Screate_simple(1, &dims, NULL);
  hid_t d = sp >= 0 ? H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int rc = d >= 0 ? 0 : -1;
  if (rc == 0 && n && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
    rc = -1;
  if (d >= 0)
    H5Dclose(d);
  if (sp >= 0)
    H5Sclose(sp);
  H5Tclose(mt);
  H5Tclose(ft);
  free(rows);
  return rc;
}

static int write_strings(hid_t loc, const char *name, size_t n, const char **s) {
  hid_t t = cairn__h5_vlstr_type();
  hsize_t dims = n;
  hid_t sp = H5Screate_simple(1, &dims, NULL);
  hid_t d = t >= 0 && sp >= 0
                ? H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                : -1;
  int rc = d >= 0 ? 0 : -1;
  if (rc == 0 && n && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0)
    rc = -1;
  if (d >= 0)
    H5Dclose(d);
  if (sp >= 0)
    H5Sclose(sp);
  if (t >= 0)
    H5Tclose(t);
  return rc;
}

/* Groups keep HDF5's default link storage: keeping a metric's ten links
 * in its object header (H5Pset_link_phase_change) made the file 1 MB
 * smaller per 1,000 metrics and the write about 10% faster, but reading
 * it 30-90% slower with 1.6-3.5 times the memory (bench/README.md). */
static hid_t make_group(hid_t loc, const char *name) {
  return H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

int cairn__h5_layout_tables(hid_t file, const cairn_run_view *v, int level) {
  strtab st = {0};
  int rc = -1;
  size_t n = v->ncols;
  cairn_h5_param_row *pr = malloc((v->nparams + 1) * sizeof *pr);
  cairn_h5_kv_row *kr = malloc((v->nkv + 1) * sizeof *kr);
  const char **hosts = malloc((n + 1) * sizeof *hosts);
  uint32_t *pid = malloc((n + 1) * sizeof *pid);
  uint64_t *start = malloc((n + 1) * sizeof *start);
  uint64_t *acct[4];
  for (int k = 0; k < 4; k++)
    acct[k] = malloc((n * CAIRN_H5_NCHANNELS + 1) * sizeof **acct);
  hid_t g = -1, gl = -1;
  if (!pr || !kr || !hosts || !pid || !start || !acct[0] || !acct[1] || !acct[2] || !acct[3])
    goto out;
  for (size_t i = 0; i < v->nmetrics; i++)
    if (strtab_add(&st, v->metrics[i].name, 0) < 0)
      goto out;
  for (size_t i = 0; i < v->nparams; i++) {
    const cairn_view_param *p = &v->params[i];
    long key = strtab_add(&st, p->key, 1);
    if (key < 0)
      goto out;
    pr[i] = (cairn_h5_param_row){p->rank, (uint32_t)key, p->type, p->i64, p->f64, p->str};
  }
  for (size_t i = 0; i < v->nkv; i++) {
    long key = strtab_add(&st, v->kv[i].key, 1);
    if (key < 0)
      goto out;
    kr[i] = (cairn_h5_kv_row){v->kv[i].rank, (uint32_t)key, v->kv[i].value};
  }
  if (write_strings(file, CAIRN_H5_NAMES, st.n, st.s))
    goto out;

  /* /ranks */
  if ((g = make_group(file, CAIRN_H5_RANKS)) < 0)
    goto out;
  for (size_t c = 0; c < n; c++) {
    hosts[c] = v->ranks[c].hostname ? v->ranks[c].hostname : "";
    pid[c] = v->ranks[c].pid;
    start[c] = v->ranks[c].start_ns;
  }
  size_t *all = malloc((n + 1) * sizeof *all);
  if (!all)
    goto out;
  for (size_t c = 0; c < n; c++)
    all[c] = c;
  cairn_h5_part p = {file, H5P_DEFAULT, level, n, all, n, NULL};
  int r = write_1d(&p, g, CAIRN_H5_RANKS_RANK, H5T_STD_I32LE, H5T_NATIVE_INT32, n, 0, n,
                   v->col_rank) ||
          write_strings(g, CAIRN_H5_RANKS_HOST, n, hosts) ||
          write_1d(&p, g, CAIRN_H5_RANKS_PID, H5T_STD_U32LE, H5T_NATIVE_UINT32, n, 0, n, pid) ||
          write_1d(&p, g, CAIRN_H5_RANKS_START, H5T_STD_U64LE, H5T_NATIVE_UINT64, n, 0, n,
                   start);
  H5Gclose(g);
  g = -1;
  if (r) {
    free(all);
    goto out;
  }

#define ROWS(T, field) sizeof(T), offsetof(T, field)
  if (write_table(file, CAIRN_H5_PARAMS, CAIRN_H5_T_PARAM, v->nparams, pr,
                  ROWS(cairn_h5_param_row, rank), 0) ||
      write_table(file, CAIRN_H5_RUNKV, CAIRN_H5_T_KV, v->nkv, kr, ROWS(cairn_h5_kv_row, rank),
                  0)) {
    free(all);
    goto out;
  }
  if ((gl = make_group(file, CAIRN_H5_LINEAGE)) < 0 ||
      write_table(file, CAIRN_H5_L_ARTIFACTS, CAIRN_H5_T_ARTIFACT, v->nartifacts,
                  v->artifacts, ROWS(cairn_h5_artifact_row, rank), 0) ||
      write_table(file, CAIRN_H5_L_EXECUTIONS, CAIRN_H5_T_EXECUTION, v->nexecutions,
                  v->executions, ROWS(cairn_h5_execution_row, rank), 0) ||
      write_table(file, CAIRN_H5_L_EVENTS, CAIRN_H5_T_EVENT, v->nevents, v->events,
                  ROWS(cairn_h5_event_row, rank), 0) ||
      write_table(file, CAIRN_H5_L_CONTEXTS, CAIRN_H5_T_CONTEXT, v->ncontexts, v->contexts,
                  ROWS(cairn_h5_context_row, id), 1)) {
    free(all);
    goto out;
  }

  /* /accounting: [ncols × channel] per counter. Rows are columns of the
   * file, so the "columns" of write_cols are the channels here. */
  for (size_t c = 0; c < n * CAIRN_H5_NCHANNELS; c++) {
    acct[0][c] = v->acct[c].logged;
    acct[1][c] = v->acct[c].stored;
    acct[2][c] = v->acct[c].dropped;
    acct[3][c] = v->acct[c].rejected;
  }
  static const char *const names[4] = {CAIRN_H5_ACCT_LOGGED, CAIRN_H5_ACCT_STORED,
                                       CAIRN_H5_ACCT_DROPPED, CAIRN_H5_ACCT_REJECTED};
  size_t ch[CAIRN_H5_NCHANNELS];
  for (size_t k = 0; k < CAIRN_H5_NCHANNELS; k++)
    ch[k] = k;
  cairn_h5_part pa = {file, H5P_DEFAULT, level, CAIRN_H5_NCHANNELS, ch, CAIRN_H5_NCHANNELS,
                      NULL};
  if ((g = make_group(file, CAIRN_H5_ACCOUNTING)) < 0) {
    free(all);
    goto out;
  }
  r = cairn__h5_attr_str(g, CAIRN_H5_ACCT_ATTR_CHANNELS, "metrics,control", 15);
  for (int k = 0; k < 4 && !r; k++)
    r = write_cols(&pa, g, names[k], H5T_STD_U64LE, H5T_NATIVE_UINT64, n, acct[k]);
  if (!r)
    r = write_1d(&p, g, CAIRN_H5_ACCT_REPORTED, H5T_STD_U8LE, H5T_NATIVE_UINT8, n, 0, n,
                 v->acct_reported);
  free(all);
  if (r)
    goto out;
  rc = 0;
out:
  if (g >= 0)
    H5Gclose(g);
  if (gl >= 0)
    H5Gclose(gl);
  free(st.s);
  free(st.slot);
  free(pr);
  free(kr);
  free(hosts);
  free(pid);
  free(start);
  for (int k = 0; k < 4; k++)
    free(acct[k]);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Step markers and metrics                                                */
/* ---------------------------------------------------------------------- */

int cairn__h5_layout_marks(const cairn_h5_part *p, size_t nmarks, const int64_t *steps,
                           int write_steps, const uint64_t *time) {
  hid_t g = make_group(p->file, CAIRN_H5_STEPS);
  if (g < 0)
    return -1;
  int rc = write_1d(p, g, CAIRN_H5_STEPS_STEP, H5T_STD_I64LE, H5T_NATIVE_INT64, nmarks, 0,
                    write_steps ? nmarks : 0, steps) ||
           write_cols(p, g, CAIRN_H5_STEPS_TIME, H5T_STD_U64LE, H5T_NATIVE_UINT64, nmarks, time);
  H5Gclose(g);
  return rc ? -1 : 0;
}

/* min and max are values of the metric: float32 when its values are. */
static int write_minmax(const cairn_h5_part *p, hid_t g, const char *name, hsize_t n,
                        hsize_t s0, hsize_t ns, const double *x, int as_f32) {
  return write_1d_as(p, g, name, as_f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     n, s0, ns, x, as_f32);
}

int cairn__h5_layout_metric(const cairn_h5_part *p, const cairn_h5_metric_part *m) {
  char path[64];
  snprintf(path, sizeof path, "%s/%zu", CAIRN_H5_METRICS, m->index);
  hid_t g = make_group(p->file, path);
  if (g < 0)
    return -1;
  int rc = cairn__h5_attr_str(g, CAIRN_H5_M_ATTR_NAME, m->name, m->name_len) ||
           cairn__h5_attr_u32(g, CAIRN_H5_M_ATTR_NAME_INDEX, (uint32_t)m->index) ||
           cairn__h5_attr_u64(g, CAIRN_H5_M_ATTR_MISSING, m->missing);
  hsize_t n = m->nsteps, s0 = m->s0, ns = m->ns;
  /* One rank column: the statistics across ranks are that rank's values;
   * storing them would repeat every value six more times. */
  int derived = m->detail && p->ncols == 1;
  if (!rc && derived)
    rc = cairn__h5_attr_u8(g, CAIRN_H5_M_ATTR_STATS_DERIVED, 1);
  if (!rc && derived)
    rc = write_1d(p, g, CAIRN_H5_M_STEP, H5T_STD_I64LE, H5T_NATIVE_INT64, n, 0,
                  m->write_steps ? n : 0, m->steps);
  else if (!rc)
    rc = write_1d(p, g, CAIRN_H5_M_STEP, H5T_STD_I64LE, H5T_NATIVE_INT64, n, 0,
                  m->write_steps ? n : 0, m->steps) ||
         write_1d(p, g, CAIRN_H5_M_COUNT, H5T_STD_U32LE, H5T_NATIVE_UINT32, n, s0, ns,
                  m->count) ||
         write_1d(p, g, CAIRN_H5_M_SUM, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, s0, ns, m->sum) ||
         write_1d(p, g, CAIRN_H5_M_SUMSQ, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, s0, ns,
                  m->sumsq) ||
         write_minmax(p, g, CAIRN_H5_M_MIN, n, s0, ns, m->min, m->as_f32) ||
         write_minmax(p, g, CAIRN_H5_M_MAX, n, s0, ns, m->max, m->as_f32) ||
         write_1d(p, g, CAIRN_H5_M_RANK_MIN, H5T_STD_I32LE, H5T_NATIVE_INT32, n, s0, ns,
                  m->rank_min) ||
         write_1d(p, g, CAIRN_H5_M_RANK_MAX, H5T_STD_I32LE, H5T_NATIVE_INT32, n, s0, ns,
                  m->rank_max);
  if (!rc && m->detail) {
    /* Converted by cairn rather than by HDF5 so that collective transfers
     * need no datatype conversion. Exact: checked by cairn__h5_fits_f32. */
    rc = write_cols_as(p, g, CAIRN_H5_M_VALUES, m->as_f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE,
                       H5T_NATIVE_DOUBLE, n, m->values, m->as_f32, NULL);
    if (!rc) {
      /* Almost every cell holds one sample: chunks of nothing but ones are
       * not stored and read back as the fill value, 1. */
      const uint32_t one = 1;
      rc = write_cols_as(p, g, CAIRN_H5_M_SAMPLES, H5T_STD_U32LE, H5T_NATIVE_UINT32, n,
                         m->samples, 0, &one);
    }
  }
  H5Gclose(g);
  return rc ? -1 : 0;
}
