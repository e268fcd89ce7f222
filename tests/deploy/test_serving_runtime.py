"""The MLServer runtime in this process, without a server: settings, the target rule, warm-up,
request checks and error mapping. test_serving.py asks the same runtime over HTTP."""

import asyncio
import json
import os
import shutil
from functools import partial

import numpy as np
import pytest

pytest.importorskip("mlserver")

from compat import keras
from mlserver.errors import InferenceError
from mlserver.repository.load import load_model_settings
from mlserver.types import InferenceRequest
from models import binary_model, functional_mlp, set_seeded_weights
from serving_models import RUNTIME, floats
from xrai_cases import cnn, smooth_images

from ig_plugin import BlurIntegratedGradients, GuidedIntegratedGradients, IntegratedGradients
from ig_plugin.serving import IntegratedGradientsRuntime
from ig_plugin.serving._settings import read_settings

TOLERANCE = 1e-6
X = floats((5, 4), seed=7)


def write_settings(folder, outside=True, **parameters):
    """Write and read a model-settings.json; ``outside`` lets its paths leave ``folder`` (most
    tests share files kept one folder up)."""
    folder.mkdir(parents=True, exist_ok=True)
    if outside:
        parameters["extra"] = {**parameters.get("extra", {}), "allow_paths_outside_folder": True}
    path = folder / "model-settings.json"
    settings = {"name": folder.name, "implementation": RUNTIME, "parameters": parameters}
    path.write_text(json.dumps(settings))
    # As `mlserver start` reads it: a missing uri becomes the settings' folder.
    return load_model_settings(str(path))


def loaded(settings):
    runtime = IntegratedGradientsRuntime(settings)
    assert asyncio.run(runtime.load())
    return runtime


def request(*inputs, **parameters):
    body = {"inputs": [dict(i) for i in inputs]}
    if parameters:
        body["parameters"] = parameters
    return InferenceRequest.model_validate(body)


def tensor(name, array):
    datatype = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64"}
    array = np.asarray(array)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype[array.dtype.name],
        "data": array.ravel().tolist(),
    }


def predict(runtime, *inputs, **parameters):
    response = asyncio.run(runtime.predict(request(*inputs, **parameters)))
    return {
        output.name: np.array(output.data.root, dtype=float).reshape(output.shape)
        for output in response.outputs
    }


@pytest.fixture(scope="module")
def classifier_files(tmp_path_factory):
    """A softmax classifier's .keras file, with a saved explainer using target_fn=argmin."""
    root = tmp_path_factory.mktemp("runtime")
    model = functional_mlp(4, 5, 3, seed=21)
    model.save(root / "classifier.keras")
    explainer = IntegratedGradients(model, target_fn=partial(np.argmin, axis=1), n_steps=12)
    explainer.save(root / "argmin-explainer")
    return root, model


# --- settings ------------------------------------------------------------------------------


def test_relative_paths_start_at_the_settings_folder(classifier_files):
    root, _ = classifier_files
    settings = read_settings(
        write_settings(
            root / "models" / "a",
            uri="../../argmin-explainer",
            extra={"model_uri": "../../classifier.keras"},
        )
    )
    assert settings.model_uri == str(root / "classifier.keras")
    assert settings.explainer_uri == str(root / "argmin-explainer")


