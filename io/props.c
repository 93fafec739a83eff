/* props.c — the strict flat-JSON-object parser behind typed custom
 * properties (see props.h). One pass, no recursion; decoded keys and strings
 * go to one scratch buffer no larger than the input (an escape never decodes
 * to more bytes than it spells). */
#include "props.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

typedef struct {
  size_t off, len; /* a decoded key in the scratch buffer */
} key_ref;

typedef struct {
  const unsigned char *s;
  size_t len, pos;
  char *scratch; /* len + 1 bytes */
  size_t sp;
  char *err;
  size_t errlen;
  /* duplicate-key detection: open addressing over indices into keys[] */
  key_ref *keys;
  size_t nkeys, keycap;
  uint32_t *slots; /* 0 = empty, else index + 1 */
  size_t nslots;   /* power of two */
} parser;

static int fail(parser *p, size_t at, const char *fmt, ...) {
  if (p->err && p->errlen) {
    int n = snprintf(p->err, p->errlen, "byte %zu: ", at);
    if (n >= 0 && (size_t)n < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return CAIRN_EINVAL;
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    p->pos++;
  }
}

/* ---- duplicate keys ------------------------------------------------------ */

static uint64_t key_hash(const char *k, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)k[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static int slots_grow(parser *p) {
  size_t n = p->nslots ? p->nslots * 2 : 16;
  uint32_t *s = calloc(n, sizeof *s);
  if (!s)
    return CAIRN_ENOMEM;
  for (size_t i = 0; i < p->nkeys; i++) {
    const key_ref *k = &p->keys[i];
    size_t j = (size_t)key_hash(p->scratch + k->off, k->len) & (n - 1);
    while (s[j])
      j = (j + 1) & (n - 1);
    s[j] = (uint32_t)(i + 1);
  }
  free(p->slots);
  p->slots = s;
  p->nslots = n;
  return CAIRN_OK;
}

/* Remembers the key at scratch[off, off+n); 1 if it was already there. */
static int key_insert(parser *p, size_t off, size_t n) {
  if ((p->nkeys + 1) * 2 > p->nslots && slots_grow(p) != CAIRN_OK)
    return CAIRN_ENOMEM;
  if (p->nkeys == p->keycap) {
    size_t cap = p->keycap ? p->keycap * 2 : 8;
    key_ref *k = realloc(p->keys, cap * sizeof *k);
    if (!k)
      return CAIRN_ENOMEM;
    p->keys = k;
    p->keycap = cap;
  }
  const char *key = p->scratch + off;
  size_t j = (size_t)key_hash(key, n) & (p->nslots - 1);
  while (p->slots[j]) {
    const key_ref *k = &p->keys[p->slots[j] - 1];
    if (k->len == n && memcmp(p->scratch + k->off, key, n) == 0)
      return 1;
    j = (j + 1) & (p->nslots - 1);
  }
  p->keys[p->nkeys] = (key_ref){off, n};
  p->slots[j] = (uint32_t)(++p->nkeys);
  return 0;
}

/* ---- strings --------------------------------------------------------------- */

static int hex4(parser *p, size_t at, unsigned *out) {
  if (p->len - at < 4)
    return fail(p, p->len, "expected 4 hex digits after \\u");
  unsigned v = 0;
  for (size_t i = 0; i < 4; i++) {
    unsigned char c = p->s[at + i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return fail(p, at + i, "expected a hex digit in \\u escape");
    v = v * 16 + d;
  }
  *out = v;
  return CAIRN_OK;
}

static void put_utf8(parser *p, unsigned cp) {
  char *o = p->scratch + p->sp;
  if (cp < 0x80) {
    o[0] = (char)cp;
    p->sp += 1;
  } else if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    p->sp += 2;
  } else if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    p->sp += 3;
  } else {
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    p->sp += 4;
  }
}

/* Length of the valid UTF-8 sequence at s[0..avail), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
  unsigned char c = s[0];
  size_t n;
  unsigned cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (avail < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* Decodes the string starting at the opening quote at p->pos into the
 * scratch buffer (NUL-terminated there); *off / *n locate it. */
static int parse_string(parser *p, size_t *off, size_t *n) {
  p->pos++; /* opening quote */
  *off = p->sp;
  for (;;) {
    if (p->pos >= p->len)
      return fail(p, p->len, "expected '\"' to close the string");
    unsigned char c = p->s[p->pos];
    if (c == '"') {
      p->pos++;
      break;
    }
    if (c < 0x20)
      return fail(p, p->pos, "control character in string (escape it)");
    if (c != '\\') {
      size_t k = utf8_seq(p->s + p->pos, p->len - p->pos);
      if (!k)
        return fail(p, p->pos, "invalid UTF-8 in string");
      memcpy(p->scratch + p->sp, p->s + p->pos, k);
      p->sp += k;
      p->pos += k;
      continue;
    }
    size_t esc = p->pos;
    if (++p->pos >= p->len)
      return fail(p, p->len, "expected an escape character after '\\'");
    c = p->s[p->pos++];
    switch (c) {
    case '"': p->scratch[p->sp++] = '"'; break;
    case '\\': p->scratch[p->sp++] = '\\'; break;
    case '/': p->scratch[p->sp++] = '/'; break;
    case 'b': p->scratch[p->sp++] = '\b'; break;
    case 'f': p->scratch[p->sp++] = '\f'; break;
    case 'n': p->scratch[p->sp++] = '\n'; break;
    case 'r': p->scratch[p->sp++] = '\r'; break;
    case 't': p->scratch[p->sp++] = '\t'; break;
    case 'u': {
      unsigned cp;
      int rc = hex4(p, p->pos, &cp);
      if (rc)
        return rc;
      p->pos += 4;
      if (cp == 0)
        return fail(p, esc, "\\u0000 is not allowed (NUL in a string)");
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, esc, "low surrogate \\u%04X without a high surrogate", cp);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        size_t lo_at = p->pos;
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
          return fail(p, lo_at, "expected a \\u low surrogate after \\u%04X", cp);
        unsigned lo;
        rc = hex4(p, p->pos + 2, &lo);
        if (rc)
          return rc;
        if (lo < 0xDC00 || lo > 0xDFFF)
          return fail(p, lo_at, "expected a low surrogate (\\uDC00-\\uDFFF) after \\u%04X",
                      cp);
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      put_utf8(p, cp);
      break;
    }
    default:
      return fail(p, esc, "invalid escape '\\%c'", c >= 0x20 && c < 0x7F ? c : '?');
    }
  }
  *n = p->sp - *off;
  p->scratch[p->sp++] = '\0';
  return CAIRN_OK;
}

