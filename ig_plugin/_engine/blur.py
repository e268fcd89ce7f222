"""Gaussian blur in TensorFlow, with the truncation of ``scipy.ndimage.gaussian_filter``.

Blur IG's path runs through the Gaussian scale space of an image (PAIR saliency blurs with
``gaussian_filter(x, [sigma, sigma, 0], mode="constant")``: over height and width, not the
channels, with zeros beyond the edges). Each point of a chunk has its own sigma, so the blur is
written as two matrix products per image, ``B_H @ x @ B_W^T`` per channel, with the 1-D Gaussian
matrices built in the graph from the sigmas: scipy's kernel ``exp(-k**2 / (2 sigma**2))`` for
``|k| <= int(4 * sigma + 0.5)``, normalised over that whole window (zero padding: the weights
that fall beyond an edge are lost, not renormalised), and no blur at all for ``sigma <= 1e-15``.
Everything is float64, so the finite differences of Blur IG's direction do not lose digits.
"""

from __future__ import annotations

import tensorflow as tf

#: scipy's default ``truncate``: the kernel reaches ``int(TRUNCATE * sigma + 0.5)`` pixels.
TRUNCATE = 4.0
#: scipy leaves an axis unfiltered when its sigma is at most this.
NO_BLUR = 1e-15


def gaussian_matrices(sigmas: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """``(n, size, size)`` float64: row ``i`` of matrix ``p`` holds the weights with which
    pixel ``i`` of a blurred line gathers the line's pixels, for ``sigmas[p]``."""
    sigmas = tf.cast(sigmas, tf.float64)
    blurs = sigmas > NO_BLUR
    safe = tf.where(blurs, sigmas, tf.ones_like(sigmas))[:, tf.newaxis]  # (n, 1)
    radii = tf.floor(TRUNCATE * safe + 0.5)  # (n, 1)
    # The kernel's sum over its whole window, as scipy normalises it.
    reach = tf.reduce_max(radii)
    window = tf.range(-reach, reach + 1.0, dtype=tf.float64)[tf.newaxis]  # (1, 2R + 1)
    kernel = tf.exp(-0.5 * tf.square(window) / tf.square(safe))
    totals = tf.reduce_sum(tf.where(tf.abs(window) <= radii, kernel, 0.0), axis=1)  # (n,)
    positions = tf.range(tf.cast(size, tf.float64), dtype=tf.float64)
    offsets = positions[:, tf.newaxis] - positions[tf.newaxis]  # (size, size)
    offsets = offsets[tf.newaxis]
    radii, safe = radii[:, :, tf.newaxis], safe[:, :, tf.newaxis]
    weights = tf.exp(-0.5 * tf.square(offsets) / tf.square(safe))
    weights = tf.where(tf.abs(offsets) <= radii, weights, 0.0) / totals[:, tf.newaxis, tf.newaxis]
    identity = tf.eye(tf.shape(offsets)[1], dtype=tf.float64)[tf.newaxis]
    return tf.where(blurs[:, tf.newaxis, tf.newaxis], weights, identity)


def gaussian_blur(images: tf.Tensor, sigmas: tf.Tensor) -> tf.Tensor:
    """Each image of ``images`` ``(n, H, W, C)`` blurred over H and W with its own sigma of
    ``sigmas`` ``(n,)``, as ``gaussian_filter(image, [sigma, sigma, 0], mode="constant")``;
    float64."""
    images = tf.cast(images, tf.float64)
    shape = tf.shape(images)
    rows = gaussian_matrices(sigmas, shape[1])  # (n, H, H)
    columns = gaussian_matrices(sigmas, shape[2])  # (n, W, W)
    blurred = tf.einsum("pij,pjwc->piwc", rows, images)
    return tf.einsum("pkw,piwc->pikc", columns, blurred)
