/*
 * cairn_dump.c — prints a run directory the way every cairn tool reads it
 * (io/run_view.h): the HDF5 run files of a finished job, or the write-ahead
 * logs of a job that did not finish, or both combined. Shows the run's
 * identity and state, ranks, params and key/values, step timing with the
 * slowest rank, a per-metric summary across ranks, the accounting, and
 * anything damaged. `--series NAME` prints one metric per step: the
 * statistics across ranks and, with --ranks, every rank's value.
 *
 * Exit codes: 0 read cleanly, 1 read with damage (what could be recovered is
 * printed), 2 usage error or nothing readable.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "run_view.h"
#include "tool_common.h"
#include "util.h"

static int damaged;

static void on_report(void *ctx, const char *msg) {
  (void)ctx;
  damaged = 1;
  fprintf(stderr, "cairn dump: %s\n", msg);
}

/* Stages, then executions and artifacts (the first CAIRN_TOOL_LINEAGE_SHOWN
 * of each, the rest counted), each artifact with its role from its event. */
static void print_lineage(const cairn_run_view *v) {
  if (!v->ncontexts && !v->nexecutions && !v->nartifacts)
    return;
  printf("lineage: %zu stages, %zu executions, %zu artifacts\n", v->ncontexts, v->nexecutions,
         v->nartifacts);
  for (size_t i = 0; i < v->ncontexts; i++) {
    const cairn_h5_context_row *c = &v->contexts[i];
    printf("  stage %" PRIu64 " ", c->id);
    cairn_tool_put_escaped(c->name, strlen(c->name));
    printf(" (pipeline ");
    cairn_tool_put_escaped(c->pipeline, strlen(c->pipeline));
    printf(")\n");
  }
  for (size_t i = 0; i < v->nexecutions && i < CAIRN_TOOL_LINEAGE_SHOWN; i++) {
    const cairn_h5_execution_row *e = &v->executions[i];
    cairn_tool_print_execution(e->id, e->rank, e->type, strlen(e->type), e->name,
                               strlen(e->name), e->command, strlen(e->command), e->properties,
                               strlen(e->properties));
  }
  if (v->nexecutions > CAIRN_TOOL_LINEAGE_SHOWN)
    printf("  ... and %zu more executions\n", v->nexecutions - CAIRN_TOOL_LINEAGE_SHOWN);
  for (size_t i = 0; i < v->nartifacts && i < CAIRN_TOOL_LINEAGE_SHOWN; i++) {
    const cairn_h5_artifact_row *a = &v->artifacts[i];
    int role = 0;
    for (size_t k = 0; k < v->nevents && !role; k++)
      if (v->events[k].artifact_id == a->id)
        role = v->events[k].type;
    cairn_tool_print_artifact(a->id, a->kind, role, a->rank, a->size, a->uri, strlen(a->uri),
                              a->hash, strlen(a->hash), a->properties, strlen(a->properties));
  }
  if (v->nartifacts > CAIRN_TOOL_LINEAGE_SHOWN)
    printf("  ... and %zu more artifacts\n", v->nartifacts - CAIRN_TOOL_LINEAGE_SHOWN);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: cairn dump RUN_DIR [--series METRIC [--ranks]]\n"
          "  Prints a cairn run: HDF5 run files, or the write-ahead log of a job that did\n"
          "  not finish.\n"
          "  --series METRIC  CSV per step: step,count,mean,std,min,rank_min,max,rank_max\n"
          "  --ranks          with --series: one more column per rank (its value)\n"
          "Exit status: 0 clean, 1 damage found (what could be read is printed), 2 error.\n");
}

/* cairn_tool_put_escaped into a buffer, for table columns (truncated,
 * always terminated). */
static const char *escaped(const char *s, char *out, size_t len) {
  size_t o = 0;
  for (; *s && o + 5 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
    else
      out[o++] = (char)c;
  }
  out[o] = '\0';
  return out;
}