/* ---- numbers ------------------------------------------------------------- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p, cairn_prop *v) {
  size_t start = p->pos, i = p->pos;
  int integral = 1;
  if (i < p->len && p->s[i] == '-')
    i++;
  if (i >= p->len || !is_digit(p->s[i]))
    return fail(p, i, "expected a digit");
  if (p->s[i] == '0') {
    i++;
    if (i < p->len && is_digit(p->s[i]))
      return fail(p, i, "leading zeros are not allowed");
  } else {
    while (i < p->len && is_digit(p->s[i]))
      i++;
  }
  if (i < p->len && p->s[i] == '.') {
    integral = 0;
    i++;
    if (i >= p->len || !is_digit(p->s[i]))
      return fail(p, i, "expected a digit after '.'");
    while (i < p->len && is_digit(p->s[i]))
      i++;
  }
  if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
    integral = 0;
    i++;
    if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
      i++;
    if (i >= p->len || !is_digit(p->s[i]))
      return fail(p, i, "expected a digit in the exponent");
    while (i < p->len && is_digit(p->s[i]))
      i++;
  }
  /* strto* need a terminated copy; numbers are short except on purpose. */
  size_t n = i - start;
  char small[64];
  char *text = n < sizeof small ? small : malloc(n + 1);
  if (!text)
    return CAIRN_ENOMEM;
  memcpy(text, p->s + start, n);
  text[n] = '\0';
  int rc = CAIRN_OK;
  errno = 0;
  if (integral) {
    long long x = strtoll(text, NULL, 10);
    if (errno == ERANGE)
      rc = fail(p, start, "integer out of the int64 range");
    v->type = CAIRN_PROP_INT;
    v->i64 = (int64_t)x;
  } else {
    pthread_once(&c_locale_once, c_locale_init);
    /* The application may have set LC_NUMERIC; JSON's decimal point is '.'. */
    double x = c_locale ? strtod_l(text, NULL, c_locale) : strtod(text, NULL);
    if (!isfinite(x))
      rc = fail(p, start, "number out of the double range");
    v->type = CAIRN_PROP_DOUBLE;
    v->f64 = x;
  }
  if (text != small)
    free(text);
  p->pos = i;
  return rc;
}

