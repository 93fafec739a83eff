/*
 * report_html.c — private to `cairn report`: escaped HTML text and the
 * report's inline SVG (line charts with a min–max band, the step-time
 * heatmap, the lineage graph). See report_html.h for the contract.
 *
 * The SVG is plain markup with presentation attributes: no script, no
 * external reference, no xmlns URL (inline SVG in HTML needs none), so the
 * page renders under a Content-Security-Policy of default-src 'none'.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* ---------------------------------------------------------------------- */
/* Text                                                                    */
/* ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (2..4), or 0 if the bytes there
 * are not one (overlong forms, surrogates and > U+10FFFF are rejected). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e) {
  unsigned c = p[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF)
      return 0;
  return n;
}

/* Bytes taken by one displayed character at p (an invalid byte counts as
 * one character: it is shown as U+FFFD). */
static size_t char_bytes(const unsigned char *p, const unsigned char *e) {
  size_t n = *p < 0x80 ? 1 : utf8_seq(p, e);
  return n ? n : 1;
}

void cairn__html_text(FILE *f, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *e = p + len;
  while (p < e) {
    unsigned c = *p;
    if (c < 0x80) {
      switch (c) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      case '\'': fputs("&#39;", f); break;
      default:
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
          fputs(REPLACEMENT, f);
        else
          fputc((int)c, f);
      }
      p++;
      continue;
    }
    size_t n = utf8_seq(p, e);
    if (!n) {
      fputs(REPLACEMENT, f);
      p++;
    } else {
      fwrite(p, 1, n, f);
      p += n;
    }
  }
}

void cairn__html_str(FILE *f, const char *s) {
  if (s)
    cairn__html_text(f, s, strlen(s));
}

void cairn__html_str_cut(FILE *f, const char *s, size_t max) {
  if (!s)
    return;
  const unsigned char *p = (const unsigned char *)s, *e = p + strlen(s);
  size_t chars = 0, keep = 0;
  for (const unsigned char *q = p; q < e; q += char_bytes(q, e)) {
    if (chars + 1 == max)
      keep = (size_t)(q - p); /* where the ellipsis goes if it is needed */
    chars++;
  }
  if (chars <= max || max < 1) {
    cairn__html_text(f, s, (size_t)(e - p));
    return;
  }
  cairn__html_text(f, s, keep);
  fputs("\xE2\x80\xA6", f); /* … */
}

void cairn__html_seconds(FILE *f, double s) {
  if (!isfinite(s)) {
    fputs("\xE2\x80\x93", f); /* – */
    return;
  }
  double a = fabs(s);
  if (a == 0)
    fputs("0 s", f);
  else if (a < 1e-6)
    fprintf(f, "%.3g ns", s * 1e9);
  else if (a < 1e-3)
    fprintf(f, "%.3g \xC2\xB5s", s * 1e6);
  else if (a < 1)
    fprintf(f, "%.3g ms", s * 1e3);
  else
    fprintf(f, "%.4g s", s);
}

const char *cairn__report_kind_name(unsigned kind) {
  static const char *const names[] = {"Artifact", "Dataset",      "Model",      "Dataslice",
                                      "Metrics",  "Step_Metrics", "Environment"};
  return kind < sizeof names / sizeof *names ? names[kind] : "Artifact";
}

/* ---------------------------------------------------------------------- */
/* Axes                                                                    */
/* ---------------------------------------------------------------------- */

#define MAX_TICKS 16

/* Round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi], about
 * `want` of them; integer ticks only when `integer`. Returns the count;
 * *step_out is the distance between ticks. */
static size_t nice_ticks(double lo, double hi, int want, int integer, double *t,
                         double *step_out) {
  double span = hi - lo;
  if (!(span > 0) || !isfinite(span)) {
    t[0] = lo;
    *step_out = 1;
    return 1;
  }
  double raw = span / want, mag = pow(10, floor(log10(raw))), r = raw / mag;
  double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  if (integer && step < 1)
    step = 1;
  double k0 = ceil(lo / step - 1e-9);
  size_t n = 0;
  for (int i = 0; n < MAX_TICKS; i++) {
    double v = (k0 + i) * step;
    if (v > hi + step * 1e-9)
      break;
    t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
  }
  *step_out = step;
  return n;
}

