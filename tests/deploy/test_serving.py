"""A real ``mlserver start`` serving several models at once, asked as clients would: over HTTP
with ``requests`` and with tritonclient's V2 clients (HTTP and gRPC).

One server for the module (starting one takes 10-50 s here): 127.0.0.1, free ports, bounded
waits, stopped at teardown even when a test fails. Its repository holds a user's own
``settings.json``, which LocalServer must leave as it is. Every served result is compared with
the same ``explain`` computed in this process from the same files. Runs where MLServer is
installed (``pip install ".[serve]"``).
"""

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlserver")
requests = pytest.importorskip("requests")

import serving_models  # noqa: E402
from serving_models import floats, token_ids  # noqa: E402

from ig_plugin.serving import LocalServer  # noqa: E402

#: Served and in-process results agree to this (they run the same computation).
TOLERANCE = 1e-5
TIMEOUT_S = 120

NUMPY_TYPES = {"FP32": "float32", "FP64": "float64", "INT32": "int32", "INT64": "int64"}

#: Explanation data that only some explainers return, and their served dtypes.
OPTIONAL_OUTPUTS = {
    "n_steps": "int64",
    "error_estimates": "float64",
    "expected_value": "float64",
    "regions": "int64",
}


#: A user's own server settings, in the repository's settings.json. LocalServer leaves the file
#: as it is and applies what is not its own; host and ports are its own (port 1 would fail).
USER_SETTINGS = {
    "server_name": "ig-plugin-tests",
    "gzip_enabled": False,
    "host": "0.0.0.0",
    "http_port": 1,
    "parallel_workers": 3,
}


def files_in(folder):
    """Every file below ``folder`` with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    served = serving_models.write_repository(root)
    (root / "models" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2))
    return root, served, files_in(root / "models")


@pytest.fixture(scope="module")
def server(repository):
    root, _, _ = repository
    # parallel_workers=0: the models run in the server process, as Seldon Core v2 runs MLServer;
    # it starts in about two thirds of the time one worker process takes here.
    running = LocalServer(root / "models", parallel_workers=0, ready_timeout=300)
    with running:
        yield running
    shutil.rmtree(running.work_folder)  # the log's folder, kept after stop


@pytest.fixture(scope="module")
def repository_files(repository):
    return repository[2]


@pytest.fixture(scope="module")
def references(repository):
    """The in-process explainer of every served model, built from the same files."""
    _, served, _ = repository
    return {name: model.reference() for name, model in served.items()}


def tensor(name, array, datatype=None):
    """A V2 request tensor, written out as a client writes it."""
    array = np.asarray(array)
    datatype = datatype or {v: k for k, v in NUMPY_TYPES.items()}[array.dtype.name]
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": array.ravel().tolist(),
    }


def infer(server, model, inputs, parameters=None, **body):
    body = {"inputs": inputs, **body}
    if parameters is not None:
        body["parameters"] = parameters
    return requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=TIMEOUT_S)


def outputs_of(response):
    """The response's tensors as numpy arrays of their datatype and shape."""
    assert response.status_code == 200, response.text
    return {
        output["name"]: np.array(output["data"], NUMPY_TYPES[output["datatype"]]).reshape(
            output["shape"]
        )
        for output in response.json()["outputs"]
    }


def assert_same_explanation(served, explanation, names):
    for name, expected in zip(names, explanation.attributions, strict=True):
        assert served[name].dtype == expected.dtype
        np.testing.assert_allclose(served[name], expected, rtol=TOLERANCE, atol=TOLERANCE)
    np.testing.assert_allclose(served["deltas"], explanation.deltas, rtol=TOLERANCE, atol=TOLERANCE)
    np.testing.assert_allclose(
        served["predictions"], explanation.predictions, rtol=TOLERANCE, atol=TOLERANCE
    )
    if explanation.target is None:
        assert "target" not in served
    else:
        np.testing.assert_array_equal(served["target"], explanation.target)
    # What only some explanations hold comes back typed, when they hold it.
    for name, dtype in OPTIONAL_OUTPUTS.items():
        if name not in explanation.data:
            assert name not in served
            continue
        assert served[name].dtype == dtype
        np.testing.assert_allclose(
            served[name], explanation.data[name], rtol=TOLERANCE, atol=TOLERANCE
        )