/* ---- object -------------------------------------------------------------- */

static int match_word(parser *p, const char *w) {
  size_t n = strlen(w);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
    return 0;
  p->pos += n;
  return 1;
}

static int parse_object(parser *p, int (*fn)(void *, const cairn_prop *), void *ctx) {
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != '{')
    return fail(p, p->pos, "expected '{'");
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '}') {
    p->pos++;
  } else {
    for (;;) {
      skip_ws(p);
      if (p->pos >= p->len || p->s[p->pos] != '"')
        return fail(p, p->pos, "expected '\"' to start a key");
      size_t key_at = p->pos, koff, klen;
      int rc = parse_string(p, &koff, &klen);
      if (rc)
        return rc;
      rc = key_insert(p, koff, klen);
      if (rc < 0)
        return rc;
      if (rc == 1)
        return fail(p, key_at, "duplicate key \"%s\"", p->scratch + koff);
      skip_ws(p);
      if (p->pos >= p->len || p->s[p->pos] != ':')
        return fail(p, p->pos, "expected ':' after the key");
      p->pos++;
      skip_ws(p);
      cairn_prop v = {0};
      v.key = p->scratch + koff;
      v.key_len = klen;
      if (p->pos >= p->len)
        return fail(p, p->pos, "expected a value");
      unsigned char c = p->s[p->pos];
      if (c == '"') {
        size_t soff, slen;
        rc = parse_string(p, &soff, &slen);
        if (rc)
          return rc;
        v.type = CAIRN_PROP_STRING;
        v.str = p->scratch + soff;
        v.str_len = slen;
      } else if (c == '-' || is_digit(c)) {
        rc = parse_number(p, &v);
        if (rc)
          return rc;
      } else if (match_word(p, "true")) {
        v.type = CAIRN_PROP_BOOL;
        v.b = 1;
      } else if (match_word(p, "false")) {
        v.type = CAIRN_PROP_BOOL;
        v.b = 0;
      } else if (c == '{' || c == '[' || match_word(p, "null")) {
        size_t at = c == 'n' ? p->pos - 4 : p->pos;
        return fail(p, at,
                    "expected a string, number, true or false (nested objects, "
                    "arrays and null are not supported)");
      } else {
        return fail(p, p->pos, "expected a value (string, number, true or false)");
      }
      if (fn) {
        rc = fn(ctx, &v);
        if (rc)
          return rc;
      }
      skip_ws(p);
      if (p->pos < p->len && p->s[p->pos] == ',') {
        p->pos++;
        continue;
      }
      if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        break;
      }
      return fail(p, p->pos, "expected ',' or '}'");
    }
  }
  skip_ws(p);
  if (p->pos != p->len)
    return fail(p, p->pos, "expected the end of the input after '}'");
  return CAIRN_OK;
}

int cairn__props_parse(const char *json, size_t len,
                       int (*fn)(void *ctx, const cairn_prop *p), void *ctx,
                       char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (len == 0)
    return CAIRN_OK;
  parser p = {.s = (const unsigned char *)json, .len = len, .err = err, .errlen = errlen};
  if (!json)
    return fail(&p, 0, "expected '{' (NULL input)");
  const void *nul = memchr(json, '\0', len);
  if (nul)
    return fail(&p, (size_t)((const char *)nul - json), "NUL byte in the input");
  p.scratch = malloc(len + 1);
  if (!p.scratch)
    return CAIRN_ENOMEM;
  int rc = parse_object(&p, fn, ctx);
  free(p.scratch);
  free(p.keys);
  free(p.slots);
  return rc;
}
