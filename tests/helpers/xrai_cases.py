"""A small seeded CNN on 16 x 16 x 3 images, blob images and random masks, for XRAI's tests."""

import numpy as np
from compat import keras
from models import set_seeded_weights
from scipy import ndimage

SHAPE = (16, 16, 3)


def cnn(seed=0):
    """A seeded conv net on 16 x 16 x 3 images with 3 classes."""
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    hidden = keras.layers.AveragePooling2D(2)(hidden)
    hidden = keras.layers.Flatten()(hidden)
    outputs = keras.layers.Dense(3)(hidden)
    return set_seeded_weights(keras.Model(inputs, outputs), seed, scale=0.3)


def smooth_images(n, seed, shape=SHAPE):
    """Images with blobs, so that Felzenszwalb finds several segments."""
    noise = np.random.default_rng(seed).normal(size=(n, *shape))
    return ndimage.gaussian_filter(noise, (0, 2, 2, 0)).astype("float32") * 4


def random_masks(k, shape, seed):
    """K rectangles, plus a duplicate and a mask inside another: ties PAIR breaks by order."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((k, *shape), dtype=bool)
    for mask in masks:
        top, left = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
        mask[top : top + rng.integers(2, 9), left : left + rng.integers(2, 9)] = True
    return np.concatenate([masks, masks[:1], masks[1:2] & np.roll(masks[1:2], 1, axis=1)])