def argmax_target(explainer, X):
    return np.argmax(explainer.model(X), axis=1)


# Each case: model, request inputs and parameters, and the in-process explain call they mean.
X_CLASSIFIER = floats((5, 6), seed=1)
X_REGRESSION = floats((4, 4), seed=2)
CHEMISTRY, COLOUR = floats((3, 5), seed=3), floats((3, 3), seed=4)
TOKENS = token_ids(4, seed=5)
IMAGES = floats((3, 8, 8, 1), seed=6)

CASES = {
    "classifier, no target: argmax": (
        "classifier",
        [tensor("pixels", X_CLASSIFIER)],
        None,
        lambda ig: ig.explain(X_CLASSIFIER, target=argmax_target(ig, X_CLASSIFIER)),
    ),
    "classifier, target tensor": (
        "classifier",
        [tensor("x", X_CLASSIFIER), tensor("target", np.array([0, 2, 1, 1, 0]))],
        None,
        lambda ig: ig.explain(X_CLASSIFIER, target=[0, 2, 1, 1, 0]),
    ),
    "classifier, target and baselines parameters": (
        "classifier",
        [tensor("x", X_CLASSIFIER)],
        {"target": 2, "baselines": 0.5},
        lambda ig: ig.explain(X_CLASSIFIER, target=2, baselines=0.5),
    ),
    "classifier, n_steps='auto': with each sample's steps and error estimate": (
        "auto-steps",
        [tensor("x", X_CLASSIFIER)],
        {"target": 1},
        lambda ig: ig.explain(X_CLASSIFIER, target=1),
    ),
    "Expected Gradients, no target: argmax, with the expected value": (
        "expected-gradients",
        [tensor("x", X_CLASSIFIER)],
        None,
        lambda eg: eg.explain(X_CLASSIFIER, target=argmax_target(eg, X_CLASSIFIER)),
    ),
    "NoiseTunnel over IG, target and baselines": (
        "noise-tunnel",
        [tensor("x", X_CLASSIFIER)],
        {"target": 2, "baselines": 0.5},
        lambda smooth: smooth.explain(X_CLASSIFIER, target=2, baselines=0.5),
    ),
    "XRAI over IG, no target: argmax, with the regions": (
        "xrai",
        [tensor("image", IMAGES)],
        None,
        lambda xrai: xrai.explain(IMAGES, target=argmax_target(xrai, IMAGES)),
    ),
    "regression": (
        "regression",
        [tensor("x", X_REGRESSION)],
        None,
        lambda ig: ig.explain(X_REGRESSION),
    ),
    "two inputs, target as [N, 1]": (
        "two-inputs",
        [
            tensor("colour", COLOUR),
            tensor("chemistry", CHEMISTRY),
            tensor("target", np.array([[2], [0], [1]], dtype=np.int32)),
        ],
        None,
        lambda ig: ig.explain([CHEMISTRY, COLOUR], target=[2, 0, 1]),
    ),
    "text, embedding layer": (
        "text",
        [tensor("token_ids", TOKENS)],
        None,
        lambda ig: ig.explain(TOKENS, target=argmax_target(ig, TOKENS)),
    ),
}

ATTRIBUTION_NAMES = {
    "two-inputs": ["attributions_chemistry", "attributions_colour"],
}


@pytest.mark.parametrize("case", CASES)
def test_served_explanation_equals_in_process_explain(server, references, case):
    model, inputs, parameters, explain = CASES[case]
    served = outputs_of(infer(server, model, inputs, parameters))
    assert_same_explanation(
        served, explain(references[model]), ATTRIBUTION_NAMES.get(model, ["attributions"])
    )


