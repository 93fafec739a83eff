# Criterion, the unit-test framework cairn's tests use. Spack's builtin
# repository has no recipe for it.

from spack_repo.builtin.build_systems import meson
from spack_repo.builtin.build_systems.meson import MesonPackage

from spack.package import *


class Criterion(MesonPackage):
    """A cross-platform C and C++ unit testing framework: tests register
    themselves, each runs in its own process, and crashes, signals and
    timeouts are reported as failures of that test."""

    homepage = "https://github.com/Snaipe/Criterion"
    url = "https://github.com/Snaipe/Criterion/releases/download/v2.4.1/criterion-2.4.1.tar.xz"
    git = "https://github.com/Snaipe/Criterion.git"

    license("MIT")

    # The release tarball is made by `meson dist --include-subprojects`: it
    # carries the sources of the subprojects Spack has no package for
    # (BoxFort, debugbreak, klib, nanopb), which the build uses offline.
    version("2.4.1", sha256="d0f86a8fc868e2c7b83894ad058313023176d406501a4ee8863e5357e31a80e7")

    depends_on("c", type="build")
    depends_on("cxx", type="build")
    # --skip-subprojects for meson install
    depends_on("meson@0.58:", type="build")
    depends_on("ninja", type="build")
    depends_on("pkgconfig", type="build")
    # meson's cmake module builds the bundled nanopb
    depends_on("cmake", type="build")

    depends_on("nanomsg")
    depends_on("libffi")
    depends_on("libgit2")


class MesonBuilder(meson.MesonBuilder):
    def meson_args(self):
        return [
            "-Dtests=false",
            "-Dsamples=false",
            "-Di18n=disabled",
            "-Dtheories=enabled",
            # From the tarball, not from pkg-config: Criterion needs these
            # exact revisions and links them in statically.
            "--force-fallback-for=boxfort,debugbreak,klib",
        ]

    def install(self, pkg, spec, prefix):
        # The bundled subprojects are linked into libcriterion; installing
        # them as well would put their headers and archives in the prefix.
        with working_dir(self.build_directory):
            pkg.module.meson("install", "--skip-subprojects")
