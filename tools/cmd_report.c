/*
 * cmd_report.c — `cairn report RUN -o report.html`: one self-contained HTML
 * file about a merged run — summary, metric curves (mean and min–max band
 * across ranks), a per-rank heatmap of step times, the lineage graph — with
 * inline CSS and inline SVG only: no script, no external resource, and a
 * Content-Security-Policy that forbids both, so the file can be mailed,
 * archived and opened offline. Run text is always escaped (report_html.c).
 *
 * Only what the page draws is read: series statistics across ranks (not the
 * per-rank values), bucketed to --max-points per chart as they are loaded,
 * and step markers rank by rank, so a report of a large run stays small in
 * memory and on disk. The file is written to a temporary next to the output
 * and renamed into place: a reader never sees half a report.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cli.h"
#include "report_html.h"
#include "util.h"

#define CMD "report"
#define DEFAULT_MAX_POINTS 2000
#define LINEAGE_MAX_PER_COLUMN 40
#define ARTIFACT_TABLE_MAX 500
#define HEATMAP_MAX_CELLS 120000 /* rows × columns of the step-time heatmap  */
#define HEATMAP_MAX_COLS 400

static void usage(FILE *f) {
  fprintf(f,
          "usage: cairn report RUN -o FILE.html [--db PATH] [--metrics N1,N2,...]\n"
          "                    [--max-points N]\n"
          "  Writes one self-contained HTML file about a merged run: its summary\n"
          "  (identity, ranks, steps, samples, source, accounting, params, metadata),\n"
          "  a chart per metric (mean across ranks with the min-max band), a heatmap\n"
          "  of step times per rank that shows stragglers, and the lineage graph\n"
          "  (stages, executions, artifacts). Inline CSS and SVG only: no script,\n"
          "  no network access; it opens offline in any browser.\n"
          "  RUN               the run's UUID or a unique prefix of it\n"
          "  -o, --output FILE the report to write (replaced atomically)\n"
          "  --db PATH         the lineage database (default ./cairn.db, or $CAIRN_DB)\n"
          "  --metrics LIST    only these metrics, comma-separated, in this order\n"
          "  --max-points N    at most N points per chart (default %d); longer series\n"
          "                    are bucketed: mean of the means, min of the minima and\n"
          "                    max of the maxima, so spikes stay visible\n"
          "Exit status: 0 report written, 1 no such run or metric, the database or\n"
          "the file could not be read or written, 2 usage error.\n",
          DEFAULT_MAX_POINTS);
}

/* ---------------------------------------------------------------------- */
/* Small output helpers                                                    */
/* ---------------------------------------------------------------------- */

static void fmt_time(char *buf, size_t len, int64_t ns) {
  if (ns <= 0) {
    cairn__fmt(buf, len, "unknown");
    return;
  }
  time_t s = (time_t)(ns / 1000000000);
  struct tm tm;
  if (!gmtime_r(&s, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
    cairn__fmt(buf, len, "%" PRId64 " ns", ns);
}

static const char *col_text(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  return s ? s : "";
}

/* <tr><th>label</th><td>escaped value</td></tr> */
static void kv_row(FILE *f, const char *label, const char *value) {
  fprintf(f, "<tr><th>%s</th><td>", label);
  cairn__html_str(f, value);
  fputs("</td></tr>\n", f);
}

static void kv_row_u(FILE *f, const char *label, int64_t v) {
  fprintf(f, "<tr><th>%s</th><td>%" PRId64 "</td></tr>\n", label, v);
}

/* Ranks as ranges ("0–3, 6"), or "all" when every rank of the run is there.
 * ranks is ascending. */
static void print_ranks(FILE *f, const int32_t *ranks, size_t n, int64_t nranks) {
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (!i || ranks[i] != ranks[i - 1])
      u++;
  if (nranks > 1 && (int64_t)u == nranks) {
    fputs("all", f);
    return;
  }
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && ranks[j + 1] <= ranks[j] + 1)
      j++;
    fprintf(f, "%s%d", i ? ", " : "", (int)ranks[i]);
    if (ranks[j] != ranks[i])
      fprintf(f, "\xE2\x80\x93%d", (int)ranks[j]);
    i = j + 1;
  }
}

/* Rows of (key, value, rank) sorted by key, value, rank are shown once per
 * (key, value) with the ranks that logged it: four ranks logging the same
 * param make one row, a rank that disagrees makes its own. */
typedef struct {
  char *key, *val;
  int32_t *ranks;
  size_t n, cap;
  int64_t nranks;
  size_t rows;
} group;

static void group_emit(FILE *f, group *g) {
  if (!g->key)
    return;
  fputs("<tr><td><code>", f);
  cairn__html_str(f, g->key);
  fputs("</code></td><td><code>", f);
  cairn__html_str(f, g->val);
  fputs("</code></td><td>", f);
  print_ranks(f, g->ranks, g->n, g->nranks);
  fputs("</td></tr>\n", f);
  free(g->key);
  free(g->val);
  g->key = g->val = NULL;
  g->n = 0;
  g->rows++;
}

static int group_add(FILE *f, group *g, const char *key, const char *val, int32_t rank) {
  if (!g->key || strcmp(g->key, key) || strcmp(g->val, val)) {
    group_emit(f, g);
    g->key = strdup(key);
    g->val = strdup(val);
    if (!g->key || !g->val)
      return CAIRN_ENOMEM;
  }
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 16;
    int32_t *r = realloc(g->ranks, cap * sizeof *r);
    if (!r)
      return CAIRN_ENOMEM;
    g->ranks = r;
    g->cap = cap;
  }
  g->ranks[g->n++] = rank;
  return CAIRN_OK;
}