def test_response_tensors_are_typed_and_shaped(server):
    response = infer(server, "text", [tensor("ids", TOKENS)], outputs=[{"name": "target"}])
    assert response.status_code == 200, response.text
    (target,) = response.json()["outputs"]
    assert (target["name"], target["datatype"], target["shape"]) == ("target", "INT64", [4])
    response = infer(server, "classifier", [tensor("x", X_CLASSIFIER.astype("float64"))])
    shapes = {o["name"]: (o["datatype"], o["shape"]) for o in response.json()["outputs"]}
    assert shapes == {
        "attributions": ("FP64", [5, 6]),
        "deltas": ("FP64", [5]),
        "predictions": ("FP32", [5, 3]),
        "target": ("INT64", [5]),
    }


def test_metadata_lists_the_model_inputs(server):
    metadata = requests.get(f"{server.url}/v2/models/two-inputs", timeout=TIMEOUT_S).json()
    assert metadata["inputs"] == [
        {"name": "chemistry", "datatype": "FP32", "shape": [-1, 5]},
        {"name": "colour", "datatype": "FP32", "shape": [-1, 3]},
    ]


def _with_null(array):
    request = tensor("x", array)
    request["data"][3] = None
    return request


BAD_REQUESTS = {
    "wrong shape": (
        "classifier",
        [tensor("x", X_CLASSIFIER[:, :5])],
        None,
        "must have shape [-1, 6]",
    ),
    "wrong dtype": (
        "classifier",
        [{"name": "x", "shape": [1, 6], "datatype": "BYTES", "data": ["abcdef"]}],
        None,
        "datatype BYTES",
    ),
    "NaN": ("classifier", [_with_null(X_CLASSIFIER)], None, "NaN"),
    "no samples": (
        "classifier",
        [tensor("x", np.zeros((0, 6), "float32"))],
        None,
        "Input tensor 'x' holds no samples (shape [0, 6])",
    ),
    "data that do not fill the shape": (
        "classifier",
        [{"name": "x", "shape": [2, 6], "datatype": "FP32", "data": [0.5] * 11}],
        None,
        "cannot be read as FP32 of shape [2, 6]",
    ),
    "target out of range": ("classifier", [tensor("x", X_CLASSIFIER)], {"target": 3}, "range"),
    "target tensor of floats": (
        "classifier",
        [tensor("x", X_CLASSIFIER), tensor("target", np.zeros(5, "float32"))],
        None,
        "must hold integers",
    ),
    "target 2 for a single-output model": (
        "regression",
        [tensor("x", X_REGRESSION)],
        {"target": 2},
        "`target` must be 0 or 1",
    ),
    "unknown input name": (
        "two-inputs",
        [tensor("chemistry", CHEMISTRY), tensor("color", COLOUR)],
        None,
        "unknown: ['color']",
    ),
    "baselines for Expected Gradients": (
        "expected-gradients",
        [tensor("x", X_CLASSIFIER)],
        {"baselines": 0.5},
        "The request parameters ['baselines'] do not apply to this model's ExpectedGradients, "
        "which takes ['target', 'output', 'attribute_to_layer_inputs']",
    ),
    "unknown parameter": (
        "classifier",
        [tensor("x", X_CLASSIFIER)],
        {"targets": 1},
        "Unknown request parameters ['targets']",
    ),
    "token id beyond the vocabulary": (
        "text",
        [tensor("ids", np.full((1, serving_models.LENGTH), 999, dtype=np.int32))],
        None,
        "`X` holds ids outside the vocabulary of the layer 'embedding' (valid ids are 0 to 49)",
    ),
    # Keras 3 wrapped -3 around to id 47 and answered 200.
    "negative token id": (
        "text",
        [tensor("ids", np.full((1, serving_models.LENGTH), -3, dtype=np.int32))],
        None,
        "`X` holds ids outside the vocabulary of the layer 'embedding'",
    ),
    # Keras cast 1.7 to id 1 and answered 200.
    "token ids as fractions": (
        "text",
        [tensor("ids", np.full((1, serving_models.LENGTH), 1.7, dtype=np.float32))],
        None,
        "`X` must hold whole numbers for the integer input of dtype int32",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gets_400_and_the_next_request_is_served(server, references, case):
    model, inputs, parameters, message = BAD_REQUESTS[case]
    response = infer(server, model, inputs, parameters)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    good_model, good_inputs, _, explain = CASES["classifier, target tensor"]
    served = outputs_of(infer(server, good_model, good_inputs))
    assert_same_explanation(served, explain(references[good_model]), ["attributions"])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor("x", floats((7, 4), seed=10))], "The request holds 7 samples; this model "),
        ([tensor("x", floats((6, 4), seed=10))], "The request's tensors hold 24 values; this "),
        # Refused from the declared shape, before the data (which do not fill it) are read.
        (
            [{"name": "x", "shape": [100_000, 4], "datatype": "FP32", "data": [0.5] * 3}],
            "The request holds 100000 samples; this model explains at most 6 per request",
        ),
    ],
    ids=["samples", "values", "before decoding"],
)
def test_a_request_beyond_the_models_limits_gets_413(server, references, inputs, message):
    response = infer(server, "regression", inputs)
    assert response.status_code == 413, response.text
    assert message in response.json()["error"]
    # At the limits (6 samples, 20 values: 5 samples of 4 features) the model is served.
    X = floats((5, 4), seed=11)
    served = outputs_of(infer(server, "regression", [tensor("x", X)]))
    expected = references["regression"].explain(X).attributions[0]
    np.testing.assert_allclose(served["attributions"], expected, rtol=TOLERANCE, atol=TOLERANCE)


