"""Fixtures of the path-method tests: the small CNN of ``image_models`` and three of its images
(Blur IG's module has images of its own shape, and its own fixtures)."""

import pytest
from image_models import images, small_cnn


@pytest.fixture(scope="module")
def cnn():
    return small_cnn()


@pytest.fixture(scope="module")
def cnn_images():
    return images(3)
