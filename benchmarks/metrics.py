"""ig_plugin.metrics against captum (infidelity, sensitivity_max) and Quantus (deletion and
insertion against PixelFlipping, MuFidelity against FaithfulnessCorrelation): seconds per call.

    make benchmark-metrics              # builds a venv with torch, captum and Quantus, runs this
    python benchmarks/metrics.py --quick      # in a venv with ig_plugin, torch, captum, quantus

One seeded CNN on the 8x8 digits of scikit-learn (Conv2D 16 3x3 relu, Dense 10 softmax), built in
Keras and, with the same weights, in PyTorch (captum's twin); N = 256 digits, each explained by
ig_plugin's Integrated Gradients (50 Gauss-Legendre steps, captum's default too) for the model's
predicted class. Every pair computes the same quantity with the same settings:

- infidelity: 10 Gaussian perturbations (standard deviation 0.1) per sample;
- sensitivity_max: 10 uniform perturbations of radius 0.02 per sample, each explained by IG;
- deletion (and insertion, which Quantus lacks: its points cost the same): 8 steps of 8 pixels
  to a baseline of 0, against Quantus' PixelFlipping with ``features_in_step=8``;
- MuFidelity: 128 subsets of 12 pixels set to 0 and Spearman's correlation, against Quantus'
  FaithfulnessCorrelation with ``nr_runs=128, subset_size=12``.

Each library batches as it does by default (captum all perturbed rows at once; ig_plugin 256
rows per forward pass), Quantus with ``batch_size=256`` and ``softmax=True`` (the model's
probabilities, as the others score). Each call is warmed up once (ig_plugin traces its compiled
passes then; the table gives that first call too), then the two run in alternation and the
medians (and the fastest runs) are compared: the ratio is the peer's time over ig_plugin's. The
load of other processes during the runs is measured and printed with the CPU: on a busy machine
the fastest runs are the ones least disturbed.

Quantus 0.6.0 installs beside TensorFlow 2.21 only with ``numpy<2``; xplique 2.x does not install
there at all (its numpy and TensorFlow pins), so its Deletion, Insertion and MuFidelity are not
timed. Writes ``benchmarks/results/metrics.{json,rst}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf  # noqa: F401  (before torch: the other order crashed beside TF 2.21)
from machine import LoadMeter, cpu_model, describe
from report import write_report
from sklearn.datasets import load_digits

from ig_plugin import IntegratedGradients
from ig_plugin import metrics as ours

RESULTS = Path(__file__).parent / "results"
N, N_PERTURB, NOISE, RADIUS = 256, 10, 0.1, 0.02
PIXELS, STEPS, SUBSETS, SUBSET_PIXELS = 64, 8, 128, 12


def build_models() -> tuple[keras.Model, Any]:
    """The Keras CNN with seeded weights, and its PyTorch twin (channel-first)."""
    import torch

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(16, 3, activation="relu")
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(conv(inputs))))
    kernel, conv_bias = conv.get_weights()
    dense_kernel, dense_bias = dense.get_weights()

    class Twin(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 16, 3)
            self.dense = torch.nn.Linear(6 * 6 * 16, 10)

        def forward(self, x: Any) -> Any:
            hidden = torch.relu(self.conv(x))
            # Keras flattens channel-last: (N, 6, 6, 16).
            flat = hidden.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            return torch.softmax(self.dense(flat), dim=1)

    twin = Twin()
    with torch.no_grad():
        twin.conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        twin.conv.bias.copy_(torch.from_numpy(conv_bias))
        twin.dense.weight.copy_(torch.from_numpy(dense_kernel.T.copy()))
        twin.dense.bias.copy_(torch.from_numpy(dense_bias))
    return model, twin.eval()


class Setup:
    """The models, N digits (channel-last for Keras, channel-first for the peers), the predicted
    classes and IG's attributions."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.model, self.twin = build_models()
        digits = load_digits()
        self.X = (digits.images[:N] / 16.0).astype(np.float32)[..., np.newaxis]
        self.X_first = np.ascontiguousarray(np.moveaxis(self.X, -1, 1))
        self.target = np.argmax(self.model.predict(self.X, verbose=0), axis=1)
        twin_outputs = self.twin(torch.from_numpy(self.X_first)).detach().numpy()
        np.testing.assert_allclose(twin_outputs, self.model.predict(self.X, verbose=0), atol=1e-5)
        self.ig = IntegratedGradients(self.model)
        self.attributions = self.ig.explain(self.X, target=self.target).attributions[0]
        self.attributions_first = np.ascontiguousarray(np.moveaxis(self.attributions, -1, 1))

    def pairs(self) -> dict[str, dict[str, Callable[[], Any]]]:
        """Per metric: ``{"ig_plugin": run, peer: run}``."""
        import quantus
        from captum.attr import IntegratedGradients as CaptumIG
        from captum.metrics import infidelity, sensitivity_max

        torch = self.torch
        X_t, a_t = torch.from_numpy(self.X_first), torch.from_numpy(self.attributions_first)
        target_t = torch.from_numpy(self.target)

        def gaussian(inputs: Any) -> tuple[Any, Any]:
            noise = torch.randn_like(inputs) * NOISE
            return noise, inputs - noise

        pixel_flipping = quantus.PixelFlipping(
            features_in_step=PIXELS // STEPS,
            perturb_baseline=0.0,
            normalise=False,
            abs=False,
            disable_warnings=True,
        )
        correlation = quantus.FaithfulnessCorrelation(
            nr_runs=SUBSETS,
            subset_size=SUBSET_PIXELS,
            perturb_baseline=0.0,
            similarity_func=quantus.similarity_func.correlation_spearman,
            normalise=False,
            abs=False,
            return_aggregate=False,
            disable_warnings=True,
        )
        # Quantus takes a Keras model's images channel-last (channel_first=False) and
        # attributions channel-first (the layout it holds images in).
        quantus_arguments = {
            "model": self.model,
            "x_batch": self.X,
            "y_batch": self.target,
            "a_batch": self.attributions_first,
            "channel_first": False,
            "softmax": True,  # FaithfulnessCorrelation's default, False, scores the logits
            "batch_size": N,
        }
        a, X, t, model = self.attributions, self.X, self.target, self.model
        return {
            "infidelity": {
                "ig_plugin": lambda: ours.infidelity(
                    model, X, a, t, ours.gaussian_noise(NOISE), N_PERTURB, seed=0
                ),
                "captum": lambda: infidelity(
                    self.twin, gaussian, X_t, a_t, target=target_t, n_perturb_samples=N_PERTURB
                ),
            },
            "sensitivity_max": {
                "ig_plugin": lambda: ours.sensitivity_max(self.ig, X, t, RADIUS, N_PERTURB, seed=0),
                "captum": lambda: sensitivity_max(
                    CaptumIG(self.twin).attribute,
                    X_t,
                    perturb_radius=RADIUS,
                    n_perturb_samples=N_PERTURB,
                    target=target_t,
                ),
            },
            "deletion": {
                "ig_plugin": lambda: ours.deletion(model, X, a, t, steps=STEPS),
                "Quantus PixelFlipping": lambda: pixel_flipping(**quantus_arguments),
            },
            "insertion": {
                "ig_plugin": lambda: ours.insertion(model, X, a, t, steps=STEPS),
                "Quantus PixelFlipping": lambda: pixel_flipping(**quantus_arguments),
            },
            "mu_fidelity": {
                "ig_plugin": lambda: ours.mu_fidelity(
                    model,
                    X,
                    a,
                    t,
                    grid_size=None,
                    subset_percent=SUBSET_PIXELS / PIXELS,
                    n_samples=SUBSETS,
                    seed=0,
                ),
                "Quantus FaithfulnessCorrelation": lambda: correlation(**quantus_arguments),
            },
        }


