"""The size a request may have, checked from its tensors' declared shapes before any is decoded.

A request's cost grows with its samples (each one is explained along its own paths) and its
memory with its values; without a bound, one client can hold a server for minutes and take
gigabytes. MLServer has parsed the JSON body by the time a runtime sees it, so a body size limit
in front of the server (a proxy's) still has its use; this one spares the decoding, the
explanation and the response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlserver.types import RequestInput

#: Default of ``extra.max_request_samples``.
DEFAULT_MAX_SAMPLES = 1000

#: Default of ``extra.max_request_values``: 10**6 numbers, 10 to 20 MB of JSON.
DEFAULT_MAX_VALUES = 1_000_000


class RequestTooLarge(ValueError):
    """A request with more samples or values than the model's settings allow (HTTP 413)."""


def _values(tensor: RequestInput) -> int:
    # The declared shape, or the data if they hold more (decoding would refuse them, but only
    # after converting them).
    data = tensor.data.root if tensor.data is not None else []
    return max(math.prod(tensor.shape), len(data) if isinstance(data, list) else 0)


def check_request_size(tensors: Sequence[RequestInput], max_samples: int, max_values: int) -> None:
    """Refuse a request whose tensors hold more than ``max_samples`` samples (their first axis,
    the target's too), or more than ``max_values`` values in all.

    Raises
    ------
    RequestTooLarge
        The request is larger than allowed; the message says by how much and which setting
        bounds it.
    """
    samples = max((tensor.shape[0] for tensor in tensors if tensor.shape), default=0)
    if samples > max_samples:
        raise RequestTooLarge(
            f"The request holds {samples} samples; this model explains at most {max_samples} "
            "per request (`extra.max_request_samples` in its model-settings.json): send them in "
            "smaller requests."
        )
    values = sum(_values(tensor) for tensor in tensors)
    if values > max_values:
        raise RequestTooLarge(
            f"The request's tensors hold {values} values; this model takes at most "
            f"{max_values} per request (`extra.max_request_values` in its model-settings.json): "
            "send fewer samples per request."
        )