/* Starts a table of groups: g emptied for a run of nranks ranks, head (the
 * heading, <table> and header row) written. */
static void group_table(FILE *f, group *g, int64_t nranks, const char *head) {
  memset(g, 0, sizeof *g);
  g->nranks = nranks;
  fputs(head, f);
}

/* Ends a table of groups: its last group, a row saying none (when none is
 * given and the table has no row), and </table>. */
static void group_table_end(FILE *f, group *g, const char *none) {
  group_emit(f, g);
  free(g->ranks);
  g->ranks = NULL;
  g->cap = 0;
  if (none && !g->rows)
    fprintf(f, "<tr><td colspan=\"3\" class=\"none\">%s</td></tr>\n", none);
  fputs("</table>\n", f);
}

/* ---------------------------------------------------------------------- */
/* Summary                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct {
  char uuid[64];
  char *pipeline;
  int64_t nranks;
} run_info;

static int write_summary(FILE *f, sqlite3 *db, int64_t run_id, run_info *ri, char *err,
                         size_t el) {
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT uuid, pipeline, origin, source, format_version,"
                              " cairn_version, created_ns, merged_ns, nranks, naggregators,"
                              " detail, nmetrics, steps, samples, artifacts, executions,"
                              " recovered_ranks, damaged, logged, stored, dropped, rejected FROM"
                              " cairn_run WHERE id=?",
                              run_id, err, el);
  if (rc)
    return rc;
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    cairn__fmt(err, el, "run %" PRId64 " vanished from the database", run_id);
    return CAIRN_ENOTFOUND;
  }
  char t[64];
  cairn__fmt(ri->uuid, sizeof ri->uuid, "%s", col_text(st, 0));
  ri->pipeline = strdup(col_text(st, 1));
  ri->nranks = sqlite3_column_int64(st, 8);
  if (!ri->pipeline) {
    sqlite3_finalize(st);
    return CAIRN_ENOMEM;
  }
  fputs("<section id=\"summary\"><h2>Run</h2>\n<div class=\"cols\"><table class=\"kv\">\n", f);
  kv_row(f, "run UUID", col_text(st, 0));
  kv_row(f, "pipeline", col_text(st, 1));
  fmt_time(t, sizeof t, sqlite3_column_int64(st, 6));
  kv_row(f, "created", t);
  fprintf(f, "<tr><th>ranks</th><td>%" PRId64 " (%" PRId64 " aggregator%s)</td></tr>\n",
          ri->nranks, (int64_t)sqlite3_column_int64(st, 9),
          sqlite3_column_int64(st, 9) == 1 ? "" : "s");
  kv_row_u(f, "steps", sqlite3_column_int64(st, 12));
  kv_row_u(f, "samples", sqlite3_column_int64(st, 13));
  kv_row_u(f, "metrics", sqlite3_column_int64(st, 11));
  fprintf(f, "<tr><th>per-rank values</th><td>%s</td></tr>\n",
          sqlite3_column_int(st, 10) ? "kept" : "statistics only");
  const char *src = col_text(st, 3);
  int64_t recovered = sqlite3_column_int64(st, 16);
  fputs("<tr><th>source</th><td>", f);
  cairn__html_str(f, src);
  if (!strcmp(src, "h5"))
    fputs(" (complete HDF5 run files)", f);
  else if (strstr(src, "wal"))
    fprintf(f, " (<span class=\"warn\">%" PRId64
               " rank%s recovered from the write-ahead log: the job did not finish</span>)",
            recovered, recovered == 1 ? "" : "s");
  fputs("</td></tr>\n", f);
  fputs("</table><table class=\"kv\">\n", f);
  int64_t dropped = sqlite3_column_int64(st, 20), damaged = sqlite3_column_int64(st, 17);
  kv_row_u(f, "records logged", sqlite3_column_int64(st, 18));
  kv_row_u(f, "records stored", sqlite3_column_int64(st, 19));
  fprintf(f, "<tr><th>records dropped</th><td%s>%" PRId64 "</td></tr>\n",
          dropped ? " class=\"warn\"" : "", dropped);
  kv_row_u(f, "records rejected", sqlite3_column_int64(st, 21));
  fprintf(f, "<tr><th>damage reports</th><td%s>%" PRId64 "</td></tr>\n",
          damaged ? " class=\"warn\"" : "", damaged);
  kv_row_u(f, "executions", sqlite3_column_int64(st, 15));
  kv_row_u(f, "artifacts", sqlite3_column_int64(st, 14));
  kv_row(f, "merged from", col_text(st, 2));
  fmt_time(t, sizeof t, sqlite3_column_int64(st, 7));
  kv_row(f, "merged", t);
  fprintf(f, "<tr><th>format</th><td>v%d, written by cairn ", sqlite3_column_int(st, 4));
  cairn__html_str(f, col_text(st, 5));
  fputs("</td></tr>\n</table></div>\n", f);
  sqlite3_finalize(st);

  /* Hosts. */
  rc = cairn_db_query_run(db, &st,
                          "SELECT hostname, rank FROM cairn_rank WHERE run_id=?"
                          " ORDER BY hostname, rank",
                          run_id, err, el);
  if (rc)
    return rc;
  group g;
  group_table(f, &g, ri->nranks,
              "<h3>Hosts</h3>\n<table class=\"list\"><tr><th>host</th><th></th><th>ranks</th>"
              "</tr>\n");
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = group_add(f, &g, col_text(st, 0), "", sqlite3_column_int(st, 1));
  group_table_end(f, &g, NULL);
  sqlite3_finalize(st);
  if (rc)
    return rc;

  /* Params, one row per (key, value) with the ranks that logged it. */
  rc = cairn_db_query_run(db, &st,
                          "SELECT key, type, int_value, double_value, string_value, rank"
                          " FROM cairn_param WHERE run_id=? ORDER BY key, type, int_value,"
                          " double_value, string_value, rank",
                          run_id, err, el);
  if (rc)
    return rc;
  group_table(f, &g, ri->nranks,
              "<h3>Params</h3>\n<table class=\"list\"><tr><th>key</th><th>value</th>"
              "<th>ranks</th></tr>\n");
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    char num[64];
    const char *val = num;
    switch (sqlite3_column_int(st, 1)) {
    case CAIRN_H5_PARAM_INT64:
      cairn__fmt(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, 2));
      break;
    case CAIRN_H5_PARAM_DOUBLE:
      cairn__fmt(num, sizeof num, "%.17g", sqlite3_column_double(st, 3));
      break;
    case CAIRN_H5_PARAM_BOOL:
      cairn__fmt(num, sizeof num, "%s", sqlite3_column_int64(st, 2) ? "true" : "false");
      break;
    default:
      val = col_text(st, 4);
    }
    rc = group_add(f, &g, col_text(st, 0), val, sqlite3_column_int(st, 5));
  }
  group_table_end(f, &g, "none logged");
  sqlite3_finalize(st);
  if (rc)
    return rc;

  /* Run metadata: the keys people look for first, then the rest. */
  rc = cairn_db_query_run(db, &st,
                          "SELECT key, value, rank FROM cairn_kv WHERE run_id=? ORDER BY"
                          " CASE key WHEN 'cmdline' THEN 0 WHEN 'user' THEN 1"
                          " WHEN 'hostname' THEN 2 WHEN 'git.commit' THEN 3"
                          " WHEN 'git.branch' THEN 4 WHEN 'git.dirty' THEN 5"
                          " WHEN 'git.root' THEN 6 ELSE 100 END, key, value, rank",
                          run_id, err, el);
  if (rc)
    return rc;
  group_table(f, &g, ri->nranks,
              "<h3>Metadata</h3>\n<table class=\"list\"><tr><th>key</th><th>value</th>"
              "<th>ranks</th></tr>\n");
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = group_add(f, &g, col_text(st, 0), col_text(st, 1), sqlite3_column_int(st, 2));
  group_table_end(f, &g, "none recorded");
  sqlite3_finalize(st);
  if (rc)
    return rc;

  /* Accounting per rank and channel. */
  rc = cairn_db_query_run(db, &st,
                          "SELECT rank, channel, logged, stored, dropped, rejected FROM"
                          " cairn_accounting WHERE run_id=? ORDER BY rank, channel",
                          run_id, err, el);
  if (rc)
    return rc;
  fputs("<h3>Accounting</h3>\n<p class=\"note\">Every record a rank logged is either stored "
        "or counted as dropped (ring full) or rejected (invalid); nothing is lost "
        "silently.</p>\n<table class=\"list num\"><tr><th>rank</th><th>channel</th>"
        "<th>logged</th><th>stored</th><th>dropped</th><th>rejected</th></tr>\n",
        f);
  size_t nacct = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int ch = sqlite3_column_int(st, 1);
    int64_t d = sqlite3_column_int64(st, 4);
    fprintf(f,
            "<tr><td>%d</td><td>%s</td><td>%" PRId64 "</td><td>%" PRId64 "</td><td%s>%" PRId64
            "</td><td>%" PRId64 "</td></tr>\n",
            sqlite3_column_int(st, 0), ch == 0 ? "metrics" : ch == 1 ? "control" : "other",
            (int64_t)sqlite3_column_int64(st, 2), (int64_t)sqlite3_column_int64(st, 3),
            d ? " class=\"warn\"" : "", d, (int64_t)sqlite3_column_int64(st, 5));
    nacct++;
  }
  if (!nacct)
    fputs("<tr><td colspan=\"6\" class=\"none\">no counters reached the log</td></tr>\n", f);
  fputs("</table>\n</section>\n", f);
  sqlite3_finalize(st);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Metrics                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct {
  int64_t id;
  char *name;
  size_t name_len;
  int64_t nsteps, first, last;
  double last_mean, last_min, last_max;
  int have_last;
} metric_row;

