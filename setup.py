"""The compiled tagger: Cython builds the tagger's own Python files into extension modules.

Everything else about the package is in pyproject.toml; this file only declares
the extensions. The tagging algorithm is written once, in
monitor/tagging/matcher.py and background.py; Cython compiles those very files
(pure-Python mode, with the C types in the .pxd files beside them) into
extension modules of the same names, which imports then find before the .py
files. They are optional: where they cannot be built (no C compiler, no Python
headers, or Cython missing) the install goes on without them, with a warning,
and the same files run as plain Python. Set
MONITOR_REQUIRE_COMPILED=1 to make such a failure stop the build: `make`, CI
and the Docker image's builder stage do, so they never ship the slow path by
accident.

    MONITOR_REQUIRE_COMPILED=1 python setup.py build_ext --inplace   # what `make` runs
"""

from __future__ import annotations

import os
import sys
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

REQUIRE_COMPILED_VARIABLE = "MONITOR_REQUIRE_COMPILED"
REQUIRE_COMPILED = os.environ.get(REQUIRE_COMPILED_VARIABLE, "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}

# The modules of the tagging algorithm, compiled from their .py source, and the
# text kernels, written in Cython (their definitions are in text.py).
ALGORITHM = ("monitor.tagging.matcher", "monitor.tagging.background")
KERNELS = "monitor.tagging._text"
COMPILED_MODULES = (*ALGORITHM, KERNELS)
CORE = [
    Extension(name, sources=[name.replace(".", "/") + ".py"], extra_compile_args=["-O2"])
    for name in ALGORITHM
] + [Extension(KERNELS, sources=[KERNELS.replace(".", "/") + ".pyx"], extra_compile_args=["-O2"])]
CYTHON_DIRECTIVES = {
    "language_level": 3,
    # The .py files' annotations are for mypy; the C types are in the .pxd files.
    "annotation_typing": False,
}
# Cython's generated C goes under build/, not next to the sources: it is never
# committed, never shipped in the sdist, and a stale copy never reaches an image.
CYTHON_BUILD_DIR = "build/cython"

COMPILER_HINT = (
    "Install a C compiler and the Python headers (Debian: apt-get install gcc python3-dev)"
)


class BuildFailed(Exception):
    """The extension could not be built; `hint` says what would fix it."""

    def __init__(self, message: str, hint: str = COMPILER_HINT) -> None:
        super().__init__(message)
        self.hint = hint


class CompiledTaggerWarning(UserWarning):
    """The package is being installed without its compiled tagger."""


def compiled_extensions() -> list[Extension]:
    """The extensions, translated to C by Cython (a build requirement in pyproject.toml)."""
    try:
        from Cython.Build import cythonize
    except ImportError as error:
        raise BuildFailed(
            f"Cython is not installed ({error})", "Install Cython>=3.0 (see pyproject.toml)"
        ) from error
    try:
        extensions: list[Extension] = cythonize(
            CORE, compiler_directives=CYTHON_DIRECTIVES, build_dir=CYTHON_BUILD_DIR
        )
    except Exception as error:  # Cython's CompileError, or anything else it raises
        raise BuildFailed(
            f"Cython could not translate the tagger ({error!r})",
            "Fix the errors Cython reported above",
        ) from error
    return extensions


class OptionalBuildExt(build_ext):
    """build_ext that reports a compiler's failure as BuildFailed, so setup.py can fall back."""

    def run(self) -> None:
        inplace = self.inplace
        try:
            try:
                super().run()
            except PlatformError as error:  # no compiler for this platform at all
                raise BuildFailed(str(error)) from error
        except BuildFailed as failure:
            if REQUIRE_COMPILED or not self.editable_mode:
                raise
            # An editable install cannot start over without the extension (setuptools
            # has removed the directories it was building in): it goes on from here,
            # with nothing built to copy into the source tree.
            warn_without_compiled(failure)
            self.extensions = []
            self.inplace = inplace

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError) as error:
            raise BuildFailed(f"{ext.name}: {error}") from error


def banner(*paragraphs: str) -> str:
    rule = "*" * 76
    body = "\n\n".join(textwrap.fill(paragraph, width=76) for paragraph in paragraphs)
    return f"\n{rule}\n{body}\n{rule}\n"


def warn_without_compiled(failure: BuildFailed) -> None:
    # A warning rather than a print: pip shows a build backend's warnings (recent
    # pip, even without -v), while it hides what the build prints.
    warnings.warn(
        banner(
            f"WARNING: the compiled tagger ({', '.join(COMPILED_MODULES)}) could not be built: "
            f"{failure}",
            "Installing without it: the same modules run as plain Python, "
            f"which is slower. {failure.hint}, then reinstall "
            f"to get the compiled one. Set {REQUIRE_COMPILED_VARIABLE}=1 to make this "
            "an error.",
        ),
        CompiledTaggerWarning,
        stacklevel=2,
    )


def run_setup(extensions: list[Extension]) -> None:
    setup(ext_modules=extensions, cmdclass={"build_ext": OptionalBuildExt})


def main() -> None:
    try:
        run_setup(compiled_extensions())
    except BuildFailed as failure:
        if REQUIRE_COMPILED:
            sys.exit(
                banner(
                    f"ERROR: the compiled tagger ({', '.join(COMPILED_MODULES)}) did not build: "
                    f"{failure}",
                    f"{REQUIRE_COMPILED_VARIABLE} is set, so there is no pure-Python "
                    f"fallback. {failure.hint}, then build again.",
                )
            )
        # Start over without the extension: a pure-Python wheel (py3-none-any).
        warn_without_compiled(failure)
        run_setup([])


if __name__ == "__main__":
    main()
