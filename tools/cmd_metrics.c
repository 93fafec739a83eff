/*
 * cmd_metrics.c — `cairn metrics RUN`: a run's metrics with their summary,
 * or one metric's series per step (a statistic across ranks, or one rank's
 * values), read from the compressed chunks of the step range asked for and
 * only the fields the statistic needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "cli.h"
#include "db/db_query.h"
#include "tool_common.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: cairn metrics RUN [--name NAME [--stat STAT] [--rank R] [--from STEP]\n"
          "                         [--to STEP]] [--db PATH] [--json | --csv]\n"
          "  Without --name: the run's metrics with their summary (steps, samples,\n"
          "  the last step's mean, min and max across ranks).\n"
          "  With --name: the metric's series, one value per step.\n"
          "  RUN          a run UUID or a unique prefix of it (at least 4 hex digits)\n"
          "  --name NAME  the metric (exact name)\n"
          "  --stat STAT  across ranks: mean (default; sum/count), min, max, std (sample\n"
          "               standard deviation across ranks; 0 when fewer than 2 samples),\n"
          "               count (ranks with a sample), sum\n"
          "  --rank R     rank R's own value per step instead (runs merged with per-rank\n"
          "               detail); a step where the rank logged nothing is empty (null in\n"
          "               JSON); --stat count gives its number of samples\n"
          "  --from STEP, --to STEP   only the steps in [FROM, TO]\n"
          "  --db PATH    the database (default $CAIRN_DB, else ./cairn.db)\n"
          "  --json, --csv  machine-readable output\n"
          "Exit status: 0 success, 1 a problem (no such run, metric or rank; the\n"
          "database cannot be read), 2 usage error.\n");
}

enum { ST_MEAN, ST_MIN, ST_MAX, ST_STD, ST_COUNT, ST_SUM };
static const char *const stat_names[] = {"mean", "min", "max", "std", "count", "sum"};

static int parse_step(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (!*s || *end || errno)
    return 0;
  *v = (int64_t)x;
  return 1;
}

/* Prints a double: %.17g when finite, else empty (text, CSV) or null (JSON). */
static void put_num(double d, int json) {
  if (isfinite(d))
    printf("%.17g", d);
  else if (json)
    printf("null");
}

