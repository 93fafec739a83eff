/*
 * test_tmpdir.h — test helper: a private directory under /tmp, removed with
 * everything in it when the process exits (Criterion runs each test in its
 * own process), and the recursive removal itself. Header-only.
 */
#ifndef CAIRN_TEST_TMPDIR_H
#define CAIRN_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static inline int tt_rm_entry(const char *path, const struct stat *st, int flag,
                              struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Removes dir and everything below it (best effort). */
static inline void tt_rmtree(const char *dir) {
  nftw(dir, tt_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char tt_dir[64];

static inline void tt_rm_at_exit(void) {
  if (tt_dir[0])
    tt_rmtree(tt_dir);
}

/* /tmp/<prefix>-XXXXXX, created 0700 and removed at exit; NULL if it cannot
 * be created. One per process. */
static inline char *tt_tempdir(const char *prefix) {
  snprintf(tt_dir, sizeof tt_dir, "/tmp/%s-XXXXXX", prefix);
  if (!mkdtemp(tt_dir))
    return NULL;
  atexit(tt_rm_at_exit);
  return tt_dir;
}

#endif /* CAIRN_TEST_TMPDIR_H */
