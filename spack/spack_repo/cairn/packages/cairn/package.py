# cairn's Spack recipe. See spack/README.md in the cairn repository for how
# to use it and how to add a release.

import os

from spack_repo.builtin.build_systems.cmake import CMakePackage

from spack.package import *

# cairn has no public home yet: by default the recipe builds the git clone
# that carries this file (<clone>/spack/spack_repo/cairn/packages/cairn/).
# CAIRN_GIT points it at another clone or at a server.
_CLONE = os.path.realpath(os.path.join(os.path.dirname(__file__), *([os.pardir] * 5)))
_GIT = os.environ.get("CAIRN_GIT", "file://" + _CLONE)


class Cairn(CMakePackage):
    """MPI-aware metrics and lineage logging runtime for distributed training
    and simulation. Every thread of every rank logs per-step metrics into its
    own lock-free ring; a background drain writes them to a crash-safe
    write-ahead log and parallel HDF5 files. cairn starts inside MPI_Init and
    finishes inside MPI_Finalize, in a program linked with it (shared or
    static) or in an unmodified one through LD_PRELOAD."""

    homepage = "file://" + os.path.join(_CLONE, "README.md")
    git = _GIT

    # Development: the main branch.
    version("main", branch="main")
    # Releases are annotated tags vMAJOR.MINOR.PATCH, the version in
    # project() of CMakeLists.txt. To add one, tag it, then add a line here,
    # newest first, pinning the commit the tag names:
    #   version("0.2.0", tag="v0.2.0", commit="<git rev-parse v0.2.0^{commit}>")

    variant(
        "static",
        default=True,
        description="Also install the static library libcairn.a (and cairn::cairn_static)",
    )
    variant(
        "tools",
        default=True,
        description="Build and install the cairn command and its tools (cairn, cairn-dump, "
        "cairn-wal-dump); off installs the runtime library alone, e.g. on compute images",
    )

    depends_on("c", type="build")
    depends_on("cmake@3.18:", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("mpi")
    depends_on("hdf5@1.10:+mpi")
    depends_on("libyaml")
    depends_on("zstd")
    depends_on("sqlite")
    depends_on("openssl")

    # The unit tests (spack install --test=root cairn).
    depends_on("criterion", type="test")

    def cmake_args(self):
        return [
            self.define("CAIRN_BUILD_TESTS", self.run_tests),
            self.define("CAIRN_BUILD_BENCH", False),
            self.define("CAIRN_BUILD_EXAMPLES", False),
            self.define_from_variant("CAIRN_INSTALL_STATIC", "static"),
            self.define_from_variant("CAIRN_BUILD_TOOLS", "tools"),
            self.define("MPI_C_COMPILER", self.spec["mpi"].mpicc),
        ]

    def setup_build_environment(self, env):
        # spack install --test=root runs ctest: show why a test failed.
        env.set("CTEST_OUTPUT_ON_FAILURE", "1")

    def setup_run_environment(self, env):
        # h5dump, h5py and other HDF5 readers of cairn's files load the zstd
        # filter from here.
        env.prepend_path("HDF5_PLUGIN_PATH", join_path(self.prefix.lib, "hdf5", "plugin"))
