"""Loading user code: the one place where the engine imports a workflow's modules.

The command line imports a workflow by name or from a ``.py`` file; a process that serves
another's run (a ``multi``/``dynamic`` worker started by spawn, an MPI servant, a ``redis`` or
``kafka`` worker on another host) imports the modules that define the graph's PEs, by name when
it can, else from the file the coordinator loaded them from. Both go through
:func:`load_file` and :func:`user_code`, so that a module loaded by path gets the same name,
the same ``sys.path`` entry and the same dispel4py aliases everywhere.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import logging
import pickle
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.errors import EngineError

__all__ = ["load_file", "load_modules", "pickle_with_modules", "remember_files", "user_code"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """While the block runs, ``import dispel4py...`` resolves to the compatibility layer.

    So that existing dispel4py modules run unchanged; a no-op (with a warning) when the
    compatibility layer cannot be imported.
    """
    try:
        from engine.compat.dispel4py import aliases
    except ImportError as exc:  # pragma: no cover - the layer ships with the engine
        logger.warning("dispel4py compatibility is unavailable: %s", exc)
        yield
        return
    with aliases():
        yield


def load_file(name: str, path: Path | str) -> ModuleType:
    """Execute the Python file ``path`` as module ``name`` and return it.

    The module is in ``sys.modules`` under ``name`` while it runs (so that its classes pickle
    by reference) and stays there; on failure whatever ``name`` was before is put back. The
    file's folder is appended to ``sys.path``, not prepended: its siblings are importable, but
    a sibling named like a standard or installed module (``json.py``) never shadows it, here
    or in the processes that inherit ``sys.path``.

    Raises
    ------
    ImportError
        If ``path`` is not a Python module; whatever the module raises while it runs.
    """
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module", name=name, path=str(path))
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        with user_code():
            spec.loader.exec_module(module)
    except BaseException:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise
    return module


class _KnownFiles(importlib.abc.MetaPathFinder):
    """Finds, by file, modules another process loaded from files under names found nowhere else.

    Last on ``sys.meta_path``: a module importable here by its name is imported as usual.
    """

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None or not Path(file).is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, file)


_KNOWN_FILES = _KnownFiles()


def remember_files(files: Mapping[str, str]) -> None:
    """Let ``import NAME`` load ``files[NAME]`` when nothing else finds NAME.

    For the workers of a run: the coordinator loaded its workflow from a file (``dare run
    flow.py``) under a name no worker can import, and the pickled graph refers to it.
    """
    _KNOWN_FILES.files.update(files)
    if _KNOWN_FILES not in sys.meta_path:
        sys.meta_path.append(_KNOWN_FILES)


def load_modules(modules: Sequence[tuple[str, str]]) -> None:
    """Import a workflow's modules, ``(name, file)`` pairs, by name, else from their files.

    Each file's folder is appended to ``sys.path``, as :func:`load_file` does, so that the
    module's siblings import too.

    Raises
    ------
    EngineError
        Naming the module and the file when neither works.
    """
    remember_files(dict(modules))
    for name, file in modules:
        if name in sys.modules:
            continue
        folder = str(Path(file).parent)
        if folder not in sys.path:
            sys.path.append(folder)
        try:
            with user_code():
                importlib.import_module(name)
        except ImportError as exc:
            if Path(file).is_file():
                raise EngineError(f"cannot load module {name!r} from {file}: {exc}") from exc
            raise EngineError(
                f"module {name!r} of the workflow (from {file} on the coordinator's host) "
                "cannot be imported here: make the workflow code importable on every worker "
                "host (install it, or use the same path)"
            ) from exc


def pickle_with_modules(value: Any) -> tuple[bytes, dict[str, str]]:
    """Pickle ``value`` for another process; also return the files of the modules it uses.

    Classes and functions of importable modules are pickled by reference, those of
    ``__main__`` by value (cloudpickle). A module loaded from a file under a name the other
    process cannot import (``dare run flow.py``) is found there by the returned
    ``{name: file}``: the receiver calls :func:`remember_files`, then unpickles within
    :func:`user_code` (so that dispel4py modules get the engine's dispel4py).

    Raises
    ------
    Exception
        Whatever pickling raised (a lambda in a closure, an open file, ...).
    """
    import cloudpickle

    class Recorder(cloudpickle.Pickler):
        def __init__(self, file: io.BytesIO) -> None:
            super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
            self.modules: set[str] = set()

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, types.ModuleType):
                self.modules.add(obj.__name__)
            elif isinstance(obj, (type, types.FunctionType)):
                name = getattr(obj, "__module__", None)
                if isinstance(name, str):
                    self.modules.add(name)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    pickler = Recorder(buffer)
    pickler.dump(value)
    files = {}
    for name in sorted(pickler.modules):
        file = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(file, str) and name != "__main__":
            files[name] = file
    return buffer.getvalue(), files
