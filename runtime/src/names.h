/*
 * names.h — private to cairn. Interning of metric names to small dense ids.
 * Writers (cairn_metric_id) serialise on a mutex; readers (the hot path's id
 * check, the drain) read the published count with acquire and the immutable
 * strings below it without locking.
 */
#ifndef CAIRN_NAMES_H
#define CAIRN_NAMES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct {
  pthread_mutex_t lock;
  char **names;     /* [max]; entries below count are immutable */
  uint32_t max;
  uint32_t *index;  /* open addressing: id + 1, 0 = empty; guarded by lock */
  uint32_t index_cap;
  _Atomic uint32_t count;
} cairn_names;

int cairn__names_init(cairn_names *t, uint32_t max);
void cairn__names_destroy(cairn_names *t);

/* Returns the id of `name` (interning it if new) or CAIRN_EINVAL,
 * CAIRN_ENAMETOOLONG, CAIRN_ETOOMANY, CAIRN_ENOMEM. Thread-safe. */
int cairn__names_intern(cairn_names *t, const char *name);

static inline uint32_t cairn__names_count(cairn_names *t) {
  /* acquire: pairs with the release in intern; names[0..count) are set. */
  return atomic_load_explicit(&t->count, memory_order_acquire);
}

#endif /* CAIRN_NAMES_H */
