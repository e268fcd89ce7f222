"""Explain a small network on a table: scikit-learn's breast cancer data, 30 features.

Features are standardised, so the all-zeros baseline is the average patient of the training set
and each attribution says how much a feature moves this patient's prediction away from the
average one. Writes ``tabular_breast_cancer.png``, a bar chart of the ten strongest features of
one test patient, to ``examples/output`` or the folder given with ``--output``.

    python examples/tabular_breast_cancer.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ig_plugin import IntegratedGradients
from ig_plugin.visualization import plot_feature_attributions


def train(X: np.ndarray, y: np.ndarray) -> keras.Model:
    """Two dense layers and one sigmoid output: p(benign)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((X.shape[1],)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=40, batch_size=32, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    data = load_breast_cancer()  # target 1: benign, 0: malignant
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=0, stratify=data.target
    )
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype("float32")
    X_test = scaler.transform(X_test).astype("float32")
    model = train(X_train, y_train)
    _, accuracy = model.evaluate(X_test, y_test, verbose=0)

    # Explain the predicted class of every test patient; baseline 0 = the average patient.
    p_benign = model.predict(X_test, verbose=0)[:, 0]
    predicted = (p_benign > 0.5).astype(int)
    explainer = IntegratedGradients(model, n_steps=50)
    explanation = explainer.explain(X_test, baselines=0.0, target=predicted)

    # One patient predicted malignant: which measurements pushed towards that class?
    patient = int(np.flatnonzero(predicted == 0)[0])
    fig = plot_feature_attributions(
        explanation,
        list(data.feature_names),
        sample=patient,
        top_k=10,
        title=f"Test patient {patient}: p(malignant) = {1 - p_benign[patient]:.2f}\n"
        "attributions vs. the average patient",
    )
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "tabular_breast_cancer.png"
    fig.savefig(path, dpi=120)

    attributions = explanation.attributions[0]  # (N, 30)
    ranking = np.argsort(-np.abs(attributions).mean(axis=0))[:3]
    print(f"test accuracy: {accuracy:.3f}")
    print(f"features with the largest mean |attribution|: {list(data.feature_names[ranking])}")
    print(f"largest |delta| (completeness gap): {np.abs(explanation.deltas).max():.2e}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