def _concurrent_case(position, size):
    """Request ``position`` of the concurrent test: one of three models, ``size`` samples."""
    kind = position % 3
    if kind == 0:
        X = floats((size, 6), seed=100 + position)
        return "classifier", [tensor("x", X)], lambda ig: ig.explain(X, target=argmax_target(ig, X))
    if kind == 1:
        ids = token_ids(size, seed=100 + position)
        return (
            "text",
            [tensor("ids", ids)],
            lambda ig: ig.explain(ids, target=argmax_target(ig, ids)),
        )
    a, b = floats((size, 5), seed=100 + position), floats((size, 3), seed=200 + position)
    target = np.arange(size) % 3
    inputs = [tensor("chemistry", a), tensor("colour", b), tensor("target", target)]
    return "two-inputs", inputs, lambda ig: ig.explain([a, b], target=target)


def test_eight_concurrent_requests_of_different_sizes_are_all_right(server, references):
    cases = [_concurrent_case(i, size) for i, size in enumerate((1, 40, 3, 17, 8, 64, 2, 29))]
    barrier = threading.Barrier(len(cases))
    responses = [None] * len(cases)

    def send(position):
        model, inputs, _ = cases[position]
        barrier.wait(timeout=TIMEOUT_S)
        responses[position] = infer(server, model, inputs)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * TIMEOUT_S)
    assert all(response is not None for response in responses)
    for (model, _, explain), response in zip(cases, responses, strict=True):
        assert_same_explanation(
            outputs_of(response),
            explain(references[model]),
            ATTRIBUTION_NAMES.get(model, ["attributions"]),
        )


# MLServer's own gRPC converter calls pydantic's deprecated `construct`.
@pytest.mark.filterwarnings("ignore:The `construct` method is deprecated")
def test_the_grpc_endpoint_serves_the_same_explanations(server, references):
    grpc = pytest.importorskip("grpc")
    from mlserver.codecs import NumpyCodec
    from mlserver.grpc.converters import ModelInferRequestConverter, ModelInferResponseConverter
    from mlserver.grpc.dataplane_pb2_grpc import GRPCInferenceServiceStub
    from mlserver.types import InferenceRequest

    def grpc_request(**parameters):
        # gRPC parameters carry bools, ints and strings (MLServer drops floats): baselines 1.
        body = {"inputs": [tensor("x", X_CLASSIFIER)], "parameters": parameters}
        converted = ModelInferRequestConverter.from_types(
            InferenceRequest.model_validate(body), model_name="classifier", model_version=None
        )
        return stub.ModelInfer(converted, timeout=TIMEOUT_S)

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = GRPCInferenceServiceStub(channel)
        response = ModelInferResponseConverter.to_types(grpc_request(target=2, baselines=1))
        with pytest.raises(grpc.RpcError) as bad:
            grpc_request(target=3)
    served = {output.name: NumpyCodec.decode_output(output) for output in response.outputs}
    expected = references["classifier"].explain(X_CLASSIFIER, target=2, baselines=1)
    assert_same_explanation(served, expected, ["attributions"])
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "out of range" in bad.value.details()


