/* h5_reader.c — reads an HDF5 run file (format v2) into a run view, saying
 * precisely what is wrong with a foreign, truncated or damaged file and
 * keeping every dataset that can still be read. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "cairn.h"
#include "h5_schema.h"
#include "hugemem.h"
#include "h5zstd/h5zstd.h"
#include "run_view.h"

typedef struct {
  const char *path;
  cairn_run_report *rep;
  hid_t file;
} rd;

static void say(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(rd *r, const char *fmt, ...) {
  if (!r->rep || !r->rep->fn)
    return;
  char body[1536], msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  snprintf(msg, sizeof msg, "%s: %s", r->path, body);
  r->rep->fn(r->rep->ctx, msg);
}

/* A dataset that could not be read: counted and reported with HDF5's own
 * reason and what the reader does instead. */
static void lost(rd *r, const char *dset, const char *instead) {
  char h5[512];
  cairn__h5_error_text(h5, sizeof h5);
  if (r->rep)
    r->rep->lost_datasets++;
  say(r, "%s: cannot be read%s%s; %s", dset, h5[0] ? ": " : "", h5, instead);
  H5Eclear2(H5E_DEFAULT);
}

/* Reads a whole 1-D (ndims 1) or 2-D dataset as mtype into a malloc'd
 * buffer, checking its shape against want[] (0 = any, returned in got[]).
 * Returns the buffer or NULL (reported as lost, unless it does not exist
 * and optional). */
static void *read_array(rd *r, hid_t loc, const char *name, const char *full, int ndims,
                        const hsize_t *want, hsize_t *got, hid_t mtype, const char *instead) {
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) {
    if (r->rep)
      r->rep->lost_datasets++;
    say(r, "%s: missing; %s", full, instead);
    return NULL;
  }
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) {
    lost(r, full, instead);
    return NULL;
  }
  hid_t sp = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (nd != ndims || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
    if (sp >= 0)
      H5Sclose(sp);
    H5Dclose(d);
    if (r->rep)
      r->rep->lost_datasets++;
    say(r, "%s: has %d dimensions, expected %d; %s", full, nd, ndims, instead);
    return NULL;
  }
  H5Sclose(sp);
  for (int i = 0; i < ndims; i++) {
    if (want && want[i] && dims[i] != want[i]) {
      H5Dclose(d);
      if (r->rep)
        r->rep->lost_datasets++;
      say(r, "%s: dimension %d is %" PRIu64 ", expected %" PRIu64 "; %s", full, i,
          (uint64_t)dims[i], (uint64_t)want[i], instead);
      return NULL;
    }
    if (got)
      got[i] = dims[i];
  }
  size_t n = ndims == 1 ? dims[0] : dims[0] * dims[1];
  void *buf = malloc((n ? n : 1) * H5Tget_size(mtype));
  if (!buf) {
    H5Dclose(d);
    return NULL;
  }
  if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    lost(r, full, instead);
    free(buf);
    buf = NULL;
  }
  H5Dclose(d);
  return buf;
}

/* Reads a 1-D compound table into rows of the table's memory type; VL
 * strings are left for the caller to copy, then reclaimed here by
 * free_table. */
static void *read_table(rd *r, const char *name, cairn_h5_table t, size_t *n, hid_t *mt,
                        hid_t *sp_out) {
  *n = 0;
  *sp_out = -1;
  hid_t ft;
  if (cairn__h5_table_types(t, mt, &ft))
    return NULL;
  H5Tclose(ft);
  hsize_t dims[1];
  if (H5Lexists(r->file, name, H5P_DEFAULT) <= 0) {
    if (r->rep)
      r->rep->lost_datasets++;
    say(r, "%s: missing; the table is read as empty", name);
    H5Tclose(*mt);
    return NULL;
  }
  hid_t d = H5Dopen2(r->file, name, H5P_DEFAULT);
  hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
  void *buf = NULL;
  if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
      H5Sget_simple_extent_dims(sp, dims, NULL) >= 0) {
    buf = calloc(dims[0] ? dims[0] : 1, H5Tget_size(*mt));
    if (buf && dims[0] && H5Dread(d, *mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      free(buf);
      buf = NULL;
    }
  }
  if (!buf) {
    lost(r, name, "the table is read as empty");
    if (sp >= 0)
      H5Sclose(sp);
    if (d >= 0)
      H5Dclose(d);
    H5Tclose(*mt);
    return NULL;
  }
  H5Dclose(d);
  *n = dims[0];
  *sp_out = sp;
  return buf;
}

