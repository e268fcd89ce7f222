"""Text attributions: tokens highlighted in HTML, green raising the output, red lowering it."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from alibi.api.interfaces import Explanation
from numpy.typing import ArrayLike

from ig_plugin._request.checks import check_scalar
from ig_plugin.visualization._common import (
    _MAX_ALPHA,
    _NEGATIVE_RGB,
    _POSITIVE_RGB,
    _check_names,
    _one_sample,
)


def _background(score: float, scale: float) -> tuple[str, str]:
    """A token's CSS class and background colour: green or red, opacity by magnitude."""
    if score == 0:
        return "ig-zero", "transparent"
    kind, rgb = ("ig-positive", _POSITIVE_RGB) if score > 0 else ("ig-negative", _NEGATIVE_RGB)
    alpha = _MAX_ALPHA * min(abs(score) / scale, 1.0)
    return kind, f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha:.3f})"


def _swatch(rgb: tuple[int, int, int], text: str) -> str:
    colour = f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {_MAX_ALPHA})"
    return (
        f'<span style="background-color: {colour}; padding: 0 6px; border-radius: 3px">'
        f"{html.escape(text)}</span>"
    )


def text_attributions_html(
    tokens: Sequence[str],
    attributions: Explanation | ArrayLike,
    *,
    sample: int = 0,
    input_index: int = 0,
    scale: float | None = None,
    title: str | None = None,
    legend: bool = True,
    separator: str = " ",
) -> str:
    """Highlight each token by its attribution: an HTML fragment.

    Every token becomes a ``<span class="ig-token ...">`` whose background is green for a
    positive attribution and red for a negative one, more opaque for a larger magnitude; the
    exact score is in its ``title`` (a tooltip) and ``data-attribution``. Tokens are
    HTML-escaped. Display the result in a notebook with ``IPython.display.HTML`` or write it to a
    file.

    Parameters
    ----------
    tokens
        The sample's tokens as strings, one per position (padding included).
    attributions
        An ``Explanation`` (its ``attributions[input_index][sample]`` is used), or one sample's
        attributions as an array: shape ``(L,)``, or ``(L, D)`` as for an embedding layer. Each
        token's score is the sum over all axes but the first.
    sample
        Which sample of the Explanation to show.
    input_index
        Which model input (or layer tensor) of the Explanation to show.
    scale
        The magnitude that gets the full colour (larger ones saturate); by default the largest
        ``|score|`` of this sample. Pass the same value for several samples to compare them.
    title
        A heading above the tokens.
    legend
        Add a legend that explains the colours and gives the scale.
    separator
        Text placed between tokens.

    Returns
    -------
    str
        A ``<div class="ig-text">`` HTML fragment.

    Raises
    ------
    TypeError
        ``tokens`` is a single string rather than a sequence of strings.
    ValueError
        ``tokens`` and the attributions have different lengths, ``scale`` is not positive, or
        an index is out of range.

    Examples
    --------
    >>> from ig_plugin.visualization import text_attributions_html
    >>> page = text_attributions_html(["a", "<great>", "film"], [0.0, 0.9, -0.3])
    >>> page.count('class="ig-token')
    3
    >>> "&lt;great&gt;" in page and "ig-legend" in page
    True
    """
    values, default_title = _one_sample(attributions, sample, input_index, "attributions")
    if values.ndim == 0:
        raise ValueError("`attributions` must have one value per token. Received a scalar.")
    scores = values.reshape(len(values), -1).sum(axis=1)  # (L,): summed over the embedding
    words = _check_names(tokens, len(scores), "tokens", "attribution (position)")
    if scale is None:
        scale = float(np.abs(scores).max(initial=0.0)) or 1.0
    else:
        scale = check_scalar(
            "scale", scale, float, above=0, below=np.inf, expected="None or a number"
        )
    spans = []
    for word, score in zip(words, scores, strict=True):
        kind, colour = _background(float(score), float(scale))
        spans.append(
            f'<span class="ig-token {kind}" title="{score:+.4g}" data-attribution="{score:.6g}" '
            f'style="background-color: {colour}; padding: 1px 2px; border-radius: 3px">'
            f"{html.escape(word)}</span>"
        )
    parts = [
        '<div class="ig-text" style="font-family: sans-serif; line-height: 1.9; '
        'color: #000; background-color: #fff; padding: 4px 8px">'
    ]
    heading = title if title is not None else default_title
    if heading:
        parts.append(
            f'<div class="ig-title" style="font-weight: bold">{html.escape(heading)}</div>'
        )
    parts.append(f"<div>{html.escape(separator).join(spans)}</div>")
    if legend:
        parts.append(
            '<div class="ig-legend" style="font-size: 85%; margin-top: 4px">'
            f"{_swatch(_NEGATIVE_RGB, 'lowers')} {_swatch(_POSITIVE_RGB, 'raises')} "
            f"the explained output; full colour at |attribution| &ge; {scale:.3g}</div>"
        )
    parts.append("</div>")
    return "\n".join(parts)