/* A tick label: as many decimals as the tick spacing needs. */
static void tick_label(char *buf, size_t len, double v, double step) {
  double a = fabs(v);
  if (a != 0 && (a >= 1e7 || a < 1e-4)) {
    snprintf(buf, len, "%.3g", v);
    return;
  }
  int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  if (dec > 8)
    dec = 8;
  snprintf(buf, len, "%.*f", dec, v);
}

/* ---------------------------------------------------------------------- */
/* Line chart                                                              */
/* ---------------------------------------------------------------------- */

enum { LC_W = 900, LC_H = 270, LC_ML = 76, LC_MR = 18, LC_MT = 26, LC_MB = 42 };

typedef struct {
  double x0, x1, y0, y1;
} frame;

static double fx(const frame *fr, double x) {
  return LC_ML + (x - fr->x0) / (fr->x1 - fr->x0) * (LC_W - LC_ML - LC_MR);
}
static double fy(const frame *fr, double y) {
  return LC_MT + (LC_H - LC_MT - LC_MB) - (y - fr->y0) / (fr->y1 - fr->y0) *
                                              (LC_H - LC_MT - LC_MB);
}

static int point_ok(const cairn_report_curve *c, size_t i) {
  return isfinite(c->x[i]) && isfinite(c->mean[i]) && isfinite(c->lo[i]) &&
         isfinite(c->hi[i]);
}

void cairn__svg_line_chart(FILE *f, const char *title, size_t title_len,
                           const cairn_report_curve *c) {
  frame fr = {INFINITY, -INFINITY, INFINITY, -INFINITY};
  size_t valid = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (!point_ok(c, i))
      continue;
    valid++;
    fr.x0 = fmin(fr.x0, c->x[i]);
    fr.x1 = fmax(fr.x1, c->x[i]);
    fr.y0 = fmin(fr.y0, fmin(c->lo[i], c->mean[i]));
    fr.y1 = fmax(fr.y1, fmax(c->hi[i], c->mean[i]));
  }
  fprintf(f,
          "<svg class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
          "role=\"img\" font-family=\"sans-serif\" font-size=\"11\">\n<title>",
          LC_W, LC_H, LC_W, LC_H);
  cairn__html_text(f, title, title_len);
  fputs("</title>\n", f);
  int pw = LC_W - LC_ML - LC_MR, ph = LC_H - LC_MT - LC_MB;
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fcfcfc\" "
             "stroke=\"#bbb\"/>\n",
          LC_ML, LC_MT, pw, ph);
  if (!valid) {
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#777\">no finite "
               "values</text>\n</svg>\n",
            LC_ML + pw / 2, LC_MT + ph / 2);
    return;
  }
  if (fr.x1 <= fr.x0) {
    fr.x0 -= 0.5;
    fr.x1 += 0.5;
  }
  if (fr.y1 <= fr.y0) {
    double d = fabs(fr.y0) > 0 ? fabs(fr.y0) * 0.1 : 0.5;
    fr.y0 -= d;
    fr.y1 += d;
  } else {
    double d = (fr.y1 - fr.y0) * 0.05;
    fr.y0 -= d;
    fr.y1 += d;
  }
  if (!isfinite(fr.y1 - fr.y0)) { /* values near ±DBL_MAX */
    fr.y0 /= 2;
    fr.y1 /= 2;
  }

  /* Grid and tick labels. */
  double t[MAX_TICKS], step;
  char lab[48];
  size_t nt = nice_ticks(fr.y0, fr.y1, 6, 0, t, &step);
  for (size_t i = 0; i < nt; i++) {
    double y = fy(&fr, t[i]);
    tick_label(lab, sizeof lab, t[i], step);
    fprintf(f,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#333\">%s</text>\n",
            LC_ML, y, LC_ML + pw, y, LC_ML - 6, y + 4, lab);
  }
  nt = nice_ticks(fr.x0, fr.x1, 8, 1, t, &step);
  for (size_t i = 0; i < nt; i++) {
    double x = fx(&fr, t[i]);
    tick_label(lab, sizeof lab, t[i], step);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e6e6e6\"/>"
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#333\">%s</text>\n",
            x, LC_MT, x, LC_MT + ph, x, LC_MT + ph, x, LC_MT + ph + 5, x, LC_MT + ph + 17,
            lab);
  }
  fprintf(f,
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n"
          "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#333\">step</text>\n",
          LC_ML, LC_MT, LC_ML, LC_MT + ph, LC_ML, LC_MT + ph, LC_ML + pw, LC_MT + ph,
          LC_ML + pw / 2, LC_H - 6);

  /* The band and the mean, one path each per run of drawable points (a
   * missing step leaves a gap rather than a line across it). */
  for (int pass = 0; pass < 2; pass++) {
    size_t i = 0;
    while (i < c->n) {
      while (i < c->n && !point_ok(c, i))
        i++;
      size_t a = i;
      while (i < c->n && point_ok(c, i))
        i++;
      if (a == i)
        break;
      if (pass == 0) {
        fputs("<path fill=\"#9ecae1\" fill-opacity=\"0.55\" stroke=\"#9ecae1\" "
              "stroke-width=\"0.5\" d=\"",
              f);
        for (size_t k = a; k < i; k++)
          fprintf(f, "%c%.1f %.1f", k == a ? 'M' : 'L', fx(&fr, c->x[k]), fy(&fr, c->hi[k]));
        for (size_t k = i; k-- > a;)
          fprintf(f, "L%.1f %.1f", fx(&fr, c->x[k]), fy(&fr, c->lo[k]));
        fputs("Z\"/>\n", f);
      } else if (i - a == 1) {
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"#08519c\"/>\n",
                fx(&fr, c->x[a]), fy(&fr, c->mean[a]));
      } else {
        fputs("<path fill=\"none\" stroke=\"#08519c\" stroke-width=\"1.5\" d=\"", f);
        for (size_t k = a; k < i; k++)
          fprintf(f, "%c%.1f %.1f", k == a ? 'M' : 'L', fx(&fr, c->x[k]),
                  fy(&fr, c->mean[k]));
        fputs("\"/>\n", f);
      }
    }
  }

  /* Legend. */
  int lx = LC_ML + pw - 290;
  fprintf(f,
          "<rect x=\"%d\" y=\"8\" width=\"18\" height=\"10\" fill=\"#9ecae1\"/>"
          "<text x=\"%d\" y=\"17\" fill=\"#333\">min\xE2\x80\x93max across ranks</text>"
          "<line x1=\"%d\" y1=\"13\" x2=\"%d\" y2=\"13\" stroke=\"#08519c\" "
          "stroke-width=\"2\"/><text x=\"%d\" y=\"17\" fill=\"#333\">mean across ranks</text>\n"
          "</svg>\n",
          lx, lx + 22, lx + 160, lx + 178, lx + 182);
}

