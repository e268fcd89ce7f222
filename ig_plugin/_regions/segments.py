"""The candidate regions of one image, as PAIR saliency 0.2.1's XRAI makes them.

The image's values are rescaled to [-1, 1] and it is resized to 224 x 224 (so that the
segmentation parameters mean the same whatever the image's range and size); Felzenszwalb's
graph segmentation (Felzenszwalb and Huttenlocher, 2004) runs at six scales; each scale's
labels are resized back to the image (nearest neighbour), every label becomes a boolean mask,
and every mask is dilated by a disk of radius 5 so that regions take in their edges. Masks
overlap: those of the six scales cover the image six times over.

scikit-image is an optional dependency (``pip install 'ig_plugin[xrai]'``), imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Felzenszwalb's ``scale`` values (larger: bigger segments), one segmentation each.
SCALES = (50, 100, 150, 250, 500, 1200)
#: Felzenszwalb's Gaussian pre-smoothing.
SIGMA = 0.8
#: Felzenszwalb's smallest segment, in pixels of the resized image.
MIN_SIZE = 150
#: The size every image is segmented at, and the range its values are rescaled to.
SEGMENTATION_SHAPE = (224, 224)
VALUE_RANGE = (-1.0, 1.0)
#: The radius of the disk every mask is dilated by.
DILATION_RADIUS = 5


def _skimage() -> Any:
    try:
        import skimage.morphology
        import skimage.segmentation
        import skimage.transform
    except ImportError:
        raise ImportError(
            "XRAI's segmentation needs scikit-image: pip install 'ig_plugin[xrai]', or pass "
            "`segments` (boolean masks) to XRAI."
        ) from None
    return skimage


def _rescaled(image: np.ndarray) -> np.ndarray:
    """The image's values mapped linearly onto VALUE_RANGE, then resized (bicubic, smoothed)."""
    skimage = _skimage()
    low, high = VALUE_RANGE
    smallest, largest = np.min(image), np.max(image)
    if largest > smallest:  # the same arithmetic as PAIR, in the image's own dtype
        image = (image - smallest) / (largest - smallest)
        image = image * (high - low) + low
    else:  # a constant image (where PAIR divides by zero): all at the bottom of the range
        image = np.full_like(image, low)
    return skimage.transform.resize(
        image,
        SEGMENTATION_SHAPE,
        order=3,
        mode="constant",
        preserve_range=True,
        anti_aliasing=True,
    )


def felzenszwalb_masks(image: np.ndarray) -> np.ndarray:
    """The candidate regions of one image, as PAIR's ``_get_segments_felzenszwalb`` makes them.

    Parameters
    ----------
    image
        One image, ``(H, W, C)``.

    Returns
    -------
    numpy.ndarray
        ``(K, H, W)`` booleans, one dilated mask per segment, scale after scale and label after
        label (the order breaks ties in the ranking, as in PAIR). Labels that vanish when
        resized back to a small image give no mask.
    """
    skimage = _skimage()
    rescaled = _rescaled(image)
    masks = []
    for scale in SCALES:
        labels = skimage.segmentation.felzenszwalb(
            rescaled, scale=scale, sigma=SIGMA, min_size=MIN_SIZE
        )
        labels = skimage.transform.resize(
            labels,
            image.shape[:2],
            order=0,
            preserve_range=True,
            mode="constant",
            anti_aliasing=False,
        ).astype(int)
        present = np.unique(labels)  # sorted, as PAIR's range(min, max + 1) without the empty
        masks.append(labels[None] == present[:, None, None])
    stacked = np.concatenate(masks)
    return dilate(stacked, DILATION_RADIUS)


def dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Every mask of ``(K, H, W)`` dilated by a disk of ``radius``, as skimage's ``dilation``
    with ``disk(radius)`` makes it: the pixels within Euclidean distance ``radius`` of the mask.

    One exact distance transform per mask, three to four times faster than the grey dilation
    skimage runs (the disk holds the offsets whose squared length is at most ``radius**2``, and
    the square root of an integer is exact at the perfect squares, so ``<=`` decides the same).
    """
    from scipy import ndimage

    return np.stack([ndimage.distance_transform_edt(~mask) <= radius for mask in masks])


def check_segments(segments: Any, image_shape: tuple[int, ...], name: str) -> np.ndarray:
    """Given segments for one image: boolean masks ``(K, H, W)`` over its ``image_shape``.

    Raises
    ------
    TypeError
        ``segments`` is not an array of booleans.
    ValueError
        Its shape is not ``(K, H, W)`` with K >= 1 and the image's H, W.
    """
    if not isinstance(segments, np.ndarray):
        raise TypeError(
            f"`{name}` must be a numpy array of boolean masks. Received: {type(segments).__name__}."
        )
    if segments.dtype != bool:
        raise TypeError(
            f"`{name}` must hold booleans (one mask per segment). Received: dtype {segments.dtype}."
        )
    if segments.ndim != 3 or segments.shape[0] == 0 or segments.shape[1:] != image_shape:
        raise ValueError(
            f"`{name}` must have shape (K, {image_shape[0]}, {image_shape[1]}): K >= 1 masks "
            f"over the image's height and width. Received: shape {segments.shape}."
        )
    return segments
