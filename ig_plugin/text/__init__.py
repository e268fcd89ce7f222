"""Text and language models: every generated token's attributions in one pass, and words from
subword tokens.

- :func:`attribute_generation`: for a causal language model, the attribution of each generated
  token's log-probability to every earlier position, all positions from one teacher-forced pass
  per path point (:class:`GenerationAttributions`, with a heatmap); a
  :class:`GenerationExplainer` does the same for batch after batch, compiling once.
- :func:`aggregate_words`: subword attributions combined into words, by the word ids that
  tokenizers give.

Token classification and several heads need nothing from here: they are ``targets=`` of
:meth:`ig_plugin.IntegratedGradients.explain` (index tuples for outputs of rank > 2, a dict by
output for several heads).
"""

from ig_plugin.text._generation import (
    GenerationAttributions,
    GenerationExplainer,
    attribute_generation,
)
from ig_plugin.text._words import aggregate_words

__all__ = [
    "GenerationAttributions",
    "GenerationExplainer",
    "aggregate_words",
    "attribute_generation",
]