/* ---------------------------------------------------------------------- */
/* Heatmap                                                                 */
/* ---------------------------------------------------------------------- */

enum { HM_ML = 76, HM_PW = 960, HM_MT = 8, HM_LEVELS = 64 };

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* A perceptual dark-to-bright scale (viridis' end points and three stops
 * between): level 0 .. HM_LEVELS-1. */
static void level_rgb(int level, int rgb[3]) {
  static const int stops[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  double t = (double)level / (HM_LEVELS - 1) * 4;
  int k = (int)t;
  if (k >= 4)
    k = 3;
  double u = t - k;
  for (int j = 0; j < 3; j++)
    rgb[j] = (int)lround(stops[k][j] + (stops[k + 1][j] - stops[k][j]) * u);
}

/* Level of a duration on a logarithmic scale from lo to hi (both > 0):
 * durations spread over decades, and a rank twice as slow as the others
 * is the same step of colour whether steps take microseconds or seconds. */
static int value_level(double v, double lo, double hi) {
  double u = v > 0 ? log(v / lo) / log(hi / lo) : 0;
  if (!(u > 0))
    return 0;
  if (u >= 1)
    return HM_LEVELS - 1;
  return (int)(u * (HM_LEVELS - 1) + 0.5);
}

void cairn__svg_heatmap(FILE *f, const cairn_report_heatmap *h) {
  size_t ncell = h->rows * h->cols, nv = 0;
  double *sorted = malloc((ncell ? ncell : 1) * sizeof *sorted);
  if (!sorted) {
    fputs("<p>(out of memory drawing the heatmap)</p>\n", f);
    return;
  }
  for (size_t i = 0; i < ncell; i++)
    if (isfinite(h->cell[i]))
      sorted[nv++] = h->cell[i];
  qsort(sorted, nv, sizeof *sorted, cmp_double);
  /* The 1st to 95th percentile of the cells (positive ones: a duration
   * is), so that a few slow steps (warm-up, a checkpoint, a noisy
   * neighbour) saturate instead of flattening every other cell into one
   * colour; a rank that is slow all along still stands out. */
  size_t z = 0;
  while (z < nv && !(sorted[z] > 0))
    z++;
  double lo = z < nv ? sorted[z + (size_t)((double)(nv - z - 1) * 0.01)] : 1e-6;
  double hi = z < nv ? sorted[z + (size_t)((double)(nv - z - 1) * 0.95 + 0.5)] : 1e-3;
  int clipped_lo = nv && sorted[0] < lo, clipped_hi = nv && sorted[nv - 1] > hi;
  free(sorted);
  if (!(hi > lo * 1.000001))
    hi = lo * 1.01;

  double rh = h->rows ? 480.0 / (double)h->rows : 20;
  rh = rh > 22 ? 22 : rh < 3 ? 3 : rh;
  double cw = h->cols ? (double)HM_PW / (double)h->cols : HM_PW;
  double ph = rh * (double)h->rows;
  int height = (int)ceil(HM_MT + ph + 36 + 52);
  int width = HM_ML + HM_PW + 20;
  fprintf(f,
          "<svg class=\"heatmap\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
          "font-family=\"sans-serif\" font-size=\"11\">\n<title>step time per rank</title>\n",
          width, height, width, height);
  int label_every = rh >= 10 ? 1 : (int)ceil(10.0 / rh);
  for (size_t r = 0; r < h->rows; r++) {
    double y = HM_MT + rh * (double)r, sum = 0;
    size_t n = 0;
    for (size_t c = 0; c < h->cols; c++)
      if (isfinite(h->cell[r * h->cols + c])) {
        sum += h->cell[r * h->cols + c];
        n++;
      }
    fprintf(f, "<g class=\"hm-row\"><title>rank %d: mean step ", (int)h->row_rank[r]);
    cairn__html_seconds(f, n ? sum / (double)n : NAN);
    fputs("</title>", f);
    /* Cells of one colour next to each other are one rectangle: the SVG of
     * a thousand ranks stays small. */
    size_t c = 0;
    while (c < h->cols) {
      double v = h->cell[r * h->cols + c];
      int lev = isfinite(v) ? value_level(v, lo, hi) : -1;
      size_t a = c;
      while (c < h->cols) {
        double w = h->cell[r * h->cols + c];
        int l2 = isfinite(w) ? value_level(w, lo, hi) : -1;
        if (l2 != lev)
          break;
        c++;
      }
      int rgb[3] = {238, 238, 238};
      if (lev >= 0)
        level_rgb(lev, rgb);
      fprintf(f,
              "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
              "fill=\"#%02x%02x%02x\"/>",
              HM_ML + cw * (double)a, y, cw * (double)(c - a) + 0.3, rh + 0.3, rgb[0], rgb[1],
              rgb[2]);
    }
    if ((int)r % label_every == 0)
      fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#333\">rank %d</text>",
              HM_ML - 6, y + rh / 2 + 4, (int)h->row_rank[r]);
    fputs("</g>\n", f);
  }
  /* Step axis. */
  double span = (double)h->step_hi - (double)h->step_lo + 1, t[MAX_TICKS], step;
  char lab[48];
  size_t nt = nice_ticks((double)h->step_lo, (double)h->step_hi, 8, 1, t, &step);
  double ay = HM_MT + ph;
  fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#333\"/>\n", HM_ML,
          ay, HM_ML + HM_PW, ay);
  for (size_t i = 0; i < nt; i++) {
    double x = HM_ML + (t[i] - (double)h->step_lo) / span * HM_PW;
    tick_label(lab, sizeof lab, t[i], step);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333\">%s</text>\n",
            x, ay, x, ay + 5, x, ay + 17, lab);
  }
  fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333\">step</text>\n",
          HM_ML + HM_PW / 2, ay + 31);

  /* Legend: the colour scale with its ends and middle labelled. */
  double ly = ay + 42, lw = 320.0 / HM_LEVELS;
  for (int l = 0; l < HM_LEVELS; l++) {
    int rgb[3];
    level_rgb(l, rgb);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"10\" fill=\"#%02x%02x%02x\"/>",
            HM_ML + lw * l, ly, lw + 0.3, rgb[0], rgb[1], rgb[2]);
  }
  fprintf(f, "\n<text x=\"%d\" y=\"%.1f\" fill=\"#333\">%s", HM_ML, ly + 22,
          clipped_lo ? "\xE2\x89\xA4 " : "");
  cairn__html_seconds(f, lo);
  fprintf(f, "</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333\">", HM_ML + 160.0,
          ly + 22);
  cairn__html_seconds(f, sqrt(lo * hi));
  fprintf(f, "</text><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#333\">%s",
          HM_ML + 320, ly + 22, clipped_hi ? "\xE2\x89\xA5 " : "");
  cairn__html_seconds(f, hi);
  fprintf(f,
          "</text><rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"#eeeeee\" "
          "stroke=\"#ccc\"/><text x=\"%d\" y=\"%.1f\" fill=\"#333\">no marker</text>"
          "<text x=\"%d\" y=\"%.1f\" fill=\"#333\">colour = mean step duration of the "
          "rank over the column's steps (log scale)</text>\n</svg>\n",
          HM_ML + 350, ly, HM_ML + 368, ly + 9, HM_ML + 450, ly + 9);
}