static void free_table(void *buf, hid_t mt, hid_t sp) {
  if (!buf)
    return;
  H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
  free(buf);
  H5Sclose(sp);
  H5Tclose(mt);
}

static const char *name_at(char **names, size_t nnames, uint32_t i) {
  return i < nnames && names[i] ? names[i] : "";
}

/* ---------------------------------------------------------------------- */
/* File checks before HDF5 opens it                                        */
/* ---------------------------------------------------------------------- */

static const uint8_t h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* Finds the HDF5 signature (at 0, 512, 1024, ... as HDF5 allows) and, for
 * superblock versions 2 and 3, the end-of-file address it records.
 * Returns 1 if a signature was found (eof 0 if unknown), 0 if not. */
static int probe(FILE *f, uint64_t size, uint64_t *sig_at, uint64_t *eof) {
  *eof = 0;
  for (uint64_t off = 0; off + 8 <= size; off = off ? off * 2 : 512) {
    uint8_t b[48];
    if (fseeko(f, (off_t)off, SEEK_SET) != 0)
      return 0;
    size_t got = fread(b, 1, sizeof b, f);
    if (got < 8 || memcmp(b, h5sig, 8) != 0)
      continue;
    *sig_at = off;
    /* v2/v3: sig, version, sizeof offsets, sizeof lengths, flags, base,
     * extension, end-of-file, root, checksum. */
    if (got >= 12 && (b[8] == 2 || b[8] == 3) && b[9] == 8 && got >= 12 + 32) {
      uint64_t base = 0, e = 0;
      for (int i = 7; i >= 0; i--) {
        base = base << 8 | b[12 + i];
        e = e << 8 | b[28 + i];
      }
      *eof = base + e;
    }
    return 1;
  }
  return 0;
}

size_t cairn__h5_read_in_memory = CAIRN_H5_READ_IN_MEMORY;

/* Opens a truncated file from memory, padded with zeros up to the size its
 * superblock records, so that whatever lies in the part that exists can
 * still be read (HDF5 refuses to open a file shorter than that). */
static hid_t open_padded(rd *r, FILE *f, uint64_t size, uint64_t eof) {
  if (eof > (uint64_t)SIZE_MAX / 2)
    return -1;
  void *img = calloc(1, (size_t)eof);
  if (!img) {
    say(r, "not enough memory to read the intact part");
    return -1;
  }
  hid_t file = -1;
  if (fseeko(f, 0, SEEK_SET) == 0 && fread(img, 1, (size_t)size, f) == (size_t)size) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* The core driver refuses an image whose name exists on disk: give the
     * in-memory copy a name of its own (it is never created). */
    char name[4200];
    snprintf(name, sizeof name, "%s#cairn-padded-image", r->path);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
        H5Pset_file_image(fapl, img, (size_t)eof) >= 0)
      file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0)
      H5Pclose(fapl);
  }
  free(img); /* H5Pset_file_image copied it */
  return file;
}

