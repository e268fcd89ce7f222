"""``n_steps="auto"`` with its rounds' host work compiled (numba, ``ig_plugin[fast]``): the same
rounds as the numpy ones, node for node.

The numpy rounds (:func:`ig_plugin._integral.auto_steps.integrate_auto`) are the reference that
``test_auto_steps.py`` proves against closed forms; here both run on the same integrands and must
take the same steps and give the same attributions and estimates to rounding.
"""

import importlib.util
import sys

import numpy as np
import pytest
from concurrency import run_together
from models import seeded_floats
from test_auto_steps import relu_network, steps

from ig_plugin import IntegratedGradients
from ig_plugin._integral import auto_steps, driver, fused_refinement

pytest.importorskip("numba")


def several_targets(n_samples, n_targets, n_features, seed):
    """``steps`` with a K axis: each target's integrand its own step functions."""
    parts = [steps(n_samples, n_features, seed + k) for k in range(n_targets)]

    def integrand_at(samples, alphas):
        return [np.stack([part[0](samples, alphas)[0] for part in parts], axis=1)]

    return integrand_at, np.stack([part[1] for part in parts], axis=1)


def two_tensors(n_samples, seed):
    """Two attributed tensors, ``(2, 3)`` and ``(4,)`` features: each a part of one set of step
    functions."""
    integrand_at, exact = steps(n_samples, 10, seed)

    def split(samples, alphas):
        (values,) = integrand_at(samples, alphas)
        return [values[:, :6].reshape(-1, 2, 3), values[:, 6:]]

    return split, exact


def both_ways(integrand_at, changes, allowed, max_steps, many=False):
    """The numpy rounds' and the compiled rounds' results on one integrand."""
    rounding = np.zeros(changes.shape)
    return [
        refine(integrand_at, changes, rounding, allowed, max_steps, many)
        for refine in (auto_steps.integrate_auto, fused_refinement.integrate_auto)
    ]


