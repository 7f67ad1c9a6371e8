"""The tagger's source files run as plain Python, beside the compiled build.

Where the package was built with a compiler, `import monitor.tagging.matcher`
finds the extension Cython made from matcher.py, and the matcher uses the C
text kernels (`_text`). `pure_matcher()` executes the .py files themselves
(background.py, then matcher.py, which imports it) as modules of their own,
with text.py's kernels, so that the tests can hold the two runs of one source
equal and the benchmark can measure both in one process: what runs where no
compiler was at hand.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

# In import order: each may import the ones before it.
_SOURCES = ("monitor.tagging.background", "monitor.tagging.matcher")
# The compiled text kernels, which the pure run must not find (it takes text.py's).
_KERNELS = "monitor.tagging._text"


@functools.cache
def pure_matcher() -> ModuleType:
    """matcher.py run from its source, importing background.py run from its source."""
    directory = Path(__file__).parent
    saved = {name: sys.modules.get(name) for name in (*_SOURCES, _KERNELS)}
    module = None
    try:
        sys.modules[_KERNELS] = None  # type: ignore[assignment]  # what makes an import fail
        for name in _SOURCES:
            path = directory / f"{name.rpartition('.')[2]}.py"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            # While it runs, `from monitor.tagging.background import ...` finds the pure one.
            sys.modules[name] = module
            spec.loader.exec_module(module)
    finally:
        for name, saved_module in saved.items():
            if saved_module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved_module
    assert module is not None
    return module
