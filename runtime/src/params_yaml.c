/*
 * params_yaml.c — cairn_params_from_yaml: records a YAML file of run
 * parameters (a training config) as typed params, nested mappings flattened
 * to dotted keys ("optimizer: {lr: 0.001}" -> "optimizer.lr"). Scalars are
 * typed the way YAML 1.2's core schema reads them: integers, floats,
 * true/false, everything else (and quoted scalars) a string. A sequence is
 * recorded as one string param holding its items, comma-separated.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "cairn.h"
#include "lifecycle.h"
#include "util.h"

typedef struct {
  yaml_document_t *doc;
  const char *path;
  int count;
  int depth;
  char *err;
  size_t errlen;
} walker;

static int record_scalar(const char *key, const yaml_node_t *n) {
  const char *s = (const char *)n->data.scalar.value;
  int quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
               n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  if (!quoted && *s) {
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 0);
    if (!*end && !errno)
      return cairn_param_int64(key, (int64_t)i);
    errno = 0;
    double d = strtod(s, &end);
    if (!*end && !errno)
      return cairn_param_double(key, d);
    if (!strcasecmp(s, "true") || !strcasecmp(s, "false"))
      return cairn_param_bool(key, !strcasecmp(s, "true"));
  }
  return cairn_param_string(key, s);
}

static int walk(walker *w, const yaml_node_t *n, const char *prefix) {
  if (++w->depth > 64) {
    cairn__fmt(w->err, w->errlen, "%s: nesting deeper than 64 levels at key '%s'", w->path,
               prefix);
    return CAIRN_EINVAL;
  }
  int rc = CAIRN_OK;
  if (n->type == YAML_SCALAR_NODE) {
    if (!*prefix) {
      cairn__fmt(w->err, w->errlen, "%s:%zu:%zu: expected a mapping of params, got a scalar",
                 w->path, n->start_mark.line + 1, n->start_mark.column + 1);
      rc = CAIRN_EINVAL;
    } else if ((rc = record_scalar(prefix, n)) == CAIRN_OK) {
      w->count++;
    } else {
      cairn__fmt(w->err, w->errlen, "%s:%zu:%zu: param '%s': %s", w->path,
                 n->start_mark.line + 1, n->start_mark.column + 1, prefix, cairn_strerror(rc));
    }
  } else if (n->type == YAML_MAPPING_NODE) {
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         rc == CAIRN_OK && p < n->data.mapping.pairs.top; p++) {
      const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
      const yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
      if (!k || !v || k->type != YAML_SCALAR_NODE) {
        cairn__fmt(w->err, w->errlen, "%s: a mapping key that is not a scalar", w->path);
        return CAIRN_EINVAL;
      }
      char key[CAIRN_NAME_MAX + 2];
      int len = snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "",
                         (const char *)k->data.scalar.value);
      if (len < 0 || (size_t)len > CAIRN_NAME_MAX) {
        cairn__fmt(w->err, w->errlen, "%s:%zu:%zu: key '%s%s%s' is longer than %d bytes",
                   w->path, k->start_mark.line + 1, k->start_mark.column + 1, prefix,
                   *prefix ? "." : "", (const char *)k->data.scalar.value, CAIRN_NAME_MAX);
        return CAIRN_ENAMETOOLONG;
      }
      rc = walk(w, v, key);
    }
  } else if (n->type == YAML_SEQUENCE_NODE) {
    if (!*prefix) {
      cairn__fmt(w->err, w->errlen, "%s: expected a mapping of params, got a sequence", w->path);
      return CAIRN_EINVAL;
    }
    /* Items joined: "[1, 2, 3]" -> "1,2,3"; nested structures are rare in
     * params and are recorded by their position instead. */
    size_t cap = 256, len = 0;
    char *joined = calloc(cap, 1);
    int i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         joined && rc == CAIRN_OK && it < n->data.sequence.items.top; it++, i++) {
      const yaml_node_t *item = yaml_document_get_node(w->doc, *it);
      if (item && item->type == YAML_SCALAR_NODE) {
        const char *s = (const char *)item->data.scalar.value;
        size_t need = len + strlen(s) + 2;
        if (need > cap) {
          while (cap < need)
            cap *= 2;
          char *g = realloc(joined, cap);
          if (!g) {
            free(joined);
            joined = NULL;
            break;
          }
          joined = g;
        }
        len += (size_t)snprintf(joined + len, cap - len, "%s%s", i ? "," : "", s);
      } else if (item) {
        char key[CAIRN_NAME_MAX + 2];
        snprintf(key, sizeof key, "%s.%d", prefix, i);
        rc = walk(w, item, key);
      }
    }
    if (!joined)
      return CAIRN_ENOMEM;
    if (rc == CAIRN_OK && len) {
      rc = cairn_param_string(prefix, joined);
      w->count += rc == CAIRN_OK;
    }
    free(joined);
  }
  w->depth--;
  return rc;
}

static char last_err[1024];

CAIRN_API int cairn_params_from_yaml(const char *path) {
  last_err[0] = '\0';
  if (!path || !*path)
    return CAIRN_EINVAL;
  /* Refuse early, without touching the file, when cairn is not running. */
  if (!cairn__running())
    return CAIRN_ENOTINIT;
  FILE *f = fopen(path, "rb");
  if (!f) {
    cairn__fmt(last_err, sizeof last_err, "%s: cannot open: %s", path, strerror(errno));
    cairn__log(CAIRN_LOG_ERROR, "cairn_params_from_yaml: %s", last_err);
    return CAIRN_EIO;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  int rc = CAIRN_OK;
  if (!yaml_parser_load(&parser, &doc)) {
    cairn__fmt(last_err, sizeof last_err, "%s:%zu:%zu: YAML syntax error: %s", path,
               parser.problem_mark.line + 1, parser.problem_mark.column + 1,
               parser.problem ? parser.problem : "unknown");
    rc = CAIRN_EINVAL;
  } else {
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    walker w = {&doc, path, 0, 0, last_err, sizeof last_err};
    if (root)
      rc = walk(&w, root, "");
    yaml_document_delete(&doc);
    if (rc == CAIRN_OK)
      rc = w.count;
  }
  yaml_parser_delete(&parser);
  fclose(f);
  if (rc < 0 && last_err[0])
    cairn__log(CAIRN_LOG_ERROR, "cairn_params_from_yaml: %s", last_err);
  return rc;
}