static int parse_uuid(const char *s, size_t len, uint8_t out[16]) {
  if (len != 36)
    return -1;
  int k = 0;
  for (size_t i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return -1;
      continue;
    }
    int hi = s[i];
    int v = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10
            : hi >= 'A' && hi <= 'F' ? hi - 'A' + 10 : -1;
    if (v < 0)
      return -1;
    if (k % 2 == 0)
      out[k / 2] = (uint8_t)(v << 4);
    else
      out[k / 2] |= (uint8_t)v;
    k++;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Parts of the file                                                       */
/* ---------------------------------------------------------------------- */

static int read_root(rd *r, cairn_run_view *v) {
  uint64_t u;
  if (cairn__h5_read_attr_u64(r->file, CAIRN_H5_ATTR_FORMAT_VERSION, &u) != 0) {
    say(r, "an HDF5 file, but not a cairn run file (no root attribute "
           "'" CAIRN_H5_ATTR_FORMAT_VERSION "')");
    return CAIRN_EFOREIGN;
  }
  if (u > CAIRN_H5_FORMAT_VERSION || u == 0) {
    say(r, "cairn run-file format version %" PRIu64 " is not supported (this reader knows 1 "
           "to %u)", u, CAIRN_H5_FORMAT_VERSION);
    return CAIRN_EVERSION;
  }
  v->format_version = (uint32_t)u;
  char *s;
  size_t len;
  if (cairn__h5_read_attr_str(r->file, CAIRN_H5_ATTR_RUN_ID, &s, &len) == 0) {
    v->have_run_id = parse_uuid(s, len, v->run_id) == 0;
    free(s);
  }
  if (cairn__h5_read_attr_str(r->file, CAIRN_H5_ATTR_CAIRN_VERSION, &s, &len) == 0) {
    snprintf(v->cairn_version, sizeof v->cairn_version, "%s", s);
    free(s);
  }
  if (cairn__h5_read_attr_u64(r->file, CAIRN_H5_ATTR_CREATED_NS, &u) == 0)
    v->created_ns = u;
  if (cairn__h5_read_attr_u64(r->file, CAIRN_H5_ATTR_NRANKS, &u) == 0)
    v->nranks = (uint32_t)u;
  if (cairn__h5_read_attr_u64(r->file, CAIRN_H5_ATTR_NAGGREGATORS, &u) == 0)
    v->naggregators = (uint32_t)u;
  if (cairn__h5_read_attr_u64(r->file, CAIRN_H5_ATTR_GROUP, &u) == 0)
    v->group = (uint32_t)u;
  if (cairn__h5_read_attr_u64(r->file, CAIRN_H5_ATTR_DETAIL, &u) == 0)
    v->detail = u != 0;
  return CAIRN_OK;
}

static int read_ranks(rd *r, cairn_run_view *v) {
  hsize_t n[1] = {0};
  hid_t g = H5Gopen2(r->file, CAIRN_H5_RANKS, H5P_DEFAULT);
  if (g < 0) {
    lost(r, CAIRN_H5_RANKS, "no rank columns can be read");
    return CAIRN_ECORRUPT;
  }
  int32_t *rank = read_array(r, g, CAIRN_H5_RANKS_RANK, CAIRN_H5_RANKS "/" CAIRN_H5_RANKS_RANK,
                             1, NULL, n, H5T_NATIVE_INT32, "no rank columns can be read");
  if (!rank) {
    H5Gclose(g);
    return CAIRN_ECORRUPT;
  }
  size_t nc = n[0];
  v->ncols = nc;
  v->col_rank = rank;
  v->ranks = calloc(nc ? nc : 1, sizeof *v->ranks);
  v->acct = calloc((nc ? nc : 1) * CAIRN_H5_NCHANNELS, sizeof *v->acct);
  v->acct_reported = calloc(nc ? nc : 1, 1);
  if (!v->ranks || !v->acct || !v->acct_reported) {
    H5Gclose(g);
    return CAIRN_ENOMEM;
  }
  hsize_t want[1] = {nc};
  uint32_t *pid = read_array(r, g, CAIRN_H5_RANKS_PID, CAIRN_H5_RANKS "/" CAIRN_H5_RANKS_PID, 1,
                             want, NULL, H5T_NATIVE_UINT32, "pids are read as 0");
  uint64_t *start =
      read_array(r, g, CAIRN_H5_RANKS_START, CAIRN_H5_RANKS "/" CAIRN_H5_RANKS_START, 1, want,
                 NULL, H5T_NATIVE_UINT64, "start times are read as 0");
  hid_t st = cairn__h5_vlstr_type();
  char **host = nc ? read_array(r, g, CAIRN_H5_RANKS_HOST, CAIRN_H5_RANKS "/" CAIRN_H5_RANKS_HOST,
                                1, want, NULL, st, "host names are read as empty")
                   : NULL;
  for (size_t c = 0; c < nc; c++) {
    v->ranks[c].pid = pid ? pid[c] : 0;
    v->ranks[c].start_ns = start ? start[c] : 0;
    const char *h = host && host[c] ? host[c] : "";
    v->ranks[c].hostname = strdup(h);
  }
  if (host) {
    for (size_t c = 0; c < nc; c++)
      H5free_memory(host[c]);
    free(host);
  }
  H5Tclose(st);
  free(pid);
  free(start);
  H5Gclose(g);
  for (size_t c = 0; c < nc; c++)
    if (!v->ranks[c].hostname)
      return CAIRN_ENOMEM;
  return CAIRN_OK;
}

static int read_names(rd *r, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  hsize_t got[1];
  hid_t st = cairn__h5_vlstr_type();
  char **s = read_array(r, r->file, CAIRN_H5_NAMES, CAIRN_H5_NAMES, 1, NULL, got, st,
                        "metric names come from their attributes, keys are empty");
  H5Tclose(st);
  if (!s)
    return CAIRN_OK;
  *names = s;
  *n = got[0];
  return CAIRN_OK;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n && names; i++)
    H5free_memory(names[i]);
  free(names);
}