/* ---------------------------------------------------------------------- */
/* Lineage graph                                                           */
/* ---------------------------------------------------------------------- */

enum {
  LG_IN_X = 16, LG_ART_W = 300, LG_EX_X = 404, LG_EX_W = 236, LG_OUT_X = 724,
  LG_W = 1040, LG_NODE_H = 34, LG_ROW = 44, LG_BAND_HEAD = 28, LG_GAP = 12, LG_TOP = 30
};

typedef struct {
  const char *name;      /* stage name; NULL for the band of no stage        */
  size_t *ex, nex;       /* indices into v->executions                       */
  size_t *in, nin;       /* indices into v->artifacts                        */
  size_t *out, nout;
  int run_node;          /* band holds events outside any known execution   */
} band;

typedef struct {
  uint64_t id;
  size_t idx;
} id_idx;

static int cmp_id(const void *a, const void *b) {
  uint64_t x = ((const id_idx *)a)->id, y = ((const id_idx *)b)->id;
  return x < y ? -1 : x > y;
}

static long lookup(const id_idx *t, size_t n, uint64_t id) {
  id_idx key = {id, 0};
  const id_idx *hit = bsearch(&key, t, n, sizeof *t, cmp_id);
  return hit ? (long)hit->idx : -1;
}

static int push(size_t **a, size_t *n, size_t v) {
  size_t *p = realloc(*a, (*n + 1) * sizeof *p);
  if (!p)
    return -1;
  p[(*n)++] = v;
  *a = p;
  return 0;
}

