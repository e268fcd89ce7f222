"""Shared fixtures. TensorFlow's C++ logs are silenced before anything imports TensorFlow."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import models  # noqa: E402


@pytest.fixture(scope="session")
def mlp():
    """A seeded tanh/softmax MLP: 4 features, 3 classes."""
    return models.functional_mlp(4, 5, 3, seed=0)


@pytest.fixture(scope="session")
def mlp_data():
    return models.seeded_floats((6, 4), seed=1)


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
