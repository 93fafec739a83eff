! fortran_app.f90 — a Fortran MPI program (mpif.h-style bindings through
! "use mpi") linked with cairn: cairn must start in MPI_INIT and finish in
! MPI_FINALIZE without any cairn call in the program.
program fortran_app
  use mpi
  implicit none
  integer :: ierr, rank, nprocs
  double precision :: x, total
  call MPI_INIT(ierr)
  call MPI_COMM_RANK(MPI_COMM_WORLD, rank, ierr)
  call MPI_COMM_SIZE(MPI_COMM_WORLD, nprocs, ierr)
  x = rank
  call MPI_ALLREDUCE(x, total, 1, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierr)
  call MPI_FINALIZE(ierr)
end program fortran_app
