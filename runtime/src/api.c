/* api.c — the public entry points of cairn.h: lifecycle, the metric hot path,
 * the lossless control channel (steps, params, key/values) and accounting. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"
#include "config.h"
#include "drain.h"
#include "h5/h5_finalize.h"
#include "hasher.h"
#include "lifecycle.h"
#include "lineage.h"
#include "props.h"
#include "runmeta.h"
#include "state.h"
#include "util.h"
#include "wal_records.h"

#define CAIRN_STR2(x) #x
#define CAIRN_STR(x) CAIRN_STR2(x)

/* The calling thread's cursor into its ring, with the run generation it
 * belongs to (cairn__cursor, cairn.h). Exported: the inline fast path in
 * cairn.h uses it. The initial-exec model makes the access a single
 * %fs-relative load; cairn is loaded at program start (linked or
 * LD_PRELOADed), where static TLS is available. */
#if defined(__GNUC__)
#define CAIRN_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define CAIRN_TLS _Thread_local
#endif
CAIRN_API CAIRN_TLS cairn__cursor cairn_abi_tls;
static CAIRN_TLS uint32_t tls_thread; /* 1-based; 0 = not assigned yet */
#define tls_gen cairn_abi_tls.gen

/* The values every hot call reads (cairn.h; accessed with CAIRN_HOT_*). */
CAIRN_API alignas(CAIRN_CACHELINE) cairn__hot_t cairn_abi_hot = {.running_gen = CAIRN_GEN_NONE};
_Static_assert(sizeof(cairn__hot_t) == 2 * CAIRN_CACHELINE, "cairn_abi_hot: two cache lines");
_Static_assert(offsetof(cairn__hot_t, current_step) == CAIRN_CACHELINE,
               "cairn_abi_hot: the step on its own line");
_Static_assert(sizeof(cairn__rec) == 24, "cairn__rec: 24 bytes");

static pthread_mutex_t lifecycle_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[1024];
static int atexit_registered;

/* Static initialisation of the parts that must be valid before any init. */
__attribute__((constructor)) static void cairn_state_ctor(void) {
  pthread_mutex_init(&cairn__g.reg_lock, NULL);
  pthread_mutex_init(&cairn__g.flush_lock, NULL);
  pthread_cond_init(&cairn__g.flush_cond, NULL);
}

CAIRN_API const char *cairn_version(void) {
  return CAIRN_STR(CAIRN_VERSION_MAJOR) "." CAIRN_STR(CAIRN_VERSION_MINOR) "." CAIRN_STR(
      CAIRN_VERSION_PATCH);
}

CAIRN_API const char *cairn_last_error(void) { return last_error; }

static inline int running(void) {
  return CAIRN_HOT_LOAD(running_gen, __ATOMIC_ACQUIRE) != CAIRN_GEN_NONE;
}

int cairn__running(void) { return running(); }

static uint32_t thread_index(void) {
  if (CAIRN_UNLIKELY(tls_thread == 0))
    tls_thread = atomic_fetch_add_explicit(&cairn__g.next_thread_index, 1,
                                           memory_order_relaxed) + 1;
  return tls_thread;
}

/* ---- thread registration ---------------------------------------------------- */

/* pthread key destructor: the owner thread is exiting. Publish what it
 * logged and hand the ring to the drain, which frees it once drained. */
static void ring_thread_exit(void *p) {
  cairn_ring *r = p;
  /* Thread-local storage is still valid while key destructors run. */
  if (cairn_abi_tls.ring == r)
    cairn__ring_publish(&cairn_abi_tls);
  /* release: the publication above happens before the drain sees the ring
   * as orphaned. */
  atomic_store_explicit(&r->orphaned, 1, memory_order_release);
  cairn__drain_wake();
}

/* Slow path of the first metric call of a thread in this run. */
static int register_thread(void) {
  uint64_t gen = CAIRN_HOT_LOAD(running_gen, __ATOMIC_ACQUIRE);
  if (gen == CAIRN_GEN_NONE)
    return CAIRN_ENOTINIT;
  cairn_ring *r = cairn__ring_create(cairn__g.cfg.ring_capacity, cairn__g.cfg.ring_high_water,
                                     cairn__g.cfg.ring_policy == CAIRN_POLICY_BLOCK);
  if (!r)
    return CAIRN_ENOMEM;
  cairn__ring_set_overflow(r, cairn__g.cfg.ring_overflow_bytes);
  r->generation = gen;
  r->thread_index = thread_index();
  pthread_mutex_lock(&cairn__g.reg_lock);
  if (cairn__g.nrings == cairn__g.rings_cap) {
    size_t cap = cairn__g.rings_cap ? cairn__g.rings_cap * 2 : 16;
    cairn_ring **rs = realloc(cairn__g.rings, cap * sizeof *rs);
    if (!rs) {
      pthread_mutex_unlock(&cairn__g.reg_lock);
      cairn__ring_destroy(r);
      return CAIRN_ENOMEM;
    }
    cairn__g.rings = rs;
    cairn__g.rings_cap = cap;
  }
  cairn__g.rings[cairn__g.nrings++] = r;
  pthread_mutex_unlock(&cairn__g.reg_lock);
  pthread_setspecific(cairn__g.tls_key, r);
  cairn__ring_producer_init(&cairn_abi_tls, r);
  tls_gen = gen;
  return CAIRN_OK;
}

/* Publishes the calling thread's pending records. Async-signal-safe: the
 * cursor (its next slot) only ever covers complete records, so a signal that
 * interrupted a push in the middle publishes the records before it. */
void cairn__publish_self(void) {
  if (tls_gen == CAIRN_HOT_LOAD(running_gen, __ATOMIC_RELAXED) && cairn_abi_tls.ring)
    cairn__ring_publish(&cairn_abi_tls);
}

/* ---- metrics ---------------------------------------------------------------- */

static void reject(int channel) {
  atomic_fetch_add_explicit(&cairn__g.rejected[channel], 1, memory_order_relaxed);
}

