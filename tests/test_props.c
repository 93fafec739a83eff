/* test_props.c — the flat-JSON properties parser: every value type decodes to
 * the exact value, escapes and surrogate pairs to the exact UTF-8 bytes, and
 * every malformed input is refused with the byte offset and what was
 * expected. */
#include <criterion/criterion.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "props.h"

typedef struct {
  int n;
  char keys[16][64];
  size_t key_lens[16];
  cairn_prop_type types[16];
  int64_t i64[16];
  double f64[16];
  int b[16];
  char strs[16][64];
  size_t str_lens[16];
  int stop_after; /* return 7 after this many members, 0 = never */
} collected;

static int collect(void *ctx, const cairn_prop *p) {
  collected *c = ctx;
  cr_assert_lt(c->n, 16);
  cr_assert_lt(p->key_len, 64);
  memcpy(c->keys[c->n], p->key, p->key_len);
  c->keys[c->n][p->key_len] = '\0';
  c->key_lens[c->n] = p->key_len;
  c->types[c->n] = p->type;
  c->i64[c->n] = p->i64;
  c->f64[c->n] = p->f64;
  c->b[c->n] = p->b;
  if (p->type == CAIRN_PROP_STRING) {
    cr_assert_lt(p->str_len, 64);
    memcpy(c->strs[c->n], p->str, p->str_len);
    c->strs[c->n][p->str_len] = '\0';
    c->str_lens[c->n] = p->str_len;
  }
  c->n++;
  if (c->stop_after && c->n == c->stop_after)
    return 7;
  return 0;
}

static int parse(const char *json, collected *c, char *err, size_t errlen) {
  return cairn__props_parse(json, json ? strlen(json) : 0, collect, c, err, errlen);
}

