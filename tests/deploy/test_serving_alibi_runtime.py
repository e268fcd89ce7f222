"""MLServer's alibi runtime serving ig_plugin folders, against a real ``mlserver start``.

Checks what docs/deploying.rst says of it: a classifier's attributions equal in-process ones;
a target in the request, or an explainer with ``target_fn``, is an HTTP 500; a regression model
comes back negated (argmax 0 reads as ``1 - output``). mlserver-alibi-explain's pins conflict
with mlserver 1.7, so it is not in the project's virtualenv: ``make test-alibi-runtime`` installs
it with --no-deps into a folder of its own and puts that on PYTHONPATH. Skipped elsewhere.
"""

import json
from functools import partial

import numpy as np
import pytest

pytest.importorskip("mlserver_alibi_explain")
requests = pytest.importorskip("requests")

from compat import keras  # noqa: E402
from serving_models import classifier, floats, regression  # noqa: E402

from ig_plugin import IntegratedGradients  # noqa: E402
from ig_plugin.serving import LocalServer  # noqa: E402

TOLERANCE = 1e-5
ALIBI_RUNTIME = "mlserver_alibi_explain.AlibiExplainRuntime"
X_CLASSIFIER, X_REGRESSION = floats((5, 6), seed=1), floats((4, 4), seed=2)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Models and ig_plugin explainers, and a repository serving them with the alibi runtime."""
    root = tmp_path_factory.mktemp("alibi-runtime")
    served = {
        "classifier": (classifier(), {"n_steps": 20}),
        "with-target-fn": (classifier(), {"target_fn": partial(np.argmax, axis=1)}),
        "regression": (regression(), {"n_steps": 30}),
    }
    for name, (model, arguments) in served.items():
        model.save(root / f"{name}.keras")
        IntegratedGradients(model, **arguments).save(root / f"{name}-explainer")
        folder = root / "models" / name
        folder.mkdir(parents=True)
        settings = {
            "name": name,
            "implementation": ALIBI_RUNTIME,
            "parameters": {
                "uri": f"../../{name}-explainer",
                "extra": {
                    "explainer_type": "integrated_gradients",
                    # Loaded by tf.keras.models.load_model from MLServer's working directory.
                    "infer_uri": str(root / f"{name}.keras"),
                },
            },
        }
        (folder / "model-settings.json").write_text(json.dumps(settings))
    return root


@pytest.fixture(scope="module")
def server(artifacts):
    with LocalServer(artifacts / "models", parallel_workers=0, ready_timeout=300) as running:
        yield running


def reference(artifacts, name):
    model = keras.models.load_model(artifacts / f"{name}.keras", compile=False)
    return IntegratedGradients.load(artifacts / f"{name}-explainer", model)


def explain(server, name, X, **explain_parameters):
    body = {
        "inputs": [
            {"name": "x", "shape": list(X.shape), "datatype": "FP32", "data": X.ravel().tolist()}
        ],
        "parameters": {"explain_parameters": explain_parameters},
    }
    return requests.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=120)


def attributions(response):
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["datatype"]) == ("explanation", "BYTES")
    explanation = json.loads(output["data"][0])
    assert explanation["meta"]["name"] == "IntegratedGradients"
    return np.asarray(explanation["data"]["attributions"][0])


@pytest.mark.parametrize("parameters", [{}, {"baselines": 0.5}])
def test_a_classifier_is_served_as_in_process(server, artifacts, parameters):
    explainer = reference(artifacts, "classifier")
    target = np.argmax(explainer.model(X_CLASSIFIER), axis=1)
    expected = explainer.explain(X_CLASSIFIER, target=target, **parameters).attributions[0]
    served = attributions(explain(server, "classifier", X_CLASSIFIER, **parameters))
    np.testing.assert_allclose(served, expected, rtol=TOLERANCE, atol=TOLERANCE)


def test_a_target_in_the_request_is_a_server_error(server):
    assert explain(server, "classifier", X_CLASSIFIER, target=1).status_code == 500


def test_an_explainer_with_a_target_fn_is_a_server_error(server):
    assert explain(server, "with-target-fn", X_CLASSIFIER).status_code == 500


def test_a_regression_model_comes_back_negated(server, artifacts):
    expected = reference(artifacts, "regression").explain(X_REGRESSION).attributions[0]
    served = attributions(explain(server, "regression", X_REGRESSION))
    np.testing.assert_allclose(served, -expected, rtol=TOLERANCE, atol=TOLERANCE)