static void metrics_free(metric_row *m, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(m[i].name);
  free(m);
}

static int load_metric_rows(sqlite3 *db, int64_t run_id, metric_row **out, size_t *nout,
                            char *err, size_t el) {
  sqlite3_stmt *st;
  *out = NULL;
  *nout = 0;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT id, name, nsteps, first_step, last_step, last_mean,"
                              " last_min, last_max, last_count FROM cairn_metric WHERE run_id=?"
                              " ORDER BY name",
                              run_id, err, el);
  if (rc)
    return rc;
  size_t cap = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    if (*nout == cap) {
      cap = cap ? cap * 2 : 16;
      metric_row *m = realloc(*out, cap * sizeof *m);
      if (!m) {
        rc = CAIRN_ENOMEM;
        break;
      }
      *out = m;
    }
    metric_row *m = &(*out)[*nout];
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    m->name_len = (size_t)sqlite3_column_bytes(st, 1);
    m->name = malloc(m->name_len + 1);
    if (!m->name) {
      rc = CAIRN_ENOMEM;
      break;
    }
    if (m->name_len)
      memcpy(m->name, sqlite3_column_text(st, 1), m->name_len);
    m->name[m->name_len] = '\0';
    m->nsteps = sqlite3_column_int64(st, 2);
    m->first = sqlite3_column_int64(st, 3);
    m->last = sqlite3_column_int64(st, 4);
    m->have_last = sqlite3_column_type(st, 5) != SQLITE_NULL;
    m->last_mean = m->have_last ? sqlite3_column_double(st, 5) : NAN;
    m->last_min = sqlite3_column_type(st, 6) != SQLITE_NULL ? sqlite3_column_double(st, 6) : NAN;
    m->last_max = sqlite3_column_type(st, 7) != SQLITE_NULL ? sqlite3_column_double(st, 7) : NAN;
    (*nout)++;
  }
  sqlite3_finalize(st);
  return rc;
}

