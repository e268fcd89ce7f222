"""XRAI: region attributions over any ig_plugin explainer's attributions, as an alibi
``Explainer``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from alibi.api.interfaces import Explanation

from ig_plugin._explainer.base import ModelExplainer, whitebox_local_meta
from ig_plugin._explainer.registry import model_explainer, registered, saved_explainer
from ig_plugin._explainer.wrapping import WrappingExplainer
from ig_plugin._regions.ranking import RankedRegions, rank_regions
from ig_plugin._regions.segments import check_segments, felzenszwalb_masks
from ig_plugin._request import checks
from ig_plugin._request.checks import describe_callable
from ig_plugin._request.inputs import ArrayOrList

#: What ``segments`` may be, for the messages.
_SEGMENTS_FORMS = (
    "None (Felzenszwalb's segmentation, as PAIR's XRAI makes it), a callable image -> boolean "
    "masks (K, H, W), or boolean masks (K, H, W) for every image"
)


@saved_explainer(wraps="explainer")
class XRAI(WrappingExplainer):
    """XRAI (Kapishnikov et al., 2019): the image's regions ranked by how much attribution they
    hold per pixel, over the attributions of any ig_plugin explainer, with the semantics of PAIR
    saliency 0.2.1's ``XRAI().GetMask(x, ..., base_attribution=..., segments=...)``.

    Each image is cut into overlapping candidate regions (by default Felzenszwalb's graph
    segmentation at six scales, each segment dilated by 5 pixels, as PAIR does it); the
    attributions are merged over the channels by their maximum; then, from an empty selection,
    the region whose not-yet-selected pixels hold the highest mean attribution joins it, again
    and again. Every pixel gets the mean attribution (density) of the region it joined, so
    the map keeps the attribution's total, and the regions are ranked by that density: rank 1
    is the most salient. A coarse map whose top regions cover whole objects, where pixel
    attributions are scattered.

    The base attributions come from the wrapped explainer, for the whole batch at once; the
    segmentation and the ranking run on the host, one image at a time (numpy and scikit-image),
    and the ranking costs about one pass over the masks in all (PAIR's costs one per region).

    Parameters
    ----------
    explainer
        An ig_plugin explainer of a model whose input is a batch of images ``(N, H, W, C)``:
        :class:`~ig_plugin.IntegratedGradients`, :class:`~ig_plugin.ExpectedGradients`,
        :class:`~ig_plugin.NoiseTunnel`, ... Its attributions, on the input (not a layer), are
        the base attribution. PAIR's XRAI averages IG from two baselines, the image's minimum
        and its maximum: give those to ``explain`` as ``baselines`` to do the same (a wrapped
        explainer with one baseline per sample explains each image from its own).
    segments
        None: Felzenszwalb's segmentation of each image (needs scikit-image: ``pip install
        'ig_plugin[xrai]'``). A callable ``image (H, W, C) -> masks (K, H, W)`` (booleans), called
        once per image. Or boolean masks ``(K, H, W)`` used for every image (a grid, say). Masks
        given are used as they are: not dilated. :meth:`explain` can give each image its own.
    min_pixel_diff
        A region that would add fewer than this many new pixels to the selection is dropped
        (an int >= 1; PAIR's default 50).
    area_threshold
        Stop once the selected regions cover more than this fraction of the image (in [0, 1]);
        the pixels left form one last region, of their own mean attribution. 1.0 ranks every
        region (PAIR's default, the slowest).

    Examples
    --------
    >>> import numpy as np, keras
    >>> from ig_plugin import IntegratedGradients, XRAI
    >>> inputs = keras.Input((4, 4, 1))
    >>> outputs = keras.layers.Dense(1, use_bias=False)(keras.layers.Flatten()(inputs))
    >>> model = keras.Model(inputs, outputs)
    >>> model.layers[-1].set_weights([np.arange(16, dtype="float32").reshape(16, 1)])
    >>> halves = np.zeros((2, 4, 4), dtype=bool)
    >>> halves[0, :, :2], halves[1, :, 2:] = True, True
    >>> xrai = XRAI(IntegratedGradients(model), segments=halves, min_pixel_diff=1)
    >>> explanation = xrai.explain(np.ones((1, 4, 4, 1), dtype="float32"))
    >>> explanation.data["regions"][0]
    array([[2, 2, 1, 1],
           [2, 2, 1, 1],
           [2, 2, 1, 1],
           [2, 2, 1, 1]])
    """

    def __init__(
        self,
        explainer: Any,
        segments: Callable[[np.ndarray], np.ndarray] | np.ndarray | None = None,
        min_pixel_diff: int = 50,
        area_threshold: float = 1.0,
    ) -> None:
        if isinstance(explainer, XRAI):
            raise TypeError(
                "`explainer` must give attributions shaped like the images: XRAI cannot wrap "
                "another XRAI."
            )
        try:
            inner = model_explainer(explainer)
        except TypeError:
            inner = None
        if not isinstance(inner, ModelExplainer):
            raise TypeError(
                "`explainer` must be an ig_plugin explainer of a model (IntegratedGradients, "
                f"ExpectedGradients, NoiseTunnel, ...). Received: {type(explainer).__name__}"
            )
        if inner.layer is not None:
            raise ValueError(
                "XRAI ranks regions of the input image: `explainer` must attribute to the model "
                f"inputs, not to a layer. Received: an explainer of the layer {inner.layer.name!r}."
            )
        if segments is not None and not callable(segments):
            if not isinstance(segments, np.ndarray) or segments.ndim != 3:
                raise TypeError(
                    f"`segments` must be {_SEGMENTS_FORMS}. Received: "
                    f"{getattr(segments, 'shape', type(segments).__name__)}."
                )
            segments = check_segments(segments, segments.shape[1:], "segments").copy()
        self.explainer = explainer
        self.segments = segments
        self.min_pixel_diff = checks.check_scalar("min_pixel_diff", min_pixel_diff, least=1)
        self.area_threshold = checks.check_scalar(
            "area_threshold", area_threshold, float, least=0.0, most=1.0
        )
        super().__init__(meta=whitebox_local_meta())
        self.meta["params"].update(
            segments=_describe_segments(segments),
            min_pixel_diff=self.min_pixel_diff,
            area_threshold=self.area_threshold,
            explainer=self._wrapped_meta(),
        )

    def explain(self, X: ArrayOrList, segments: Any = None, **explain_kwargs: Any) -> Explanation:
        """Rank the regions of each image of X by the wrapped explainer's attributions.

        Parameters
        ----------
        X
            Images, ``(N, H, W, C)``: the one input of the model.
        segments
            Each image's own candidate regions, used instead of the constructor's: boolean
            masks ``(N, K, H, W)``, or a list of N arrays ``(K_i, H, W)``.
        **explain_kwargs
            The wrapped explainer's ``explain`` arguments (``target``, ``baselines``,
            ``forward_kwargs``, ...), passed on unchanged.

        Returns
        -------
        alibi.api.interfaces.Explanation
            ``data`` holds ``attributions``: one array ``(N, H, W)`` in the base attributions'
            dtype, each pixel the attribution density of its region (PAIR's map, one per image;
            the channels are merged, as PAIR does); ``regions``: ``(N, H, W)`` ints, each
            pixel's region rank, 1 the most salient (PAIR's ``segments`` with
            ``flatten_xrai_segments``); ``base_attributions``: the wrapped explainer's
            attributions ``(N, H, W, C)``; and, from the wrapped explanation unchanged,
            ``X``, ``forward_kwargs``, ``predictions``, ``target``, ``deltas`` (the
            completeness gap of the base attributions) and ``baselines`` or
            ``expected_value`` where it has them.

        Raises
        ------
        TypeError, ValueError
            X is not one batch of images, ``segments`` does not fit the images, or the wrapped
            explainer refuses its arguments (all before any TensorFlow work); the base
            attributions are not finite.
        """
        images, masks = self._check(X, segments, explain_kwargs)
        base = self.explainer.explain(X, **explain_kwargs)
        (attributions,) = base.attributions
        if not np.all(np.isfinite(attributions)):
            raise ValueError(
                "The wrapped explainer's attributions hold NaN or infinity: XRAI cannot rank "
                "regions by them."
            )
        ranked = [
            self._rank(image, attribution, masks[index] if masks is not None else None)
            for index, (image, attribution) in enumerate(zip(images, attributions, strict=True))
        ]
        data = {
            **base.data,
            "attributions": [np.stack([result.saliency for result in ranked])],
            "regions": np.stack([result.ranks for result in ranked]),
            "base_attributions": attributions,
        }
        return Explanation(meta=copy.deepcopy(self.meta), data=data)

    def validate(self, X: ArrayOrList, segments: Any = None, **explain_kwargs: Any) -> None:
        """Check :meth:`explain`'s arguments without explaining, and without running the model.

        Raises
        ------
        TypeError, ValueError
            An argument is invalid; the message names it and says what was received.
        """
        self._check(X, segments, explain_kwargs)

    def _check(
        self, X: ArrayOrList, segments: Any, explain_kwargs: dict[str, Any]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Every check of the wrapped explainer, then X as images: the images as the model
        takes them, and each image's masks from ``segments`` (None: the constructor's)."""
        inner = model_explainer(self.explainer)
        request, *_ = _as_tuple(inner._prepare(inner._bind(X, **explain_kwargs)))
        if registered(self.explainer).wraps is not None:
            self.explainer.validate(X, **explain_kwargs)  # a wrapper's own checks (stdevs)
        arrays = request.inputs.arrays
        if len(arrays) != 1 or arrays[0].ndim != 4:
            shapes = [array.shape for array in arrays]
            raise ValueError(
                "XRAI explains images: X must be one array (N, H, W, C) for a model with one "
                f"input. Received: {len(arrays)} input(s) of shape(s) {shapes}."
            )
        n_images, height, width = arrays[0].shape[:3]
        if segments is None:
            if isinstance(self.segments, np.ndarray):
                check_segments(self.segments, (height, width), "segments")
            return arrays[0], None
        if isinstance(segments, np.ndarray) and segments.ndim == 4:
            segments = list(segments)
        if not isinstance(segments, (list, tuple)) or len(segments) != n_images:
            raise ValueError(
                "`segments` in explain must give each image its masks: an array "
                f"(N={n_images}, K, {height}, {width}) or a list of {n_images} arrays "
                f"(K_i, {height}, {width}) of booleans. Received: "
                f"{_described(segments)}."
            )
        return arrays[0], [
            check_segments(masks, (height, width), f"segments[{index}]")
            for index, masks in enumerate(segments)
        ]

    def _rank(
        self, image: np.ndarray, attribution: np.ndarray, masks: np.ndarray | None
    ) -> RankedRegions:
        """One image's regions, ranked by its attribution merged over the channels (max)."""
        if masks is None:
            if self.segments is None:
                masks = felzenszwalb_masks(image)
            elif callable(self.segments):
                masks = check_segments(
                    self.segments(image), image.shape[:2], "the masks `segments` returned"
                )
            else:
                masks = self.segments
        return rank_regions(
            attribution.max(axis=-1), masks, self.min_pixel_diff, self.area_threshold
        )


def _as_tuple(prepared: Any) -> tuple[Any, ...]:
    """A wrapped explainer's ``_prepare`` result as a tuple whose first item is the request."""
    return prepared if isinstance(prepared, tuple) else (prepared,)


def _describe_segments(segments: Any) -> Any:
    """``segments`` in the metadata: plain values only."""
    if segments is None:
        return "felzenszwalb"
    if callable(segments):
        return describe_callable(segments)
    return f"{segments.shape[0]} masks of {segments.shape[1]} x {segments.shape[2]}"


def _described(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__