static int read_tables(rd *r, cairn_run_view *v, char **names, size_t nnames) {
  size_t n;
  hid_t mt, sp;
  int rc = CAIRN_OK;
  cairn_h5_param_row *pr = read_table(r, CAIRN_H5_PARAMS, CAIRN_H5_T_PARAM, &n, &mt, &sp);
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
    cairn_view_param p = {pr[i].rank, pr[i].type, (char *)name_at(names, nnames, pr[i].key),
                          pr[i].i64, pr[i].f64, pr[i].str ? pr[i].str : ""};
    rc = cairn__view_add_param(v, &p);
  }
  free_table(pr, mt, sp);
  cairn_h5_kv_row *kr = read_table(r, CAIRN_H5_RUNKV, CAIRN_H5_T_KV, &n, &mt, &sp);
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
    rc = cairn__view_add_kv(v, kr[i].rank, name_at(names, nnames, kr[i].key),
                            kr[i].value ? kr[i].value : "");
  free_table(kr, mt, sp);
  cairn_h5_artifact_row *ar = read_table(r, CAIRN_H5_L_ARTIFACTS, CAIRN_H5_T_ARTIFACT, &n, &mt, &sp);
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
    rc = cairn__view_add_artifact(v, &ar[i]);
  free_table(ar, mt, sp);
  cairn_h5_execution_row *er =
      read_table(r, CAIRN_H5_L_EXECUTIONS, CAIRN_H5_T_EXECUTION, &n, &mt, &sp);
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
    rc = cairn__view_add_execution(v, &er[i]);
  free_table(er, mt, sp);
  cairn_h5_event_row *vr = read_table(r, CAIRN_H5_L_EVENTS, CAIRN_H5_T_EVENT, &n, &mt, &sp);
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
    rc = cairn__view_add_event(v, &vr[i]);
  free_table(vr, mt, sp);
  cairn_h5_context_row *cr = read_table(r, CAIRN_H5_L_CONTEXTS, CAIRN_H5_T_CONTEXT, &n, &mt, &sp);
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++)
    rc = cairn__view_add_context(v, &cr[i]);
  free_table(cr, mt, sp);
  return rc;
}