def test_paths_must_stay_in_the_settings_folder_unless_allowed(classifier_files, tmp_path):
    root, model = classifier_files
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(root / "classifier.keras", folder / "classifier.keras")
    IntegratedGradients(model, n_steps=5).save(folder / "explainer")
    inside = read_settings(
        write_settings(
            folder,
            outside=False,
            uri="sub/../explainer",  # ".." that stays inside
            extra={"model_uri": str(folder / "classifier.keras")},
        )
    )
    assert inside.model_uri == str(folder / "classifier.keras")
    relative_explainer = os.path.relpath(root / "argmin-explainer", folder)
    relative_model = os.path.relpath(root / "classifier.keras", folder)
    outside_paths = [
        ({"uri": relative_explainer}, f"`uri` is {relative_explainer!r}"),
        ({"uri": str(root / "argmin-explainer")}, "`uri` is "),
        ({"extra": {"model_uri": relative_model}}, "`extra.model_uri` is "),
    ]
    for change, message in outside_paths:
        parameters = {"uri": "explainer", "extra": {"model_uri": "classifier.keras"}, **change}
        with pytest.raises(ValueError, match="outside the model's folder") as raised:
            read_settings(write_settings(folder, outside=False, **parameters))
        assert message in str(raised.value)
        assert "`extra.allow_paths_outside_folder`" in str(raised.value)
    allowed = {"uri": relative_explainer, "extra": {"model_uri": relative_model}}
    assert read_settings(write_settings(folder, **allowed)).explainer_uri == str(
        root / "argmin-explainer"
    )
    with pytest.raises(TypeError, match=r"`extra.allow_paths_outside_folder` must be true or"):
        read_settings(
            write_settings(
                folder,
                outside=False,
                extra={"model_uri": "classifier.keras", "allow_paths_outside_folder": "yes"},
            )
        )


def test_an_explainer_saved_beside_the_settings_needs_no_uri(classifier_files, tmp_path):
    root, model = classifier_files
    IntegratedGradients(model, n_steps=7).save(tmp_path / "beside")
    runtime = loaded(
        write_settings(tmp_path / "beside", extra={"model_uri": str(root / "classifier.keras")})
    )
    assert runtime._served.explainer.n_steps == 7


@pytest.mark.parametrize(
    ("parameters", "error", "message"),
    [
        ({"uri": "argmin-explainer"}, ValueError, "`parameters.extra.model_uri` is required"),
        ({"extra": {"model_uri": "classifier.keras"}}, ValueError, "no explainer to load"),
        (
            {"extra": {"model_uri": "missing.keras", "init_parameters": {}}},
            FileNotFoundError,
            "nothing exists at",
        ),
        (
            {"extra": {"model_uri": "classifier.keras", "warm_up": False}},
            ValueError,
            "unknown keys in `parameters.extra`: ['warm_up']",
        ),
        (
            {
                "uri": "argmin-explainer",
                "extra": {"model_uri": "classifier.keras", "init_parameters": {}},
            },
            ValueError,
            "not both",
        ),
        (
            {"extra": {"model_uri": "classifier.keras", "init_parameters": {"target_fn": "x"}}},
            ValueError,
            "a target_fn needs a folder saved by IntegratedGradients.save",
        ),
        (
            {"extra": {"model_uri": "classifier.keras", "explain_threads": 0}},
            ValueError,
            "Received an invalid value for `extra.explain_threads`, expected an int >= 1. "
            "Received: extra.explain_threads=0",
        ),
        (
            {"extra": {"model_uri": "classifier.keras", "max_request_values": 0.5}},
            TypeError,
            "`extra.max_request_values` must be an int. Received: float 0.5",
        ),
        (
            {"extra": {"model_uri": "classifier.keras", "warmup": "yes"}},
            TypeError,
            "`extra.warmup` must be true or false",
        ),
    ],
)
def test_bad_settings_are_refused_at_load(classifier_files, parameters, error, message):
    root, _ = classifier_files
    settings = write_settings(root, **parameters)
    runtime = IntegratedGradientsRuntime(settings)
    with pytest.raises(error) as raised:
        asyncio.run(runtime.load())
    assert message in str(raised.value)
    assert asyncio.run(runtime.unload())  # MLServer unloads a model whose load failed


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("model.keras", "a .keras file is a zip archive, and this one (16 bytes) is not"),
        ("model.h5", "file signature not found"),
    ],
)
def test_a_corrupt_model_file_is_reported_as_such(tmp_path, file_name, reason):
    (tmp_path / file_name).write_bytes(b"not a model file")
    settings = write_settings(
        tmp_path / "m", extra={"model_uri": f"../{file_name}", "init_parameters": {}}
    )
    with pytest.raises(ValueError) as raised:
        asyncio.run(IntegratedGradientsRuntime(settings).load())
    message = str(raised.value)
    assert str(tmp_path / file_name) in message and reason in message
    assert "File not found" not in message