static int series(const cairn_run_view *v, const char *name, int ranks) {
  long mi = cairn__view_metric_find(v, name, strlen(name));
  if (mi < 0) {
    fprintf(stderr, "cairn dump: no metric named '%s'\n", name);
    return 2;
  }
  const cairn_view_metric *m = &v->metrics[mi];
  printf("step,count,mean,std,min,rank_min,max,rank_max");
  if (ranks)
    for (size_t c = 0; c < v->ncols; c++)
      printf(",rank%d", v->col_rank[c]);
  putchar('\n');
  for (size_t i = 0; i < m->nsteps; i++) {
    double n = m->count[i], mean = n ? m->sum[i] / n : NAN;
    double var = n > 1 ? (m->sumsq[i] - n * mean * mean) / (n - 1) : 0;
    printf("%" PRId64 ",%u,%.17g,%.17g,%.17g,%d,%.17g,%d", m->step[i], m->count[i], mean,
           var > 0 ? sqrt(var) : 0.0, m->min[i], m->rank_min[i], m->max[i], m->rank_max[i]);
    if (ranks && m->values)
      for (size_t c = 0; c < v->ncols; c++) {
        if (m->samples[i * v->ncols + c])
          printf(",%.17g", m->values[i * v->ncols + c]);
        else
          printf(",");
      }
    putchar('\n');
  }
  return 0;
}

int cairn_tool_dump(int argc, char **argv);