/*
 * Picks the metrics to draw: all of them, or those named in `list`
 * (comma-separated) in that order. Writes the indices into sel; returns
 * CAIRN_OK or CAIRN_ENOTFOUND naming the first unknown metric.
 */
static int select_metrics(const metric_row *m, size_t n, const char *list, size_t **sel,
                          size_t *nsel, char *err, size_t el) {
  size_t cap = n + 1;
  if (list)
    for (const char *p = list; *p; p++)
      cap += *p == ',';
  *sel = malloc(cap * sizeof **sel);
  *nsel = 0;
  if (!*sel)
    return CAIRN_ENOMEM;
  if (!list) {
    for (size_t i = 0; i < n; i++)
      (*sel)[(*nsel)++] = i;
    return CAIRN_OK;
  }
  for (const char *p = list;;) {
    const char *c = strchr(p, ',');
    size_t len = c ? (size_t)(c - p) : strlen(p);
    if (len) {
      size_t i = 0;
      while (i < n && !(m[i].name_len == len && !memcmp(m[i].name, p, len)))
        i++;
      if (i == n) {
        cairn__fmt(err, el, "the run has no metric named '%.*s'", (int)(len > 200 ? 200 : len),
                   p);
        return CAIRN_ENOTFOUND;
      }
      (*sel)[(*nsel)++] = i;
    }
    if (!c)
      break;
    p = c + 1;
  }
  return CAIRN_OK;
}

/* Bucket b of n rows split into m buckets: rows [lo, hi). */
static void bucket(size_t n, size_t m, size_t b, size_t *lo, size_t *hi) {
  *lo = (size_t)((unsigned long long)b * n / m);
  *hi = (size_t)((unsigned long long)(b + 1) * n / m);
}

static int write_metric(FILE *f, sqlite3 *db, const metric_row *mr, size_t max_points,
                        char *err, size_t el) {
  cairn_db_series s;
  unsigned fields = 1u << CAIRN_DB_F_COUNT | 1u << CAIRN_DB_F_SUM | 1u << CAIRN_DB_F_MIN |
                    1u << CAIRN_DB_F_MAX | 1u << CAIRN_DB_F_RANK_MIN | 1u << CAIRN_DB_F_RANK_MAX;
  int rc = cairn_db_series_load(db, mr->id, INT64_MIN, INT64_MAX, -1, fields, &s, err, el);
  if (rc)
    return rc;
  size_t n = s.n, m = n < max_points ? n : max_points;
  double *buf = malloc((m ? m : 1) * 4 * sizeof *buf);
  if (!buf) {
    cairn_db_series_free(&s);
    return CAIRN_ENOMEM;
  }
  double *x = buf, *mean = buf + m, *lo = buf + 2 * m, *hi = buf + 3 * m;
  for (size_t b = 0; b < m; b++) {
    size_t a, e;
    bucket(n, m, b, &a, &e);
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    size_t k = 0;
    for (size_t i = a; i < e; i++) {
      if (!s.count[i])
        continue;
      double mu = s.sum[i] / s.count[i];
      if (isfinite(mu)) {
        sum += mu;
        k++;
      }
      if (isfinite(s.min[i]) && s.min[i] < mn)
        mn = s.min[i];
      if (isfinite(s.max[i]) && s.max[i] > mx)
        mx = s.max[i];
    }
    x[b] = (double)s.step[a];
    mean[b] = k ? sum / (double)k : NAN;
    lo[b] = k && isfinite(mn) ? mn : NAN;
    hi[b] = k && isfinite(mx) ? mx : NAN;
  }
  fputs("<div class=\"metric\"><h3>", f);
  cairn__html_text(f, mr->name, mr->name_len);
  fprintf(f, "</h3>\n<p class=\"note\">%zu step%s", n, n == 1 ? "" : "s");
  if (n)
    fprintf(f, " (%" PRId64 "\xE2\x80\x93%" PRId64 ")", s.step[0], s.step[n - 1]);
  if (m < n)
    fprintf(f, ", drawn as %zu buckets of about %.3g steps: mean of the means, min of the "
               "minima, max of the maxima",
            m, (double)n / (double)m);
  if (n && s.count[n - 1]) {
    char v[3][40];
    snprintf(v[0], sizeof v[0], "%.6g", s.sum[n - 1] / s.count[n - 1]);
    snprintf(v[1], sizeof v[1], "%.6g", s.min[n - 1]);
    snprintf(v[2], sizeof v[2], "%.6g", s.max[n - 1]);
    fprintf(f, ". Last step: mean %s, min %s (rank %d), max %s (rank %d), %u rank%s", v[0],
            v[1], (int)s.rank_min[n - 1], v[2], (int)s.rank_max[n - 1], s.count[n - 1],
            s.count[n - 1] == 1 ? "" : "s");
  }
  fputs(".</p>\n", f);
  cairn_report_curve c = {m, x, mean, lo, hi};
  cairn__svg_line_chart(f, mr->name, mr->name_len, &c);
  fputs("</div>\n", f);
  free(buf);
  cairn_db_series_free(&s);
  return CAIRN_OK;
}

