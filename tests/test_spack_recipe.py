#!/usr/bin/env python3
"""test_spack_recipe.py — checks cairn's Spack repository (spack/) without
Spack: the recipes are parsed with ast, never imported.

Checks: repo.yaml declares the namespace of its directory and package API
v2.0; each package.py is valid Python, imports its build system from
spack_repo.builtin.build_systems and the directives from spack.package, and
defines the class Spack derives from the directory name, with a docstring and
no boilerplate; cairn is a CMakePackage with version("main", branch="main"),
depends on every dependency the CMake build looks for (find_package /
pkg_check_modules in cmake/CairnDependencies.cmake and the library's
CMakeLists) with the right type, and passes only CMake options that exist;
criterion is a MesonPackage for 2.4.1 with a sha256 and the dependencies of
Criterion's meson.build.

usage: test_spack_recipe.py [CAIRN_SOURCE_DIR]
"""
import ast
import os
import re
import sys
import unittest

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), os.pardir))
REPO = os.path.join(SRC, "spack", "spack_repo", "cairn")

# What the CMake build looks for -> the Spack package providing it and the
# dependency types it needs (None: nothing to declare).
CMAKE_TO_SPACK = {
    "PkgConfig": ("pkgconfig", {"build"}),
    "pkg-config": ("pkgconfig", {"build"}),
    "Threads": None,
    "MPI": ("mpi", {"build", "link"}),
    "HDF5": ("hdf5", {"build", "link"}),
    "yaml-0.1": ("libyaml", {"build", "link"}),
    "libzstd": ("zstd", {"build", "link"}),
    "sqlite3": ("sqlite", {"build", "link"}),
    "OpenSSL": ("openssl", {"build", "link"}),
    "criterion": ("criterion", {"test"}),
}
DEFAULT_TYPES = {"build", "link"}  # depends_on without type=


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def strip_cmake_comments(text):
    return "\n".join(re.sub(r"#.*", "", line) for line in text.splitlines())


def cmake_dependencies():
    """Names the library build looks for: find_package(<name>) and the
    module of pkg_check_modules(<prefix> [options] <module>)."""
    files = [os.path.join(SRC, "cmake", "CairnDependencies.cmake"),
             os.path.join(SRC, "CMakeLists.txt")]
    for sub in ("runtime", "io", "tools"):
        for root, _, names in os.walk(os.path.join(SRC, sub)):
            files += [os.path.join(root, n) for n in names
                      if n == "CMakeLists.txt" or n.endswith(".cmake")]
    found = {}
    options = {"REQUIRED", "QUIET", "NO_CMAKE_PATH", "NO_CMAKE_ENVIRONMENT_PATH",
               "IMPORTED_TARGET", "GLOBAL"}
    for path in files:
        text = strip_cmake_comments(read(path))
        for m in re.finditer(r"\bfind_package\s*\(\s*([A-Za-z0-9_.+-]+)", text):
            found.setdefault(m.group(1), path)
        for m in re.finditer(r"\bpkg_check_modules\s*\(([^)]*)\)", text):
            words = m.group(1).split()[1:]
            for w in words:
                if w not in options and not w.startswith("${"):
                    found.setdefault(re.split(r"[<>=]", w)[0], path)
    return found


def directive_calls(cls, name):
    """Calls of directive `name` in a class body, at any depth of with-blocks."""
    calls = []
    for node in ast.walk(cls):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == name:
            calls.append(node)
    return calls


def literal_args(call):
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    return args, kwargs


def spec_name(spec):
    return re.match(r"[a-z0-9-]+", spec).group(0)


def dependencies(cls):
    """{package name: (spec string, set of types)} of depends_on directives."""
    deps = {}
    for call in directive_calls(cls, "depends_on"):
        args, kwargs = literal_args(call)
        t = kwargs.get("type", tuple(DEFAULT_TYPES))
        types = {t} if isinstance(t, str) else set(t)
        name = spec_name(args[0])
        old = deps.get(name, ("", set()))
        deps[name] = (old[0] + " " + args[0] if old[0] else args[0], old[1] | types)
    return deps


def spack_class_name(pkg_dir_name):
    # Spack: mod_to_class("py-foo-bar") == "PyFooBar"
    return "".join(p.capitalize() for p in re.split(r"[-_]", pkg_dir_name))


class Recipe:
    def __init__(self, name):
        self.name = name
        self.path = os.path.join(REPO, "packages", name, "package.py")
        self.text = read(self.path)
        self.tree = ast.parse(self.text, self.path)
        classes = [n for n in self.tree.body if isinstance(n, ast.ClassDef)]
        self.cls = next((c for c in classes if c.name == spack_class_name(name)), None)
        self.classes = {c.name: c for c in classes}


