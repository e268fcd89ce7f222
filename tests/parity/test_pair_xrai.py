"""Agreement with PAIR saliency 0.2.1's XRAI: the same region-ranked map and ranks, bit for bit,
on the same images and base attributions, with given segments and with Felzenszwalb's (also the
masks themselves), at several area thresholds and min_pixel_diff.

PAIR's map is float64 holding float32 means; ours is in the attributions' dtype, so PAIR's is
compared after a cast to float32, which is exact (checked too). Runs where saliency and
scikit-image are installed (the ``pair`` and ``xrai`` extras); skipped elsewhere.
"""

import numpy as np
import pytest
from xrai_cases import SHAPE, cnn, random_masks, smooth_images

from ig_plugin import (
    XRAI,
    BlurIntegratedGradients,
    ExpectedGradients,
    GuidedIntegratedGradients,
    IntegratedGradients,
    NoiseTunnel,
)
from ig_plugin._regions.ranking import rank_regions
from ig_plugin._regions.segments import felzenszwalb_masks

pytest.importorskip("skimage")
pair = pytest.importorskip("saliency.core.xrai")


@pytest.fixture(scope="module")
def model():
    return cnn()


@pytest.fixture(scope="module")
def ig(model):
    return IntegratedGradients(model, n_steps=16)


@pytest.fixture(scope="module")
def images():
    return smooth_images(3, seed=1)


def pair_xrai(image, attribution, masks=None, min_pixel_diff=50, area_threshold=1.0):
    """PAIR's XRAI on one image with a given base attribution: its map and its ranks."""
    parameters = pair.XRAIParameters(area_threshold=area_threshold, return_xrai_segments=True)
    parameters.experimental_params["min_pixel_diff"] = min_pixel_diff
    output = pair.XRAI().GetMaskWithDetails(
        image,
        call_model_function=None,  # never called: the base attribution is given
        segments=None if masks is None else list(masks),
        base_attribution=attribution,
        extra_parameters=parameters,
    )
    return output.attribution_mask, output.segments


def assert_same_as_pair(explanation, images, masks=None, **settings):
    for index, image in enumerate(images):
        attribution = explanation.data["base_attributions"][index]
        theirs, ranks = pair_xrai(
            image, attribution, None if masks is None else masks[index], **settings
        )
        assert theirs.dtype == np.float64
        np.testing.assert_array_equal(theirs.astype(np.float32), theirs)  # the cast is exact
        np.testing.assert_array_equal(explanation.attributions[0][index], theirs)
        np.testing.assert_array_equal(explanation.data["regions"][index], ranks)


# -- agreement with PAIR ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("area_threshold", [1.0, 0.4, 0.0])
@pytest.mark.parametrize("min_pixel_diff", [1, 10])
def test_ranking_equals_pairs_on_random_masks(seed, area_threshold, min_pixel_diff):
    rng = np.random.default_rng(seed)
    attribution = rng.normal(size=(20, 20)).astype("float32")
    attribution[:6] = 0.0  # exact ties between masks in the zero band
    masks = random_masks(30, (20, 20), seed)
    theirs, ranks = pair.XRAI._xrai(
        attribution, list(masks), area_perc_th=area_threshold, min_pixel_diff=min_pixel_diff
    )
    ours = rank_regions(attribution, masks, min_pixel_diff, area_threshold)
    np.testing.assert_array_equal(ours.saliency, theirs)
    np.testing.assert_array_equal(ours.ranks, ranks)


@pytest.mark.parametrize("shape", [(8, 8, 1), (16, 16, 3), (40, 30, 3)])
def test_felzenszwalb_masks_are_pairs(shape):
    image = smooth_images(1, seed=4, shape=shape)[0]
    theirs = [mask for mask in pair._get_segments_felzenszwalb(image) if mask.any()]
    np.testing.assert_array_equal(felzenszwalb_masks(image), np.array(theirs))


def test_equals_pair_with_felzenszwalb_segments(ig, images):
    explanation = XRAI(ig).explain(images, target=1)
    assert_same_as_pair(explanation, images)
    assert explanation.attributions[0].shape == images.shape[:3]
    assert explanation.attributions[0].dtype == np.float32


@pytest.mark.parametrize("area_threshold", [1.0, 0.3])
def test_equals_pair_with_given_segments(ig, images, area_threshold):
    masks = np.stack([random_masks(25, SHAPE[:2], seed) for seed in range(len(images))])
    xrai = XRAI(ig, min_pixel_diff=3, area_threshold=area_threshold)
    explanation = xrai.explain(images, segments=masks, target=2)
    assert_same_as_pair(explanation, images, masks, min_pixel_diff=3, area_threshold=area_threshold)


def test_equals_pair_over_other_explainers(model, images):
    background = smooth_images(4, seed=9)
    masks = random_masks(20, SHAPE[:2], 3)
    for base in (
        ExpectedGradients(model, background, n_samples=8, seed=1),
        NoiseTunnel(IntegratedGradients(model, n_steps=8), nt_samples=2, stdevs=0.1, seed=2),
        GuidedIntegratedGradients(model, n_steps=8),
        BlurIntegratedGradients(model, max_sigma=3.0, n_steps=8, idgi=True),
    ):
        explanation = XRAI(base, segments=masks, min_pixel_diff=2).explain(images, target=0)
        assert_same_as_pair(explanation, images, [masks] * len(images), min_pixel_diff=2)
