"""Checks of single arguments, run before anything touches TensorFlow, and the way messages
describe what was received.

One :func:`check_scalar` checks every int and number the package takes (the explainers', the
command line's, Ray's, the pictures'), in Keras' words: "Received an invalid value for `x`,
expected ... Received: x=...".
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """An int, numpy's integers included; not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """A real number, numpy's included; not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


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


def _interval(
    least: float | None, above: float | None, most: float | None, below: float | None
) -> str:
    """``>= 1``, ``in (0, 1)``, ``in [0, 10)``: the bounds as a message says them."""
    low = ("[", least) if least is not None else ("(", above) if above is not None else None
    high = ("]", most) if most is not None else (")", below) if below is not None else None
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    return ""


def check_scalar(
    name: str,
    value: Any,
    kind: type = int,
    *,
    least: float | None = None,
    above: float | None = None,
    most: float | None = None,
    below: float | None = None,
    expected: str | None = None,
    why: str = "",
) -> Any:
    """``value`` as an ``int`` (``kind=int``) or a ``float`` (``kind=float``) within bounds.

    Numpy's scalars are accepted, bools are not. ``least`` and ``most`` are inclusive bounds,
    ``above`` and ``below`` exclusive ones; NaN is outside every bound. ``expected`` replaces
    "an int" or "a number" in the TypeError, ``why`` completes the ValueError.

    Raises
    ------
    TypeError
        ``value`` is not of ``kind``.
    ValueError
        ``value`` is outside the bounds.
    """
    what = "an int" if kind is int else "a number"
    if not (is_int(value) if kind is int else is_real(value)):
        raise TypeError(f"`{name}` must be {expected or what}. Received: {describe(value)}.")
    inside = (
        (least is None or value >= least)
        and (above is None or value > above)
        and (most is None or value <= most)
        and (below is None or value < below)
    )
    if not inside:  # written so that NaN, which compares false, is outside
        raise ValueError(
            f"Received an invalid value for `{name}`, expected {what} "
            f"{_interval(least, above, most, below)}{why}. Received: {name}={value!r}"
        )
    return int(value) if kind is int else float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool if it is one (numpy's too); else a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool. Received: {describe(value)}.")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``; else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected one of {list(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_callable(name: str, value: Any) -> Callable | None:
    """None or a callable; else a TypeError naming ``name``."""
    if value is not None and not callable(value):
        raise TypeError(f"`{name}` must be None or a callable. Received: {type(value).__name__}")
    return value


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


# -- the path integral ------------------------------------------------------------------------

#: ``n_steps="auto"``: each sample refined until its error estimate meets ``tolerance``.
AUTO = "auto"
DEFAULT_TOLERANCE, DEFAULT_MAX_STEPS = 1e-3, 1024


def check_n_steps(n_steps: Any, method: str, min_steps: Mapping[str, int]) -> int | str:
    """An int of at least ``min_steps[method]``, or ``"auto"`` (Gauss-Legendre's default only)."""
    if isinstance(n_steps, str) and n_steps == AUTO:  # `==` first would compare arrays
        if method != "gausslegendre":
            raise ValueError(
                "`method` has no effect with n_steps='auto', which halves each path where its "
                "integrand is rough (trapezoid and Simpson rules on the pieces): leave method "
                "at its default. "
                f"Received: method={method!r}"
            )
        return AUTO
    return check_scalar(
        "n_steps",
        n_steps,
        least=min_steps[method],
        expected="an int or 'auto'",
        why=f" for method={method!r}",
    )


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
    # 1 or more would accept any attributions: every sample stopped after its first round.
    checked_tolerance = check_scalar(
        "tolerance",
        DEFAULT_TOLERANCE if tolerance is None else tolerance,
        float,
        above=0,
        below=1,
        why=" (the error allowed, relative to |F(x) - F(x')|)",
    )
    checked_max_steps = check_scalar(
        "max_steps",
        DEFAULT_MAX_STEPS if max_steps is None else max_steps,
        least=3,
        why=" (the first round takes 3 gradients per sample at the least)",
    )
    return checked_tolerance, checked_max_steps


def check_idgi(idgi: Any, method: str, n_steps: int | str) -> bool:
    """``idgi`` as a bool; with True, ``method`` at its default and an int ``n_steps``: IDGI
    sums over the intervals between ``n_steps + 1`` uniform points, with no quadrature rule."""
    checked = check_bool("idgi", idgi)
    if checked and n_steps == AUTO:
        raise ValueError(
            "`n_steps` must be an int with idgi=True: IDGI is exact for any number of uniform "
            "points, so there is no error to refine. Received: n_steps='auto'"
        )
    if checked and method != "gausslegendre":
        raise ValueError(
            "`method` has no effect with idgi=True, which sums over the intervals between "
            "n_steps + 1 uniform points: leave method at its default. "
            f"Received: method={method!r}"
        )
    return checked


def check_internal_batch_size(internal_batch_size: Any) -> int | str:
    """An int of at least 1, or ``"auto"`` (chosen from a memory budget)."""
    if isinstance(internal_batch_size, str) and internal_batch_size == AUTO:
        return AUTO
    return int(
        check_scalar(
            "internal_batch_size", internal_batch_size, least=1, expected="an int or 'auto'"
        )
    )


def check_memory_budget(internal_batch_size: int | str, memory_budget: Any) -> int | None:
    """``memory_budget`` in bytes (an int of at least 1), or None for the default; only
    ``internal_batch_size="auto"`` takes one."""
    if memory_budget is None:
        return None
    if internal_batch_size != AUTO:
        raise ValueError(
            "`memory_budget` applies with internal_batch_size='auto' only (a fixed batch size "
            f"sets the memory itself). Received: memory_budget={memory_budget!r} with "
            f"internal_batch_size={internal_batch_size!r}"
        )
    return int(check_scalar("memory_budget", memory_budget, least=1, why=" (bytes)"))


# -- Expected Gradients and NoiseTunnel --------------------------------------------------------

#: Gauss-Legendre nodes per background row in the deterministic mode of Expected Gradients: the
#: IG default, so that mode equals the mean of ``IntegratedGradients(model)`` over the rows.
DEFAULT_DETERMINISTIC_STEPS = 50

#: The ways NoiseTunnel combines the noisy attributions (captum's names and meanings).
NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def check_seed(seed: Any) -> int | None:
    """None (fresh draws on every explain) or a non-negative int."""
    if seed is None:
        return None
    return int(check_scalar("seed", seed, least=0, expected="None or an int"))


def check_deterministic_steps(n_steps: Any, n_samples: int | None) -> int | None:
    """``n_steps`` of Expected Gradients: Gauss-Legendre nodes per background row, only in the
    deterministic mode (``n_samples=None``), where None means the default."""
    if n_samples is not None:
        if n_steps is not None:
            raise ValueError(
                "`n_steps` applies only to the deterministic mode (n_samples=None); sampled "
                f"Expected Gradients draws its own points. Received: n_steps={n_steps!r} with "
                f"n_samples={n_samples!r}."
            )
        return None
    if n_steps is None:
        return DEFAULT_DETERMINISTIC_STEPS
    return int(check_scalar("n_steps", n_steps, least=1))


def check_stdevs(stdevs: Any, n_inputs: int | None = None) -> float | tuple[float, ...]:
    """A finite number >= 0, or a list or tuple of them (one per input, returned as a tuple);
    with ``n_inputs`` (the model declares its inputs) a sequence must have that many."""
    sequence = isinstance(stdevs, (tuple, list))
    values = tuple(stdevs) if sequence else (stdevs,)
    if not values or not all(is_real(value) for value in values):
        raise TypeError(
            "`stdevs` must be a number, or a list or tuple with one number per input. "
            f"Received: {describe(stdevs)}."
        )
    if not all(0 <= float(value) < np.inf for value in values):
        raise ValueError(
            "Received an invalid value for `stdevs`, expected finite numbers >= 0 (standard "
            f"deviations of the noise). Received: stdevs={stdevs!r}"
        )
    if sequence and n_inputs is not None and len(values) != n_inputs:
        raise ValueError(
            f"`stdevs` as a sequence must have one value per model input ({n_inputs}). "
            f"Received: {len(values)} values."
        )
    floats = tuple(float(value) for value in values)
    return floats if sequence else floats[0]
