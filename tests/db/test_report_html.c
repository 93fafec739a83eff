/* test_report_html.c — the report's HTML pieces on inputs the fixture does
 * not have: every markup character escaped, control bytes and invalid UTF-8
 * replaced (the output is always valid UTF-8), names cut on character
 * boundaries, charts with gaps and without values, an empty heatmap and an
 * empty lineage. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"

/* Runs fn into memory and returns the NUL-terminated output (malloc'd). */
#define CAPTURE(out, call)                                                                   \
  do {                                                                                       \
    size_t len_;                                                                             \
    FILE *f = open_memstream(&(out), &len_);                                                 \
    cr_assert_not_null(f);                                                                   \
    call;                                                                                    \
    cr_assert_eq(fclose(f), 0);                                                              \
  } while (0)

static char *text(const char *s, size_t n) {
  char *out = NULL;
  CAPTURE(out, cairn__html_text(f, s, n));
  return out;
}

Test(report_html, markup_characters_become_entities) {
  const char *in = "<script>alert('x') & \"y\"</script>";
  char *o = text(in, strlen(in));
  cr_assert_str_eq(o, "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  free(o);
}

Test(report_html, control_bytes_and_invalid_utf8_become_replacement_characters) {
  /* \x01, an overlong '/', a surrogate, a truncated sequence, 0xF5, 0xFF. */
  const char in[] = "a\x01" "b\xC0\xAF" "c\xED\xA0\x80" "d\xE2\x82" "e\xF5\xFF" "f\tg\n";
  char *o = text(in, sizeof in - 1);
  const char *want = "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD"
                     "\xEF\xBF\xBD" "d\xEF\xBF\xBD\xEF\xBF\xBD" "e\xEF\xBF\xBD\xEF\xBF\xBD"
                     "f\tg\n";
  cr_assert_str_eq(o, want);
  free(o);
}

Test(report_html, valid_utf8_is_kept_byte_for_byte) {
  const char in[] = "\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80 \xE6\x97\xA5";
  char *o = text(in, sizeof in - 1);
  cr_assert_str_eq(o, in);
  free(o);
}

Test(report_html, embedded_nul_is_replaced_not_truncating) {
  char *o = text("a\0<b", 4);
  cr_assert_str_eq(o, "a\xEF\xBF\xBD&lt;b");
  free(o);
}

Test(report_html, cut_keeps_whole_characters_and_adds_an_ellipsis) {
  char *o = NULL;
  CAPTURE(o, cairn__html_str_cut(f, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9<", 3));
  cr_assert_str_eq(o, "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
  free(o);
  CAPTURE(o, cairn__html_str_cut(f, "ab<", 3));
  cr_assert_str_eq(o, "ab&lt;");
  free(o);
}

Test(report_html, seconds_pick_a_unit) {
  char *o = NULL;
  CAPTURE(o, (cairn__html_seconds(f, 0.0006), fputc('|', f), cairn__html_seconds(f, 2.5),
              fputc('|', f), cairn__html_seconds(f, NAN)));
  cr_assert_str_eq(o, "600 \xC2\xB5s|2.5 s|\xE2\x80\x93");
  free(o);
}

Test(report_html, chart_breaks_at_gaps_and_prints_no_nan) {
  double x[6] = {0, 1, 2, 3, 4, 5}, mean[6] = {1, 2, NAN, 4, 5, 6},
         lo[6] = {0, 1, NAN, 3, 4, 5}, hi[6] = {2, 3, NAN, 5, 6, 7};
  cairn_report_curve c = {6, x, mean, lo, hi};
  char *o = NULL;
  CAPTURE(o, cairn__svg_line_chart(f, "<m>", 3, &c));
  cr_assert_not_null(strstr(o, "<title>&lt;m&gt;</title>"));
  cr_assert_null(strstr(o, "<m>"));
  cr_assert_null(strstr(o, "nan"));
  cr_assert_null(strstr(o, "inf"));
  /* Two runs of points: two band paths and two mean paths. */
  size_t bands = 0, means = 0;
  for (const char *p = o; (p = strstr(p, "fill=\"#9ecae1\" fill-opacity")); p++)
    bands++;
  for (const char *p = o; (p = strstr(p, "stroke=\"#08519c\" stroke-width=\"1.5\"")); p++)
    means++;
  cr_assert_eq(bands, 2);
  cr_assert_eq(means, 2);
  free(o);
}

Test(report_html, chart_without_values_says_so) {
  double x[2] = {0, 1}, v[2] = {NAN, NAN};
  cairn_report_curve c = {2, x, v, v, v};
  char *o = NULL;
  CAPTURE(o, cairn__svg_line_chart(f, "m", 1, &c));
  cr_assert_not_null(strstr(o, "no finite values"));
  cr_assert_not_null(strstr(o, "</svg>"));
  free(o);
}

Test(report_html, heatmap_has_a_row_per_rank_even_without_values) {
  int32_t ranks[3] = {0, 1, 7};
  double cell[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
  cairn_report_heatmap h = {3, 2, ranks, cell, 0, 1};
  char *o = NULL;
  CAPTURE(o, cairn__svg_heatmap(f, &h));
  size_t rows = 0;
  for (const char *p = o; (p = strstr(p, "class=\"hm-row\"")); p++)
    rows++;
  cr_assert_eq(rows, 3);
  cr_assert_not_null(strstr(o, "rank 7"));
  cr_assert_null(strstr(o, "nan"));
  free(o);
}

Test(report_html, heatmap_colours_a_slow_rank_differently) {
  int32_t ranks[2] = {0, 1};
  double cell[8] = {0.001, 0.001, 0.001, 0.001, 0.003, 0.003, 0.003, 0.003};
  cairn_report_heatmap h = {2, 4, ranks, cell, 0, 3};
  char *o = NULL;
  CAPTURE(o, cairn__svg_heatmap(f, &h));
  /* Each row is one run of one colour; the two colours differ. */
  const char *r0 = strstr(o, "class=\"hm-row\""), *r1 = strstr(r0 + 1, "class=\"hm-row\"");
  const char *f0 = strstr(r0, "fill=\"#"), *f1 = strstr(r1, "fill=\"#");
  cr_assert(f0 && f1 && f0 < r1);
  cr_assert_neq(strncmp(f0, f1, 14), 0);
  free(o);
}

Test(report_html, empty_lineage_writes_nothing) {
  cairn_run_view v;
  cairn__view_init(&v);
  char *o = NULL;
  CAPTURE(o, cairn__svg_lineage(f, &v, 10));
  cr_assert_str_eq(o, "");
  free(o);
  cairn__view_free(&v);
}

Test(report_html, lineage_escapes_paths_and_caps_columns) {
  cairn_run_view v;
  cairn__view_init(&v);
  cairn_h5_context_row ctx = {1, "<stage>", "p", ""};
  cr_assert_eq(cairn__view_add_context(&v, &ctx), 0);
  cairn_h5_execution_row ex = {1, 1, 0, 0, 0, "run\"x", "", "train", ""};
  cr_assert_eq(cairn__view_add_execution(&v, &ex), 0);
  for (uint64_t i = 1; i <= 5; i++) {
    cairn_h5_artifact_row a = {i, 1, 0, 0, 0, "/d/<b>'.bin", "cairn-merkle-sha256-v1:abcdef0123456789", ""};
    cr_assert_eq(cairn__view_add_artifact(&v, &a), 0);
    cairn_h5_event_row e = {1, i, CAIRN_H5_EVENT_INPUT, 0, 0};
    cr_assert_eq(cairn__view_add_event(&v, &e), 0);
  }
  char *o = NULL;
  CAPTURE(o, cairn__svg_lineage(f, &v, 3));
  cr_assert_not_null(strstr(o, "&lt;stage&gt;"));
  cr_assert_not_null(strstr(o, "run&quot;x"));
  cr_assert_not_null(strstr(o, "&lt;b&gt;&#39;.bin"));
  cr_assert_not_null(strstr(o, "sha256 abcdef012345"));
  cr_assert_not_null(strstr(o, "+2 more"));
  cr_assert_null(strstr(o, "<b>"));
  size_t edges = 0;
  for (const char *p = o; (p = strstr(p, "class=\"edge-input\"")); p++)
    edges++;
  cr_assert_eq(edges, 3);
  free(o);
  cairn__view_free(&v);
}