static int read_accounting(rd *r, cairn_run_view *v) {
  hid_t g = H5Gopen2(r->file, CAIRN_H5_ACCOUNTING, H5P_DEFAULT);
  if (g < 0) {
    lost(r, CAIRN_H5_ACCOUNTING, "the accounting is read as zero");
    return CAIRN_OK;
  }
  static const char *const names[4] = {CAIRN_H5_ACCT_LOGGED, CAIRN_H5_ACCT_STORED,
                                       CAIRN_H5_ACCT_DROPPED, CAIRN_H5_ACCT_REJECTED};
  hsize_t want[2] = {v->ncols, CAIRN_H5_NCHANNELS};
  for (int k = 0; k < 4; k++) {
    char full[128];
    snprintf(full, sizeof full, CAIRN_H5_ACCOUNTING "/%s", names[k]);
    uint64_t *a = v->ncols ? read_array(r, g, names[k], full, 2, want, NULL, H5T_NATIVE_UINT64,
                                        "that counter is read as zero")
                           : NULL;
    for (size_t c = 0; a && c < v->ncols * CAIRN_H5_NCHANNELS; c++) {
      uint64_t *dst = k == 0 ? &v->acct[c].logged : k == 1 ? &v->acct[c].stored
                      : k == 2 ? &v->acct[c].dropped : &v->acct[c].rejected;
      *dst = a[c];
    }
    free(a);
  }
  uint8_t *rep = v->ncols ? read_array(r, g, CAIRN_H5_ACCT_REPORTED,
                                       CAIRN_H5_ACCOUNTING "/" CAIRN_H5_ACCT_REPORTED, 1, want,
                                       NULL, H5T_NATIVE_UINT8, "ranks are marked unreported")
                          : NULL;
  if (rep) {
    memcpy(v->acct_reported, rep, v->ncols);
    free(rep);
  }
  H5Gclose(g);
  return CAIRN_OK;
}

static int read_marks(rd *r, cairn_run_view *v) {
  hid_t g = H5Gopen2(r->file, CAIRN_H5_STEPS, H5P_DEFAULT);
  if (g < 0) {
    lost(r, CAIRN_H5_STEPS, "no step markers");
    return CAIRN_OK;
  }
  hsize_t n[1];
  int64_t *steps = read_array(r, g, CAIRN_H5_STEPS_STEP, CAIRN_H5_STEPS "/" CAIRN_H5_STEPS_STEP,
                              1, NULL, n, H5T_NATIVE_INT64, "no step markers");
  if (steps) {
    hsize_t want[2] = {n[0], v->ncols};
    uint64_t *t = n[0] && v->ncols
                      ? read_array(r, g, CAIRN_H5_STEPS_TIME,
                                   CAIRN_H5_STEPS "/" CAIRN_H5_STEPS_TIME, 2, want, NULL,
                                   H5T_NATIVE_UINT64, "no step markers")
                      : calloc(1, sizeof *t);
    if (t) {
      v->nmarks = n[0];
      v->mark_step = steps;
      v->mark_time = t;
    } else {
      free(steps);
    }
  }
  H5Gclose(g);
  return CAIRN_OK;
}

static int cmp_metric(const void *a, const void *b) {
  const cairn_view_metric *x = a, *y = b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->name_len < y->name_len ? -1 : x->name_len > y->name_len);
}

/* Reads /metrics/<i>. Returns CAIRN_OK (the metric kept, possibly without
 * detail), 1 (the metric could not be read; reported), or CAIRN_ENOMEM. */