def test_init_parameters_take_a_layer_by_name(tmp_path):
    ids = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 3, name="tokens")(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = set_seeded_weights(keras.Model(ids, keras.layers.Dense(2, activation="softmax")(x)), 3)
    model.save(tmp_path / "text.keras")
    runtime = loaded(
        write_settings(
            tmp_path / "text",
            extra={
                "model_uri": "../text.keras",
                "init_parameters": {"layer": "tokens", "n_steps": 9},
            },
        )
    )
    assert runtime._served.explainer.layer.name == "tokens"
    ids_array = np.arange(12, dtype="int32").reshape(2, 6)
    served = predict(runtime, tensor("ids", ids_array), target=1)
    reference = runtime._served.explainer.explain(ids_array, target=1)
    assert served["attributions"].shape == (2, 6, 3)  # the embedding's output, per token
    np.testing.assert_allclose(served["attributions"], reference.attributions[0], atol=TOLERANCE)


def test_init_parameters_take_auto_batches_and_a_memory_budget(classifier_files):
    root, _ = classifier_files
    init = {"n_steps": 12, "internal_batch_size": "auto", "memory_budget": 1 << 24}
    runtime = loaded(
        write_settings(
            root / "auto",
            extra={"model_uri": "../classifier.keras", "init_parameters": init, "warmup": False},
        )
    )
    explainer = runtime._served.explainer
    assert explainer.meta["params"]["memory_budget"] == 1 << 24
    served = predict(runtime, tensor("x", X), target=1)
    fixed = IntegratedGradients(explainer.model, n_steps=12).explain(X, target=1)
    np.testing.assert_allclose(served["attributions"], fixed.attributions[0], atol=TOLERANCE)


# --- the target rule -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def argmin_runtime(classifier_files):
    root, _ = classifier_files
    settings = write_settings(
        root / "argmin", uri="../argmin-explainer", extra={"model_uri": "../classifier.keras"}
    )
    return loaded(settings)


def test_a_saved_target_fn_chooses_the_target(argmin_runtime, classifier_files):
    _, model = classifier_files
    served = predict(argmin_runtime, tensor("x", X))
    np.testing.assert_array_equal(served["target"], np.argmin(model(X), axis=1))
    reference = argmin_runtime._served.explainer.explain(X)
    np.testing.assert_allclose(served["attributions"], reference.attributions[0], atol=TOLERANCE)


def test_a_target_beside_a_target_fn_is_a_bad_request(argmin_runtime):
    with pytest.raises(InferenceError, match=r"`target`.*`target_fn`") as raised:
        asyncio.run(argmin_runtime.predict(request(tensor("x", X), target=1)))
    assert raised.value.status_code == 400


@pytest.fixture(scope="module")
def binary_runtime(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    binary_model(4, seed=5).save(folder / "binary.keras")
    return loaded(
        write_settings(
            folder / "settings",
            extra={"model_uri": "../binary.keras", "init_parameters": {"n_steps": 10}},
        )
    )


def test_a_single_output_model_explains_its_output_without_a_target(binary_runtime):
    served = predict(binary_runtime, tensor("x", X))
    assert "target" not in served
    reference = binary_runtime._served.explainer.explain(X)
    np.testing.assert_allclose(served["attributions"], reference.attributions[0], atol=TOLERANCE)


def test_a_single_output_model_with_target_0_explains_one_minus_p(binary_runtime):
    served = predict(binary_runtime, tensor("x", X), target=0)
    reference = binary_runtime._served.explainer.explain(X, target=0)
    np.testing.assert_array_equal(served["target"], np.zeros(len(X)))
    np.testing.assert_allclose(served["attributions"], reference.attributions[0], atol=TOLERANCE)
    plain = predict(binary_runtime, tensor("x", X))
    np.testing.assert_allclose(served["attributions"], -plain["attributions"], atol=TOLERANCE)


# --- warm-up -------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="ig_plugin_serving_tests")
class CountingDense(keras.layers.Dense):
    """A Dense layer that counts its Python calls: in compiled passes, one per trace."""

    calls = 0

    def call(self, inputs):
        type(self).calls += 1
        return super().call(inputs)


def counting_model_file(folder):
    inputs = keras.Input((4,))
    hidden = CountingDense(5, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    set_seeded_weights(model, seed=22).save(folder / "counting.keras")
    return "../counting.keras"


def test_after_warm_up_no_request_size_traces_again(tmp_path):
    model_uri = counting_model_file(tmp_path)
    CountingDense.calls = 0
    runtime = loaded(
        write_settings(tmp_path / "m", extra={"model_uri": model_uri, "init_parameters": {}})
    )
    traced_at_load = CountingDense.calls
    assert traced_at_load > 0
    for n_samples in (3, 17, 1, 250):
        predict(runtime, tensor("x", floats((n_samples, 4), seed=n_samples)))
        predict(runtime, tensor("x", floats((n_samples, 4), seed=n_samples)), target=2)
    assert CountingDense.calls == traced_at_load


def test_without_warm_up_the_first_request_traces(tmp_path):
    model_uri = counting_model_file(tmp_path)
    CountingDense.calls = 0
    runtime = loaded(
        write_settings(
            tmp_path / "m",
            extra={"model_uri": model_uri, "init_parameters": {}, "warmup": False},
        )
    )
    assert CountingDense.calls == 0
    predict(runtime, tensor("x", X))
    assert CountingDense.calls > 0


def test_a_model_with_open_input_dimensions_is_served_without_warm_up(tmp_path):
    inputs = keras.Input((None, 3))
    pooled = keras.layers.GlobalAveragePooling1D()(inputs)
    model = set_seeded_weights(keras.Model(inputs, keras.layers.Dense(2)(pooled)), seed=4)
    model.save(tmp_path / "open.keras")
    runtime = loaded(
        write_settings(
            tmp_path / "open", extra={"model_uri": "../open.keras", "init_parameters": {}}
        )
    )
    sequences = floats((2, 5, 3), seed=8)
    served = predict(runtime, tensor("x", sequences))
    reference = runtime._served.explainer.explain(sequences, target=served["target"].astype(int))
    np.testing.assert_allclose(served["attributions"], reference.attributions[0], atol=TOLERANCE)
    assert runtime.inputs[0].shape == [-1, -1, 3]


# --- requests and responses ----------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_runtime(classifier_files, tmp_path_factory):
    root, _ = classifier_files
    folder = tmp_path_factory.mktemp("plain")
    return loaded(
        write_settings(
            folder,
            extra={
                "model_uri": str(root / "classifier.keras"),
                "init_parameters": {"n_steps": 8, "method": "riemann_middle"},
            },
        )
    )


def test_the_request_chooses_the_response_tensors(plain_runtime):
    body = request(tensor("x", X)).model_dump()
    body["outputs"] = [{"name": "deltas"}, {"name": "attributions"}]
    response = asyncio.run(plain_runtime.predict(InferenceRequest.model_validate(body)))
    assert [output.name for output in response.outputs] == ["deltas", "attributions"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"outputs": [{"name": "attribution"}]}, "asks for the output 'attribution'"),
        ({"outputs": [{"name": "attributions_x"}]}, "does not have"),
        ({"parameters": {"baselines": [0.0, 1.0]}}, "`baselines` must be a number"),
        ({"parameters": {"attribute_to_layer_inputs": "yes"}}, "must be a bool"),
        ({"parameters": {"output": 1}}, "single output tensor"),
        (
            {
                "extra_inputs": [
                    {"name": "target", "shape": [5], "datatype": "INT64", "data": [0] * 5}
                ],
                "parameters": {"target": 1},
            },
            "not both",
        ),
        (
            {
                "extra_inputs": [
                    {"name": "y", "shape": [5, 4], "datatype": "FP32", "data": [0] * 20}
                ]
            },
            "The model has one input",
        ),
        (
            {
                "extra_inputs": [
                    {"name": "target", "shape": [5], "datatype": "INT64", "data": [0] * 5}
                ]
                * 2
            },
            "2 tensors named 'target'",
        ),
    ],
)
def test_bad_requests_raise_inference_errors_with_the_reason(plain_runtime, body, message):
    payload = {"inputs": [tensor("x", X), *body.pop("extra_inputs", [])], **body}
    with pytest.raises(InferenceError) as raised:
        asyncio.run(plain_runtime.predict(InferenceRequest.model_validate(payload)))
    assert raised.value.status_code == 400
    assert message in str(raised.value)