static int list_metrics(sqlite3 *db, const char *uuid, int64_t run_id, cairn_out_format fmt) {
  cairn_dbq_metric *m;
  size_t n;
  char err[1024];
  int rc = cairn_dbq_metrics(db, run_id, &m, &n, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn metrics: %s\n", err);
    return 1;
  }
  if (fmt == CAIRN_OUT_JSON) {
    printf("{\"run\": ");
    cairn_cli_json_str(stdout, uuid);
    printf(", \"metrics\": [");
    for (size_t i = 0; i < n; i++) {
      printf("%s\n  {\"name\": ", i ? "," : "");
      cairn_cli_json_str(stdout, m[i].name);
      printf(", \"steps\": %" PRId64 ", \"first_step\": ", m[i].nsteps);
      if (m[i].nsteps)
        printf("%" PRId64 ", \"last_step\": %" PRId64, m[i].first_step, m[i].last_step);
      else
        printf("null, \"last_step\": null");
      printf(", \"samples\": %" PRId64 ", \"missing\": %" PRId64
             ", \"per_rank\": %s, \"last_count\": %" PRId64 ", \"last_mean\": ",
             m[i].samples, m[i].missing, m[i].detail ? "true" : "false", m[i].last_count);
      put_num(m[i].last_mean, 1);
      printf(", \"last_min\": ");
      put_num(m[i].last_min, 1);
      printf(", \"last_max\": ");
      put_num(m[i].last_max, 1);
      printf("}");
    }
    printf("%s]}\n", n ? "\n" : "");
  } else if (fmt == CAIRN_OUT_CSV) {
    printf("name,steps,first_step,last_step,samples,missing,per_rank,last_count,last_mean,"
           "last_min,last_max\n");
    for (size_t i = 0; i < n; i++) {
      cairn_cli_csv_str(stdout, m[i].name);
      printf(",%" PRId64 ",", m[i].nsteps);
      if (m[i].nsteps)
        printf("%" PRId64 ",%" PRId64, m[i].first_step, m[i].last_step);
      else
        printf(",");
      printf(",%" PRId64 ",%" PRId64 ",%d,%" PRId64 ",", m[i].samples, m[i].missing,
             m[i].detail ? 1 : 0, m[i].last_count);
      put_num(m[i].last_mean, 0);
      putchar(',');
      put_num(m[i].last_min, 0);
      putchar(',');
      put_num(m[i].last_max, 0);
      putchar('\n');
    }
  } else if (!n) {
    printf("run %s has no metrics\n", uuid);
  } else {
    size_t w = 4;
    for (size_t i = 0; i < n; i++) {
      size_t k = cairn_dbq_esc_width(m[i].name);
      w = k > w ? k : w;
    }
    w = w > 48 ? 48 : w;
    printf("%-*s %8s %10s %10s %7s  %-12s %-12s %s\n", (int)w, "NAME", "STEPS", "LAST STEP",
           "SAMPLES", "MISSING", "LAST MEAN", "LAST MIN", "LAST MAX");
    for (size_t i = 0; i < n; i++) {
      char a[40], b[40], c[40];
      cairn_tool_put_escaped(m[i].name, strlen(m[i].name));
      for (size_t k = cairn_dbq_esc_width(m[i].name); k < w; k++)
        putchar(' ');
      printf(" %8" PRId64 " ", m[i].nsteps);
      if (m[i].nsteps)
        printf("%10" PRId64, m[i].last_step);
      else
        printf("%10s", "-");
      printf(" %10" PRId64 " %7" PRId64 "  %-12s %-12s %s\n", m[i].samples, m[i].missing,
             isfinite(m[i].last_mean) ? (snprintf(a, sizeof a, "%.6g", m[i].last_mean), a) : "-",
             isfinite(m[i].last_min) ? (snprintf(b, sizeof b, "%.6g", m[i].last_min), b) : "-",
             isfinite(m[i].last_max) ? (snprintf(c, sizeof c, "%.6g", m[i].last_max), c) : "-");
    }
  }
  cairn_dbq_metrics_free(m, n);
  return 0;
}

static unsigned stat_fields(int stat) {
  switch (stat) {
  case ST_MEAN: return 1u << CAIRN_DB_F_COUNT | 1u << CAIRN_DB_F_SUM;
  case ST_STD:
    return 1u << CAIRN_DB_F_COUNT | 1u << CAIRN_DB_F_SUM | 1u << CAIRN_DB_F_SUMSQ;
  case ST_MIN: return 1u << CAIRN_DB_F_MIN;
  case ST_MAX: return 1u << CAIRN_DB_F_MAX;
  case ST_COUNT: return 1u << CAIRN_DB_F_COUNT;
  default: return 1u << CAIRN_DB_F_SUM;
  }
}

/* The statistic at row i (NaN where there is none). */
static double stat_value(const cairn_db_series *s, size_t i, int stat, int rank) {
  if (rank >= 0) {
    if (stat == ST_COUNT)
      return s->samples[i];
    return s->samples[i] ? s->values[i] : NAN;
  }
  double n = stat == ST_MIN || stat == ST_MAX || stat == ST_SUM ? 0 : s->count[i];
  switch (stat) {
  case ST_MEAN: return n > 0 ? s->sum[i] / n : NAN;
  case ST_STD: {
    /* The same formula as `cairn dump --series` (sample variance). */
    double mean = n > 0 ? s->sum[i] / n : NAN;
    double var = n > 1 ? (s->sumsq[i] - n * mean * mean) / (n - 1) : 0;
    return var > 0 ? sqrt(var) : 0.0;
  }
  case ST_MIN: return s->min[i];
  case ST_MAX: return s->max[i];
  case ST_COUNT: return n;
  default: return s->sum[i];
  }
}