/* `cairn dump` (also installed as cairn-dump). argv[0] is the command name. */
int cairn_tool_dump(int argc, char **argv) {
  const char *dir, *name = NULL;
  int ranks = 0;
  int code = cairn_tool_dump_args(argc, argv, usage, &dir, &name, &ranks);
  if (code >= 0)
    return code;
  cairn_run_file *files;
  size_t nfiles;
  cairn_run_state state;
  char err[1024];
  if (cairn__run_list_files(dir, &files, &nfiles, &state, err, sizeof err) != CAIRN_OK) {
    fprintf(stderr, "cairn dump: %s\n", err);
    return 2;
  }
  size_t nh5 = 0, nwal = 0, ntmp = 0;
  for (size_t i = 0; i < nfiles; i++) {
    nh5 += files[i].kind == CAIRN_FILE_H5;
    nwal += files[i].kind == CAIRN_FILE_WAL;
    ntmp += files[i].kind == CAIRN_FILE_H5_TMP;
  }
  cairn__run_files_free(files, nfiles);

  cairn_run_view v;
  cairn__view_init(&v);
  cairn_run_report rep;
  memset(&rep, 0, sizeof rep);
  rep.fn = on_report;
  int rc = cairn__run_open(dir, &v, &rep);
  if (rc == CAIRN_ENOTFOUND) {
    fprintf(stderr, "cairn dump: %s: no run files (run-g*.h5 or wal-r*.cwal) found\n", dir);
    return 2;
  }
  if (rc != CAIRN_OK) {
    fprintf(stderr, "cairn dump: %s: %s\n", dir, cairn_strerror(rc));
    cairn__view_free(&v);
    return 2;
  }
  if (name) {
    rc = series(&v, name, ranks);
    cairn__view_free(&v);
    return rc ? rc : damaged;
  }

  static const char *states[] = {"empty", "complete", "write-ahead log only (the job is "
                                                      "running or did not finish)",
                                 "HDF5 files and write-ahead logs (a job that did not finish)"};
  printf("run directory: %s\n", dir);
  printf("state: %s; %zu HDF5 file%s, %zu log segment%s%s\n", states[state], nh5,
         nh5 == 1 ? "" : "s", nwal, nwal == 1 ? "" : "s",
         ntmp ? ", and an unfinished temporary file" : "");
  char id[37];
  cairn__uuid_format(v.run_id, id);
  printf("run id: %s  cairn %s%s", v.have_run_id ? id : "(unknown)",
         v.cairn_version[0] ? v.cairn_version : "?",
         v.format_version ? "  (run file format v" : "");
  if (v.format_version)
    printf("%u)", (unsigned)v.format_version);
  printf("\n");
  printf("ranks: %zu logged of %u declared", v.ncols, v.nranks);
  if (v.ncols)
    printf("  (rank %d on host %s)", v.col_rank[0], v.ranks[0].hostname);
  printf("\n");

  for (size_t i = 0; i < v.nparams; i++) {
    const cairn_view_param *p = &v.params[i];
    if (cairn__view_param_last(&v, p->key, p->rank) != p || p->rank != v.col_rank[0])
      continue; /* the first rank's last value of each key */
    cairn_tool_print_param(p->key, strlen(p->key), p->type, p->i64, p->f64, p->str,
                           strlen(p->str));
  }
  for (size_t i = 0; i < v.nkv; i++) {
    char suffix[32];
    snprintf(suffix, sizeof suffix, "  (rank %d)", v.kv[i].rank);
    cairn_tool_print_kv(v.kv[i].key, strlen(v.kv[i].key), v.kv[i].value,
                        strlen(v.kv[i].value), suffix);
  }

  print_lineage(&v);

  /* Step timing: mean step time per rank from its step markers. */
  if (v.nmarks > 1 && v.ncols) {
    double worst = 0, sum = 0;
    int worst_rank = -1;
    for (size_t c = 0; c < v.ncols; c++) {
      double t = 0;
      size_t k = 0;
      for (size_t i = 0; i + 1 < v.nmarks; i++) {
        double s = cairn__view_step_seconds(&v, i, c);
        if (s > 0) {
          t += s;
          k++;
        }
      }
      double mean = k ? t / (double)k : 0;
      sum += mean;
      if (mean > worst) {
        worst = mean;
        worst_rank = v.col_rank[c];
      }
    }
    printf("steps: %zu step markers; mean step time %.6f s; slowest rank %d at %.6f s "
           "(%.0f%% above the mean)\n",
           v.nmarks, sum / (double)v.ncols, worst_rank, worst,
           sum > 0 ? (worst / (sum / (double)v.ncols) - 1.0) * 100.0 : 0.0);
  }

  printf("metrics (%zu):\n", v.nmetrics);
  printf("  %-24s %10s %8s %10s %10s %14s %14s %14s\n", "name", "samples", "ranks", "steps",
         "last step", "last mean", "min", "max");
  for (size_t i = 0; i < v.nmetrics; i++) {
    const cairn_view_metric *m = &v.metrics[i];
    uint64_t samples = 0;
    size_t nranks = 0;
    double mn = NAN, mx = NAN;
    for (size_t c = 0; c < v.ncols && m->samples; c++) {
      uint64_t s = 0;
      for (size_t k = 0; k < m->nsteps; k++)
        s += m->samples[k * v.ncols + c];
      samples += s;
      nranks += s > 0;
    }
    for (size_t k = 0; k < m->nsteps; k++) {
      if (!m->samples)
        samples += m->count[k];
      if (isnan(mn) || m->min[k] < mn)
        mn = m->min[k];
      if (isnan(mx) || m->max[k] > mx)
        mx = m->max[k];
    }
    size_t last = m->nsteps ? m->nsteps - 1 : 0;
    char nm[512];
    printf("  %-24s %10" PRIu64 " %8zu %10zu %10" PRId64 " %14.6g %14.6g %14.6g\n",
           escaped(m->name, nm, sizeof nm), samples, nranks, m->nsteps,
           m->nsteps ? m->step[last] : 0,
           m->nsteps && m->count[last] ? m->sum[last] / m->count[last] : NAN, mn, mx);
  }

  uint64_t t[2][4] = {{0}};
  int complete = v.ncols > 0;
  for (size_t c = 0; c < v.ncols; c++) {
    uint64_t r[2][4];
    for (int ch = 0; ch < 2; ch++) {
      const cairn_view_acct *a = &v.acct[c * CAIRN_H5_NCHANNELS + (size_t)ch];
      r[ch][0] = a->logged;
      r[ch][1] = a->stored;
      r[ch][2] = a->dropped;
      r[ch][3] = a->rejected;
    }
    cairn_tool_acct_add(t, &complete, r);
  }
  cairn_tool_print_acct(t, complete);
  cairn__view_free(&v);
  return damaged ? 1 : 0;
}

#ifndef CAIRN_TOOL_MULTI
int main(int argc, char **argv) { return cairn_tool_dump(argc, argv); }
#endif
