/*
 * app.c — an MPI program that knows nothing of cairn: no cairn header, not
 * linked with libcairn. Preloading libcairn.so makes cairn start inside its
 * MPI_Init and finish inside its MPI_Finalize, recording the run (identity,
 * ranks, timing, accounting) without a rebuild.
 *
 * usage: mpicc app.c -o app
 *        LD_PRELOAD=<cairn prefix>/lib/libcairn.so mpirun -np 4 ./app
 */
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
  if (rank == 0)
    printf("sum of ranks: %g (expected %g)\n", sum, size * (size - 1) / 2.0);
  MPI_Finalize();
  return sum == size * (size - 1) / 2.0 ? 0 : 1;
}