/* The last path component of a path, or the whole of a URI ("s3://..."). */
static const char *short_name(const char *uri) {
  if (!uri || strstr(uri, "://"))
    return uri ? uri : "";
  const char *s = strrchr(uri, '/');
  return s && s[1] ? s + 1 : uri;
}

static void short_hash(FILE *f, const char *hash) {
  if (!hash || !*hash) {
    fputs("not hashed (URI)", f);
    return;
  }
  if (!strncmp(hash, "error", 5)) {
    fputs("hash failed", f);
    return;
  }
  const char *colon = strrchr(hash, ':');
  const char *hex = colon ? colon + 1 : hash;
  fputs("sha256 ", f);
  cairn__html_text(f, hex, strnlen(hex, 12));
}

static void artifact_node(FILE *f, const cairn_h5_artifact_row *a, int x, int y) {
  fputs("<g class=\"artifact\"><title>", f);
  cairn__html_str(f, cairn__report_kind_name(a->kind));
  fputs(" ", f);
  cairn__html_str(f, a->uri);
  fputs("\n", f);
  cairn__html_str(f, a->hash);
  fprintf(f,
          "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"4\" "
          "fill=\"#fff7e6\" stroke=\"#d48806\"/><text x=\"%d\" y=\"%d\" fill=\"#222\">"
          "<tspan font-weight=\"bold\">%s</tspan> ",
          x, y, LG_ART_W, LG_NODE_H, x + 6, y + 14, cairn__report_kind_name(a->kind));
  cairn__html_str_cut(f, short_name(a->uri), 36);
  fprintf(f, "</text><text x=\"%d\" y=\"%d\" fill=\"#666\" font-size=\"10\">", x + 6, y + 28);
  short_hash(f, a->hash);
  fputs("</text></g>\n", f);
}