class SpackRepository(unittest.TestCase):
    def test_repo_yaml_declares_namespace_and_api_v2(self):
        text = read(os.path.join(REPO, "repo.yaml"))
        self.assertRegex(text, r"(?m)^repo:\s*$")
        ns = re.search(r"(?m)^\s+namespace:\s*['\"]?([A-Za-z0-9_]+)['\"]?\s*$", text)
        api = re.search(r"(?m)^\s+api:\s*['\"]?(v[0-9]+\.[0-9]+)['\"]?\s*$", text)
        self.assertTrue(ns, "repo.yaml has no namespace")
        self.assertEqual(ns.group(1), os.path.basename(REPO),
                         "the namespace must be the name of the repository's directory")
        self.assertEqual(os.path.basename(os.path.dirname(REPO)), "spack_repo")
        self.assertTrue(api and api.group(1) == "v2.0", "repo.yaml must say api: v2.0")

    def test_package_directories_are_valid_names_with_a_recipe(self):
        pkgs = sorted(os.listdir(os.path.join(REPO, "packages")))
        self.assertIn("cairn", pkgs)
        self.assertIn("criterion", pkgs)
        for p in pkgs:
            self.assertRegex(p, r"^[a-z0-9][a-z0-9-]*$")
            self.assertTrue(os.path.isfile(os.path.join(REPO, "packages", p, "package.py")), p)

    def test_recipes_are_valid_python_with_spack_1_imports(self):
        for name in ("cairn", "criterion"):
            r = Recipe(name)
            compile(r.text, r.path, "exec")
            self.assertIsNotNone(r.cls, f"{name}: no class {spack_class_name(name)}")
            self.assertTrue(ast.get_docstring(r.cls), f"{name}: the class needs a docstring")
            for bad in ("FIXME", "example.com", "remove this boilerplate"):
                self.assertNotIn(bad, r.text, f"{name}: boilerplate '{bad}'")
            imports = [n for n in r.tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            froms = {n.module for n in imports if isinstance(n, ast.ImportFrom)}
            self.assertIn("spack.package", froms, f"{name}: from spack.package import *")
            self.assertNotIn("spack", froms, f"{name}: 'from spack import *' is pre-1.0")
            self.assertNotIn("spack.pkgkit", froms)
            for mod in froms - {"spack.package"}:
                if mod.startswith("spack"):
                    self.assertTrue(mod.startswith("spack_repo.builtin.build_systems"),
                                    f"{name}: unexpected import from {mod}")
            for v in directive_calls(r.cls, "variant"):
                args, kwargs = literal_args(v)
                self.assertTrue(kwargs.get("description"), f"{name}: variant {args[0]} needs a description")
                self.assertIn("default", kwargs, f"{name}: variant {args[0]} needs a default")
            for d in directive_calls(r.cls, "depends_on"):
                args, kwargs = literal_args(d)
                t = kwargs.get("type", "build")
                for x in ({t} if isinstance(t, str) else set(t)):
                    self.assertIn(x, {"build", "link", "run", "test"}, f"{name}: {args[0]}")


class CairnRecipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = Recipe("cairn")
        cls.deps = dependencies(cls.r.cls)

    def test_is_a_cmake_package_from_the_builtin_build_systems(self):
        bases = [b.id for b in self.r.cls.bases if isinstance(b, ast.Name)]
        self.assertEqual(bases, ["CMakePackage"])
        self.assertRegex(self.r.text, r"(?m)^from spack_repo\.builtin\.build_systems\.cmake "
                                      r"import CMakePackage$")

    def test_has_main_branch_version_and_a_git_source(self):
        versions = [literal_args(c) for c in directive_calls(self.r.cls, "version")]
        self.assertIn((["main"], {"branch": "main"}), versions)
        attrs = {t.id for n in self.r.cls.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}
        self.assertIn("git", attrs)
        self.assertIn("homepage", attrs)
        for args, kwargs in versions:
            if args[0] != "main":  # a release: pinned to a commit or a checksum
                self.assertTrue("commit" in kwargs or "sha256" in kwargs, args[0])

    def test_every_dependency_of_the_cmake_build_is_declared(self):
        found = cmake_dependencies()
        self.assertTrue({"MPI", "HDF5", "yaml-0.1", "libzstd"} <= set(found), found)
        for cmake_name, where in sorted(found.items()):
            self.assertIn(cmake_name, CMAKE_TO_SPACK,
                          f"{where} looks for '{cmake_name}': map it to a Spack package "
                          f"in CMAKE_TO_SPACK (tests/test_spack_recipe.py) and add it to "
                          f"spack/spack_repo/cairn/packages/cairn/package.py")
            target = CMAKE_TO_SPACK[cmake_name]
            if target is None:
                continue
            pkg, types = target
            self.assertIn(pkg, self.deps, f"'{cmake_name}' ({where}) needs depends_on(\"{pkg}\")")
            self.assertEqual(self.deps[pkg][1], types,
                             f"depends_on(\"{pkg}\") must have type {sorted(types)}")

    def test_build_dependencies_and_versions(self):
        self.assertEqual(self.deps["c"][1], {"build"})
        self.assertEqual(self.deps["cmake"][1], {"build"})
        m = re.search(r"cmake@([0-9.]+):", self.deps["cmake"][0])
        req = re.search(r"cmake_minimum_required\s*\(\s*VERSION\s+([0-9.]+)",
                        read(os.path.join(SRC, "CMakeLists.txt")))
        self.assertTrue(m and req and m.group(1) == req.group(1),
                        "cmake@ must match cmake_minimum_required")
        hdf5 = self.deps["hdf5"][0]
        self.assertIn("+mpi", hdf5, "cairn needs parallel HDF5")
        self.assertIn("@1.10:", hdf5)

    def test_cmake_args_name_options_that_exist(self):
        defined = set()
        for root, dirs, names in os.walk(SRC):
            dirs[:] = [d for d in dirs if not d.startswith(("build", ".")) and d != "spack"]
            for n in names:
                if n == "CMakeLists.txt" or n.endswith(".cmake"):
                    text = read(os.path.join(root, n))
                    defined |= set(re.findall(r"\boption\s*\(\s*([A-Z0-9_]+)", text))
                    defined |= set(re.findall(r"\bset\s*\(\s*([A-Z0-9_]+)\s+[^)]*\bCACHE\b", text))
        args_fn = next(n for n in self.r.cls.body
                       if isinstance(n, ast.FunctionDef) and n.name == "cmake_args")
        used = []
        for call in ast.walk(args_fn):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                    and call.func.attr in ("define", "define_from_variant"):
                used.append(ast.literal_eval(call.args[0]))
        self.assertIn("CAIRN_BUILD_TESTS", used)
        for opt in used:
            if opt.startswith("CAIRN_"):
                self.assertIn(opt, defined, f"cmake_args passes {opt}, which no CMake file defines")
        variants = {literal_args(v)[0][0] for v in directive_calls(self.r.cls, "variant")}
        for call in ast.walk(args_fn):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                    and call.func.attr == "define_from_variant" and len(call.args) > 1:
                self.assertIn(ast.literal_eval(call.args[1]), variants)

    def test_readme_shows_spack_usage(self):
        readme = read(os.path.join(SRC, "README.md"))
        for s in ("spack repo add", "spack install cairn", "spack load cairn"):
            self.assertTrue(s in readme, f"README.md does not show '{s}'")


class CriterionRecipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = Recipe("criterion")
        cls.deps = dependencies(cls.r.cls)

    def test_is_a_meson_package_for_2_4_1(self):
        bases = [b.id for b in self.r.cls.bases if isinstance(b, ast.Name)]
        self.assertEqual(bases, ["MesonPackage"])
        self.assertRegex(self.r.text, r"(?m)^from spack_repo\.builtin\.build_systems\.meson "
                                      r"import MesonPackage$")
        versions = {literal_args(c)[0][0]: literal_args(c)[1]
                    for c in directive_calls(self.r.cls, "version")}
        self.assertIn("2.4.1", versions)
        self.assertRegex(versions["2.4.1"].get("sha256", ""), r"^[0-9a-f]{64}$")
        url = next(ast.literal_eval(n.value) for n in self.r.cls.body
                   if isinstance(n, ast.Assign) and n.targets[0].id == "url")
        self.assertIn("2.4.1", url)

    def test_declares_what_criterions_meson_build_needs(self):
        for pkg, types in (("c", {"build"}), ("cxx", {"build"}), ("meson", {"build"}),
                           ("ninja", {"build"}), ("pkgconfig", {"build"}), ("cmake", {"build"}),
                           ("nanomsg", DEFAULT_TYPES), ("libffi", DEFAULT_TYPES),
                           ("libgit2", DEFAULT_TYPES)):
            self.assertIn(pkg, self.deps, f"criterion: depends_on(\"{pkg}\")")
            self.assertEqual(self.deps[pkg][1], types, pkg)

    def test_builder_uses_bundled_subprojects_and_skips_installing_them(self):
        builder = self.r.classes.get("MesonBuilder")
        self.assertIsNotNone(builder, "criterion: a MesonBuilder subclass sets its options")
        src = ast.get_source_segment(self.r.text, builder)
        self.assertIn("--force-fallback-for=boxfort", src)
        self.assertIn("--skip-subprojects", src)
        self.assertIn("-Dtests=false", src)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
