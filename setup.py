"""The one part of the build pyproject.toml cannot declare: the optional C accelerator, ``ctxsnap._speedups``.

Issue 14 allows a compiled hot path only beside a pure-Python one, in wheels that install on a machine without a
compiler. So this follows MarkupSafe's build: the extension is attempted, and when it cannot be compiled (no
compiler, no Python headers, a compiler that fails) the build says so and goes on without it, giving the
pure-Python package (``ctxsnap._compiled`` then selects the Python path at import). ``CTXSNAP_NO_EXTENSIONS=1``
at build time skips the attempt: the wheel is then a pure ``py3-none-any`` one. Everything else about the
project is in pyproject.toml.
"""

from __future__ import annotations

import os
import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

SPEEDUPS = Extension("ctxsnap._speedups", ["ctxsnap/_speedups.c"])


class OptionalBuildExt(build_ext):
    """``build_ext`` for which a compiler or platform error means "build the pure-Python package instead".

    MarkupSafe catches the error around ``setup()`` and runs it again without the extension; that second run
    fails under ``pip install -e .`` (setuptools' editable build has already removed its scratch directory), and
    the matrix installs ctxsnap editable in every cell. So the fallback happens here, in the one build: the
    extension is dropped from the distribution, and a wheel being built becomes a pure one.
    """

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, ExecError, PlatformError) as exc:
            self.fall_back(exc)

    def fall_back(self, error: Exception) -> None:
        banner(
            f"WARNING: ctxsnap's optional C accelerator could not be compiled ({error}).",
            "Installing the pure-Python package instead: it behaves the same, only its hot path is slower.",
            "Set CTXSNAP_NO_EXTENSIONS=1 to skip the attempt.",
        )
        # Nothing compiled: no output to collect (an editable build would look for it), platlib nowhere, and the
        # wheel tagged py3-none-any as with CTXSNAP_NO_EXTENSIONS=1. bdist_wheel reads root_is_pure after the
        # build it runs first, and install picks platlib from ext_modules when bdist_wheel starts it.
        self.extensions = []
        self.distribution.ext_modules = []
        wheel = self.distribution.command_obj.get("bdist_wheel")
        if wheel is not None:
            wheel.root_is_pure = True


def banner(*lines: str) -> None:
    rule = "=" * 78
    print("\n".join([rule, *lines, rule]), flush=True)


def skip_requested() -> bool:
    return os.environ.get("CTXSNAP_NO_EXTENSIONS", "") not in ("", "0")


# The accelerator is written against CPython's C API; elsewhere the pure-Python package is the only one.
with_extension = not skip_requested() and platform.python_implementation() == "CPython"
setup(
    ext_modules=[SPEEDUPS] if with_extension else [],
    cmdclass={"build_ext": OptionalBuildExt},
)
