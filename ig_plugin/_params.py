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


def is_real(value: Any) -> bool:
    """A real number, numpy's included; not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


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


def check_int(name: str, value: Any, least: int, expected: str = "an int", why: str = "") -> int:
    """``value`` as an int if it is one (numpy's too) and at least ``least``; else a TypeError
    or ValueError naming ``name``. ``expected`` and ``why`` complete the messages."""
    if not is_int(value):
        raise TypeError(f"`{name}` must be {expected}. Received: {describe(value)}.")
    if value < least:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected an int >= {least}{why}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


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
    if isinstance(n_steps, str) and n_steps == AUTO:  # `==` first would compare arrays
        if method != "gausslegendre":
            raise ValueError(
                "`method` has no effect with n_steps='auto', which refines nested trapezoid "
                "rules with Richardson extrapolation (Romberg): leave method at its default. "
                f"Received: method={method!r}"
            )
        return AUTO
    return check_int(
        "n_steps", n_steps, MIN_STEPS[method], "an int or 'auto'", f" for method={method!r}"
    )


def check_internal_batch_size(internal_batch_size: Any) -> int:
    return check_int("internal_batch_size", internal_batch_size, 1)


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
    if not is_real(tolerance):
        raise TypeError(f"`tolerance` must be a number. Received: {describe(tolerance)}.")
    if not 0 < float(tolerance) < 1:
        raise ValueError(
            "Received an invalid value for `tolerance`, expected a number between 0 and 1 "
            "(the error allowed, relative to |F(x) - F(x')|: 1 or more allows any attributions). "
            f"Received: tolerance={tolerance!r}"
        )
    max_steps = DEFAULT_MAX_STEPS if max_steps is None else max_steps
    why = " (the first refinement takes 3 gradients per sample)"
    return float(tolerance), check_int("max_steps", max_steps, 3, why=why)
