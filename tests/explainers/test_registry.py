"""The registry of saved explainers: any public explainer's folder loads by the class it holds,
in a process that imported none of them; wrappers lead to the explainer of the model; folders
of other classes, or whose metadata and pickle disagree, are refused."""

import subprocess
import sys

import dill
import numpy as np
import pytest
from xrai_cases import SHAPE, cnn, random_masks, smooth_images

from ig_plugin import (
    XRAI,
    BlurIntegratedGradients,
    ExpectedGradients,
    GuidedIntegratedGradients,
    IntegratedGradients,
    NoiseTunnel,
)
from ig_plugin._explainer import saving
from ig_plugin._explainer.registry import load_saved, model_explainer, registered

X = smooth_images(2, seed=3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One folder per public explainer class, and the model file they explain."""
    root = tmp_path_factory.mktemp("registry")
    model = cnn()
    model.save(root / "cnn.keras")
    ig = IntegratedGradients(model, n_steps=4)
    explainers = {
        "IntegratedGradients": ig,
        "ExpectedGradients": ExpectedGradients(model, X, n_samples=4, seed=0),
        "NoiseTunnel": NoiseTunnel(ig, nt_samples=2, stdevs=0.1, seed=0),
        "GuidedIntegratedGradients": GuidedIntegratedGradients(model, n_steps=4, idgi=True),
        "BlurIntegratedGradients": BlurIntegratedGradients(model, max_sigma=2.0, n_steps=4),
        "XRAI": XRAI(NoiseTunnel(ig, nt_samples=2, seed=1), random_masks(6, SHAPE[:2], 0), 2),
    }
    for name, explainer in explainers.items():
        explainer.save(root / name)
    return root, explainers


def test_every_class_loads_in_a_process_that_imported_none_of_them(saved, tmp_path):
    root, explainers = saved
    np.save(tmp_path / "X.npy", X)
    code = (
        "import sys, numpy as np\n"
        "from ig_plugin._explainer.registry import load_saved\n"
        "from ig_plugin._model.loading import load_model\n"
        f"root = {str(root)!r}\n"
        "model = load_model(root + '/cnn.keras')\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        "for name in sys.argv[1:]:\n"
        "    explainer = load_saved(root + '/' + name, model)\n"
        "    assert type(explainer).__name__ == name, type(explainer)\n"
        "    a = explainer.explain(X, target=1).attributions[0]\n"
        "    np.save(root + '/' + name + '.npy', a)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *explainers], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for name, explainer in explainers.items():
        np.testing.assert_allclose(
            np.load(root / f"{name}.npy"),
            explainer.explain(X, target=1).attributions[0],
            rtol=1e-6,
            atol=1e-7,
        )


def test_wrappers_lead_to_the_explainer_of_the_model(saved):
    _, explainers = saved
    xrai = explainers["XRAI"]
    assert model_explainer(xrai) is xrai.explainer.explainer
    assert model_explainer(explainers["NoiseTunnel"]) is explainers["IntegratedGradients"]
    assert registered(xrai).wraps == "explainer"
    with pytest.raises(TypeError, match="Expected an ig_plugin explainer"):
        registered(object())


def test_other_folders_are_refused(saved, tmp_path):
    root, _ = saved
    model = cnn()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / saving.META_FILE).write_bytes(dill.dumps({"name": "AnchorTabular"}))
    (foreign / saving.EXPLAINER_FILE).write_bytes(dill.dumps({"an": "anchor"}))
    with pytest.raises(ValueError, match="its metadata names 'AnchorTabular'"):
        load_saved(foreign, model)
    # A pickle of one class under the metadata of another.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / saving.META_FILE).write_bytes((root / "XRAI" / saving.META_FILE).read_bytes())
    ig_pickle = (root / "IntegratedGradients" / saving.EXPLAINER_FILE).read_bytes()
    (mixed / saving.EXPLAINER_FILE).write_bytes(ig_pickle)
    with pytest.raises(ValueError, match=r"names 'XRAI' and its explainer\.dill holds a"):
        load_saved(mixed, model)
    with pytest.raises(FileNotFoundError):
        load_saved(tmp_path / "nothing", model)
