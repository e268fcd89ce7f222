"""The explainers the runtime serves: any saved ig_plugin explainer, loaded by the class its
folder's ``meta.dill`` names (:mod:`ig_plugin._explainer.registry`, where every public explainer
class registers itself). Loading unpickles the folder's files, which can run code: serve only
folders you trust.
"""

from __future__ import annotations

import inspect
from typing import Any

from ig_plugin._explainer.registry import load_saved, model_explainer

__all__ = ["explain_arguments", "load_saved", "model_explainer"]


def explain_arguments(explainer: Any) -> frozenset[str]:
    """The names of the arguments ``explain`` takes, those of the wrapped explainer of the model
    for a wrapper (whose ``explain`` passes them on)."""
    return frozenset(inspect.signature(model_explainer(explainer).explain).parameters)