static int print_series(sqlite3 *db, const char *uuid, int64_t run_id, const char *name,
                        int stat, int rank, int has_from, int64_t from, int has_to, int64_t to,
                        cairn_out_format fmt) {
  char err[1024];
  cairn_dbq_metric m;
  int rc = cairn_dbq_metric_find(db, run_id, name, &m, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn metrics: %s\n", err);
    return 1;
  }
  if (rank >= 0 && !m.detail) {
    fprintf(stderr,
            "cairn metrics: metric '%s' of run %s has no per-rank values (the run was "
            "written without per-rank detail); use --stat across ranks\n",
            name, uuid);
    free(m.name);
    return 1;
  }
  cairn_db_series s;
  rc = cairn_db_series_load(db, m.id, has_from ? from : INT64_MIN, has_to ? to : INT64_MAX,
                            rank, rank >= 0 ? 0 : stat_fields(stat), &s, err, sizeof err);
  if (rc) {
    if (rc == CAIRN_ENOTFOUND)
      fprintf(stderr, "cairn metrics: run %s has no rank %d with values of '%s'\n", uuid, rank,
              name);
    else
      fprintf(stderr, "cairn metrics: %s\n", err);
    free(m.name);
    return 1;
  }
  const char *col = rank >= 0 ? (stat == ST_COUNT ? "samples" : "value") : stat_names[stat];
  int integral = stat == ST_COUNT;
  if (fmt == CAIRN_OUT_JSON) {
    printf("{\"run\": ");
    cairn_cli_json_str(stdout, uuid);
    printf(", \"metric\": ");
    cairn_cli_json_str(stdout, name);
    printf(", \"stat\": \"%s\", \"rank\": ", stat_names[stat]);
    if (rank >= 0)
      printf("%d", rank);
    else
      printf("null");
    printf(", \"from\": ");
    if (has_from)
      printf("%" PRId64, from);
    else
      printf("null");
    printf(", \"to\": ");
    if (has_to)
      printf("%" PRId64, to);
    else
      printf("null");
    printf(", \"n\": %zu,\n\"steps\": [", s.n);
    for (size_t i = 0; i < s.n; i++)
      printf("%s%" PRId64, i ? ", " : "", s.step[i]);
    printf("],\n\"values\": [");
    for (size_t i = 0; i < s.n; i++) {
      if (i)
        printf(", ");
      put_num(stat_value(&s, i, stat, rank), 1);
    }
    printf("]}\n");
  } else {
    int csv = fmt == CAIRN_OUT_CSV;
    if (csv) {
      printf("step,%s\n", col);
    } else {
      printf("# run %s, metric ", uuid);
      cairn_tool_put_escaped(name, strlen(name));
      if (rank >= 0)
        printf(", rank %d", rank);
      printf(", %s; %zu step%s\n", rank >= 0 ? col : stat_names[stat], s.n,
             s.n == 1 ? "" : "s");
      printf("%12s  %s\n", "STEP", col);
    }
    for (size_t i = 0; i < s.n; i++) {
      double v = stat_value(&s, i, stat, rank);
      if (csv)
        printf("%" PRId64 ",", s.step[i]);
      else
        printf("%12" PRId64 "  ", s.step[i]);
      if (integral)
        printf("%.0f", v);
      else
        put_num(v, 0);
      putchar('\n');
    }
  }
  cairn_db_series_free(&s);
  free(m.name);
  return 0;
}

