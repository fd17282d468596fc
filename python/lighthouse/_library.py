"""Loads liblighthouse_ops.so, the C++ library that registers the `torch.ops.lighthouse` ops,
from inside the package (where `pip install .` or the CMake build put it)."""

from __future__ import annotations

import os

import torch

LIBRARY_NAME = "liblighthouse_ops.so"


def library_path() -> str:
    """Absolute path of the ops library inside this package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


def load(built_for_torch: str) -> str:
    """Loads the ops library once per process and returns its path.

    Raises ImportError naming the file when it is missing (the package was copied without
    being built) or when the installed torch is not the release it was built against.
    """
    path = library_path()
    if path in torch.ops.loaded_libraries:
        return path
    if not os.path.isfile(path):
        raise ImportError(
            f"lighthouse: the ops library {path} is missing: the package was not built. "
            "Install it from the repository with `pip install --no-build-isolation .` "
            "(CMake builds liblighthouse_ops.so against the installed torch)")
    running = torch.__version__.split("+")[0]
    if built_for_torch and running != built_for_torch:
        raise ImportError(
            f"lighthouse: {path} was built against torch {built_for_torch}, but torch "
            f"{running} is installed; rebuild with `pip install --no-build-isolation .`")
    try:
        torch.ops.load_library(path)
    except OSError as e:
        raise ImportError(f"lighthouse: cannot load the ops library {path}: {e}") from e
    return path
