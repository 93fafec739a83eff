# Finds cairn's dependencies the standard way. A missing dependency stops
# configure with a message naming the Debian package and the Spack spec that
# provide it, so a user on a workstation or a supercomputer knows what to do.

include(FindPkgConfig)

# cairn_require(<found-var> <what> <debian-package> <spack-spec>)
function(cairn_require found what deb spec)
  if(NOT ${found})
    message(FATAL_ERROR
      "cairn: ${what} was not found.\n"
      "  Debian/Ubuntu: apt-get install ${deb}\n"
      "  Spack:         spack install ${spec} && spack load ${spec}\n"
      "  Or point CMake at an existing install with CMAKE_PREFIX_PATH.")
  endif()
endfunction()

find_package(PkgConfig QUIET)
cairn_require(PKG_CONFIG_FOUND "pkg-config" "pkg-config" "pkgconf")

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

find_package(MPI COMPONENTS C QUIET)
cairn_require(MPI_C_FOUND "An MPI-3 C library (Open MPI, MPICH, ...)"
              "libopenmpi-dev openmpi-bin" "openmpi")

set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 COMPONENTS C QUIET)
cairn_require(HDF5_FOUND "HDF5" "libhdf5-openmpi-dev" "hdf5+mpi")
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "cairn: HDF5 was found (${HDF5_C_INCLUDE_DIRS}) but it is the serial flavour; "
    "cairn needs parallel HDF5.\n"
    "  Debian/Ubuntu: apt-get install libhdf5-openmpi-dev\n"
    "  Spack:         spack install hdf5+mpi")
endif()

# What to link for HDF5: the imported target where FindHDF5 provides one
# (CMake >= 3.19), its variables otherwise.
if(TARGET hdf5::hdf5)
  set(CAIRN_HDF5_LINK hdf5::hdf5)
else()
  set(CAIRN_HDF5_LINK ${HDF5_C_LIBRARIES})
endif()

pkg_check_modules(YAML QUIET IMPORTED_TARGET yaml-0.1)
cairn_require(YAML_FOUND "libyaml (pkg-config module yaml-0.1)" "libyaml-dev" "libyaml")

pkg_check_modules(ZSTD QUIET IMPORTED_TARGET libzstd)
cairn_require(ZSTD_FOUND "zstd (pkg-config module libzstd)" "libzstd-dev" "zstd")

pkg_check_modules(SQLITE3 QUIET IMPORTED_TARGET sqlite3)
cairn_require(SQLITE3_FOUND "SQLite 3 (pkg-config module sqlite3)" "libsqlite3-dev" "sqlite")

find_package(OpenSSL QUIET COMPONENTS Crypto)
cairn_require(OPENSSL_FOUND "OpenSSL libcrypto" "libssl-dev" "openssl")

if(CAIRN_BUILD_TESTS)
  pkg_check_modules(CRITERION QUIET IMPORTED_TARGET criterion)
  cairn_require(CRITERION_FOUND "Criterion (pkg-config module criterion), needed for tests"
                "libcriterion-dev" "criterion (from cairn's spack/ repository)")
endif()
