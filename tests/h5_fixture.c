/*
 * h5_fixture.c — writes the synthetic run of tests/h5_testdata.h (5 ranks)
 * as DIR/run-g000000.h5 with the serial writer, for the independent
 * readers in tests/h5_readers.py. Exit status 0 on success.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "h5/h5_writer.h"
#include "h5_testdata.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: h5_fixture DIR\n");
    return 2;
  }
  if (mkdir(argv[1], 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "h5_fixture: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  int32_t ranks[5] = {0, 1, 2, 3, 4};
  cairn_run_view v;
  td_view(&v, ranks, 5, 5);
  cairn_h5_write_opts o;
  cairn__h5_write_opts_init(&o);
  o.created_ns = 1700000000123456789ull;
  char path[4096], err[1024];
  snprintf(path, sizeof path, "%s/run-g000000.h5", argv[1]);
  int rc = cairn__h5_write(&v, path, &o, err, sizeof err);
  cairn__view_free(&v);
  if (rc != CAIRN_OK) {
    fprintf(stderr, "h5_fixture: %s\n", err);
    return 1;
  }
  printf("%s\n", path);
  return 0;
}