static int write_metrics(FILE *f, sqlite3 *db, const metric_row *m, const size_t *sel,
                         size_t nsel, size_t max_points, char *err, size_t el) {
  fputs("<section id=\"metrics\"><h2>Metrics</h2>\n<p class=\"note\">Per step: the mean "
        "across ranks (line) and the range from the lowest to the highest rank (band).</p>\n",
        f);
  if (!nsel)
    fputs("<p class=\"none\">The run logged no metrics.</p>\n", f);
  for (size_t i = 0; i < nsel; i++) {
    int rc = write_metric(f, db, &m[sel[i]], max_points, err, el);
    if (rc)
      return rc;
  }
  fputs("</section>\n", f);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* Step times                                                              */
/* ---------------------------------------------------------------------- */

typedef struct {
  int32_t rank;
  char *host;
  double sum, max; /* step durations, seconds */
  double median;   /* NaN when the rank has no step duration */
  uint64_t n;
} rank_steps;

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The k-th smallest of a[0..n) (k < n), reordering a: quickselect. */
static double kth(double *a, size_t n, size_t k) {
  size_t l = 0, r = n - 1;
  while (l < r) {
    double pivot = a[l + (r - l) / 2];
    size_t i = l, j = r;
    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
      if (i <= j) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        if (j == 0)
          break;
        j--;
      }
    }
    if (k <= j)
      r = j;
    else if (k >= i)
      l = i;
    else
      break;
  }
  return a[k];
}

/* Adds one rank's step durations (marker to next marker) to its heatmap row
 * and totals, reading its marker chunks in step order. */
static int rank_durations(sqlite3 *db, int64_t run_id, rank_steps *rs, double *row_sum,
                          uint32_t *row_n, size_t cols, int64_t lo, double span,
                          uint64_t *t_first, uint64_t *t_last, char *err, size_t el) {
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT n, steps, times FROM cairn_step_mark WHERE run_id=? AND"
                              " rank=? ORDER BY step_lo",
                              run_id, err, el);
  if (rc)
    return rc;
  sqlite3_bind_int(st, 2, rs->rank);
  int64_t *sp = NULL;
  uint64_t *tm = NULL;
  size_t cap = 0;
  int have_prev = 0;
  int64_t ps = 0;
  uint64_t pt = 0;
  double *dur = NULL; /* every duration, for the rank's median */
  size_t ndur = 0, capdur = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    size_t k = (size_t)sqlite3_column_int64(st, 0);
    if (k > cap) {
      int64_t *a = realloc(sp, k * sizeof *a);
      if (a)
        sp = a;
      uint64_t *b = a ? realloc(tm, k * sizeof *b) : NULL;
      if (b)
        tm = b;
      if (!a || !b) {
        rc = CAIRN_ENOMEM;
        break;
      }
      cap = k;
    }
    if (cairn_db_chunk_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                              k, 8, 1, sp) ||
        cairn_db_chunk_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                              k, 8, 1, tm)) {
      cairn__fmt(err, el, "rank %d: a step-marker chunk is corrupt", (int)rs->rank);
      rc = CAIRN_ECORRUPT;
      break;
    }
    for (size_t i = 0; i < k; i++) {
      if (!tm[i])
        continue;
      if (!*t_first || tm[i] < *t_first)
        *t_first = tm[i];
      if (tm[i] > *t_last)
        *t_last = tm[i];
      if (have_prev && tm[i] >= pt && sp[i] > ps) {
        double d = (double)(tm[i] - pt) / 1e9;
        /* Column of step ps: (ps - lo) * cols / span, in integers when that
         * cannot overflow (in doubles, 29/200*200 is 28.999...). */
        uint64_t off = (uint64_t)ps - (uint64_t)lo, prod;
        size_t c = !__builtin_mul_overflow(off, (uint64_t)cols, &prod) && span < 9e18
                       ? (size_t)(prod / (uint64_t)span)
                       : (size_t)((double)off / span * (double)cols);
        if (c >= cols)
          c = cols - 1;
        row_sum[c] += d;
        row_n[c]++;
        if (ndur == capdur) {
          size_t nc = capdur ? capdur * 2 : 1024;
          double *nd = realloc(dur, nc * sizeof *nd);
          if (!nd) {
            rc = CAIRN_ENOMEM;
            break;
          }
          dur = nd;
          capdur = nc;
        }
        dur[ndur++] = d;
        rs->sum += d;
        rs->n++;
        if (d > rs->max)
          rs->max = d;
      }
      have_prev = 1;
      ps = sp[i];
      pt = tm[i];
    }
  }
  sqlite3_finalize(st);
  /* The median, not the mean, says who is slow: a rank slow at every step
   * is a straggler, one slow checkpoint step is not. */
  rs->median = ndur ? kth(dur, ndur, ndur / 2) : NAN;
  free(dur);
  free(sp);
  free(tm);
  return rc;
}

