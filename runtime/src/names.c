/* names.c — the metric-name intern table (name -> dense id). */
#include "names.h"

#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static uint32_t hash_name(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)s[i];
    h *= 16777619u;
  }
  return h;
}

int cairn__names_init(cairn_names *t, uint32_t max) {
  memset(t, 0, sizeof *t);
  t->names = calloc(max, sizeof *t->names);
  t->index_cap = 64;
  t->index = calloc(t->index_cap, sizeof *t->index);
  if (!t->names || !t->index) {
    free(t->names);
    free(t->index);
    return CAIRN_ENOMEM;
  }
  t->max = max;
  atomic_init(&t->count, 0);
  pthread_mutex_init(&t->lock, NULL);
  return CAIRN_OK;
}

void cairn__names_destroy(cairn_names *t) {
  if (!t->names)
    return;
  uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
  for (uint32_t i = 0; i < n; i++)
    free(t->names[i]);
  free(t->names);
  free(t->index);
  pthread_mutex_destroy(&t->lock);
  memset(t, 0, sizeof *t);
}

/* Finds the slot holding `name` or the empty slot where it would go. */
static uint32_t *probe(cairn_names *t, const char *name, size_t n) {
  uint32_t mask = t->index_cap - 1;
  for (uint32_t i = hash_name(name, n) & mask;; i = (i + 1) & mask) {
    uint32_t v = t->index[i];
    if (v == 0 || strcmp(t->names[v - 1], name) == 0)
      return &t->index[i];
  }
}

static int grow_index(cairn_names *t) {
  uint32_t cap = t->index_cap * 2;
  uint32_t *idx = calloc(cap, sizeof *idx);
  if (!idx)
    return CAIRN_ENOMEM;
  uint32_t *old = t->index;
  t->index = idx;
  t->index_cap = cap;
  uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
  for (uint32_t id = 0; id < n; id++)
    *probe(t, t->names[id], strlen(t->names[id])) = id + 1;
  free(old);
  return CAIRN_OK;
}

int cairn__names_intern(cairn_names *t, const char *name) {
  if (!name || !name[0])
    return CAIRN_EINVAL;
  size_t n = strnlen(name, CAIRN_NAME_MAX + 1);
  if (n > CAIRN_NAME_MAX)
    return CAIRN_ENAMETOOLONG;
  pthread_mutex_lock(&t->lock);
  int rc;
  uint32_t *slot = probe(t, name, n);
  if (*slot) {
    rc = (int)(*slot - 1);
    goto out;
  }
  uint32_t id = atomic_load_explicit(&t->count, memory_order_relaxed);
  if (id >= t->max) {
    rc = CAIRN_ETOOMANY;
    goto out;
  }
  /* Keep the index at most half full, so probing always ends. */
  if ((id + 1) * 2 > t->index_cap) {
    if ((rc = grow_index(t)) != CAIRN_OK)
      goto out;
    slot = probe(t, name, n);
  }
  char *copy = malloc(n + 1);
  if (!copy) {
    rc = CAIRN_ENOMEM;
    goto out;
  }
  memcpy(copy, name, n + 1);
  t->names[id] = copy;
  *slot = id + 1;
  /* release: the string and the slot above are visible to whoever sees the
   * new count (the hot path's id check, the drain's name emission). */
  atomic_store_explicit(&t->count, id + 1, memory_order_release);
  rc = (int)id;
out:
  pthread_mutex_unlock(&t->lock);
  return rc;
}
