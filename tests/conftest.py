"""Shared fixtures. TensorFlow's C++ logs are silenced before anything imports TensorFlow."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import models
import numpy as np
import pytest


def pytest_configure(config):
    # alibi imports spacy, which imports a click helper deprecated in click 8.2: not ours.
    config.addinivalue_line(
        "filterwarnings", "ignore:Importing 'parser.split_arg_string':DeprecationWarning"
    )


@pytest.fixture(scope="session")
def mlp():
    """A seeded tanh/softmax MLP: 4 features, 3 classes (all three predicted on mlp_data)."""
    return models.functional_mlp(4, 5, 3, seed=1)


@pytest.fixture(scope="session")
def mlp_data():
    return models.seeded_floats((6, 4), seed=3)


@pytest.fixture(scope="session")
def linear_weights():
    return np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]], dtype="float32")


@pytest.fixture(scope="session")
def linear(linear_weights):
    """``y = x @ W``, 3 features and 2 outputs."""
    return models.linear_model(linear_weights)


@pytest.fixture(scope="session")
def linear_data():
    return models.seeded_floats((5, 3), seed=2)


@pytest.fixture
def counting():
    """A fresh model (3 features, 2 outputs) whose calls are counted, never called yet: an
    error raised with ``counting.calls == 0`` came before any TensorFlow work."""
    model = models.CountingModel(3, 2)
    assert model.calls == 0
    return model