static void execution_node(FILE *f, const cairn_h5_execution_row *e, int y) {
  fputs("<g class=\"execution\"><title>", f);
  cairn__html_str(f, e ? e->name : "(run)");
  if (e && e->command && *e->command) {
    fputs("\n", f);
    cairn__html_str(f, e->command);
  }
  fprintf(f,
          "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"10\" "
          "fill=\"#e8f0fe\" stroke=\"#3b6fd4\"/><text x=\"%d\" y=\"%d\" fill=\"#222\" "
          "font-weight=\"bold\">",
          LG_EX_X, y, LG_EX_W, LG_NODE_H, LG_EX_X + 8, y + 14);
  cairn__html_str_cut(f, e ? e->name : "(run: outside any execution)", 30);
  fprintf(f, "</text><text x=\"%d\" y=\"%d\" fill=\"#666\" font-size=\"10\">", LG_EX_X + 8,
          y + 28);
  if (e) {
    fprintf(f, "rank %d", (int)e->rank);
    if (e->type && *e->type) {
      fputs(" \xC2\xB7 ", f);
      cairn__html_str_cut(f, e->type, 24);
    }
  }
  fputs("</text></g>\n", f);
}

static void more_node(FILE *f, int x, int y, int w, size_t more) {
  fprintf(f,
          "<g class=\"more\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"4\" "
          "fill=\"#f2f2f2\" stroke=\"#aaa\" stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"%d\" "
          "fill=\"#555\">+%zu more</text></g>\n",
          x, y, w, LG_NODE_H, x + 8, y + 21, more);
}

static void edge(FILE *f, int x1, int y1, int x2, int y2, int input) {
  const char *col = input ? "#2b6cb0" : "#2f855a";
  double xm = (x1 + x2) / 2.0;
  fprintf(f,
          "<path class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\" "
          "d=\"M%d %d C%.1f %d %.1f %d %d %d\"/><polygon fill=\"%s\" "
          "points=\"%d,%d %d,%d %d,%d\"/>\n",
          input ? "edge-input" : "edge-output", col, x1, y1, xm, y1, xm, y2, x2 - 7, y2, col, x2,
          y2, x2 - 8, y2 - 4, x2 - 8, y2 + 4);
}

static size_t shown(size_t n, size_t max) { return n > max ? max : n; }
static size_t column_rows(size_t n, size_t max) { return n > max ? max + 1 : n; }