static int read_metric(rd *r, cairn_run_view *v, size_t i, cairn_view_metric *m) {
  char gp[64], full[128];
  snprintf(gp, sizeof gp, CAIRN_H5_METRICS "/%zu", i);
  hid_t g = H5Gopen2(r->file, gp, H5P_DEFAULT);
  if (g < 0) {
    lost(r, gp, "the metric is skipped");
    return 1;
  }
  memset(m, 0, sizeof *m);
  if (cairn__h5_read_attr_str(g, CAIRN_H5_M_ATTR_NAME, &m->name, &m->name_len) != 0) {
    char fallback[64];
    snprintf(fallback, sizeof fallback, "?unnamed.metric%zu", i);
    m->name = strdup(fallback);
    m->name_len = strlen(fallback);
    if (r->rep)
      r->rep->lost_datasets++;
    say(r, "%s: no readable name attribute; kept as '%s'", gp, fallback);
    if (!m->name) {
      H5Gclose(g);
      return CAIRN_ENOMEM;
    }
  }
  uint64_t missing = 0;
  cairn__h5_read_attr_u64(g, CAIRN_H5_M_ATTR_MISSING, &missing);
  hsize_t n[1];
  snprintf(full, sizeof full, "%s/" CAIRN_H5_M_STEP, gp);
  int64_t *steps = read_array(r, g, CAIRN_H5_M_STEP, full, 1, NULL, n, H5T_NATIVE_INT64,
                              "the metric is skipped (its steps are unknown)");
  if (!steps) {
    free(m->name);
    H5Gclose(g);
    return 1;
  }
  size_t ns = n[0], nc = v->ncols;
  /* Detail first: statistics lost to a bad chunk can be recomputed from it. */
  double *values = NULL;
  uint32_t *samples = NULL;
  if (H5Lexists(g, CAIRN_H5_M_VALUES, H5P_DEFAULT) > 0 && nc) {
    hsize_t want[2] = {ns, nc};
    snprintf(full, sizeof full, "%s/" CAIRN_H5_M_VALUES, gp);
    values = ns ? read_array(r, g, CAIRN_H5_M_VALUES, full, 2, want, NULL, H5T_NATIVE_DOUBLE,
                             "per-rank values are dropped, statistics kept")
                : calloc(1, sizeof *values);
    snprintf(full, sizeof full, "%s/" CAIRN_H5_M_SAMPLES, gp);
    samples = values && ns ? read_array(r, g, CAIRN_H5_M_SAMPLES, full, 2, want, NULL,
                                        H5T_NATIVE_UINT32,
                                        "per-rank values are dropped, statistics kept")
                           : values ? calloc(1, sizeof *samples) : NULL;
    if (!samples) {
      free(values);
      values = NULL;
    }
  }
  char *name = m->name;
  size_t name_len = m->name_len;
  if (cairn__view_metric_alloc(m, ns, nc, 0) != CAIRN_OK) {
    free(name);
    free(steps);
    free(values);
    free(samples);
    H5Gclose(g);
    return CAIRN_ENOMEM;
  }
  m->name = name;
  m->name_len = name_len;
  memcpy(m->step, steps, ns * sizeof *steps);
  free(steps);
  m->values = values;
  m->samples = samples;
  m->missing = missing;
  static const struct {
    const char *name;
    size_t off;
    int kind; /* 0 u32, 1 f64, 2 i32 */
  } stats[] = {{CAIRN_H5_M_COUNT, offsetof(cairn_view_metric, count), 0},
               {CAIRN_H5_M_SUM, offsetof(cairn_view_metric, sum), 1},
               {CAIRN_H5_M_SUMSQ, offsetof(cairn_view_metric, sumsq), 1},
               {CAIRN_H5_M_MIN, offsetof(cairn_view_metric, min), 1},
               {CAIRN_H5_M_MAX, offsetof(cairn_view_metric, max), 1},
               {CAIRN_H5_M_RANK_MIN, offsetof(cairn_view_metric, rank_min), 2},
               {CAIRN_H5_M_RANK_MAX, offsetof(cairn_view_metric, rank_max), 2}};
  uint64_t derived = 0;
  if (H5Aexists(g, CAIRN_H5_M_ATTR_STATS_DERIVED) > 0 &&
      cairn__h5_read_attr_u64(g, CAIRN_H5_M_ATTR_STATS_DERIVED, &derived) != 0)
    derived = 0;
  int recompute = derived && values;
  for (size_t k = 0; k < sizeof stats / sizeof *stats && !recompute; k++) {
    hid_t mt = stats[k].kind == 0 ? H5T_NATIVE_UINT32
               : stats[k].kind == 1 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT32;
    hsize_t want[1] = {ns};
    snprintf(full, sizeof full, "%s/%s", gp, stats[k].name);
    void **dst = (void **)((char *)m + stats[k].off);
    void *a = ns ? read_array(r, g, stats[k].name, full, 1, want, NULL, mt,
                              values ? "recomputed from the per-rank values"
                                     : "read as NaN / 0")
                 : NULL;
    if (a) {
      cairn__huge_free(*dst); /* from cairn__view_metric_alloc */
      *dst = a;
    } else if (ns && values) {
      recompute = 1;
    } else {
      /* Unknown stays visibly unknown: count 0, NaN, rank -1. */
      for (size_t s = 0; s < ns; s++) {
        if (stats[k].kind == 0)
          ((uint32_t *)*dst)[s] = 0;
        else if (stats[k].kind == 1)
          ((double *)*dst)[s] = NAN;
        else
          ((int32_t *)*dst)[s] = -1;
      }
    }
  }
  if (recompute)
    for (size_t s = 0; s < ns; s++)
      cairn__view_stats_row(values + s * nc, samples + s * nc, v->col_rank, nc, &m->count[s],
                            &m->sum[s], &m->sumsq[s], &m->min[s], &m->max[s], &m->rank_min[s],
                            &m->rank_max[s]);
  H5Gclose(g);
  return CAIRN_OK;
}

