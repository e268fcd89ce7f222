"""The private modules of 0.1.0 that saved explainers name, found at their new places.

A pickle names the module of every class it holds: explainers saved by 0.1.0 name
``ig_plugin._layers`` (``LayerChoice``) and ``ig_plugin._inputs`` (Expected Gradients'
``Inputs``), which are now :mod:`ig_plugin._model.layers` and :mod:`ig_plugin._request.inputs`.
``import ig_plugin`` registers a finder that imports those names as aliases of the new modules,
so such saves unpickle, also through ``alibi.saving.load_explainer`` (plain dill). Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

#: Module name of 0.1.0 -> the module that holds its classes now.
MOVED = {
    "ig_plugin._layers": "ig_plugin._model.layers",
    "ig_plugin._inputs": "ig_plugin._request.inputs",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the names of :data:`MOVED`; each becomes a module with the new module's names."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a plain new module

    def exec_module(self, module: ModuleType) -> None:
        current = importlib.import_module(MOVED[module.__name__])
        # The same objects: a class unpickled through the old name is the class of today.
        module.__dict__.update(
            {name: value for name, value in vars(current).items() if not name.startswith("__")}
        )


def register() -> None:
    """Make the names of :data:`MOVED` importable (once per process)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
