"""The explainer classes the runtime serves, by the name a saved folder's ``meta.dill`` records.

A saved folder is loaded by the class its metadata names (alibi's ``meta["name"]``, the class
name), looked up in :data:`SERVED`: serving another ig_plugin explainer is one more entry there.
Loading unpickles the folder's files, which can run code: serve only folders you trust.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ig_plugin._explainer import saving
from ig_plugin.expected_gradients import ExpectedGradients
from ig_plugin.integrated_gradients import IntegratedGradients
from ig_plugin.noise_tunnel import NoiseTunnel


@dataclass(frozen=True)
class ServedClass:
    """One explainer class the runtime can load and serve.

    Attributes
    ----------
    cls
        The class; ``cls.load(folder, model)`` reads a folder its ``save`` wrote.
    wraps
        For an explainer that wraps another one (NoiseTunnel), the attribute holding the
        wrapped explainer, which has the model, the layer, ``target_fn``,
        ``internal_batch_size`` and the ``explain`` arguments; None for the others.
    """

    cls: type[Any]
    wraps: str | None = None

    @property
    def name(self) -> str:
        """The name a saved folder's metadata records for this class."""
        return self.cls.__name__

    def model_explainer(self, explainer: Any) -> Any:
        """The explainer of ``explainer``'s model: itself, or the one it wraps."""
        return explainer if self.wraps is None else getattr(explainer, self.wraps)


#: Every class the runtime serves, by the name in a saved folder's meta.dill.
SERVED = {
    served.name: served
    for served in (
        ServedClass(IntegratedGradients),
        ServedClass(ExpectedGradients),
        ServedClass(NoiseTunnel, wraps="explainer"),
    )
}


def served_class(explainer: Any) -> ServedClass:
    """The :data:`SERVED` entry of ``explainer``'s class.

    Raises
    ------
    TypeError
        The runtime does not serve that class.
    """
    served = SERVED.get(type(explainer).__name__)
    if served is None or type(explainer) is not served.cls:
        raise TypeError(
            f"The runtime serves {list(SERVED)}. Received: a {type(explainer).__name__}."
        )
    return served


def saved_name(folder: str | os.PathLike) -> Any:
    """The explainer name recorded in ``folder``'s meta.dill (None if it records none).

    Raises
    ------
    FileNotFoundError
        The folder has no meta.dill.
    ValueError
        meta.dill cannot be unpickled.
    """
    meta = saving.read(Path(folder) / saving.META_FILE)
    return meta.get("name") if isinstance(meta, dict) else None


def load_saved(folder: str | os.PathLike, model: Any) -> Any:
    """The explainer saved in ``folder``, loaded by the class its metadata names, for ``model``.

    Raises
    ------
    FileNotFoundError
        The folder or one of its files is missing.
    ValueError
        Its metadata names a class the runtime does not serve, a file cannot be unpickled, or
        the model does not fit the saved explainer.
    """
    name = saved_name(folder)
    served = SERVED.get(name) if isinstance(name, str) else None
    if served is None:
        raise ValueError(
            f"{folder} holds a saved {name!r}; the runtime serves ig_plugin's {list(SERVED)}."
        )
    return served.cls.load(folder, model)


def explain_arguments(explainer: Any) -> frozenset[str]:
    """The names of the arguments ``explain`` takes, those of the wrapped explainer for a
    wrapper (whose ``explain`` passes them on)."""
    model_explainer = served_class(explainer).model_explainer(explainer)
    return frozenset(inspect.signature(model_explainer.explain).parameters)
