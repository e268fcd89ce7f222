"""Checks of the explainer's arguments, run before anything touches TensorFlow, and the way
messages describe what was received."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ig_plugin._quadrature import MIN_STEPS


def is_int(value: Any) -> bool:
    """An int, numpy's integers included; not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool if it is one (numpy's too); else a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool. Received: {describe(value)}.")
    return bool(value)


def describe(value: Any) -> str:
    """A short description of a received value for error messages: type, and shape or value."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if np.isscalar(value):
        return f"{type(value).__name__} {value!r}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return type(value).__name__


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``; else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected one of {list(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_method(method: Any) -> str:
    return check_choice("method", method, sorted(MIN_STEPS))


#: ``n_steps="auto"``: each sample refined until its error estimate meets ``tolerance``.
AUTO = "auto"
DEFAULT_TOLERANCE, DEFAULT_MAX_STEPS = 1e-3, 1024


def check_n_steps(n_steps: Any, method: str) -> int | str:
    if n_steps == AUTO and isinstance(n_steps, str):
        if method != "gausslegendre":
            raise ValueError(
                "`method` has no effect with n_steps='auto', which refines nested trapezoid "
                "rules with Richardson extrapolation (Romberg): leave method at its default. "
                f"Received: method={method!r}"
            )
        return AUTO
    if not is_int(n_steps):
        raise TypeError(f"`n_steps` must be an int or 'auto'. Received: n_steps={n_steps!r}")
    fewest = MIN_STEPS[method]
    if n_steps < fewest:
        raise ValueError(
            f"Received an invalid value for `n_steps`, expected an int >= {fewest} for "
            f"method={method!r}. Received: n_steps={n_steps!r}"
        )
    return int(n_steps)


def check_internal_batch_size(internal_batch_size: Any) -> int:
    if not is_int(internal_batch_size):
        raise TypeError(
            "`internal_batch_size` must be an int. "
            f"Received: internal_batch_size={internal_batch_size!r}"
        )
    if internal_batch_size < 1:
        raise ValueError(
            "Received an invalid value for `internal_batch_size`, expected a positive int. "
            f"Received: internal_batch_size={internal_batch_size!r}"
        )
    return int(internal_batch_size)


def check_target_fn(target_fn: Any) -> Callable | None:
    if target_fn is not None and not callable(target_fn):
        raise TypeError(
            f"`target_fn` must be None or a callable. Received: {type(target_fn).__name__}"
        )
    return target_fn


def describe_callable(fn: Callable | None) -> str | None:
    """A JSON-safe name for a callable, for the explanation's metadata (alibi stores the object,
    which makes ``Explanation.to_json`` fail)."""
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        arguments = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.keywords.items()]
        return f"functools.partial({describe_callable(fn.func)}, {', '.join(arguments)})"
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{name}" if module else name


def check_auto_settings(
    n_steps: int | str, tolerance: Any, max_steps: Any
) -> tuple[float | None, int | None]:
    """``tolerance`` and ``max_steps``, which only ``n_steps="auto"`` takes, with its defaults;
    ``(None, None)`` for an int ``n_steps``."""
    if n_steps != AUTO:
        for name, value in (("tolerance", tolerance), ("max_steps", max_steps)):
            if value is not None:
                raise ValueError(
                    f"`{name}` applies only with n_steps='auto'. Received: {name}={value!r} "
                    f"with n_steps={n_steps!r}."
                )
        return None, None
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    if not isinstance(tolerance, numbers.Real) or isinstance(tolerance, (bool, np.bool_)):
        raise TypeError(f"`tolerance` must be a number. Received: {describe(tolerance)}.")
    if not 0 < float(tolerance) < np.inf:
        raise ValueError(
            f"Received an invalid value for `tolerance`, expected a positive number. "
            f"Received: tolerance={tolerance!r}"
        )
    max_steps = DEFAULT_MAX_STEPS if max_steps is None else max_steps
    if not is_int(max_steps):
        raise TypeError(f"`max_steps` must be an int. Received: {describe(max_steps)}.")
    if max_steps < 3:
        raise ValueError(
            "Received an invalid value for `max_steps`, expected an int >= 3 (the first "
            f"refinement takes 3 gradients per sample). Received: max_steps={max_steps!r}"
        )
    return float(tolerance), int(max_steps)