static int write_steps(FILE *f, sqlite3 *db, int64_t run_id, char *err, size_t el) {
  fputs("<section id=\"steps\"><h2>Step times per rank</h2>\n", f);
  sqlite3_stmt *st;
  int rc = cairn_db_query_run(db, &st,
                              "SELECT min(step_lo), max(step_hi), count(*) FROM cairn_step_mark"
                              " WHERE run_id=?",
                              run_id, err, el);
  if (rc)
    return rc;
  int64_t lo = 0, hi = -1;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 2) > 0) {
    lo = sqlite3_column_int64(st, 0);
    hi = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);

  /* The ranks, as rows. */
  rc = cairn_db_query_run(db, &st,
                          "SELECT rank, hostname FROM cairn_rank WHERE run_id=? ORDER BY rank",
                          run_id, err, el);
  if (rc)
    return rc;
  rank_steps *rs = NULL;
  size_t rows = 0, cap = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    if (rows == cap) {
      cap = cap ? cap * 2 : 16;
      rank_steps *r = realloc(rs, cap * sizeof *r);
      if (!r) {
        rc = CAIRN_ENOMEM;
        break;
      }
      rs = r;
    }
    memset(&rs[rows], 0, sizeof *rs);
    rs[rows].rank = sqlite3_column_int(st, 0);
    rs[rows].host = strdup(col_text(st, 1));
    if (!rs[rows++].host)
      rc = CAIRN_ENOMEM;
  }
  sqlite3_finalize(st);

  if (!rc && (hi < lo || !rows)) {
    fputs("<p class=\"none\">The run has no step markers: no step times to show.</p>\n", f);
  } else if (!rc) {
    double span = (double)hi - (double)lo + 1;
    size_t cols = HEATMAP_MAX_CELLS / rows;
    if (cols > HEATMAP_MAX_COLS)
      cols = HEATMAP_MAX_COLS;
    if (cols < 20)
      cols = 20;
    if ((double)cols > span)
      cols = (size_t)span;
    double *cell = malloc(rows * cols * sizeof *cell);
    uint32_t *cnt = calloc(rows * cols, sizeof *cnt);
    int32_t *row_rank = malloc(rows * sizeof *row_rank);
    uint64_t t_first = 0, t_last = 0;
    if (!cell || !cnt || !row_rank)
      rc = CAIRN_ENOMEM;
    for (size_t r = 0; !rc && r < rows; r++) {
      row_rank[r] = rs[r].rank;
      for (size_t c = 0; c < cols; c++)
        cell[r * cols + c] = 0;
      rc = rank_durations(db, run_id, &rs[r], cell + r * cols, cnt + r * cols, cols, lo, span,
                          &t_first, &t_last, err, el);
      for (size_t c = 0; c < cols; c++)
        cell[r * cols + c] = cnt[r * cols + c] ? cell[r * cols + c] / cnt[r * cols + c] : NAN;
    }
    if (!rc) {
      /* Who is slow: each rank's median step against the typical rank's
       * (the median of those medians). */
      double *meds = malloc(rows * sizeof *meds);
      size_t nm = 0, slow = SIZE_MAX, fast = SIZE_MAX;
      for (size_t r = 0; meds && r < rows; r++) {
        if (!rs[r].n)
          continue;
        meds[nm++] = rs[r].median;
        if (slow == SIZE_MAX || rs[r].median > rs[slow].median)
          slow = r;
        if (fast == SIZE_MAX || rs[r].median < rs[fast].median)
          fast = r;
      }
      if (meds && nm) {
        qsort(meds, nm, sizeof *meds, cmp_dbl);
        double med = nm % 2 ? meds[nm / 2] : (meds[nm / 2 - 1] + meds[nm / 2]) / 2;
        fprintf(f, "<p class=\"slowest\">Slowest rank: %d (host ", (int)rs[slow].rank);
        cairn__html_str(f, rs[slow].host);
        fputs(") \xE2\x80\x94 median step ", f);
        cairn__html_seconds(f, rs[slow].median);
        fputs(" (mean ", f);
        cairn__html_seconds(f, rs[slow].sum / (double)rs[slow].n);
        fputs(")", f);
        if (nm > 1 && med > 0) {
          double ratio = rs[slow].median / med;
          fprintf(f, ", %.2f\xC3\x97 the typical rank (", ratio);
          cairn__html_seconds(f, med);
          fprintf(f, "); fastest rank %d: ", (int)rs[fast].rank);
          cairn__html_seconds(f, rs[fast].median);
          fputs(ratio >= 1.25 ? ". <span class=\"warn\">A straggler.</span>"
                              : ". No rank stands out.",
                f);
        } else {
          fputs(".", f);
        }
        fputs("</p>\n", f);
      }
      free(meds);
      fprintf(f, "<p class=\"note\">%zu rank%s \xC3\x97 steps %" PRId64 "\xE2\x80\x93%" PRId64
                  " in %zu column%s; a step's duration is the time from its marker to the "
                  "rank's next marker. ",
              rows, rows == 1 ? "" : "s", lo, hi, cols, cols == 1 ? "" : "s");
      if (t_last > t_first) {
        fputs("First to last marker: ", f);
        cairn__html_seconds(f, (double)(t_last - t_first) / 1e9);
        fputs(".", f);
      }
      fputs("</p>\n", f);
      cairn_report_heatmap h = {rows, cols, row_rank, cell, lo, hi};
      cairn__svg_heatmap(f, &h);
    }
    free(cell);
    free(cnt);
    free(row_rank);
  }
  for (size_t r = 0; r < rows; r++)
    free(rs[r].host);
  free(rs);
  if (!rc)
    fputs("</section>\n", f);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Lineage                                                                 */
/* ---------------------------------------------------------------------- */

