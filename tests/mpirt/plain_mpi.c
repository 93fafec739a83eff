/* plain_mpi.c — an MPI program that knows nothing of cairn (not linked with
 * it): the LD_PRELOAD test runs it with libcairn.so preloaded. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double x = rank, sum = 0;
  for (int i = 0; i < 10; i++)
    MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (sum != size * (size - 1) / 2.0)
    return 1;
  MPI_Finalize();
  return 0;
}
