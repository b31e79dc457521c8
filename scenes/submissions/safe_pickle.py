"""A restricted unpickler for submission files read for evaluation.

A pickle can name any importable callable and have it run while loading (`__reduce__`), so a submission file is
untrusted code. `load_pickle` resolves only the globals a submission needs: builtin containers and scalars, and
numpy arrays, dtypes and scalars (their reconstruct functions). Any other global raises `UnsafePickleError` naming
the file and the refused global before anything is called.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, Final

from scenes.errors import DrivestackError

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "load_pickle", "loads_pickle"]

_BUILTINS: Final = frozenset(
    {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex", "bool", "slice", "range"}
)
# numpy 1.x pickles arrays from numpy.core, numpy 2.x from numpy._core; both are accepted.
_NUMPY_NAMES: Final = {
    "multiarray": frozenset({"_reconstruct", "scalar"}),
    "numeric": frozenset({"_frombuffer"}),
}
ALLOWED_GLOBALS: Final[frozenset[tuple[str, str]]] = frozenset(
    {("builtins", name) for name in _BUILTINS}
    | {("__builtin__", name) for name in _BUILTINS}  # protocol 0-2 pickles written by Python 2
    | {("numpy", "ndarray"), ("numpy", "dtype")}
    | {(f"numpy.{core}.{module}", name) for core in ("core", "_core") for module, names in _NUMPY_NAMES.items() for name in names}
    # protocol 2 pickles spell bytes as _codecs.encode(str, "latin1"), e.g. the header of every numpy array
    | {("_codecs", "encode")}
)


class UnsafePickleError(pickle.UnpicklingError, DrivestackError, ValueError):
    """A pickle names a global that submissions never need (it may run code on load)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream: io.BufferedIOBase, source: str) -> None:
        super().__init__(stream)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(f"{self._source}: refused global {module}.{name} (only builtin containers, scalars and numpy arrays are allowed)")
        if (module, name) == ("_codecs", "encode"):
            return self._encode
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused persistent id {pid!r}")

    def _encode(self, text: str, encoding: str = "utf-8") -> bytes:
        """`_codecs.encode` limited to the text codecs protocol 2 uses (no zlib, base64 or other bytes codecs)."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
            raise UnsafePickleError(f"{self._source}: refused _codecs.encode({type(text).__name__}, {encoding!r})")
        return text.encode(encoding)


def loads_pickle(payload: bytes, source: str = "<bytes>") -> Any:
    """Unpickles `payload` allowing only builtin containers/scalars and numpy arrays; `source` names it in errors."""
    return _RestrictedUnpickler(io.BytesIO(payload), source).load()


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Reads the pickle at `path` with the restricted unpickler (`UnsafePickleError` names the file and the global)."""
    source = Path(path)
    with open(source, "rb") as stream:
        try:
            return _RestrictedUnpickler(stream, str(source)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as error:
            raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from None