static int __attribute__((noinline)) metric_slow(int id, int64_t step, double value) {
  if (!running())
    return CAIRN_ENOTINIT;
  if (id < 0 || (uint32_t)id >= cairn__names_count(&cairn__g.names)) {
    reject(CAIRN_CHANNEL_METRICS);
    return CAIRN_EBADID;
  }
  if (tls_gen != CAIRN_HOT_LOAD(running_gen, __ATOMIC_RELAXED)) {
    int rc = register_thread();
    if (rc != CAIRN_OK)
      return rc;
  }
  return cairn__ring_push_spsc(&cairn_abi_tls, (uint32_t)id, step, value);
}

/* The hot path, shared by both entry points (a direct call to an exported
 * function would go through the PLT). Two loads from one read-mostly shared
 * line and two thread-local loads; the generation check covers "not
 * initialized", "finalized" and "this thread has no ring in this run". */
static inline int metric_at(int id, int64_t step, double value) {
  if (CAIRN_LIKELY(tls_gen == CAIRN_HOT_LOAD(running_gen, __ATOMIC_RELAXED) &&
                   (uint32_t)id < CAIRN_HOT_LOAD(metric_ids, __ATOMIC_RELAXED)))
    return cairn__ring_push_spsc(&cairn_abi_tls, (uint32_t)id, step, value);
  return metric_slow(id, step, value);
}

/* The exported functions (the names are parenthesised: cairn.h makes them
 * function-like macros for the inline fast path). */
CAIRN_API int(cairn_metric_at)(int id, int64_t step, double value) {
  return metric_at(id, step, value);
}

CAIRN_API int(cairn_metric)(int id, double value) {
  return metric_at(id, CAIRN_HOT_LOAD(current_step, __ATOMIC_RELAXED), value);
}

/* The inline fast path's call back into the library (cairn.h). */
CAIRN_API int cairn_abi_metric_slow(int id, int64_t step, double value) {
  /* Mostly the end of a publication batch, once every CAIRN__PUBLISH_BATCH
   * records: metric_at's checks pass and the push finds the cursor at its
   * stop. */
  return metric_at(id, step, value);
}

