/*
 * stress_check.h — the check of the Criterion-free stress programs (they
 * run under ThreadSanitizer, where Criterion cannot): on a failed condition
 * it prints the program (STRESS_NAME, defined before inclusion), the
 * condition and a printf-style message, and exits 1. Header-only.
 */
#ifndef CAIRN_STRESS_CHECK_H
#define CAIRN_STRESS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s: check failed: %s: ", STRESS_NAME, #cond);           \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#endif /* CAIRN_STRESS_CHECK_H */
