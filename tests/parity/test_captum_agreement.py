"""Agreement with captum on one MLP built with the same weights in Keras and in PyTorch, both fed
the same pre-drawn random numbers: ExpectedGradients against ``GradientShap`` and NoiseTunnel
over IntegratedGradients against captum's ``NoiseTunnel(IntegratedGradients)``, to 1e-5.

Runs where torch and captum are installed (``make test-captum``); skipped elsewhere. TensorFlow is
imported before torch (conftest imports it): the other order crashed beside TensorFlow 2.21.

captum draws with numpy's and torch's global generators: GradientShap takes the background rows
from ``np.random.choice`` and the alphas from ``np.random.uniform``, NoiseTunnel its noise from
``torch.normal``, each once per call over the N * n_samples expanded rows (sample-major). The
tests replace those calls by ones that return ig_plugin's own draws for the same seed.
"""

import numpy as np
import pytest
from models import functional_mlp, seeded_floats

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel
from ig_plugin._integral.draws import sample_draws
from ig_plugin._integral.smoothing import noisy_copy

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

N, FEATURES, CLASSES = 6, 4, 3
X = seeded_floats((N, FEATURES), seed=80)
BACKGROUND = seeded_floats((5, FEATURES), seed=81)
TARGETS = np.array([0, 1, 2, 2, 1, 0])


@pytest.fixture(scope="module")
def models():
    """The same MLP (4 -> Dense 5 tanh -> Dense 3 softmax) in Keras and in PyTorch."""
    keras_model = functional_mlp(FEATURES, 5, CLASSES, seed=82)
    kernel_1, bias_1, kernel_2, bias_2 = keras_model.get_weights()
    torch_model = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 5),
        torch.nn.Tanh(),
        torch.nn.Linear(5, CLASSES),
        torch.nn.Softmax(dim=1),
    )
    with torch.no_grad():
        for layer, kernel, bias in ((0, kernel_1, bias_1), (2, kernel_2, bias_2)):
            torch_model[layer].weight.copy_(torch.from_numpy(kernel.T.copy()))
            torch_model[layer].bias.copy_(torch.from_numpy(bias))
    torch_model.eval()
    np.testing.assert_allclose(
        torch_model(torch.from_numpy(X)).detach().numpy(), keras_model(X).numpy(), atol=1e-6
    )
    return keras_model, torch_model


def _replay(values):
    """A stand-in for a global random function that returns ``values`` (of the size asked)."""

    def draw(*args, **kwargs):
        size = args[-1] if args else kwargs["size"]
        assert np.prod(size) == values.size, "captum asked for another number of draws"
        return values.copy()

    return draw


def test_expected_gradients_equals_gradient_shap(models, monkeypatch):
    keras_model, torch_model = models
    n_draws, seed = 16, 11
    ours = ExpectedGradients(keras_model, BACKGROUND, n_samples=n_draws, seed=seed).explain(
        X, target=TARGETS
    )
    draws = [sample_draws(seed, i, n_draws, len(BACKGROUND)) for i in range(N)]
    monkeypatch.setattr(np.random, "choice", _replay(np.concatenate([r for r, _ in draws])))
    monkeypatch.setattr(np.random, "uniform", _replay(np.concatenate([a for _, a in draws])))
    theirs = captum_attr.GradientShap(torch_model).attribute(
        torch.from_numpy(X),
        baselines=torch.from_numpy(BACKGROUND),
        n_samples=n_draws,
        stdevs=0.0,
        target=torch.from_numpy(TARGETS),
    )
    np.testing.assert_allclose(ours.attributions[0], theirs.detach().numpy(), atol=1e-5)
    assert np.abs(ours.attributions[0]).max() > 1e-2  # the comparison is not of zeros


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_noise_tunnel_equals_captums(models, nt_type, monkeypatch):
    keras_model, torch_model = models
    n_copies, stdev, seed = 4, 0.3, 5
    tunnel = NoiseTunnel(
        IntegratedGradients(keras_model), nt_type, nt_samples=n_copies, stdevs=stdev, seed=seed
    )
    ours = tunnel.explain(X, target=TARGETS)
    # ig_plugin's noise of copy j, laid out as captum's expanded rows i * n_copies + j.
    zeros = (np.zeros_like(X),)
    noise = np.stack([noisy_copy(zeros, [stdev], seed, j)[0] for j in range(n_copies)], axis=1)
    expanded = torch.from_numpy(noise.reshape(N * n_copies, FEATURES))
    monkeypatch.setattr(torch, "normal", lambda mean, std: expanded.clone())
    theirs = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(torch_model)).attribute(
        torch.from_numpy(X),
        nt_type=nt_type,
        nt_samples=n_copies,
        stdevs=stdev,
        target=torch.from_numpy(TARGETS),
    )
    np.testing.assert_allclose(ours.attributions[0], theirs.detach().numpy(), atol=1e-5)
    assert np.abs(ours.attributions[0]).max() > 1e-3
