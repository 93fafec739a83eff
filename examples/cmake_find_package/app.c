/*
 * app.c — an MPI training loop instrumented with cairn, built against an
 * installed cairn with CMake's find_package(cairn). cairn starts inside
 * MPI_Init and finishes inside MPI_Finalize; the program only logs.
 *
 * usage: mpirun -np 4 ./app [STEPS]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include <cairn.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv); /* cairn starts here */
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int64_t steps = argc > 1 ? atoll(argv[1]) : 20;

  int loss = cairn_metric_id("loss"); /* intern once, outside the loop */
  if (loss < 0) {
    fprintf(stderr, "rank %d: cairn is not active: %s\n", rank, cairn_strerror(loss));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  cairn_param_int64("example.steps", steps);
  for (int64_t step = 0; step < steps; step++) {
    cairn_step(step);
    cairn_metric(loss, 1.0 / (1.0 + (double)step) + 0.01 * rank);
  }

  cairn_run_info info;
  if (rank == 0 && cairn_get_run_info(&info) == CAIRN_OK)
    printf("cairn %s: run %s\n", cairn_version(), info.run_dir);
  MPI_Finalize(); /* and finishes here: the run is complete on disk */
  return 0;
}