def test_a_negative_dimension_in_a_request_is_refused(plain_runtime):
    bad = {"name": "x", "shape": [-1, 4], "datatype": "FP32", "data": [0.0] * 4}
    with pytest.raises(InferenceError, match="concrete"):
        asyncio.run(plain_runtime.predict(InferenceRequest.model_validate({"inputs": [bad]})))


def test_other_errors_are_not_turned_into_bad_requests(plain_runtime, monkeypatch):
    def broken(call):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(plain_runtime._served, "explain", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        asyncio.run(plain_runtime.predict(request(tensor("x", X))))


def test_concurrent_predictions_in_one_runtime_are_all_right(plain_runtime):
    batches = [floats((n, 4), seed=n) for n in (1, 9, 2, 30, 5, 14)]

    async def all_at_once():
        return await asyncio.gather(
            *(plain_runtime.predict(request(tensor("x", batch))) for batch in batches)
        )

    responses = asyncio.run(all_at_once())
    explainer = plain_runtime._served.explainer
    for batch, response in zip(batches, responses, strict=True):
        attributions = np.array(response.outputs[0].data.root).reshape(batch.shape)
        target = np.argmax(explainer.model(batch), axis=1)
        expected = explainer.explain(batch, target=target).attributions[0]
        np.testing.assert_allclose(attributions, expected, atol=TOLERANCE)


# --- which explainers are served -----------------------------------------------------------


def test_a_saved_explainer_of_a_class_the_runtime_does_not_serve_is_refused(
    classifier_files, tmp_path
):
    import dill

    root, _ = classifier_files
    (tmp_path / "anchors").mkdir()
    with open(tmp_path / "anchors" / "meta.dill", "wb") as f:
        dill.dump({"name": "AnchorTabular"}, f)
    with open(tmp_path / "anchors" / "explainer.dill", "wb") as f:
        dill.dump({"an": "anchor explainer"}, f)
    settings = write_settings(
        tmp_path / "settings",
        uri="../anchors",
        extra={"model_uri": str(root / "classifier.keras")},
    )
    with pytest.raises(
        ValueError,
        match=r"not hold a saved ig_plugin explainer: its metadata names 'AnchorTabular'",
    ):
        asyncio.run(IntegratedGradientsRuntime(settings).load())


@pytest.mark.parametrize("kind", ["guided-ig", "blur-ig"])
def test_the_path_methods_are_served_from_their_saved_folders(tmp_path, kind):
    model = cnn()
    model.save(tmp_path / "cnn.keras")
    explainer = {
        "guided-ig": GuidedIntegratedGradients(model, n_steps=8),
        "blur-ig": BlurIntegratedGradients(model, max_sigma=3.0, n_steps=8, idgi=True),
    }[kind]
    explainer.save(tmp_path / "explainer")
    runtime = loaded(
        write_settings(
            tmp_path / "settings", uri="../explainer", extra={"model_uri": "../cnn.keras"}
        )
    )
    assert type(runtime._served.explainer) is type(explainer)
    images = smooth_images(3, seed=8)
    served = predict(runtime, tensor("x", images), target=2)
    reference = explainer.explain(images, target=2)
    np.testing.assert_allclose(served["attributions"], reference.attributions[0], atol=TOLERANCE)
    np.testing.assert_allclose(served["deltas"], reference.deltas, atol=TOLERANCE)
    # A parameter its explain does not take is a bad request, not a crash.
    with pytest.raises(InferenceError, match=r"\['output'\] do not apply") as raised:
        asyncio.run(runtime.predict(request(tensor("x", images), output=0)))
    assert raised.value.status_code == 400