static int read_metrics(rd *r, cairn_run_view *v) {
  hid_t g = H5Gopen2(r->file, CAIRN_H5_METRICS, H5P_DEFAULT);
  if (g < 0) {
    lost(r, CAIRN_H5_METRICS, "no metrics can be read");
    return CAIRN_OK;
  }
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) {
    lost(r, CAIRN_H5_METRICS, "no metrics can be read");
    H5Gclose(g);
    return CAIRN_OK;
  }
  H5Gclose(g);
  v->metrics = calloc(info.nlinks ? info.nlinks : 1, sizeof *v->metrics);
  if (!v->metrics)
    return CAIRN_ENOMEM;
  int all_detail = 1;
  void (*hook)(void *, const cairn_view_metric *, size_t, size_t) =
      r->rep ? r->rep->on_metric : NULL;
  for (size_t i = 0; i < info.nlinks; i++) {
    int rc = read_metric(r, v, i, &v->metrics[v->nmetrics]);
    if (rc == CAIRN_ENOMEM) {
      if (hook) /* the metrics are about to be freed */
        hook(r->rep->metric_ctx, NULL, info.nlinks, info.nlinks);
      return rc;
    }
    if (rc == CAIRN_OK) {
      all_detail &= v->metrics[v->nmetrics].values != NULL;
      v->nmetrics++;
      if (hook)
        hook(r->rep->metric_ctx, &v->metrics[v->nmetrics - 1], i, info.nlinks);
    }
  }
  if (hook) /* the metrics are about to move (sort) or lose their detail */
    hook(r->rep->metric_ctx, NULL, info.nlinks, info.nlinks);
  if (!all_detail) {
    /* One view, one shape: without every metric's detail, keep none. */
    for (size_t i = 0; i < v->nmetrics; i++) {
      cairn__huge_free(v->metrics[i].values);
      cairn__huge_free(v->metrics[i].samples);
      v->metrics[i].values = NULL;
      v->metrics[i].samples = NULL;
    }
    v->detail = 0;
  }
  qsort(v->metrics, v->nmetrics, sizeof *v->metrics, cmp_metric);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */

