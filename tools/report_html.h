/*
 * report_html.h — private to `cairn report`: the HTML and inline-SVG pieces
 * of the report (escaped text, line charts with a min–max band, the step
 * time heatmap, the lineage graph), drawn from plain arrays. Nothing here
 * reads the database; cmd_report.c loads the data and lays out the page.
 *
 * Every byte that comes from a run (names, keys, values, paths, hashes) goes
 * out through cairn__html_text, in text and in attribute values alike, so a
 * metric named <script>...</script> is shown as text and never parsed as
 * markup. Numbers are printed by the functions themselves. Errors of the
 * FILE are left in its error indicator for the caller to check (ferror).
 */
#ifndef CAIRN_TOOLS_REPORT_HTML_H
#define CAIRN_TOOLS_REPORT_HTML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "run_view.h"

/*
 * Writes len bytes of s as HTML text, safe in element content and in
 * quoted attribute values: & < > " ' become entities, C0 control bytes
 * (other than tab and newline) and bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid UTF-8 whatever the run held.
 */
void cairn__html_text(FILE *f, const char *s, size_t len);
/* The same for a NUL-terminated string (NULL prints nothing). */
void cairn__html_str(FILE *f, const char *s);
/* The same, cut to at most max characters (code points) with an ellipsis
 * when longer. */
void cairn__html_str_cut(FILE *f, const char *s, size_t max);

/* Writes a duration in seconds with a unit that fits (ns, µs, ms, s); "–"
 * for NaN. */
void cairn__html_seconds(FILE *f, double s);

/* One metric's curve, already bucketed to at most the points to draw:
 * x is the bucket's step (its first), mean the mean across ranks, lo/hi the
 * min of mins and max of maxes of the bucket. NaN in any of mean, lo, hi
 * leaves a gap. */
typedef struct {
  size_t n;
  const double *x, *mean, *lo, *hi;
} cairn_report_curve;

/* Writes an <svg class="chart"> line chart of c: the mean as a line over a
 * shaded min–max band, axes with tick labels, step on x. title (len bytes,
 * run text) goes into the SVG's <title>. */
void cairn__svg_line_chart(FILE *f, const char *title, size_t title_len,
                           const cairn_report_curve *c);

/* Step times per rank, bucketed along the steps: cell[r * cols + c] is the
 * mean step duration (seconds) of rank row_rank[r] over the steps of column
 * c, NaN where the rank has none. Column c covers steps
 * [step_lo + c*span/cols, step_lo + (c+1)*span/cols) with span =
 * step_hi - step_lo + 1. */
typedef struct {
  size_t rows, cols;
  const int32_t *row_rank;
  const double *cell;
  int64_t step_lo, step_hi;
} cairn_report_heatmap;

/* Writes an <svg class="heatmap"> of h: one row per rank (each a <g
 * class="hm-row">), colour = step duration on a logarithmic scale from the
 * 1st to the 95th percentile of the cells (clipped beyond), with a legend. */
void cairn__svg_heatmap(FILE *f, const cairn_report_heatmap *h);

/* The CMF name of an artifact kind (CAIRN_H5_ARTIFACT_*). */
const char *cairn__report_kind_name(unsigned kind);

/*
 * Writes an <svg class="lineage"> of the run's lineage (v's contexts,
 * executions, artifacts and events): one band per stage name (every rank
 * logs its own context of a stage; they share a band), inputs left,
 * executions in the middle, outputs right, INPUT and OUTPUT edges;
 * artifacts labelled with their kind, short path and short hash (the full
 * ones in a tooltip). At most max_per_column nodes of a kind per band are
 * drawn; the rest are counted in a "+N more" node. Writes nothing when the
 * run has no lineage.
 */
void cairn__svg_lineage(FILE *f, const cairn_run_view *v, size_t max_per_column);

#endif /* CAIRN_TOOLS_REPORT_HTML_H */