static int write_lineage(FILE *f, sqlite3 *db, int64_t run_id, char *err, size_t el) {
  cairn_run_view v;
  cairn__view_init(&v);
  int rc = cairn_db_load_lineage(db, run_id, &v, err, el);
  if (rc) {
    cairn__view_free(&v);
    return rc;
  }
  fputs("<section id=\"lineage\"><h2>Lineage</h2>\n", f);
  if (!v.ncontexts && !v.nexecutions && !v.nartifacts) {
    fputs("<p class=\"none\">The run logged no stages, executions or artifacts.</p>\n", f);
  } else {
    size_t names = 0; /* stages by name: each rank logs its own context */
    for (size_t i = 0; i < v.ncontexts; i++) {
      size_t k = 0;
      while (k < i && strcmp(v.contexts[k].name, v.contexts[i].name))
        k++;
      names += k == i;
    }
    fprintf(f,
            "<p class=\"note\">%zu stage%s (%zu context%s across ranks), %zu execution%s, "
            "%zu artifact%s, %zu event%s. Inputs on the left, executions in the middle, "
            "outputs on the right, one band per stage.</p>\n",
            names, names == 1 ? "" : "s", v.ncontexts, v.ncontexts == 1 ? "" : "s",
            v.nexecutions,
            v.nexecutions == 1 ? "" : "s", v.nartifacts, v.nartifacts == 1 ? "" : "s",
            v.nevents, v.nevents == 1 ? "" : "s");
    fputs("<div class=\"scroll\">", f);
    cairn__svg_lineage(f, &v, LINEAGE_MAX_PER_COLUMN);
    fputs("</div>\n<h3>Artifacts</h3>\n<table class=\"list art\"><tr><th>kind</th>"
          "<th>path or URI</th><th>content hash</th><th>bytes</th><th>rank</th></tr>\n",
          f);
    for (size_t i = 0; i < v.nartifacts && i < ARTIFACT_TABLE_MAX; i++) {
      const cairn_h5_artifact_row *a = &v.artifacts[i];
      fprintf(f, "<tr><td>%s</td><td><code>", cairn__report_kind_name(a->kind));
      cairn__html_str(f, a->uri);
      fputs("</code></td><td><code>", f);
      cairn__html_str(f, a->hash && *a->hash ? a->hash : "(not hashed: a URI)");
      fprintf(f, "</code></td><td>%" PRIu64 "</td><td>%d</td></tr>\n", a->size, (int)a->rank);
    }
    if (v.nartifacts > ARTIFACT_TABLE_MAX)
      fprintf(f, "<tr><td colspan=\"5\" class=\"none\">%zu more not listed (see `cairn show`)"
                 "</td></tr>\n",
              v.nartifacts - ARTIFACT_TABLE_MAX);
    fputs("</table>\n", f);
  }
  fputs("</section>\n", f);
  cairn__view_free(&v);
  return CAIRN_OK;
}

/* ---------------------------------------------------------------------- */
/* The page                                                                */
/* ---------------------------------------------------------------------- */

static const char page_css[] =
    "body{font-family:sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;"
    "color:#222;background:#fff;line-height:1.35}\n"
    "h1{font-size:1.5em;margin:18px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:3px;"
    "margin-top:30px}h3{margin:18px 0 6px;font-size:1.05em;word-break:break-all}\n"
    "nav a{margin-right:14px;color:#3b6fd4}\n"
    "table{border-collapse:collapse;margin:4px 0 10px}\n"
    "th,td{text-align:left;vertical-align:top;padding:3px 10px 3px 0;font-size:13px}\n"
    "table.list th{border-bottom:1px solid #ccc}table.list td{border-bottom:1px solid #eee}\n"
    "table.kv th{color:#555;font-weight:normal;white-space:nowrap}\n"
    "table.num td{text-align:right}\n"
    "code{font-family:monospace;font-size:12px;word-break:break-all;white-space:pre-wrap}\n"
    ".cols{display:flex;gap:40px;flex-wrap:wrap}\n"
    ".note{color:#555;font-size:13px;margin:2px 0 6px}.none{color:#888;font-style:italic}\n"
    ".warn{color:#b02a00;font-weight:bold}.slowest{font-size:14px}\n"
    ".scroll{overflow-x:auto}svg{display:block;max-width:100%;height:auto}\n"
    ".lineage{max-width:none}\n"
    "footer{margin-top:40px;color:#777;font-size:12px}\n";

static int write_page(FILE *f, sqlite3 *db, int64_t run_id, const char *db_path,
                      const metric_row *m, const size_t *sel, size_t nsel, size_t max_points,
                      char *err, size_t el) {
  /* The summary is written to memory first: the page's <title> needs the
   * pipeline and UUID it reads. */
  char *sum = NULL;
  size_t sumlen = 0;
  FILE *mf = open_memstream(&sum, &sumlen);
  if (!mf)
    return CAIRN_ENOMEM;
  run_info ri = {{0}, NULL, 0};
  int rc = write_summary(mf, db, run_id, &ri, err, el);
  if (fclose(mf) && !rc)
    rc = CAIRN_ENOMEM;
  if (rc) {
    free(sum);
    free(ri.pipeline);
    return rc;
  }
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"generator\" content=\"cairn report\">\n<title>cairn report: ",
        f);
  cairn__html_str(f, ri.pipeline);
  fprintf(f, " %s</title>\n<style>\n%s</style>\n</head>\n<body>\n<header><h1>cairn report: ",
          ri.uuid, page_css);
  cairn__html_str(f, ri.pipeline);
  fprintf(f,
          "</h1><p class=\"note\">run <code>%s</code></p>\n<nav><a href=\"#summary\">run</a>"
          "<a href=\"#metrics\">metrics</a><a href=\"#steps\">step times</a>"
          "<a href=\"#lineage\">lineage</a></nav></header>\n",
          ri.uuid);
  fwrite(sum, 1, sumlen, f);
  free(sum);
  free(ri.pipeline);
  rc = write_metrics(f, db, m, sel, nsel, max_points, err, el);
  if (!rc)
    rc = write_steps(f, db, run_id, err, el);
  if (!rc)
    rc = write_lineage(f, db, run_id, err, el);
  if (rc)
    return rc;
  char t[64];
  fmt_time(t, sizeof t, (int64_t)time(NULL) * 1000000000);
  fprintf(f, "<footer>Written by cairn %s on %s from the lineage database <code>",
          cairn_version(), t);
  cairn__html_str(f, db_path);
  fputs("</code>. Self-contained: no script, no external resource.</footer>\n</body>\n"
        "</html>\n",
        f);
  return CAIRN_OK;
}