CAIRN_API int cairn_metric_id(const char *name) {
  if (!running())
    return CAIRN_ENOTINIT;
  int rc = cairn__names_intern(&cairn__g.names, name);
  if (rc < 0) {
    reject(CAIRN_CHANNEL_METRICS);
    return rc;
  }
  /* Raise the hot path's mirror of the name count; never lower it (two
   * threads may intern concurrently). */
  uint32_t n = cairn__names_count(&cairn__g.names);
  uint32_t cur = CAIRN_HOT_LOAD(metric_ids, __ATOMIC_RELAXED);
  while (cur < n && !__atomic_compare_exchange_n(&cairn_abi_hot.metric_ids, &cur, n, 1,
                                                 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
    ;
  return rc;
}

/* ---- control channel -------------------------------------------------------- */

static void ctl_push(cairn_ctl *c) {
  c->thread = thread_index();
  cairn_ctl *head = atomic_load_explicit(&cairn__g.ctl_head, memory_order_relaxed);
  do {
    c->next = head;
    /* release: the record's contents are visible to the drain, which takes
     * the whole stack with an acquire exchange. */
  } while (!atomic_compare_exchange_weak_explicit(&cairn__g.ctl_head, &head, c,
                                                  memory_order_release,
                                                  memory_order_relaxed));
  uint64_t n = atomic_fetch_add_explicit(&cairn__g.ctl_logged, 1, memory_order_relaxed) + 1;
  if ((n & 4095) == 0)
    cairn__drain_wake(); /* a burst of control records: do not let it pile up */
}

static int check_key(const char *key, size_t *klen) {
  if (!key || !key[0])
    return CAIRN_EINVAL;
  *klen = strnlen(key, CAIRN_NAME_MAX + 1);
  return *klen > CAIRN_NAME_MAX ? CAIRN_ENAMETOOLONG : CAIRN_OK;
}

/* Validates key and value and allocates a control record holding them. */
static int ctl_new(uint16_t type, const char *key, const char *val, cairn_ctl **out) {
  if (!running())
    return CAIRN_ENOTINIT;
  size_t klen = 0, vlen = 0;
  int rc = check_key(key, &klen);
  if (rc == CAIRN_OK && type != CAIRN_CTL_STEP && val == NULL && type == CAIRN_CTL_KV)
    rc = CAIRN_EINVAL;
  if (rc == CAIRN_OK && val) {
    vlen = strnlen(val, (size_t)CAIRN_VALUE_MAX + 1);
    if (vlen > CAIRN_VALUE_MAX)
      rc = CAIRN_ENAMETOOLONG;
  }
  if (rc != CAIRN_OK) {
    reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  cairn_ctl *c = malloc(sizeof *c + klen + vlen);
  if (!c)
    return CAIRN_ENOMEM;
  memset(c, 0, sizeof *c);
  c->type = type;
  c->klen = (uint16_t)klen;
  c->vlen = (uint32_t)vlen;
  memcpy(c->data, key, klen);
  if (vlen)
    memcpy(c->data + klen, val, vlen);
  *out = c;
  return CAIRN_OK;
}

CAIRN_API int cairn_step(int64_t step) {
  if (!running())
    return CAIRN_ENOTINIT;
  CAIRN_HOT_STORE(current_step, step, __ATOMIC_RELAXED);
  if (tls_gen == CAIRN_HOT_LOAD(running_gen, __ATOMIC_RELAXED))
    cairn__ring_publish(&cairn_abi_tls);
  cairn_ctl *c = malloc(sizeof *c);
  if (!c)
    return CAIRN_ENOMEM;
  memset(c, 0, sizeof *c);
  c->type = CAIRN_CTL_STEP;
  c->step = step;
  c->t_ns = cairn__now_realtime_ns();
  ctl_push(c);
  return CAIRN_OK;
}

static int param(const char *key, int ptype, int64_t i, double f, const char *s) {
  if (ptype == CAIRN_PARAM_STRING && s == NULL) {
    if (!running())
      return CAIRN_ENOTINIT;
    reject(CAIRN_CHANNEL_CONTROL);
    return CAIRN_EINVAL;
  }
  cairn_ctl *c;
  int rc = ctl_new(CAIRN_CTL_PARAM, key, s, &c);
  if (rc != CAIRN_OK)
    return rc;
  c->ptype = (uint8_t)ptype;
  c->i64 = i;
  c->f64 = f;
  ctl_push(c);
  return CAIRN_OK;
}

CAIRN_API int cairn_param_int64(const char *key, int64_t value) {
  return param(key, CAIRN_PARAM_INT64, value, 0, NULL);
}
CAIRN_API int cairn_param_double(const char *key, double value) {
  return param(key, CAIRN_PARAM_DOUBLE, 0, value, NULL);
}
CAIRN_API int cairn_param_string(const char *key, const char *value) {
  return param(key, CAIRN_PARAM_STRING, 0, 0, value);
}
CAIRN_API int cairn_param_bool(const char *key, int value) {
  return param(key, CAIRN_PARAM_BOOL, value != 0, 0, NULL);
}

CAIRN_API int cairn_run_set(const char *key, const char *value) {
  cairn_ctl *c;
  int rc = ctl_new(CAIRN_CTL_KV, key, value, &c);
  if (rc != CAIRN_OK)
    return rc;
  ctl_push(c);
  return CAIRN_OK;
}

int cairn__ctl_push_artifact(uint64_t id, uint8_t kind, uint8_t role, uint64_t exec,
                             uint64_t size, uint64_t t_ns, const char *uri, size_t uri_len,
                             const char *hash, size_t hash_len, const char *props,
                             size_t props_len) {
  cairn_ctl *c = malloc(sizeof *c + uri_len + hash_len + props_len);
  if (!c)
    return CAIRN_ENOMEM;
  memset(c, 0, sizeof *c);
  c->type = CAIRN_CTL_ARTIFACT;
  c->ptype = kind;
  c->role = role;
  c->exec = exec;
  c->i64 = (int64_t)id;
  c->step = (int64_t)size;
  c->t_ns = t_ns;
  c->klen = (uint16_t)uri_len;
  c->vlen = (uint32_t)hash_len;
  c->xlen = (uint32_t)props_len;
  memcpy(c->data, uri, uri_len);
  memcpy(c->data + uri_len, hash, hash_len);
  if (props_len)
    memcpy(c->data + uri_len + hash_len, props, props_len);
  ctl_push(c);
  return CAIRN_OK;
}

/* ---- typed properties ----------------------------------------------------- */

/* Checks properties text (NULL = none): at most CAIRN_VALUE_MAX bytes and a
 * flat JSON object io/props.c accepts. On failure says why (at WARN: the
 * return code alone does not tell which byte was wrong). */
static int check_props(const char *fn, const char *props, size_t *len) {
  *len = 0;
  if (!props)
    return CAIRN_OK;
  *len = strnlen(props, (size_t)CAIRN_VALUE_MAX + 1);
  if (*len > CAIRN_VALUE_MAX) {
    cairn__log(CAIRN_LOG_WARN, "%s: properties longer than %d bytes", fn, CAIRN_VALUE_MAX);
    return CAIRN_ENAMETOOLONG;
  }
  char err[160];
  int rc = cairn__props_parse(props, *len, NULL, NULL, err, sizeof err);
  if (rc == CAIRN_EINVAL)
    cairn__log(CAIRN_LOG_WARN, "%s: properties are not a flat JSON object: %s", fn, err);
  return rc;
}

/* Appends s as a JSON string (quoted, escaped) to out[*o]; out has room for
 * 6 bytes per input byte plus 2. */
static void json_str(char *out, size_t *o, const char *s) {
  out[(*o)++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      out[(*o)++] = '\\';
      out[(*o)++] = (char)*p;
    } else if (*p < 0x20) {
      *o += (size_t)sprintf(out + *o, "\\u%04x", *p);
    } else {
      out[(*o)++] = (char)*p;
    }
  }
  out[(*o)++] = '"';
}

/* The model's properties: "framework", "model_type" and "model_name" (those
 * given) followed by the members of props, as one object (malloc'd into
 * *out). The result is validated as a whole, so a key given both ways is a
 * duplicate key: CAIRN_EINVAL. */
static int model_props(const char *framework, const char *model_type, const char *name,
                       const char *props, char **out, size_t *out_len) {
  size_t plen;
  int rc = check_props("cairn_model", props, &plen);
  if (rc != CAIRN_OK)
    return rc;
  const char *keys[3] = {"framework", "model_type", "model_name"};
  const char *vals[3] = {framework, model_type, name};
  size_t cap = plen + 64;
  for (int i = 0; i < 3; i++) {
    if (vals[i] && strnlen(vals[i], (size_t)CAIRN_VALUE_MAX + 1) > CAIRN_VALUE_MAX)
      return CAIRN_ENAMETOOLONG;
    cap += vals[i] ? strlen(vals[i]) * 6 + 24 : 0;
  }
  char *o = malloc(cap);
  if (!o)
    return CAIRN_ENOMEM;
  size_t n = 0, members = 0;
  o[n++] = '{';
  for (int i = 0; i < 3; i++) {
    if (!vals[i])
      continue;
    if (members++)
      o[n++] = ',';
    json_str(o, &n, keys[i]);
    o[n++] = ':';
    json_str(o, &n, vals[i]);
  }
  /* The caller's members: what lies between its braces (validated above,
   * so the first '{' and the last '}' are the object's). */
  const char *open = plen ? memchr(props, '{', plen) : NULL;
  const char *close = open ? props + plen : NULL;
  while (close && close > open && close[-1] != '}')
    close--;
  if (open && close > open + 1) {
    const char *in = open + 1, *end = close - 1;
    while (in < end && (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r'))
      in++;
    while (end > in && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
      end--;
    if (in < end) {
      if (members++)
        o[n++] = ',';
      memcpy(o + n, in, (size_t)(end - in));
      n += (size_t)(end - in);
    }
  }
  o[n++] = '}';
  o[n] = '\0';
  if (!members) { /* nothing at all: no properties */
    o[0] = '\0';
    n = 0;
  }
  if (n > CAIRN_VALUE_MAX) {
    free(o);
    return CAIRN_ENAMETOOLONG;
  }
  char err[160];
  rc = cairn__props_parse(o, n, NULL, NULL, err, sizeof err);
  if (rc != CAIRN_OK) {
    cairn__log(CAIRN_LOG_WARN,
               "cairn_model: properties with framework, model_type and model_name first: %s",
               err);
    free(o);
    return rc;
  }
  *out = o;
  *out_len = n;
  return CAIRN_OK;
}

/* "scheme://...": a reference recorded as given, never opened. */
static int is_uri(const char *s) {
  const char *p = s;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
         *p == '+' || *p == '-' || *p == '.')
    p++;
  return p > s && p[0] == ':' && p[1] == '/' && p[2] == '/';
}

/* The path, kind and role rules of every artifact call. */
static int check_artifact(const char *path, cairn_artifact_kind kind, cairn_role role,
                          size_t *len) {
  *len = path ? strnlen(path, 4096) : 0;
  int ok_kind = kind == CAIRN_ARTIFACT_OTHER || kind == CAIRN_ARTIFACT_DATASET ||
                kind == CAIRN_ARTIFACT_MODEL || kind == CAIRN_ARTIFACT_DATASLICE ||
                kind == CAIRN_ARTIFACT_METRICS || kind == CAIRN_ARTIFACT_ENVIRONMENT;
  if (!path || *len == 0 || !ok_kind || (role != CAIRN_ROLE_INPUT && role != CAIRN_ROLE_OUTPUT))
    return CAIRN_EINVAL;
  return *len > 4095 ? CAIRN_ENAMETOOLONG : CAIRN_OK;
}

int cairn__artifact_check(const char *fn, const char *path, cairn_artifact_kind kind,
                          cairn_role role, const char *props, size_t *len, size_t *props_len) {
  int rc = check_artifact(path, kind, role, len);
  return rc != CAIRN_OK ? rc : check_props(fn, props, props_len);
}

void cairn__reject_control(void) { reject(CAIRN_CHANNEL_CONTROL); }

int cairn__is_uri(const char *s) { return is_uri(s); }

/* cairn_artifact_props, cairn_model: props (len bytes, already validated)
 * travel with the artifact. */
static int64_t artifact_common(const char *path, cairn_artifact_kind kind, cairn_role role,
                               const char *props, size_t props_len) {
  size_t len;
  int rc = check_artifact(path, kind, role, &len);
  if (rc != CAIRN_OK) {
    reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  uint64_t id = cairn__lineage_next_id();
  uint64_t t = cairn__now_realtime_ns();
  uint64_t exec = atomic_load_explicit(&cairn__g.cur_execution, memory_order_relaxed);
  if (is_uri(path))
    rc = cairn__ctl_push_artifact(id, (uint8_t)kind, (uint8_t)role, exec, 0, t, path, len, "",
                                  0, props ? props : "", props_len);
  else
    rc = cairn__hasher_submit(id, (uint8_t)kind, (uint8_t)role, exec, t, path, len, props,
                              props_len);
  return rc == CAIRN_OK ? (int64_t)id : rc;
}

CAIRN_API int64_t cairn_artifact(const char *path, cairn_artifact_kind kind, cairn_role role) {
  if (!running())
    return CAIRN_ENOTINIT;
  return artifact_common(path, kind, role, NULL, 0);
}

CAIRN_API int64_t cairn_artifact_props(const char *path, cairn_artifact_kind kind,
                                       cairn_role role, const char *properties_json) {
  if (!running())
    return CAIRN_ENOTINIT;
  size_t plen;
  int rc = check_props("cairn_artifact_props", properties_json, &plen);
  if (rc != CAIRN_OK) {
    if (rc != CAIRN_ENOMEM)
      reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  return artifact_common(path, kind, role, properties_json, plen);
}

CAIRN_API int64_t cairn_model(const char *path, cairn_role role, const char *framework,
                              const char *model_type, const char *name,
                              const char *properties_json) {
  if (!running())
    return CAIRN_ENOTINIT;
  char *props = NULL;
  size_t plen = 0;
  int rc = model_props(framework, model_type, name, properties_json, &props, &plen);
  if (rc != CAIRN_OK) {
    if (rc != CAIRN_ENOMEM)
      reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  int64_t id = artifact_common(path, CAIRN_ARTIFACT_MODEL, role, props, plen);
  free(props);
  return id;
}

CAIRN_API int64_t cairn_metrics_artifact(const char *name, const char *properties_json) {
  if (!running())
    return CAIRN_ENOTINIT;
  size_t n, plen = 0;
  int rc = check_key(name, &n);
  if (rc == CAIRN_OK)
    rc = check_props("cairn_metrics_artifact", properties_json, &plen);
  if (rc != CAIRN_OK) {
    if (rc != CAIRN_ENOMEM)
      reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  uint64_t id = cairn__lineage_next_id();
  uint64_t exec = atomic_load_explicit(&cairn__g.cur_execution, memory_order_relaxed);
  /* Never a file: the name is its uri, and there is nothing to hash. */
  rc = cairn__ctl_push_artifact(id, CAIRN_ARTIFACT_METRICS, CAIRN_ROLE_OUTPUT, exec, 0,
                                cairn__now_realtime_ns(), name, n, "", 0,
                                properties_json ? properties_json : "", plen);
  return rc == CAIRN_OK ? (int64_t)id : rc;
}

uint64_t cairn__lineage_next_id(void) {
  return (uint64_t)cairn__g.rank << 32 |
         (atomic_fetch_add_explicit(&cairn__g.artifact_seq, 1, memory_order_relaxed) + 1);
}

/* Dataslices being assembled (created, not yet committed). Not the hot
 * path: a mutex and a short list. */
typedef struct slice {
  struct slice *next;
  uint64_t id;
  char **paths;
  size_t n, cap;
  char name[];
} slice;
static pthread_mutex_t slices_lock = PTHREAD_MUTEX_INITIALIZER;
static slice *slices;

static slice *slice_find(uint64_t id, slice ***link) {
  for (slice **l = &slices; *l; l = &(*l)->next)
    if ((*l)->id == id) {
      if (link)
        *link = l;
      return *l;
    }
  return NULL;
}

static void slice_free(slice *sl) {
  for (size_t i = 0; i < sl->n; i++)
    free(sl->paths[i]);
  free(sl->paths);
  free(sl);
}

CAIRN_API int64_t cairn_dataslice_create(const char *name) {
  if (!running())
    return CAIRN_ENOTINIT;
  size_t n;
  int rc = check_key(name, &n);
  if (rc != CAIRN_OK) {
    reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  slice *sl = calloc(1, sizeof *sl + n + 1);
  if (!sl)
    return CAIRN_ENOMEM;
  memcpy(sl->name, name, n);
  sl->id = cairn__lineage_next_id();
  pthread_mutex_lock(&slices_lock);
  sl->next = slices;
  slices = sl;
  pthread_mutex_unlock(&slices_lock);
  return (int64_t)sl->id;
}

CAIRN_API int cairn_dataslice_add(int64_t id, const char *path) {
  if (!running())
    return CAIRN_ENOTINIT;
  size_t len = path ? strnlen(path, 4096) : 0;
  int rc = !path || !len ? CAIRN_EINVAL : len > 4095 ? CAIRN_ENAMETOOLONG : CAIRN_OK;
  char *copy = rc == CAIRN_OK ? strndup(path, len) : NULL;
  if (rc == CAIRN_OK && !copy)
    return CAIRN_ENOMEM;
  pthread_mutex_lock(&slices_lock);
  slice *sl = rc == CAIRN_OK ? slice_find((uint64_t)id, NULL) : NULL;
  if (rc == CAIRN_OK && !sl)
    rc = CAIRN_ENOTFOUND;
  if (rc == CAIRN_OK && sl->n == sl->cap) {
    size_t cap = sl->cap ? sl->cap * 2 : 8;
    char **p = realloc(sl->paths, cap * sizeof *p);
    if (!p)
      rc = CAIRN_ENOMEM;
    else {
      sl->paths = p;
      sl->cap = cap;
    }
  }
  if (rc == CAIRN_OK)
    sl->paths[sl->n++] = copy;
  pthread_mutex_unlock(&slices_lock);
  if (rc != CAIRN_OK) {
    free(copy);
    if (rc != CAIRN_ENOMEM)
      reject(CAIRN_CHANNEL_CONTROL);
  }
  return rc;
}

CAIRN_API int64_t cairn_dataslice_commit(int64_t id, cairn_role role) {
  if (!running())
    return CAIRN_ENOTINIT;
  if (role != CAIRN_ROLE_INPUT && role != CAIRN_ROLE_OUTPUT) {
    reject(CAIRN_CHANNEL_CONTROL);
    return CAIRN_EINVAL;
  }
  pthread_mutex_lock(&slices_lock);
  slice **link = NULL;
  slice *sl = slice_find((uint64_t)id, &link);
  if (sl)
    *link = sl->next;
  pthread_mutex_unlock(&slices_lock);
  if (!sl) {
    reject(CAIRN_CHANNEL_CONTROL);
    return CAIRN_ENOTFOUND;
  }
  uint64_t exec = atomic_load_explicit(&cairn__g.cur_execution, memory_order_relaxed);
  int rc = cairn__hasher_submit_slice(sl->id, (uint8_t)role, exec, cairn__now_realtime_ns(),
                                      sl->name, sl->paths, sl->n);
  sl->paths = NULL; /* the hasher owns them now */
  sl->n = 0;
  slice_free(sl);
  return rc == CAIRN_OK ? id : rc;
}

/* Slices never committed when the run ends are reported, not recorded. */
static void drop_uncommitted_slices(void) {
  pthread_mutex_lock(&slices_lock);
  size_t n = 0;
  while (slices) {
    slice *sl = slices;
    slices = sl->next;
    slice_free(sl);
    n++;
  }
  pthread_mutex_unlock(&slices_lock);
  if (n)
    cairn__log(CAIRN_LOG_WARN, "%zu dataslices were created but never committed", n);
}

/* Pushes a stage or execution record (five strings, any may be ""). */
static int push_lineage(uint8_t what, uint64_t id, uint64_t parent, const char *name,
                        const char *text, const char *props, const char *type,
                        const char *cmd) {
  size_t nl = strlen(name), tl = strlen(text), pl = strlen(props), yl = strlen(type),
         zl = strlen(cmd);
  cairn_ctl *c = malloc(sizeof *c + nl + tl + pl + yl + zl);
  if (!c)
    return CAIRN_ENOMEM;
  memset(c, 0, sizeof *c);
  c->type = CAIRN_CTL_LINEAGE;
  c->ptype = what;
  c->i64 = (int64_t)id;
  c->step = (int64_t)parent;
  c->t_ns = cairn__now_realtime_ns();
  c->klen = (uint16_t)nl;
  c->vlen = (uint32_t)tl;
  c->xlen = (uint32_t)pl;
  c->ylen = (uint32_t)yl;
  c->zlen = (uint32_t)zl;
  memcpy(c->data, name, nl);
  memcpy(c->data + nl, text, tl);
  memcpy(c->data + nl + tl, props, pl);
  memcpy(c->data + nl + tl + pl, type, yl);
  memcpy(c->data + nl + tl + pl + yl, cmd, zl);
  ctl_push(c);
  return CAIRN_OK;
}

/* Names follow the key rules; properties are a flat JSON object (validated
 * here, stored as given, escaped by whoever renders them). */
static int check_lineage_args(const char *fn, const char *name, const char *props) {
  size_t n, plen;
  int rc = check_key(name, &n);
  if (rc == CAIRN_OK)
    rc = check_props(fn, props, &plen);
  if (rc != CAIRN_OK && rc != CAIRN_ENOMEM)
    reject(CAIRN_CHANNEL_CONTROL);
  return rc;
}

/* This process's command line, read once: it does not change. Kept for the
 * life of the process (executions of later runs use it too). */
static pthread_once_t cmdline_once = PTHREAD_ONCE_INIT;
static char *cmdline;
static void cmdline_init(void) {
  cmdline = cairn__meta_cmdline();
  if (cmdline && strlen(cmdline) > CAIRN_VALUE_MAX) {
    /* Cut at a UTF-8 character boundary. */
    size_t n = CAIRN_VALUE_MAX;
    while (n > 0 && ((unsigned char)cmdline[n] & 0xC0) == 0x80)
      n--;
    cmdline[n] = '\0';
  }
}

CAIRN_API int64_t cairn_stage(const char *name, const char *properties) {
  if (!running())
    return CAIRN_ENOTINIT;
  int rc = check_lineage_args("cairn_stage", name, properties);
  if (rc != CAIRN_OK)
    return rc;
  uint64_t id = cairn__lineage_next_id();
  const char *pipeline = cairn__g.cfg.pipeline_name[0] ? cairn__g.cfg.pipeline_name : "default";
  rc = push_lineage(CAIRN_LIN_CONTEXT, id, 0, name, pipeline, properties ? properties : "", "",
                    "");
  if (rc != CAIRN_OK)
    return rc;
  atomic_store_explicit(&cairn__g.cur_context, id, memory_order_relaxed);
  return (int64_t)id;
}

CAIRN_API int cairn_stage_end(int64_t id) {
  if (!running())
    return CAIRN_ENOTINIT;
  if (id <= 0) {
    reject(CAIRN_CHANNEL_CONTROL);
    return CAIRN_EINVAL;
  }
  /* Only the current stage ends; ending one that is not current (already
   * ended, or followed by another) is reported, changes nothing. */
  uint64_t cur = (uint64_t)id;
  if (!atomic_compare_exchange_strong_explicit(&cairn__g.cur_context, &cur, 0,
                                               memory_order_relaxed, memory_order_relaxed))
    return CAIRN_ENOTFOUND;
  return CAIRN_OK;
}

CAIRN_API int64_t cairn_execution_begin_ex(const char *type, const char *name,
                                           const char *command_line, const char *properties) {
  if (!running())
    return CAIRN_ENOTINIT;
  size_t tn;
  int rc = check_key(type, &tn);
  if (rc == CAIRN_OK && command_line &&
      strnlen(command_line, (size_t)CAIRN_VALUE_MAX + 1) > CAIRN_VALUE_MAX)
    rc = CAIRN_ENAMETOOLONG;
  if (rc != CAIRN_OK) {
    reject(CAIRN_CHANNEL_CONTROL);
    return rc;
  }
  rc = check_lineage_args("cairn_execution_begin", name, properties);
  if (rc != CAIRN_OK)
    return rc;
  if (!command_line) {
    pthread_once(&cmdline_once, cmdline_init);
    command_line = cmdline ? cmdline : "";
  }
  uint64_t id = cairn__lineage_next_id();
  uint64_t ctx = atomic_load_explicit(&cairn__g.cur_context, memory_order_relaxed);
  rc = push_lineage(CAIRN_LIN_EXEC_BEGIN, id, ctx, name, "", properties ? properties : "", type,
                    command_line);
  if (rc != CAIRN_OK)
    return rc;
  atomic_store_explicit(&cairn__g.cur_execution, id, memory_order_relaxed);
  return (int64_t)id;
}

CAIRN_API int64_t cairn_execution_begin(const char *name, const char *properties) {
  return cairn_execution_begin_ex(name, name, NULL, properties);
}

CAIRN_API int cairn_execution_end(int64_t id) {
  if (!running())
    return CAIRN_ENOTINIT;
  if (id <= 0) {
    reject(CAIRN_CHANNEL_CONTROL);
    return CAIRN_EINVAL;
  }
  int rc = push_lineage(CAIRN_LIN_EXEC_END, (uint64_t)id, 0, "", "", "", "", "");
  if (rc != CAIRN_OK)
    return rc;
  /* Only the open one is closed; ending an older one leaves it open. */
  uint64_t want = (uint64_t)id;
  atomic_compare_exchange_strong(&cairn__g.cur_execution, &want, 0);
  return CAIRN_OK;
}

CAIRN_API int cairn_flush(void) {
  if (!running())
    return CAIRN_ENOTINIT;
  if (tls_gen == CAIRN_HOT_LOAD(running_gen, __ATOMIC_RELAXED))
    cairn__ring_publish(&cairn_abi_tls);
  /* seq_cst RMW: orders our publications before the request the drain
   * acquires. */
  uint64_t req = atomic_fetch_add(&cairn__g.flush_req, 1) + 1;
  cairn__drain_wake();
  pthread_mutex_lock(&cairn__g.flush_lock);
  while (atomic_load_explicit(&cairn__g.flush_done, memory_order_acquire) < req)
    pthread_cond_wait(&cairn__g.flush_cond, &cairn__g.flush_lock);
  pthread_mutex_unlock(&cairn__g.flush_lock);
  return atomic_load_explicit(&cairn__g.flush_error, memory_order_relaxed) ? CAIRN_EIO
                                                                           : CAIRN_OK;
}

/* ---- accounting -------------------------------------------------------------- */

CAIRN_API int cairn_get_counters(cairn_channel channel, cairn_counters *out) {
  if (!out || (unsigned)channel >= CAIRN_CHANNEL_COUNT_)
    return CAIRN_EINVAL;
  if (!cairn__g.have_run)
    return CAIRN_ENOTINIT;
  memset(out, 0, sizeof *out);
  out->rejected = atomic_load_explicit(&cairn__g.rejected[channel], memory_order_relaxed);
  if (channel == CAIRN_CHANNEL_METRICS) {
    cairn__metric_totals(&out->logged, &out->dropped);
    out->written = atomic_load_explicit(&cairn__g.m_written, memory_order_relaxed);
  } else {
    out->logged = atomic_load_explicit(&cairn__g.ctl_logged, memory_order_relaxed);
    out->written = atomic_load_explicit(&cairn__g.ctl_written, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&cairn__g.ctl_lost, memory_order_relaxed);
  }
  return CAIRN_OK;
}

CAIRN_API int cairn_get_run_info(cairn_run_info *info) {
  if (!info)
    return CAIRN_EINVAL;
  if (!cairn__g.have_run)
    return CAIRN_ENOTINIT;
  memcpy(info->run_id, cairn__g.run_id_text, sizeof info->run_id);
  memcpy(info->run_dir, cairn__g.run_dir, sizeof info->run_dir);
  return CAIRN_OK;
}

/* ---- lifecycle --------------------------------------------------------------- */

static void cairn_atexit(void) {
  /* A program that returns from main without cairn_finalize still gets its
   * records written (under MPI: into the aggregator's channel). */
  if (running())
    cairn__stop();
}

static int fail_init(int rc, const char *msg) {
  cairn__fmt(last_error, sizeof last_error, "%s", msg);
  cairn__log(CAIRN_LOG_ERROR, "cairn_init failed: %s", msg);
  return rc;
}

/* Resets the accounting of the previous run. */
static void reset_counters(void) {
  atomic_store(&cairn__g.ctl_logged, 0);
  atomic_store(&cairn__g.ctl_written, 0);
  atomic_store(&cairn__g.ctl_lost, 0);
  atomic_store(&cairn__g.artifact_seq, 0);
  atomic_store(&cairn__g.cur_context, 0);
  atomic_store(&cairn__g.cur_execution, 0);
  for (int i = 0; i < CAIRN_CHANNEL_COUNT_; i++)
    atomic_store(&cairn__g.rejected[i], 0);
  atomic_store(&cairn__g.m_retired_logged, 0);
  atomic_store(&cairn__g.m_retired_dropped, 0);
  atomic_store(&cairn__g.m_written, 0);
  atomic_store(&cairn__g.m_lost, 0);
  atomic_store(&cairn__g.flush_error, 0);
  CAIRN_HOT_STORE(current_step, 0, __ATOMIC_SEQ_CST);
}

/* Makes run.dir absolute (against the working directory) into parent. */
int cairn__run_parent_dir(const cairn_config *cfg, char *parent, size_t len, char *err,
                          size_t errlen) {
  if (cfg->run_dir[0] == '/') {
    if ((size_t)snprintf(parent, len, "%s", cfg->run_dir) >= len)
      goto too_long;
    return CAIRN_OK;
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) {
    cairn__fmt(err, errlen, "cannot determine the working directory for run.dir: %s",
               strerror(errno));
    return CAIRN_EIO;
  }
  if ((size_t)snprintf(parent, len, "%s/%s", cwd, cfg->run_dir) < len)
    return CAIRN_OK;
too_long:
  cairn__fmt(err, errlen, "run.dir is too long once made absolute");
  return CAIRN_EINVAL;
}

/* Creates <parent>/<id text> (mode 0700; the parent too if missing) and
 * writes its absolute path into dir. */
int cairn__run_make_dir(const cairn_config *cfg, const uint8_t id[16], char *dir, size_t len,
                        char *err, size_t errlen) {
  char parent[4096], text[37];
  int rc = cairn__run_parent_dir(cfg, parent, sizeof parent, err, errlen);
  if (rc != CAIRN_OK)
    return rc;
  cairn__uuid_format(id, text);
  if ((size_t)snprintf(dir, len, "%s/%s", parent, text) >= len) {
    cairn__fmt(err, errlen, "run directory path is too long");
    return CAIRN_EINVAL;
  }
  /* Run files are private to the job's user (shared login and compute
   * nodes): directories 0700, files 0600. */
  if ((rc = cairn__mkdir_p(parent, 0700, err, errlen)) != CAIRN_OK)
    return rc;
  if (mkdir(dir, 0700) != 0) {
    cairn__fmt(err, errlen, "cannot create run directory '%s': %s%s", dir, strerror(errno),
               errno == EEXIST ? " (run.id names an existing run)" : "");
    return CAIRN_EIO;
  }
  return CAIRN_OK;
}

/* The automatic run metadata (user, command line, job, git state, allowed
 * environment variables ...) becomes run key/values on the lossless
 * channel. A failure here loses metadata, never the run. */
static void record_metadata(const cairn_config *cfg, const cairn_meta *extra) {
  cairn_meta m = {0};
  char err[256] = "";
  if (cairn__meta_collect(&m, cfg->metadata_env, err, sizeof err) != CAIRN_OK)
    cairn__log(CAIRN_LOG_WARN, "run metadata incomplete: %s", err);
  for (size_t i = 0; extra && i < extra->n; i++)
    cairn__meta_add(&m, extra->kv[i].key, extra->kv[i].value);
  for (size_t i = 0; i < m.n; i++)
    cairn_run_set(m.kv[i].key, m.kv[i].value);
  cairn__meta_free(&m);
}

int cairn__start(const cairn_config *cfg, const cairn_start_opts *o, char *err,
                 size_t errlen) {
  int rc;
  if (running())
    return CAIRN_EALREADY;
  cairn__log_set_level((int)cfg->log_level);
  reset_counters();
  cairn__g.cfg = *cfg;
  memcpy(cairn__g.run_id, o->run_id, 16);
  cairn__uuid_format(o->run_id, cairn__g.run_id_text);
  cairn__fmt(cairn__g.run_dir, sizeof cairn__g.run_dir, "%s", o->run_dir);
  cairn__g.start_ns = o->start_ns ? o->start_ns : cairn__now_realtime_ns();
  cairn__g.rank = o->rank;
  cairn__g.nranks = o->nranks ? o->nranks : 1;
  cairn__g.chan = o->chan;
  cairn__g.have_run = 1;
  if ((rc = cairn__names_init(&cairn__g.names, cfg->max_names)) != CAIRN_OK) {
    cairn__fmt(err, errlen, "cannot allocate the metric name table");
    return rc;
  }
  if (pthread_key_create(&cairn__g.tls_key, ring_thread_exit) != 0) {
    cairn__names_destroy(&cairn__g.names);
    cairn__fmt(err, errlen, "cannot create the thread-local key for rings");
    return CAIRN_ENOMEM;
  }
  atomic_store(&cairn__g.ctl_head, NULL);
  atomic_store(&cairn__g.flush_req, 0);
  atomic_store(&cairn__g.flush_done, 0);
  if ((rc = cairn__drain_start(err, errlen)) != CAIRN_OK) {
    pthread_key_delete(cairn__g.tls_key);
    cairn__names_destroy(&cairn__g.names);
    if (!err[0])
      cairn__fmt(err, errlen, "%s", cairn_strerror(rc));
    return rc;
  }
  cairn__g.generation++;
  /* release: everything set up above is visible to a thread that sees the
   * run as running. */
  CAIRN_HOT_STORE(running_gen, cairn__g.generation, __ATOMIC_RELEASE);
  if (!atexit_registered) {
    atexit_registered = 1;
    atexit(cairn_atexit);
  }
  if (cfg->sigterm)
    cairn__signals_install();
  if (o->collect_meta)
    record_metadata(cfg, o->extra_meta);
  cairn__log(CAIRN_LOG_INFO, "run %s started in %s (rank %u of %u)", cairn__g.run_id_text,
             cairn__g.run_dir, cairn__g.rank, cairn__g.nranks);
  return CAIRN_OK;
}

CAIRN_API int cairn_init(const char *config_path) {
  pthread_mutex_lock(&lifecycle_lock);
  int rc;
  char err[1024] = "";
  if (running()) {
    rc = CAIRN_EALREADY;
    goto out;
  }
  last_error[0] = '\0';
  cairn_config cfg;
  rc = cairn__config_load(&cfg, config_path, err, sizeof err);
  if (rc != CAIRN_OK) {
    rc = fail_init(rc, err);
    goto out;
  }
  cairn__log_set_level((int)cfg.log_level);
  if (!cfg.enabled) {
    cairn__fmt(last_error, sizeof last_error, "disabled by configuration (enabled: false)");
    rc = CAIRN_EDISABLED;
    goto out;
  }
  cairn_start_opts o = {.nranks = 1, .collect_meta = 1};
  if (cfg.run_id[0])
    rc = cairn__uuid_parse(cfg.run_id, o.run_id);
  else
    rc = cairn__uuid_generate(o.run_id);
  if (rc != CAIRN_OK) {
    rc = fail_init(CAIRN_EIO, "cannot obtain a run id from the kernel's random source");
    goto out;
  }
  char dir[4096];
  if ((rc = cairn__run_make_dir(&cfg, o.run_id, dir, sizeof dir, err, sizeof err)) !=
      CAIRN_OK) {
    rc = fail_init(rc, err);
    goto out;
  }
  o.run_dir = dir;
  if ((rc = cairn__start(&cfg, &o, err, sizeof err)) != CAIRN_OK)
    rc = fail_init(rc, err);
out:
  pthread_mutex_unlock(&lifecycle_lock);
  return rc;
}

/* Stops the run: drains, writes, stops the threads, frees the rings.
 * Caller holds lifecycle_lock. */
static int stop_locked(void) {
  if (!running())
    return CAIRN_ENOTINIT;
  if (tls_gen == CAIRN_HOT_LOAD(running_gen, __ATOMIC_RELAXED))
    cairn__ring_publish(&cairn_abi_tls);
  /* Artifacts already logged are hashed and recorded before the drain's
   * last block (the hasher pushes onto the control channel). */
  drop_uncommitted_slices();
  cairn__hasher_stop();
  /* From here on every logging call returns CAIRN_ENOTINIT. */
  CAIRN_HOT_STORE(running_gen, CAIRN_GEN_NONE, __ATOMIC_RELEASE);
  int rc = cairn__drain_stop();

  /* Keep the final accounting readable after the rings are gone. */
  pthread_mutex_lock(&cairn__g.reg_lock);
  for (size_t i = 0; i < cairn__g.nrings; i++) {
    cairn_ring *r = cairn__g.rings[i];
    uint64_t dropped = atomic_load_explicit(&r->pub_dropped, memory_order_relaxed);
    atomic_fetch_add(&cairn__g.m_retired_logged,
                     atomic_load_explicit(&r->pub_head, memory_order_acquire) + dropped);
    atomic_fetch_add(&cairn__g.m_retired_dropped, dropped);
    cairn__ring_destroy(r);
  }
  free(cairn__g.rings);
  cairn__g.rings = NULL;
  cairn__g.nrings = cairn__g.rings_cap = 0;
  pthread_mutex_unlock(&cairn__g.reg_lock);
  /* No destructor may run for rings of this run any more. */
  pthread_key_delete(cairn__g.tls_key);
  CAIRN_HOT_STORE(metric_ids, 0, __ATOMIC_SEQ_CST);
  cairn__names_destroy(&cairn__g.names);
  memset(&cairn_abi_tls, 0, sizeof cairn_abi_tls);
  if (rc != CAIRN_OK)
    cairn__fmt(last_error, sizeof last_error,
               "some records could not be written to %s (see cairn_get_counters)",
               cairn__g.run_dir);
  /* Standalone: the write-ahead log becomes the run's HDF5 file here, on
   * the application's thread (HDF5 is not thread-safe). Under MPI the
   * aggregators do it together in MPI_Finalize. */
  if (!cairn__g.chan) {
    char err[1024] = "";
    int h5 = cairn__h5_finalize_run(cairn__g.run_dir,
                                    cairn__h5_convert_memory(cairn__g.cfg.convert_memory), err,
                                    sizeof err);
    cairn__release_free_memory();
    if (h5 == CAIRN_ECORRUPT) {
      cairn__log(CAIRN_LOG_WARN, "%s (the write-ahead log is kept)", err);
    } else if (h5 != CAIRN_OK && h5 != CAIRN_ENOTFOUND) {
      cairn__log(CAIRN_LOG_ERROR, "writing the run file failed: %s; the write-ahead log in "
                                  "%s is kept and holds everything",
                 err, cairn__g.run_dir);
      cairn__fmt(last_error, sizeof last_error, "run file not written (%s); the log is kept",
                 err);
      if (rc == CAIRN_OK)
        rc = CAIRN_EIO;
    }
  }
  return rc;
}

int cairn__stop(void) {
  pthread_mutex_lock(&lifecycle_lock);
  int rc = stop_locked();
  pthread_mutex_unlock(&lifecycle_lock);
  return rc;
}

CAIRN_API int cairn_finalize(void) {
  /* Under MPI this ends this rank's logging: its last records go to the
   * aggregator, and MPI_Finalize completes the run's files. */
  return cairn__stop();
}