void cairn__svg_lineage(FILE *f, const cairn_run_view *v, size_t max) {
  if (!v->nexecutions && !v->nartifacts && !v->ncontexts)
    return;
  if (max < 1)
    max = 1;
  size_t nb = v->ncontexts + 1;
  band *b = calloc(nb, sizeof *b);
  id_idx *ctx = calloc(v->ncontexts + 1, sizeof *ctx);
  id_idx *exs = calloc(v->nexecutions + 1, sizeof *exs);
  id_idx *arts = calloc(v->nartifacts + 1, sizeof *arts);
  size_t *ex_band = calloc(v->nexecutions + 1, sizeof *ex_band);
  size_t *mark = calloc(v->nartifacts + 1, sizeof *mark);
  long *pos_in = malloc((v->nartifacts + 1) * sizeof *pos_in);
  long *pos_out = malloc((v->nartifacts + 1) * sizeof *pos_out);
  long *pos_ex = malloc((v->nexecutions + 1) * sizeof *pos_ex);
  int oom = !b || !ctx || !exs || !arts || !ex_band || !mark || !pos_in || !pos_out || !pos_ex;

  /* One band per stage name, in the order stages first appear; ctx maps a
   * context id to its band. */
  size_t used = 0;
  for (size_t i = 0; !oom && i < v->ncontexts; i++) {
    const char *name = v->contexts[i].name ? v->contexts[i].name : "";
    size_t k = 0;
    while (k < used && strcmp(b[k].name, name))
      k++;
    if (k == used)
      b[used++].name = name;
    ctx[i] = (id_idx){v->contexts[i].id, k};
  }
  nb = used + 1;
  if (!oom) {
    qsort(ctx, v->ncontexts, sizeof *ctx, cmp_id);
    for (size_t i = 0; i < v->nexecutions; i++)
      exs[i] = (id_idx){v->executions[i].id, i};
    qsort(exs, v->nexecutions, sizeof *exs, cmp_id);
    for (size_t i = 0; i < v->nartifacts; i++)
      arts[i] = (id_idx){v->artifacts[i].id, i};
    qsort(arts, v->nartifacts, sizeof *arts, cmp_id);
  }
  /* Executions into the band of their stage (the last band: no stage). */
  for (size_t i = 0; !oom && i < v->nexecutions; i++) {
    long s = lookup(ctx, v->ncontexts, v->executions[i].context_id);
    ex_band[i] = s < 0 ? nb - 1 : (size_t)s;
    oom = push(&b[ex_band[i]].ex, &b[ex_band[i]].nex, i) != 0;
  }
  /* Artifacts into the input or output column of each band whose
   * executions use them, once per band and side (mark: already placed). */
  for (size_t k = 0; !oom && k < nb; k++) {
    for (int side = 0; !oom && side < 2; side++) {
      memset(mark, 0, (v->nartifacts + 1) * sizeof *mark);
      for (size_t i = 0; !oom && i < v->nevents; i++) {
        const cairn_h5_event_row *e = &v->events[i];
        int input = e->type == CAIRN_H5_EVENT_INPUT;
        if (input != (side == 0))
          continue;
        long x = lookup(exs, v->nexecutions, e->execution_id);
        size_t eb = x < 0 ? nb - 1 : ex_band[x];
        long a = lookup(arts, v->nartifacts, e->artifact_id);
        if (eb != k || a < 0 || mark[a])
          continue;
        mark[a] = 1;
        if (x < 0)
          b[k].run_node = 1;
        oom = side == 0 ? push(&b[k].in, &b[k].nin, (size_t)a) != 0
                        : push(&b[k].out, &b[k].nout, (size_t)a) != 0;
      }
    }
  }
  /* Artifacts no event names (their execution record was lost): shown as
   * outputs of the run in the last band. */
  if (!oom) {
    memset(mark, 0, (v->nartifacts + 1) * sizeof *mark);
    for (size_t i = 0; i < v->nevents; i++) {
      long a = lookup(arts, v->nartifacts, v->events[i].artifact_id);
      if (a >= 0)
        mark[a] = 1;
    }
    for (size_t i = 0; !oom && i < v->nartifacts; i++)
      if (!mark[i]) {
        b[nb - 1].run_node = 1;
        oom = push(&b[nb - 1].out, &b[nb - 1].nout, i) != 0;
      }
  }
  if (oom) {
    fputs("<p>(out of memory drawing the lineage graph)</p>\n", f);
    goto out;
  }

  int height = LG_TOP;
  for (size_t k = 0; k < nb; k++) {
    size_t nex = b[k].nex + (size_t)b[k].run_node;
    if (k == nb - 1 && !nex && !b[k].nin && !b[k].nout)
      continue;
    size_t rows = column_rows(nex, max);
    if (column_rows(b[k].nin, max) > rows)
      rows = column_rows(b[k].nin, max);
    if (column_rows(b[k].nout, max) > rows)
      rows = column_rows(b[k].nout, max);
    if (!rows)
      rows = 1;
    height += LG_BAND_HEAD + (int)rows * LG_ROW + LG_GAP;
  }
  fprintf(f,
          "<svg class=\"lineage\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
          "font-family=\"sans-serif\" font-size=\"11\">\n<title>lineage: stages, executions, "
          "artifacts</title>\n"
          "<text x=\"%d\" y=\"18\" fill=\"#333\" font-weight=\"bold\">inputs</text>"
          "<text x=\"%d\" y=\"18\" fill=\"#333\" font-weight=\"bold\">executions</text>"
          "<text x=\"%d\" y=\"18\" fill=\"#333\" font-weight=\"bold\">outputs</text>"
          "<line x1=\"%d\" y1=\"14\" x2=\"%d\" y2=\"14\" stroke=\"#2b6cb0\" stroke-width=\"2\"/>"
          "<text x=\"%d\" y=\"18\" fill=\"#2b6cb0\">INPUT</text>"
          "<line x1=\"%d\" y1=\"14\" x2=\"%d\" y2=\"14\" stroke=\"#2f855a\" stroke-width=\"2\"/>"
          "<text x=\"%d\" y=\"18\" fill=\"#2f855a\">OUTPUT</text>\n",
          LG_W, height, LG_W, height, LG_IN_X, LG_EX_X, LG_OUT_X, LG_EX_X + 100, LG_EX_X + 120,
          LG_EX_X + 124, LG_EX_X + 180, LG_EX_X + 200, LG_EX_X + 204);
  int y = LG_TOP;
  for (size_t k = 0; k < nb; k++) {
    band *B = &b[k];
    size_t nex = B->nex + (size_t)B->run_node;
    if (k == nb - 1 && !nex && !B->nin && !B->nout)
      continue;
    size_t rows = column_rows(nex, max);
    if (column_rows(B->nin, max) > rows)
      rows = column_rows(B->nin, max);
    if (column_rows(B->nout, max) > rows)
      rows = column_rows(B->nout, max);
    if (!rows)
      rows = 1;
    int bh = LG_BAND_HEAD + (int)rows * LG_ROW;
    fprintf(f,
            "<g class=\"stage\"><rect x=\"4\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"6\" "
            "fill=\"#f7f7fa\" stroke=\"#ccd\"/><text x=\"12\" y=\"%d\" fill=\"#333\" "
            "font-weight=\"bold\">stage: ",
            y, LG_W - 8, bh, y + 18);
    cairn__html_str_cut(f, B->name ? B->name : "(none)", 80);
    fputs("</text></g>\n", f);
    int y0 = y + LG_BAND_HEAD;
    for (size_t i = 0; i < v->nartifacts; i++)
      pos_in[i] = pos_out[i] = -1;
    for (size_t i = 0; i < v->nexecutions; i++)
      pos_ex[i] = -1;
    long run_pos = -1;
    /* Nodes. */
    for (size_t i = 0; i < shown(B->nin, max); i++) {
      pos_in[B->in[i]] = y0 + (long)i * LG_ROW;
      artifact_node(f, &v->artifacts[B->in[i]], LG_IN_X, (int)pos_in[B->in[i]]);
    }
    if (B->nin > max)
      more_node(f, LG_IN_X, y0 + (int)max * LG_ROW, LG_ART_W, B->nin - max);
    size_t row = 0;
    for (size_t i = 0; i < B->nex && row < max; i++, row++) {
      pos_ex[B->ex[i]] = y0 + (long)row * LG_ROW;
      execution_node(f, &v->executions[B->ex[i]], (int)pos_ex[B->ex[i]]);
    }
    if (B->run_node && row < max) {
      run_pos = y0 + (long)row * LG_ROW;
      execution_node(f, NULL, (int)run_pos);
      row++;
    }
    if (nex > max)
      more_node(f, LG_EX_X, y0 + (int)max * LG_ROW, LG_EX_W, nex - max);
    for (size_t i = 0; i < shown(B->nout, max); i++) {
      pos_out[B->out[i]] = y0 + (long)i * LG_ROW;
      artifact_node(f, &v->artifacts[B->out[i]], LG_OUT_X, (int)pos_out[B->out[i]]);
    }
    if (B->nout > max)
      more_node(f, LG_OUT_X, y0 + (int)max * LG_ROW, LG_ART_W, B->nout - max);
    /* Edges between drawn nodes. */
    const int mid = LG_NODE_H / 2;
    for (size_t i = 0; i < v->nevents; i++) {
      const cairn_h5_event_row *e = &v->events[i];
      long x = lookup(exs, v->nexecutions, e->execution_id);
      size_t eb = x < 0 ? nb - 1 : ex_band[x];
      long a = lookup(arts, v->nartifacts, e->artifact_id);
      if (eb != k || a < 0)
        continue;
      long ey = x < 0 ? run_pos : pos_ex[x];
      if (ey < 0)
        continue;
      if (e->type == CAIRN_H5_EVENT_INPUT && pos_in[a] >= 0)
        edge(f, LG_IN_X + LG_ART_W, (int)pos_in[a] + mid, LG_EX_X, (int)ey + mid, 1);
      else if (e->type != CAIRN_H5_EVENT_INPUT && pos_out[a] >= 0)
        edge(f, LG_EX_X + LG_EX_W, (int)ey + mid, LG_OUT_X, (int)pos_out[a] + mid, 0);
    }
    /* Artifacts without an event hang off the run node. */
    if (k == nb - 1 && run_pos >= 0)
      for (size_t i = 0; i < shown(B->nout, max); i++)
        if (!mark[B->out[i]])
          edge(f, LG_EX_X + LG_EX_W, (int)run_pos + mid, LG_OUT_X,
               (int)pos_out[B->out[i]] + mid, 0);
    y += bh + LG_GAP;
  }
  fputs("</svg>\n", f);
out:
  for (size_t k = 0; b && k < nb; k++) {
    free(b[k].ex);
    free(b[k].in);
    free(b[k].out);
  }
  free(b);
  free(ctx);
  free(exs);
  free(arts);
  free(ex_band);
  free(mark);
  free(pos_in);
  free(pos_out);
  free(pos_ex);
}