int cairn_cmd_metrics(int argc, char **argv) {
  const char *dbopt = NULL, *run = NULL, *name = NULL, *stat_s = NULL;
  cairn_out_format fmt = CAIRN_OUT_TEXT;
  int rank = -1, has_from = 0, has_to = 0;
  int64_t from = 0, to = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int last = i + 1 >= argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--json")) {
      fmt = CAIRN_OUT_JSON;
    } else if (!strcmp(a, "--csv")) {
      fmt = CAIRN_OUT_CSV;
    } else if (!strncmp(a, "--db=", 5)) {
      dbopt = a + 5;
    } else if (!strcmp(a, "--db") || !strcmp(a, "--name") || !strcmp(a, "--stat") ||
               !strcmp(a, "--rank") || !strcmp(a, "--from") || !strcmp(a, "--to")) {
      if (last) {
        fprintf(stderr, "cairn metrics: %s needs a value (see `cairn metrics --help`)\n", a);
        return 2;
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--db")) {
        dbopt = v;
      } else if (!strcmp(a, "--name")) {
        name = v;
      } else if (!strcmp(a, "--stat")) {
        stat_s = v;
      } else if (!strcmp(a, "--rank")) {
        int64_t r;
        if (!parse_step(v, &r) || r < 0 || r > INT32_MAX) {
          fprintf(stderr, "cairn metrics: --rank '%s': expected a rank number (0, 1, ...)\n",
                  v);
          return 2;
        }
        rank = (int)r;
      } else {
        int64_t *dst = !strcmp(a, "--from") ? &from : &to;
        if (!parse_step(v, dst)) {
          fprintf(stderr, "cairn metrics: %s '%s': expected a step number\n", a, v);
          return 2;
        }
        *(!strcmp(a, "--from") ? &has_from : &has_to) = 1;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "cairn metrics: unknown option '%s' (see `cairn metrics --help`)\n", a);
      return 2;
    } else if (run) {
      fprintf(stderr, "cairn metrics: one run only ('%s' and '%s')\n", run, a);
      return 2;
    } else {
      run = a;
    }
  }
  if (!run) {
    fprintf(stderr, "cairn metrics: no run given (see `cairn metrics --help`)\n");
    return 2;
  }
  int stat = ST_MEAN;
  if (stat_s) {
    size_t k = 0;
    while (k < sizeof stat_names / sizeof *stat_names && strcmp(stat_s, stat_names[k]))
      k++;
    if (k == sizeof stat_names / sizeof *stat_names) {
      fprintf(stderr,
              "cairn metrics: --stat '%s': expected mean, min, max, std, count or sum\n",
              stat_s);
      return 2;
    }
    stat = (int)k;
  }
  if (!name && (stat_s || rank >= 0 || has_from || has_to)) {
    fprintf(stderr, "cairn metrics: --stat, --rank, --from and --to need --name\n");
    return 2;
  }
  if (rank >= 0 && stat != ST_MEAN && stat != ST_COUNT) {
    fprintf(stderr, "cairn metrics: with --rank, --stat is mean (the rank's value) or count "
                    "(its samples)\n");
    return 2;
  }
  if (has_from && has_to && from > to) {
    fprintf(stderr, "cairn metrics: --from %" PRId64 " is after --to %" PRId64 "\n", from, to);
    return 2;
  }
  sqlite3 *db = cairn_cli_open_db("metrics", cairn_cli_db_path(dbopt));
  if (!db)
    return 1;
  char err[1024];
  int64_t run_id;
  int rc = cairn_db_find_run(db, run, &run_id, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn metrics: %s\n", err);
    cairn_db_close(db);
    return rc == CAIRN_EINVAL && strstr(err, "not a run id") ? 2 : 1;
  }
  cairn_dbq_run r;
  rc = cairn_dbq_run_load(db, run_id, &r, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn metrics: %s\n", err);
    cairn_db_close(db);
    return 1;
  }
  if (name)
    rc = print_series(db, r.uuid, run_id, name, stat, rank, has_from, from, has_to, to, fmt);
  else
    rc = list_metrics(db, r.uuid, run_id, fmt);
  cairn_dbq_run_free(&r);
  cairn_db_close(db);
  return rc;
}
