/*
 * mpi_heavy_app.c — an application that is itself a heavy MPI and HDF5
 * user while cairn runs inside it: every step it does an MPI_Allreduce of a
 * 1 MiB buffer and, every 10 steps, writes a slab of a parallel HDF5 dataset
 * collectively with MPI-IO; a second thread logs metrics all the time. At
 * the end it reads its own file back and checks every value, so corruption
 * of the application's data (or a deadlock, via the test timeout) fails the
 * test. cairn's own output is checked afterwards by mpi_check_run.
 *
 * usage: mpi_heavy_app STEPS OUTPUT.h5
 */
#include <hdf5.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"

#define N 131072 /* doubles per allreduce: 1 MiB */
#define ROW 1024 /* doubles per rank per HDF5 slab */

static int steps;

static void *logger(void *arg) {
  int id = *(int *)arg;
  for (int s = 0; s < steps; s++)
    cairn_metric_at(id, s, 7.0);
  cairn_flush();
  return NULL;
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  steps = argc > 1 ? atoi(argv[1]) : 100;
  const char *path = argc > 2 ? argv[2] : "heavy.h5";
  int loss = cairn_metric_id("loss"), rid = cairn_metric_id("rank_id"),
      side = cairn_metric_id("side");
  if (loss < 0) {
    fprintf(stderr, "rank %d: cairn inactive\n", rank);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  cairn_param_int64("world_rank", rank);
  if (cairn_artifact("/proc/self/exe", CAIRN_ARTIFACT_ENVIRONMENT, CAIRN_ROLE_INPUT) <= 0 ||
      cairn_artifact("https://example.org/dataset/v1", CAIRN_ARTIFACT_DATASET,
                     CAIRN_ROLE_INPUT) <= 0)
    MPI_Abort(MPI_COMM_WORLD, 5);
  pthread_t th;
  pthread_create(&th, NULL, logger, &side);

  double *buf = malloc(N * sizeof *buf), *out = malloc(N * sizeof *out);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  int writes = steps / 10;
  hsize_t dims[2] = {(hsize_t)writes, (hsize_t)size * ROW};
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t dset = H5Dcreate2(file, "/slabs", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  double row[ROW];
  int bad = 0;
  for (int s = 0; s < steps; s++) {
    cairn_step(s);
    for (int i = 0; i < N; i++)
      buf[i] = rank + i * 1e-6;
    MPI_Allreduce(buf, out, N, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    double want0 = size * (size - 1) / 2.0;
    if (out[0] != want0)
      bad++;
    cairn_metric(loss, rank + s / 1000.0);
    cairn_metric(loss, rank + s / 1000.0 + 1.0);
    cairn_metric(rid, rank);
    if (s % 10 == 9 && s / 10 < writes) {
      for (int i = 0; i < ROW; i++)
        row[i] = s * 1000.0 + rank + i * 1e-3;
      hsize_t start[2] = {(hsize_t)(s / 10), (hsize_t)rank * ROW}, count[2] = {1, ROW};
      hid_t fs = H5Dget_space(dset);
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
      hid_t ms = H5Screate_simple(2, count, NULL);
      if (H5Dwrite(dset, H5T_NATIVE_DOUBLE, ms, fs, dxpl, row) < 0)
        bad++;
      H5Sclose(ms);
      H5Sclose(fs);
    }
  }
  pthread_join(th, NULL);
  H5Dclose(dset);
  H5Sclose(space);
  H5Fclose(file);

  /* Read the application's own file back, every value. */
  file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  dset = H5Dopen2(file, "/slabs", H5P_DEFAULT);
  double *all = malloc((size_t)writes * (size_t)size * ROW * sizeof *all);
  if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) < 0)
    bad++;
  for (int w = 0; w < writes; w++)
    for (int r = 0; r < size; r++)
      for (int i = 0; i < ROW; i++) {
        double v = all[((size_t)w * size + r) * ROW + i];
        if (v != (w * 10 + 9) * 1000.0 + r + i * 1e-3)
          bad++;
      }
  H5Dclose(dset);
  H5Fclose(file);
  H5Pclose(fapl);
  H5Pclose(dxpl);
  int total = 0;
  MPI_Allreduce(&bad, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("heavy app: %d steps on %d ranks, application data %s\n", steps, size,
           total ? "CORRUPT" : "intact");
  free(buf);
  free(out);
  free(all);
  MPI_Finalize();
  return total ? 1 : 0;
}
