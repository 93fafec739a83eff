/* run_reader.c — reads all write-ahead-log segments of a run directory in
 * order and decodes their blocks through a record visitor. */
#include "run_reader.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "wal.h"
#include "wal_format.h"

typedef struct {
  char *path;
  uint32_t rank, seq;
} seg_entry;

static int seg_cmp(const void *a, const void *b) {
  const seg_entry *x = a, *y = b;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void cairn__run_free_paths(char **paths, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(paths[i]);
  free(paths);
}

int cairn__run_list_wal(const char *dir, char ***paths, size_t *n, char *err,
                        size_t errlen) {
  *paths = NULL;
  *n = 0;
  DIR *dp = opendir(dir);
  if (!dp) {
    snprintf(err, errlen, "%s: cannot open run directory: %s", dir, strerror(errno));
    return CAIRN_EIO;
  }
  seg_entry *v = NULL;
  size_t len = 0, cap = 0;
  int rc = CAIRN_OK;
  struct dirent *de;
  while ((de = readdir(dp)) != NULL) {
    uint32_t rank, seq;
    int used = 0;
    if (sscanf(de->d_name, "wal-r%" SCNu32 "-%" SCNu32 ".cwal%n", &rank, &seq, &used) != 2 ||
        used == 0 || de->d_name[used] != '\0')
      continue;
    if (len == cap) {
      cap = cap ? cap * 2 : 16;
      seg_entry *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        rc = CAIRN_ENOMEM;
        break;
      }
      v = nv;
    }
    size_t plen = strlen(dir) + 1 + strlen(de->d_name) + 1;
    char *p = malloc(plen);
    if (!p) {
      rc = CAIRN_ENOMEM;
      break;
    }
    snprintf(p, plen, "%s/%s", dir, de->d_name);
    v[len++] = (seg_entry){p, rank, seq};
  }
  closedir(dp);
  char **out = rc == CAIRN_OK ? malloc((len ? len : 1) * sizeof *out) : NULL;
  if (!out) {
    for (size_t i = 0; i < len; i++)
      free(v[i].path);
    free(v);
    return CAIRN_ENOMEM;
  }
  if (len > 1)
    qsort(v, len, sizeof *v, seg_cmp);
  for (size_t i = 0; i < len; i++)
    out[i] = v[i].path;
  free(v);
  *paths = out;
  *n = len;
  return CAIRN_OK;
}

int cairn__run_read_wal(const char *dir, const cairn_rec_visitor *v,
                        cairn_run_damage *damage, cairn_run_report_fn report,
                        void *report_ctx) {
  cairn_run_damage local;
  if (!damage)
    damage = &local;
  memset(damage, 0, sizeof *damage);
  char err[1024] = "";
  char **paths;
  size_t n;
  int rc = cairn__run_list_wal(dir, &paths, &n, err, sizeof err);
  if (rc != CAIRN_OK) {
    if (report && err[0])
      report(report_ctx, err);
    return rc;
  }
  if (n == 0) {
    cairn__run_free_paths(paths, n);
    return CAIRN_ENOTFOUND;
  }
  for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
    cairn_wal_reader *r;
    cairn_wal_segment_info info;
    err[0] = '\0';
    int orc = cairn__wal_reader_open(&r, paths[i], &info, err, sizeof err);
    if (orc != CAIRN_OK) {
      damage->bad_files++;
      if (report)
        report(report_ctx, err[0] ? err : cairn_strerror(orc));
      if (orc == CAIRN_ENOMEM)
        rc = orc;
      continue;
    }
    damage->segments++;
    for (;;) {
      uint16_t type;
      const void *payload;
      size_t len;
      err[0] = '\0';
      int nrc = cairn__wal_reader_next(r, &type, &payload, &len, err, sizeof err);
      if (err[0] && report)
        report(report_ctx, err);
      if (nrc < 0) {
        rc = nrc;
        break;
      }
      if (nrc == 0)
        break;
      if (type != CAIRN_WAL_BLOCK_DATA)
        continue; /* a later version's block kind */
      char derr[512] = "";
      int drc = cairn__rec_decode(payload, len, v, derr, sizeof derr);
      if (drc == CAIRN_ECORRUPT) {
        damage->bad_blocks++;
        if (report) {
          char m[1800];
          snprintf(m, sizeof m, "%s: block content does not decode: %s", paths[i], derr);
          report(report_ctx, m);
        }
      } else if (drc != CAIRN_OK) {
        rc = drc;
        break;
      } else {
        damage->blocks++;
      }
    }
    cairn_wal_damage wd;
    cairn__wal_reader_damage(r, &wd);
    damage->corrupt_regions += wd.corrupt_regions;
    damage->bytes_skipped += wd.bytes_skipped;
    damage->torn_tails += wd.torn_tail != 0;
    cairn__wal_reader_close(r);
  }
  cairn__run_free_paths(paths, n);
  return rc;
}