def _seconds(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def time_pair(name: str, runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, Any]:
    """Warm up both (tracing), then time them in alternation; medians, fastest runs and the
    ratios. Pairs whose calls take under half a second run five times as often: on a shared
    machine their times scatter most."""
    first = {kind: _seconds(run) for kind, run in runs.items()}
    times: dict[str, list[float]] = {kind: [] for kind in runs}
    values: dict[str, Any] = {}
    done = 0
    while done < repeats:
        for kind, run in runs.items():
            seconds, values[kind] = _seconds(run)
            times[kind].append(seconds)
        done += 1
        if done == 1 and max(t[0] for t in times.values()) < 0.5:
            repeats *= 5
    medians = {kind: statistics.median(t) for kind, t in times.items()}
    fastest = {kind: min(t) for kind, t in times.items()}
    peer = next(kind for kind in runs if kind != "ig_plugin")
    return {
        "metric": name,
        "peer": peer,
        "first_call_s": {kind: seconds for kind, (seconds, _) in first.items()},
        "median_s": medians,
        "fastest_s": fastest,
        "runs_s": times,
        "ratio": medians[peer] / medians["ig_plugin"],
        "fastest_ratio": fastest[peer] / fastest["ig_plugin"],
        "agreement": agreement(name, values),
    }


def agreement(name: str, values: dict[str, Any]) -> str:
    """How the two results compare (the same perturbations only for deletion)."""
    ig_plugin = values["ig_plugin"]
    peer = next(value for kind, value in values.items() if kind != "ig_plugin")
    if name == "deletion":
        curve = np.asarray(peer)  # Quantus' scores after each step: ours without step 0
        difference = np.abs(ig_plugin.scores[:, 1:] - curve).max()
        return f"curves equal to {difference:.1e}"
    if name == "insertion":
        return "-"
    theirs = np.asarray(peer.detach().numpy() if hasattr(peer, "detach") else peer, np.float64)
    return f"means {np.mean(ig_plugin):.3g} / {np.mean(theirs):.3g} (each its own draws)"


def render(results: dict[str, Any]) -> str:
    """The table as reStructuredText, for the docs' page on evaluating explanations."""
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpu']}, {machine['cores']} cores (load average "
        f"{results['loadavg']} before; other processes kept {results['busy_cores']:.2f} cores "
        f"busy during the runs); TensorFlow {machine['tensorflow']}, torch {machine['torch']}, "
        f"captum {machine['captum']}, Quantus {machine['quantus']}. Command: "
        f"``{results['command']}``. N = {N} digits; medians and fastest of {results['repeats']} "
        f"runs after a warm-up call ({5 * results['repeats']} for pairs whose calls take under "
        "half a second).",
        "",
        ".. list-table:: ig_plugin.metrics against captum and Quantus: seconds per call",
        "   :header-rows: 1",
        "",
        "   * - metric",
        "     - peer",
        "     - ig_plugin (s)",
        "     - peer (s)",
        "     - peer / ig_plugin (medians)",
        "     - fastest runs (s), ig_plugin / peer",
        "     - first call (s), ig_plugin / peer",
        "     - results",
    ]
    for row in results["rows"]:
        median, first, fastest = row["median_s"], row["first_call_s"], row["fastest_s"]
        lines += [
            f"   * - {row['metric']}",
            f"     - {row['peer']}",
            f"     - {median['ig_plugin']:.3f}",
            f"     - {median[row['peer']]:.3f}",
            f"     - {row['ratio']:.1f}x",
            f"     - {fastest['ig_plugin']:.3f} / {fastest[row['peer']]:.3f}",
            f"     - {first['ig_plugin']:.2f} / {first[row['peer']]:.2f}",
            f"     - {row['agreement']}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--output", type=Path, default=RESULTS / "metrics.json")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    with open("/proc/loadavg") as loadavg:
        before = " ".join(loadavg.read().split()[:3])
    print(f"CPU: {cpu_model()}; load average before: {before}", flush=True)
    setup = Setup()
    load = LoadMeter()
    rows = []
    for name, runs in setup.pairs().items():
        row = time_pair(name, runs, repeats)
        rows.append(row)
        print(
            f"{name}: ig_plugin {row['median_s']['ig_plugin']:.3f} s, {row['peer']} "
            f"{row['median_s'][row['peer']]:.3f} s: {row['ratio']:.1f}x ({row['agreement']})",
            flush=True,
        )
    results: dict[str, Any] = {
        "command": "python benchmarks/metrics.py" + (" --quick" if args.quick else ""),
        "repeats": repeats,
        "loadavg": before,
        "busy_cores": load.stop(),
        "rows": rows,
        "machine": {
            **describe(),
            **{name: metadata.version(name) for name in ("torch", "captum", "quantus")},
        },
    }
    write_report(results, args.output, render)


if __name__ == "__main__":
    main()