# --- LocalServer leaves the repository as it is ---------------------------------------------


def test_local_server_leaves_the_repository_as_it_was(server, repository):
    root, _, before = repository
    assert files_in(root / "models") == before  # settings.json unchanged, no log, no metrics
    assert server.log_path is not None and root not in server.log_path.parents
    assert "Uvicorn running on http://127.0.0.1:" in server.log_path.read_text()


def test_local_server_applies_the_users_settings_but_its_own_host_and_ports(server):
    metadata = requests.get(f"{server.url}/v2", timeout=TIMEOUT_S).json()
    assert metadata["name"] == USER_SETTINGS["server_name"]
    assert server.http_port != USER_SETTINGS["http_port"]
    # gzip_enabled false: a large answer to a client that accepts gzip comes back plain.
    X = floats((40, 6), seed=9)
    response = requests.post(
        f"{server.url}/v2/models/classifier/infer",
        json={"inputs": [tensor("x", X)]},
        headers={"Accept-Encoding": "gzip"},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    assert len(response.content) > 1000
    assert "Content-Encoding" not in response.headers


def test_local_server_settings_merge_the_repositorys_own(tmp_path):
    from ig_plugin.serving._local import server_settings

    (tmp_path / "settings.json").write_text(json.dumps(USER_SETTINGS))
    work = tmp_path / "work"
    merged = server_settings(tmp_path, work, None, {"debug": True})
    assert merged["server_name"] == "ig-plugin-tests" and merged["gzip_enabled"] is False
    assert merged["host"] == "127.0.0.1" and merged["http_port"] != 1
    assert merged["parallel_workers"] == 3  # the repository's, when LocalServer is not given one
    assert merged["metrics_dir"] == str(work / "metrics") and merged["debug"] is True
    assert server_settings(tmp_path, work, 0, {})["parallel_workers"] == 0
    (tmp_path / "settings.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        server_settings(tmp_path, work, None, {})


# --- the standard V2 clients ----------------------------------------------------------------


@pytest.fixture(scope="module")
def http_client(server):
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield httpclient, client
    client.close()


def triton_inputs(httpclient, named_arrays):
    inputs = []
    for name, array in named_arrays.items():
        datatype = {v: k for k, v in NUMPY_TYPES.items()}[array.dtype.name]
        tensor_ = httpclient.InferInput(name, list(array.shape), datatype)
        # MLServer's REST endpoint reads JSON tensors only, not Triton's binary extension.
        tensor_.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor_)
    return inputs


def test_tritonclients_default_http_call_is_served(http_client, references):
    httpclient, client = http_client
    # No listed outputs: the client asks for binary_data_output, and reads the JSON answer.
    result = client.infer("classifier", triton_inputs(httpclient, {"x": X_CLASSIFIER}))
    served = {name: result.as_numpy(name) for name in ("attributions", "deltas", "predictions")}
    served["target"] = result.as_numpy("target")
    explainer = references["classifier"]
    expected = explainer.explain(X_CLASSIFIER, target=argmax_target(explainer, X_CLASSIFIER))
    assert_same_explanation(served, expected, ["attributions"])
    # priority and timeout travel as request parameters too; so do ours.
    result = client.infer(
        "classifier",
        triton_inputs(httpclient, {"x": X_CLASSIFIER}),
        priority=1,
        timeout=10_000_000,
        parameters={"target": 2, "baselines": 0.5},
    )
    np.testing.assert_allclose(
        result.as_numpy("attributions"),
        explainer.explain(X_CLASSIFIER, target=2, baselines=0.5).attributions[0],
        rtol=TOLERANCE,
        atol=TOLERANCE,
    )
    # Listed outputs ask for binary data each (an output parameter): still JSON, still read.
    result = client.infer(
        "classifier",
        triton_inputs(httpclient, {"x": X_CLASSIFIER}),
        outputs=[httpclient.InferRequestedOutput("deltas")],
        parameters={"target": 2},
    )
    assert [output["name"] for output in result.get_response()["outputs"]] == ["deltas"]
    np.testing.assert_allclose(
        result.as_numpy("deltas"),
        explainer.explain(X_CLASSIFIER, target=2).deltas,
        rtol=TOLERANCE,
        atol=TOLERANCE,
    )


@pytest.mark.parametrize(
    ("inputs", "parameters", "message"),
    [
        ({"x": X_CLASSIFIER[:, :5]}, None, "must have shape [-1, 6]"),
        ({"x": X_CLASSIFIER}, {"targt": 1}, "Unknown request parameters ['targt']"),
    ],
    ids=["wrong shape", "misspelt parameter"],
)
def test_tritonclients_bad_http_call_gets_the_real_reason(http_client, inputs, parameters, message):
    httpclient, client = http_client
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as raised:
        client.infer("classifier", triton_inputs(httpclient, inputs), parameters=parameters)
    assert raised.value.status() == "400"
    assert message in raised.value.message()


#: tritonclient.grpc cannot be imported beside mlserver (both register the same protobuf
#: symbols), so the gRPC client runs in a process of its own: it explains X (an .npy file) with
#: the given request parameters (JSON) and writes the response's tensors to an .npz file, or the
#: error's status and message to a .json file.
GRPC_CLIENT = """
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

target, model, x_file, parameters, out = sys.argv[1:]
X = np.load(x_file)
client = grpcclient.InferenceServerClient(url=target)
tensor = grpcclient.InferInput("x", list(X.shape), "FP32")
tensor.set_data_from_numpy(X)
try:
    result = client.infer(model, [tensor], parameters=json.loads(parameters), client_timeout=120)
except InferenceServerException as error:
    with open(out + ".json", "w") as f:
        json.dump({"status": error.status(), "message": error.message()}, f)
else:
    names = [output.name for output in result.get_response().outputs]
    np.savez(out + ".npz", **{name: result.as_numpy(name) for name in names})
"""


def grpc_client_call(server, tmp_path, model, X, parameters):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per call
    np.save(folder / "x.npy", X)
    out = folder / "out"
    command = [
        sys.executable,
        "-c",
        GRPC_CLIENT,
        server.grpc_target,
        model,
        str(folder / "x.npy"),
        json.dumps(parameters),
        str(out),
    ]
    subprocess.run(command, check=True, timeout=TIMEOUT_S)
    if out.with_suffix(".npz").exists():
        with np.load(out.with_suffix(".npz")) as served:
            return dict(served)
    return json.loads(out.with_suffix(".json").read_text())


def test_tritonclients_grpc_call_is_served(server, references, tmp_path):
    if importlib.util.find_spec("tritonclient.grpc") is None:  # found, not imported
        pytest.skip("tritonclient[grpc] is not installed")
    served = grpc_client_call(server, tmp_path, "classifier", X_CLASSIFIER, {"target": 1})
    expected = references["classifier"].explain(X_CLASSIFIER, target=1)
    assert_same_explanation(served, expected, ["attributions"])
    error = grpc_client_call(server, tmp_path, "classifier", X_CLASSIFIER, {"targt": 1})
    assert error["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "Unknown request parameters ['targt']" in error["message"]
    # MLServer maps HTTP 413 to no gRPC code: UNKNOWN, with the reason.
    error = grpc_client_call(server, tmp_path, "regression", floats((7, 4), seed=10), {})
    assert error["status"] == "StatusCode.UNKNOWN"
    assert "The request holds 7 samples" in error["message"]