/* Writes the report to a temporary file in the output's directory and
 * renames it over `out`: all of the report or none of it. */
static int write_atomically(const char *out, sqlite3 *db, int64_t run_id, const char *db_path,
                            const metric_row *m, const size_t *sel, size_t nsel,
                            size_t max_points, char *err, size_t el) {
  size_t len = strlen(out);
  char *tmp = malloc(len + 16);
  if (!tmp)
    return CAIRN_ENOMEM;
  const char *slash = strrchr(out, '/');
  size_t dir = slash ? (size_t)(slash - out) + 1 : 0;
  memcpy(tmp, out, dir);
  sprintf(tmp + dir, ".%s.XXXXXX", out + dir);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    cairn__fmt(err, el, "%s: cannot create a file there: %s", out, strerror(errno));
    free(tmp);
    return CAIRN_EIO;
  }
  /* mkstemp makes the file private (0600); a report is an ordinary file. */
  mode_t mask = umask(0);
  umask(mask);
  (void)fchmod(fd, 0666 & ~mask);
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(tmp);
    free(tmp);
    return CAIRN_ENOMEM;
  }
  int rc = write_page(f, db, run_id, db_path, m, sel, nsel, max_points, err, el);
  int werr = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
  if (fclose(f))
    werr = 1;
  if (!rc && werr) {
    cairn__fmt(err, el, "%s: write failed: %s", out, strerror(errno));
    rc = CAIRN_EIO;
  }
  if (!rc && rename(tmp, out)) {
    cairn__fmt(err, el, "%s: cannot rename the report into place: %s", out, strerror(errno));
    rc = CAIRN_EIO;
  }
  if (rc)
    unlink(tmp);
  free(tmp);
  return rc;
}

int cairn_cmd_report(int argc, char **argv) {
  const char *dbopt = NULL, *out = NULL, *run = NULL, *metrics = NULL;
  size_t max_points = DEFAULT_MAX_POINTS;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL, *val = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--db") ||
               !strcmp(a, "--metrics") || !strcmp(a, "--max-points")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "cairn report: %s needs a value (see `cairn report --help`)\n", a);
        return 2;
      }
      val = argv[++i];
    } else if (!strncmp(a, "--output=", 9) || !strncmp(a, "--db=", 5) ||
               !strncmp(a, "--metrics=", 10) || !strncmp(a, "--max-points=", 13)) {
      val = strchr(a, '=') + 1;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "cairn report: unknown option '%s' (see `cairn report --help`)\n", a);
      return 2;
    } else if (run) {
      fprintf(stderr, "cairn report: one run at a time ('%s' and '%s' given)\n", run, a);
      return 2;
    } else {
      run = a;
      continue;
    }
    if (a[1] == 'o' || !strncmp(a, "--output", 8))
      dst = &out;
    else if (!strncmp(a, "--db", 4))
      dst = &dbopt;
    else if (!strncmp(a, "--metrics", 9))
      dst = &metrics;
    if (dst) {
      *dst = val;
      continue;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-' || n < 2 || n > 10000000) {
      fprintf(stderr, "cairn report: --max-points wants a number from 2 to 10000000, not '%s'\n",
              val);
      return 2;
    }
    max_points = (size_t)n;
  }
  if (!run) {
    fprintf(stderr, "cairn report: no run given (see `cairn report --help`)\n");
    return 2;
  }
  if (!out || !*out) {
    fprintf(stderr, "cairn report: no output file: use -o FILE.html\n");
    return 2;
  }
  const char *path = cairn_cli_db_path(dbopt);
  sqlite3 *db = cairn_cli_open_db(CMD, path);
  if (!db)
    return 1;
  char err[1024];
  int64_t run_id = 0;
  int rc = cairn_db_find_run(db, run, &run_id, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn report: %s\n", err);
    cairn_db_close(db);
    return rc == CAIRN_EINVAL && strstr(err, "not a run id") ? 2 : 1;
  }
  metric_row *m = NULL;
  size_t nm = 0, *sel = NULL, nsel = 0;
  rc = load_metric_rows(db, run_id, &m, &nm, err, sizeof err);
  if (!rc)
    rc = select_metrics(m, nm, metrics, &sel, &nsel, err, sizeof err);
  if (!rc)
    rc = write_atomically(out, db, run_id, path, m, sel, nsel, max_points, err, sizeof err);
  if (rc == CAIRN_ENOMEM)
    cairn__fmt(err, sizeof err, "out of memory");
  if (rc)
    fprintf(stderr, "cairn report: %s\n", err);
  free(sel);
  metrics_free(m, nm);
  cairn_db_close(db);
  return rc ? 1 : 0;
}
