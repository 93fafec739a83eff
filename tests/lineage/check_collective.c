/* check_collective.c RUNS_DIR DIR — checks the run artifact_collective left:
 * the hash every rank agreed on is the serial hash of the file (so the same
 * whatever the number of ranks), and the run file holds exactly the two
 * artifacts, recorded once by rank 0 with the right properties, sizes,
 * reasons and events. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "hash/hash.h"
#include "run_view.h"

static int bad;
#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "check_collective: line %d: ", __LINE__);                               \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fputc('\n', stderr);                                                                     \
      bad = 1;                                                                                 \
    }                                                                                          \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: check_collective RUNS_DIR DIR\n");
    return 2;
  }
  char run[4096] = "", path[4096], report[4096], missing[4096];
  DIR *d = opendir(argv[1]);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.')
      snprintf(run, sizeof run, "%s/%s", argv[1], e->d_name);
  if (d)
    closedir(d);
  snprintf(path, sizeof path, "%s/ckpt.bin", argv[2]);
  snprintf(missing, sizeof missing, "%s/no-such-checkpoint", argv[2]);
  snprintf(report, sizeof report, "%s/collective.txt", argv[2]);
  char text[512] = "";
  long long id = 0, id2 = 0, exec = 0;
  int nranks = 0;
  FILE *f = fopen(report, "r");
  if (!run[0] || !f || fscanf(f, "%511s %lld %lld %lld %d", text, &id, &id2, &exec, &nranks) != 5) {
    fprintf(stderr, "check_collective: no run in %s or no report %s\n", argv[1], report);
    return 1;
  }
  fclose(f);

  cairn_hash_result res;
  cairn__hash_file(path, 0, 1, &res);
  CHECK(res.status == CAIRN_OK, "serial hash: %s", res.reason);
  char want[128];
  snprintf(want, sizeof want, "cairn-merkle-sha256-v1:%s", res.hex);
  CHECK(strcmp(text, want) == 0, "collective %s != serial %s", text, want);
  CHECK(res.nleaves == 8, "%llu leaves", (unsigned long long)res.nleaves);

  cairn_run_view v;
  cairn__view_init(&v);
  int rc = cairn__run_open(run, &v, NULL);
  CHECK(rc == CAIRN_OK, "run_open: %s", cairn_err_name(rc));
  CHECK(v.nartifacts == 2, "%zu artifacts, want 2 (recorded once, by rank 0)", v.nartifacts);
  char props[128];
  snprintf(props, sizeof props, "{\"step\": 100, \"writers\": %d}", nranks);
  for (size_t i = 0; i < v.nartifacts; i++) {
    const cairn_h5_artifact_row *a = &v.artifacts[i];
    CHECK(a->rank == 0, "artifact %zu logged by rank %d", i, a->rank);
    if (a->id == (uint64_t)id) {
      CHECK(strcmp(a->uri, path) == 0, "uri %s", a->uri);
      CHECK(strcmp(a->hash, want) == 0, "recorded %s != %s", a->hash, want);
      CHECK(a->size == res.size, "size %llu", (unsigned long long)a->size);
      CHECK(a->kind == CAIRN_H5_ARTIFACT_MODEL, "kind %u", a->kind);
      CHECK(strcmp(a->properties, props) == 0, "properties %s", a->properties);
    } else if (a->id == (uint64_t)id2) {
      CHECK(strcmp(a->uri, missing) == 0, "uri %s", a->uri);
      CHECK(strcmp(a->hash, "error: no such file") == 0, "hash %s", a->hash);
      CHECK(a->size == 0, "size of a missing file");
      CHECK(strcmp(a->properties, "") == 0, "properties %s", a->properties);
    } else {
      CHECK(0, "unexpected artifact %llu", (unsigned long long)a->id);
    }
  }
  int found = 0;
  for (size_t i = 0; i < v.nevents; i++) {
    const cairn_h5_event_row *ev = &v.events[i];
    if (ev->artifact_id == (uint64_t)id) {
      found++;
      CHECK(ev->type == CAIRN_H5_EVENT_OUTPUT, "event type %u", ev->type);
      CHECK(ev->execution_id == (uint64_t)exec, "event of execution %llu, want %lld",
            (unsigned long long)ev->execution_id, exec);
    }
  }
  CHECK(found == 1, "%d events for the checkpoint", found);
  int ex = 0;
  for (size_t i = 0; i < v.nexecutions; i++)
    if (v.executions[i].id == (uint64_t)exec) {
      ex++;
      CHECK(strcmp(v.executions[i].type, "save") == 0, "type %s", v.executions[i].type);
      CHECK(strcmp(v.executions[i].name, "checkpoint-100") == 0, "name %s",
            v.executions[i].name);
      CHECK(v.executions[i].command[0] != '\0', "the process's command line");
    }
  CHECK(ex == 1, "execution not found");
  cairn__view_free(&v);
  if (!bad)
    printf("check_collective: %d ranks, %s\n", nranks, text);
  return bad;
}
