/*
 * props.h — private to cairn (shared by the runtime and the tools).
 * Typed custom properties: a flat JSON object {"key": value, ...} as given to
 * cairn_artifact_props, cairn_model, cairn_execution_begin_ex, ... and as
 * stored in the run files. One strict parser (RFC 8259 syntax, flat objects
 * only) so the runtime validates exactly what the tools later read.
 */
#ifndef CAIRN_PROPS_H
#define CAIRN_PROPS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  CAIRN_PROP_INT = 1,    /* an integer without fraction or exponent     */
  CAIRN_PROP_DOUBLE = 2, /* any other number                            */
  CAIRN_PROP_STRING = 3, /* a string, escapes decoded to UTF-8          */
  CAIRN_PROP_BOOL = 4    /* true / false                                */
} cairn_prop_type;

/* One member. key/str are NOT NUL-terminated by contract (use the lengths);
 * they are, in fact, followed by a NUL in the scratch buffer, but never
 * contain one (\u0000 is rejected). Only the field of `type` is meaningful. */
typedef struct {
  const char *key;
  size_t key_len;
  cairn_prop_type type;
  int64_t i64;     /* CAIRN_PROP_INT    */
  double f64;      /* CAIRN_PROP_DOUBLE */
  int b;           /* CAIRN_PROP_BOOL: 0 or 1 */
  const char *str; /* CAIRN_PROP_STRING */
  size_t str_len;
} cairn_prop;

/*
 * Parses a flat JSON object {"k": value, ...} of len bytes (no NUL needed).
 * Values: integers (-> INT; must fit int64), other numbers (-> DOUBLE; must be
 * finite), strings (-> STRING; escapes decoded, \uXXXX and surrogate pairs to
 * UTF-8; raw bytes must be valid UTF-8), true/false (-> BOOL). Nested
 * objects, arrays and null are errors, as are duplicate keys, \u0000, lone
 * surrogates, control characters in strings, and anything but whitespace
 * after the closing brace. len == 0 (json may then be NULL) means an empty
 * object.
 *
 * fn (may be NULL: validate only) is called once per member, in order; key
 * and str point into a scratch buffer valid only during the call. If fn
 * returns non-zero, parsing stops and that value is returned. Members before
 * a syntax error have already been passed to fn: validate first (fn NULL) if
 * that matters.
 *
 * Returns CAIRN_OK; CAIRN_EINVAL with "byte N: what was expected" in err
 * (N is the 0-based offset of the offending byte; err may be NULL or errlen
 * 0); CAIRN_ENOMEM. Thread-safe (no shared state).
 */
int cairn__props_parse(const char *json, size_t len,
                       int (*fn)(void *ctx, const cairn_prop *p), void *ctx,
                       char *err, size_t errlen);

#endif