def assert_the_same(numpy_rounds, compiled_rounds, rtol):
    (numpy_values, numpy_steps, numpy_estimates) = numpy_rounds
    (compiled_values, compiled_steps, compiled_estimates) = compiled_rounds
    np.testing.assert_array_equal(compiled_steps, numpy_steps)
    assert len(compiled_values) == len(numpy_values)
    for compiled, expected in zip(compiled_values, numpy_values, strict=True):
        assert compiled.dtype == expected.dtype and compiled.shape == expected.shape
        np.testing.assert_allclose(compiled, expected, rtol=rtol, atol=rtol)
    assert compiled_estimates.shape == numpy_estimates.shape
    np.testing.assert_allclose(compiled_estimates, numpy_estimates, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tolerance", [1e-2, 1e-3])
@pytest.mark.parametrize("max_steps", [3, 5, 9, 40, 4096])
def test_the_same_steps_as_the_numpy_rounds(dtype, tolerance, max_steps):
    # max_steps 3, 5 and 9 make the first round's leaves whole, halved once and twice; 40
    # stops samples at max_steps and forbids some quarterings.
    integrand_at, exact = steps(30, 6, seed=90)

    def typed(samples, alphas):
        return [v.astype(dtype) for v in integrand_at(samples, alphas)]

    changes = exact.sum(axis=1)
    runs = both_ways(typed, changes, tolerance * np.abs(changes), max_steps)
    assert_the_same(*runs, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert runs[1][0][0].dtype == dtype
    if max_steps == 4096:  # every sample met its tolerance, by more than one round
        assert (runs[1][2] <= tolerance * np.abs(changes)).all()
        assert runs[1][1].max() > 4 * auto_steps.first_round_steps(max_steps)


@pytest.mark.parametrize("tolerance", [1e-2, 1e-3])
def test_several_targets_take_the_same_steps(tolerance):
    integrand_at, exact = several_targets(20, 3, 5, seed=91)
    changes = exact.sum(axis=2)
    runs = both_ways(integrand_at, changes, tolerance * np.abs(changes), 4096, many=True)
    assert runs[1][2].shape == (20, 3)
    assert_the_same(*runs, rtol=1e-12)


def test_several_attributed_tensors_take_the_same_steps():
    integrand_at, exact = two_tensors(12, seed=92)
    changes = exact.sum(axis=1)
    runs = both_ways(integrand_at, changes, 1e-3 * np.abs(changes), 4096)
    assert [a.shape for a in runs[1][0]] == [(12, 2, 3), (12, 4)]
    assert_the_same(*runs, rtol=1e-12)


def test_new_nodes_sit_where_the_numpy_rounds_put_them():
    # To the bit: a node one ulp off would be another gradient, and the rounds would differ.
    rng = np.random.default_rng(94)
    size = 4000  # enough leaves that a formula equal but for rounding differs somewhere
    lows = rng.uniform(0.0, 0.9, size)
    highs = lows + rng.uniform(1e-9, 0.1, size) * rng.choice([1.0, 1e-6, 1e-12], size)
    samples = rng.integers(0, 7, size)
    chosen = np.sort(rng.choice(size, 3000, replace=False))
    twice = rng.random(3000) < 0.4
    n_steps = np.full(7, 9, dtype=np.int64)
    alphas, owners = fused_refinement._kernels().new_nodes(
        samples, lows, highs, chosen, twice, n_steps
    )

    def quarters_by_leaf(low, high):  # auto_steps lays them out all left, then all right
        return auto_steps._quarter_points(low, high).reshape(2, -1).T.ravel()

    low, high = lows[chosen], highs[chosen]
    middle = 0.5 * (low + high)
    deep_lows = np.stack([low[twice], middle[twice]], axis=1).ravel()
    deep_highs = np.stack([middle[twice], high[twice]], axis=1).ravel()
    expected = np.concatenate(
        [quarters_by_leaf(low, high), quarters_by_leaf(deep_lows, deep_highs)]
    )
    assert alphas.tobytes() == expected.tobytes()
    picked = samples[chosen]
    np.testing.assert_array_equal(
        owners, np.concatenate([np.repeat(picked, 2), np.repeat(picked[twice], 4)])
    )
    added = np.bincount(picked, minlength=7) * 2 + np.bincount(picked[twice], minlength=7) * 4
    np.testing.assert_array_equal(n_steps, 9 + added)


def test_the_compiled_rounds_are_exact_on_the_jumps():
    # Not only like the numpy rounds: within the tolerance of the closed form, and within
    # their own estimates.
    integrand_at, exact = steps(30, 6, seed=93)
    changes = exact.sum(axis=1)
    allowed = 1e-3 * np.abs(changes)
    (attributions,), _, estimates = fused_refinement.integrate_auto(
        integrand_at, changes, np.zeros(30), allowed, 4096
    )
    errors = np.abs(attributions - exact).sum(axis=1)
    assert (errors <= estimates + 1e-12).all()
    assert (estimates <= allowed).all()


def test_threads_refine_at_once_as_alone():
    # The loops run without the GIL and share nothing but their compiled code: four refinements
    # at once, each with its own integrand, get what each gets alone.
    problems = [steps(12, 6, seed=97 + i) for i in range(4)]

    def refine(i):
        integrand_at, exact = problems[i]
        changes = exact.sum(axis=1)
        return fused_refinement.integrate_auto(
            integrand_at, changes, np.zeros(12), 1e-3 * np.abs(changes), 4096
        )

    alone = [refine(i) for i in range(4)]
    together = {}
    run_together([lambda i=i: together.__setitem__(i, refine(i)) for i in range(4)])
    for i in range(4):
        np.testing.assert_array_equal(together[i][1], alone[i][1])
        np.testing.assert_array_equal(together[i][0][0], alone[i][0][0])
        np.testing.assert_array_equal(together[i][2], alone[i][2])


def test_an_explainer_takes_the_same_steps_either_way(monkeypatch):
    model, _ = relu_network(seed=94)
    X = seeded_floats((16, 3), seed=95) * 3
    explainer = IntegratedGradients(model, n_steps="auto", tolerance=1e-3)
    calls = []

    def counted(refine, name):
        def call(*args):
            calls.append(name)
            return refine(*args)

        return call

    monkeypatch.setattr(
        fused_refinement, "integrate_auto", counted(fused_refinement.integrate_auto, "compiled")
    )
    monkeypatch.setattr(driver, "integrate_auto", counted(auto_steps.integrate_auto, "numpy"))
    monkeypatch.delenv(fused_refinement.ENVIRONMENT_SWITCH, raising=False)
    compiled = explainer.explain(X, baselines=0.0)
    monkeypatch.setenv(fused_refinement.ENVIRONMENT_SWITCH, "0")
    plain = explainer.explain(X, baselines=0.0)
    assert calls == ["compiled", "numpy"], "numba by default, numpy with the switch at 0"
    np.testing.assert_array_equal(compiled.n_steps, plain.n_steps)
    assert compiled.n_steps.max() > auto_steps.first_round_steps(1024)
    np.testing.assert_allclose(compiled.attributions[0], plain.attributions[0], rtol=1e-5)
    np.testing.assert_allclose(compiled.error_estimates, plain.error_estimates, rtol=1e-5)


def test_the_switch_and_the_fallback(monkeypatch):
    monkeypatch.delenv(fused_refinement.ENVIRONMENT_SWITCH, raising=False)
    assert fused_refinement.available()
    monkeypatch.setenv(fused_refinement.ENVIRONMENT_SWITCH, "0")
    assert not fused_refinement.available()
    monkeypatch.delenv(fused_refinement.ENVIRONMENT_SWITCH)
    # numba installed but not importable: a warning that says so, and the numpy rounds.
    fused_refinement._compiled_loops.cache_clear()
    monkeypatch.setitem(sys.modules, "ig_plugin._integral._fused_kernels", None)
    try:
        with pytest.warns(RuntimeWarning, match="numba is installed but does not import"):
            assert not fused_refinement.available()
    finally:
        fused_refinement._compiled_loops.cache_clear()


def test_the_loops_compile_where_no_cache_can_be_written(monkeypatch):
    # A read-only install and home: numba finds no place for its cache and refuses cache=True
    # outright (at import). The loops must still load, compiled in the process.
    import numba
    from numba.core import caching

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(lambda x: x + 1)
    path = fused_refinement.__file__.replace("fused_refinement.py", "_fused_kernels.py")
    spec = importlib.util.spec_from_file_location("_uncached_kernels", path)
    loops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loops)
    values = seeded_floats((4, 1, 6), seed=96).astype(np.float32)
    sums = np.zeros((4, 1))
    loops.node_sums(values, sums, 1, 4)
    np.testing.assert_allclose(sums[1:, 0], values[1:, 0].sum(axis=1), rtol=1e-6)
    assert (sums[0] == 0).all()