Test(props, every_type_decodes_to_its_exact_value) {
  collected c = {0};
  char err[128];
  const char *j = " {\"lr\": 0.001, \"epochs\" :12,\"name\":\"resnet\", \"ok\":true,"
                  "\"off\":false, \"neg\":-42, \"exp\":1e3, \"zero\":-0}\n";
  cr_assert_eq(parse(j, &c, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(c.n, 8);
  cr_assert_str_eq(c.keys[0], "lr");
  cr_assert_eq(c.types[0], CAIRN_PROP_DOUBLE);
  cr_assert_eq(c.f64[0], 0.001);
  cr_assert_str_eq(c.keys[1], "epochs");
  cr_assert_eq(c.types[1], CAIRN_PROP_INT);
  cr_assert_eq(c.i64[1], 12);
  cr_assert_str_eq(c.keys[2], "name");
  cr_assert_eq(c.types[2], CAIRN_PROP_STRING);
  cr_assert_str_eq(c.strs[2], "resnet");
  cr_assert_eq(c.str_lens[2], 6);
  cr_assert_eq(c.types[3], CAIRN_PROP_BOOL);
  cr_assert_eq(c.b[3], 1);
  cr_assert_eq(c.types[4], CAIRN_PROP_BOOL);
  cr_assert_eq(c.b[4], 0);
  cr_assert_eq(c.types[5], CAIRN_PROP_INT);
  cr_assert_eq(c.i64[5], -42);
  cr_assert_eq(c.types[6], CAIRN_PROP_DOUBLE, "1e3 has an exponent: a double");
  cr_assert_eq(c.f64[6], 1000.0);
  cr_assert_eq(c.types[7], CAIRN_PROP_INT);
  cr_assert_eq(c.i64[7], 0);
  cr_assert_str_eq(err, "");
}

Test(props, int64_limits_are_ints_and_beyond_is_an_error) {
  collected c = {0};
  char err[128];
  cr_assert_eq(parse("{\"max\":9223372036854775807,\"min\":-9223372036854775808}", &c, err,
                     sizeof err),
               CAIRN_OK, "%s", err);
  cr_assert_eq(c.i64[0], INT64_MAX);
  cr_assert_eq(c.i64[1], INT64_MIN);
  collected d = {0};
  cr_assert_eq(parse("{\"big\":9223372036854775808}", &d, err, sizeof err), CAIRN_EINVAL);
  cr_assert_str_eq(err, "byte 7: integer out of the int64 range");
  cr_assert_eq(d.n, 0);
}

Test(props, empty_inputs_are_an_empty_object) {
  collected c = {0};
  cr_assert_eq(cairn__props_parse(NULL, 0, collect, &c, NULL, 0), CAIRN_OK);
  cr_assert_eq(cairn__props_parse("", 0, collect, &c, NULL, 0), CAIRN_OK);
  cr_assert_eq(parse("{}", &c, NULL, 0), CAIRN_OK);
  cr_assert_eq(parse(" { \t\r\n } ", &c, NULL, 0), CAIRN_OK);
  cr_assert_eq(c.n, 0);
}

Test(props, escapes_decode_to_exact_utf8) {
  collected c = {0};
  char err[128];
  /* \u00e9 = é (2 bytes), \u20ac = € (3 bytes), \ud83d\ude00 = U+1F600 (4). */
  const char *j = "{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"u\":\"\\u00e9\\u20AC\\ud83d\\ude00\","
                  "\"raw\":\"caf\xc3\xa9\",\"k\\u0041y\":1}";
  cr_assert_eq(parse(j, &c, err, sizeof err), CAIRN_OK, "%s", err);
  cr_assert_eq(c.n, 4);
  cr_assert_str_eq(c.strs[0], "a\"b\\c/d\b\f\n\r\t");
  cr_assert_eq(c.str_lens[0], 12);
  cr_assert_str_eq(c.strs[1], "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  cr_assert_eq(c.str_lens[1], 9);
  cr_assert_str_eq(c.strs[2], "caf\xc3\xa9");
  cr_assert_str_eq(c.keys[3], "kAy");
  cr_assert_eq(c.key_lens[3], 3);
}

Test(props, decimal_point_is_dot_whatever_the_locale) {
  /* A preloaded library runs inside applications that set LC_NUMERIC. */
  if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
    setlocale(LC_NUMERIC, "C");
  collected c = {0};
  cr_assert_eq(parse("{\"x\":2.5}", &c, NULL, 0), CAIRN_OK);
  cr_assert_eq(c.f64[0], 2.5);
  setlocale(LC_NUMERIC, "C");
}

Test(props, callback_return_value_stops_the_parse) {
  collected c = {.stop_after = 2};
  cr_assert_eq(parse("{\"a\":1,\"b\":2,\"c\":3}", &c, NULL, 0), 7);
  cr_assert_eq(c.n, 2);
}

Test(props, null_callback_validates_only) {
  cr_assert_eq(cairn__props_parse("{\"a\":1}", 7, NULL, NULL, NULL, 0), CAIRN_OK);
  cr_assert_eq(cairn__props_parse("{\"a\":}", 6, NULL, NULL, NULL, 0), CAIRN_EINVAL);
}

Test(props, length_bounds_the_input_not_a_nul) {
  collected c = {0};
  const char buf[] = "{\"a\":1}garbage";
  cr_assert_eq(cairn__props_parse(buf, 7, collect, &c, NULL, 0), CAIRN_OK);
  cr_assert_eq(c.i64[0], 1);
  char err[64];
  cr_assert_eq(cairn__props_parse("{\"a\"\0:1}", 8, collect, &c, err, sizeof err), CAIRN_EINVAL);
  cr_assert_str_eq(err, "byte 4: NUL byte in the input");
}

typedef struct {
  const char *json;
  const char *err;
} bad_case;

Test(props, malformed_inputs_name_the_byte_and_what_was_expected) {
  static const bad_case cases[] = {
      {"[1]", "byte 0: expected '{'"},
      {"   ", "byte 3: expected '{'"},
      {"{", "byte 1: expected '\"' to start a key"},
      {"{\"a\":1", "byte 6: expected ',' or '}'"},
      {"{\"a\":1,}", "byte 7: expected '\"' to start a key"},
      {"{\"a\" 1}", "byte 5: expected ':' after the key"},
      {"{a:1}", "byte 1: expected '\"' to start a key"},
      {"{\"a\":}", "byte 5: expected a value (string, number, true or false)"},
      {"{\"a\":", "byte 5: expected a value"},
      {"{\"a\":{\"b\":1}}",
       "byte 5: expected a string, number, true or false (nested objects, arrays and null "
       "are not supported)"},
      {"{\"a\":[1]}",
       "byte 5: expected a string, number, true or false (nested objects, arrays and null "
       "are not supported)"},
      {"{\"a\":null}",
       "byte 5: expected a string, number, true or false (nested objects, arrays and null "
       "are not supported)"},
      {"{\"a\":tru}", "byte 5: expected a value (string, number, true or false)"},
      {"{\"a\":01}", "byte 6: leading zeros are not allowed"},
      {"{\"a\":1.}", "byte 7: expected a digit after '.'"},
      {"{\"a\":.5}", "byte 5: expected a value (string, number, true or false)"},
      {"{\"a\":-}", "byte 6: expected a digit"},
      {"{\"a\":1e}", "byte 7: expected a digit in the exponent"},
      {"{\"a\":+1}", "byte 5: expected a value (string, number, true or false)"},
      {"{\"a\":1e999}", "byte 5: number out of the double range"},
      {"{\"a\":\"x}", "byte 8: expected '\"' to close the string"},
      {"{\"a\":\"x\ty\"}", "byte 7: control character in string (escape it)"},
      {"{\"a\":\"\\x\"}", "byte 6: invalid escape '\\x'"},
      {"{\"a\":\"\\u12G4\"}", "byte 10: expected a hex digit in \\u escape"},
      {"{\"a\":\"\\u12\"}", "byte 10: expected a hex digit in \\u escape"},
      {"{\"a\":\"\\u0000\"}", "byte 6: \\u0000 is not allowed (NUL in a string)"},
      {"{\"a\":\"\\ude00\"}", "byte 6: low surrogate \\uDE00 without a high surrogate"},
      {"{\"a\":\"\\ud83dx\"}", "byte 12: expected a \\u low surrogate after \\uD83D"},
      {"{\"a\":\"\\ud83d\\u0041\"}",
       "byte 12: expected a low surrogate (\\uDC00-\\uDFFF) after \\uD83D"},
      {"{\"a\":\"\xff\"}", "byte 6: invalid UTF-8 in string"},
      {"{\"a\":\"\xc0\xaf\"}", "byte 6: invalid UTF-8 in string"},   /* overlong '/' */
      {"{\"a\":\"\xed\xa0\x80\"}", "byte 6: invalid UTF-8 in string"}, /* surrogate */
      {"{\"a\":1,\"a\":2}", "byte 7: duplicate key \"a\""},
      {"{\"a\":1} x", "byte 8: expected the end of the input after '}'"},
      {"{\"a\":1}{}", "byte 7: expected the end of the input after '}'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    collected c = {0};
    char err[160];
    int rc = parse(cases[i].json, &c, err, sizeof err);
    cr_expect_eq(rc, CAIRN_EINVAL, "case %zu (%s): rc %d", i, cases[i].json, rc);
    cr_expect_str_eq(err, cases[i].err, "case %zu (%s)", i, cases[i].json);
  }
}

Test(props, members_before_an_error_were_already_delivered) {
  collected c = {0};
  cr_assert_eq(parse("{\"a\":1,\"b\":[]}", &c, NULL, 0), CAIRN_EINVAL);
  cr_assert_eq(c.n, 1);
  cr_assert_eq(c.i64[0], 1);
}

Test(props, error_text_is_truncated_to_errlen) {
  char err[8];
  cr_assert_eq(cairn__props_parse("{x", 2, NULL, NULL, err, sizeof err), CAIRN_EINVAL);
  cr_assert_str_eq(err, "byte 1:");
}

Test(props, many_keys_are_checked_for_duplicates) {
  /* 2000 distinct keys pass; repeating the first one at the end fails. */
  size_t cap = 2000 * 16 + 64, n = 0;
  char *j = malloc(cap);
  cr_assert_not_null(j);
  j[n++] = '{';
  for (int i = 0; i < 2000; i++)
    n += (size_t)snprintf(j + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
  size_t closed = n;
  j[n++] = '}';
  cr_assert_eq(cairn__props_parse(j, n, NULL, NULL, NULL, 0), CAIRN_OK);
  n = closed;
  n += (size_t)snprintf(j + n, cap - n, ",\"k0\":1}");
  char err[64];
  cr_assert_eq(cairn__props_parse(j, n, NULL, NULL, err, sizeof err), CAIRN_EINVAL);
  char want[64];
  snprintf(want, sizeof want, "byte %zu: duplicate key \"k0\"", closed + 1);
  cr_assert_str_eq(err, want);
  free(j);
}