int cairn__view_from_h5(const char *path, cairn_run_view *v, cairn_run_report *report) {
  cairn__view_init(v);
  rd r = {path, report, -1};
  FILE *f = fopen(path, "rb");
  if (!f) {
    say(&r, "cannot open: %s", strerror(errno));
    return CAIRN_EIO;
  }
  struct stat st;
  uint64_t size = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : 0;
  uint64_t sig_at = 0, eof = 0;
  if (!probe(f, size, &sig_at, &eof)) {
    fclose(f);
    if (report)
      report->h5_bad++;
    say(&r, "not an HDF5 file (no HDF5 signature; %" PRIu64 " bytes)", size);
    return size < 8 ? CAIRN_ETRUNCATED : CAIRN_EFOREIGN;
  }
  cairn_h5_quiet q;
  cairn__h5_quiet_begin(&q);
  int rc = CAIRN_OK, truncated = 0;
  if (cairn__h5zstd_register() != 0)
    say(&r, "the zstd filter (id 32015) is unavailable; compressed datasets cannot be read");
  if (eof && size < eof) {
    truncated = 1;
    say(&r, "truncated: the file has %" PRIu64 " bytes but its superblock records %" PRIu64
            " (%" PRIu64 " bytes missing); reading what lies in the intact part", size, eof,
        eof - size);
    r.file = open_padded(&r, f, size, eof);
  } else {
    /* Strong close: a damaged file must not leave objects open behind it
     * (HDF5 would report them at exit). */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) {
      H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
      /* A file that fits is read into memory at once (HDF5's core driver,
       * no backing store): its metadata is then not one small pread per
       * object, which for a file of many metrics was a sixth of reading
       * it (10,000 metrics: 3.3-4.3 s against 4.1-5.3 s, for 60 MB). */
      if (size <= cairn__h5_read_in_memory)
        H5Pset_fapl_core(fapl, (size_t)1 << 20, 0);
    }
    r.file = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
    if (fapl >= 0)
      H5Pclose(fapl);
  }
  fclose(f);
  if (r.file < 0) {
    char h5[512];
    cairn__h5_error_text(h5, sizeof h5);
    say(&r, "HDF5 cannot open it%s%s; nothing could be read", h5[0] ? ": " : "", h5);
    cairn__h5_quiet_end(&q);
    if (report)
      report->h5_bad++;
    return truncated ? CAIRN_ETRUNCATED : CAIRN_ECORRUPT;
  }
  uint64_t lost_before = report ? report->lost_datasets : 0;
  char **names = NULL;
  size_t nnames = 0;
  rc = read_root(&r, v);
  if (rc == CAIRN_OK)
    rc = read_ranks(&r, v);
  if (rc == CAIRN_OK)
    rc = read_names(&r, &names, &nnames);
  if (rc == CAIRN_OK)
    rc = read_tables(&r, v, names, nnames);
  if (rc == CAIRN_OK)
    rc = read_accounting(&r, v);
  if (rc == CAIRN_OK)
    rc = read_marks(&r, v);
  if (rc == CAIRN_OK)
    rc = read_metrics(&r, v);
  free_names(names, nnames);
  H5Fclose(r.file);
  H5Eclear2(H5E_DEFAULT);
  cairn__h5_quiet_end(&q);
  v->source |= CAIRN_VIEW_FROM_H5;
  int damaged = truncated || (report && report->lost_datasets != lost_before);
  if (report) {
    if (rc == CAIRN_OK && !damaged)
      report->h5_files++;
    else
      report->h5_bad++;
  }
  if (rc == CAIRN_OK && truncated)
    rc = CAIRN_ETRUNCATED;
  if (rc != CAIRN_OK && rc != CAIRN_ETRUNCATED && rc != CAIRN_ECORRUPT) {
    cairn__view_free(v);
  }
  return rc;
}
