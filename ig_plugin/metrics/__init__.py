"""Is the explanation faithful? Evaluation metrics for attributions, on ig_plugin's compiled engine.

Each metric takes the Keras model (or an explainer), X as ``explain`` takes it, attributions shaped
like X (an array, a list of arrays, or the alibi ``Explanation`` that ``explain`` returned) and
``target`` as ``explain`` takes it; the arguments are checked in numpy before the model runs. The
perturbed inputs are built chunk by chunk and scored in compiled batches, so memory stays bounded
whatever N; random draws come from one stream per sample, so a seeded result does not depend on
the batch size.

- :func:`infidelity` and :func:`sensitivity_max`: captum's definitions.
- :func:`deletion` and :func:`insertion`: xplique's, as :class:`Curves` with their areas.
- :func:`mu_fidelity`: xplique's MuFidelity.
- :func:`model_randomization`: Adebayo et al.'s sanity check, layer by layer.
- :func:`quantus_explain_func`: ig_plugin's explainers as Quantus' ``explain_func``.

The names are imported on first use: ``import ig_plugin.metrics`` alone does not import
TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ig_plugin.metrics._causal import Curves, deletion, insertion
    from ig_plugin.metrics._infidelity import gaussian_noise, infidelity
    from ig_plugin.metrics._mu_fidelity import mu_fidelity
    from ig_plugin.metrics._quantus import quantus_explain_func
    from ig_plugin.metrics._randomization import model_randomization
    from ig_plugin.metrics._sensitivity import sensitivity_max

#: Public name -> the module that defines it.
_LAZY = {
    "Curves": "ig_plugin.metrics._causal",
    "deletion": "ig_plugin.metrics._causal",
    "gaussian_noise": "ig_plugin.metrics._infidelity",
    "infidelity": "ig_plugin.metrics._infidelity",
    "insertion": "ig_plugin.metrics._causal",
    "model_randomization": "ig_plugin.metrics._randomization",
    "mu_fidelity": "ig_plugin.metrics._mu_fidelity",
    "quantus_explain_func": "ig_plugin.metrics._quantus",
    "sensitivity_max": "ig_plugin.metrics._sensitivity",
}

__all__ = [
    "Curves",
    "deletion",
    "gaussian_noise",
    "infidelity",
    "insertion",
    "model_randomization",
    "mu_fidelity",
    "quantus_explain_func",
    "sensitivity_max",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ig_plugin.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
