"""Serve explanations with MLServer: save a model and its explainer, start the server, ask it.

The demo's digits CNN is saved with its explainer in one folder of a model repository, beside a
model-settings.json that names ig_plugin's runtime. ``mlserver start`` serves it (here on
127.0.0.1 and free ports, stopped at the end); a V2 inference request with six test digits comes
back with their attributions, which are drawn. Needs ``pip install "ig_plugin[serve]"``.

Writes the repository ``serving/``, the server's log ``mlserver.log`` and ``serving_digits.png`` to
``examples/output`` or the folder given with ``--output``.

    python examples/serving_digits.py [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import requests
from image_digits import digit_images, train_cnn

from ig_plugin import IntegratedGradients
from ig_plugin.serving import LocalServer
from ig_plugin.visualization import plot_image_attributions

MODEL_NAME = "digits-ig"


def write_model_folder(folder: Path, model: keras.Model, explainer: IntegratedGradients) -> None:
    """The model, its explainer and model-settings.json, side by side in one folder."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    explainer.save(folder)  # meta.dill and explainer.dill: MLServer's `uri` defaults to here
    settings = {
        "name": MODEL_NAME,
        "implementation": "ig_plugin.serving.IntegratedGradientsRuntime",
        "parameters": {"extra": {"model_uri": "model.keras"}},
    }
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")


def v2_request(X: np.ndarray, **parameters: object) -> dict:
    """A V2 inference request: one FP32 tensor (any name for a one-input model)."""
    tensor = {
        "name": "digits",
        "shape": list(X.shape),
        "datatype": "FP32",
        "data": X.ravel().tolist(),
    }
    return {"inputs": [tensor], "parameters": parameters}


def response_arrays(response: dict) -> dict[str, np.ndarray]:
    """The response's tensors as numpy arrays of their datatype and shape."""
    dtypes = {"FP32": "float32", "FP64": "float64", "INT64": "int64"}
    return {
        output["name"]: np.array(output["data"], dtypes[output["datatype"]]).reshape(
            output["shape"]
        )
        for output in response["outputs"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()
    repository = args.output / "serving"

    # --- where the model is trained: fit, then save the model and its explainer ---
    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    explainer = IntegratedGradients(model, n_steps=50)
    write_model_folder(repository / MODEL_NAME, model, explainer)

    # --- where it is served: `mlserver start serving/`, here on 127.0.0.1 and free ports ---
    X = images[test][:6]
    with LocalServer(repository, log_path=args.output / "mlserver.log") as server:
        print(f"mlserver start {repository}: ready at {server.url}")
        url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
        # No target: the runtime explains each digit's predicted class.
        response = requests.post(url, json=v2_request(X, baselines=0.0), timeout=60)
        response.raise_for_status()
        served = response_arrays(response.json())
        # A request the model cannot take gets HTTP 400 and the reason; the server goes on.
        bad = requests.post(url, json=v2_request(X[:, :7]), timeout=60)
        print(f"a request of 7x8 images: HTTP {bad.status_code}, {bad.json()['error']}")

    in_process = explainer.explain(X, baselines=0.0, target=served["target"])
    difference = np.abs(served["attributions"] - in_process.attributions[0]).max()
    fig = plot_image_attributions(
        served["attributions"],
        X,
        titles=[f"predicted {label}" for label in served["target"]],
        ncols=3,
        image_cmap="gray_r",
        clip_percentile=99.5,
    )
    path = args.output / "serving_digits.png"
    fig.savefig(path, dpi=120)
    print(f"served tensors: {', '.join(f'{k} {list(v.shape)}' for k, v in served.items())}")
    print(f"predicted classes: {served['target'].tolist()}, true: {labels[test][:6].tolist()}")
    print(f"max |served - in-process attribution|: {difference:.1e}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
