"""XRAI: what the map is (densities that keep the attribution's total, ranks), area_threshold,
batch invariance, every segments form, the wrapped explanation passed through, saving and loading
(also through alibi.saving), threads, bad inputs refused before any TensorFlow work. Agreement
with PAIR saliency's XRAI is in tests/parity/test_pair_xrai.py.
"""

import alibi.saving
import numpy as np
import pytest
from concurrency import run_together
from pickles import globals_in_pickle
from xrai_cases import SHAPE, cnn, random_masks, smooth_images

from ig_plugin import XRAI, IntegratedGradients, NoiseTunnel


@pytest.fixture(scope="module")
def model():
    return cnn()


@pytest.fixture(scope="module")
def ig(model):
    return IntegratedGradients(model, n_steps=16)


@pytest.fixture(scope="module")
def images():
    return smooth_images(3, seed=1)


# -- what the map is -------------------------------------------------------------------------


def test_the_map_keeps_the_attribution_total_and_densities(ig, images):
    masks = random_masks(25, SHAPE[:2], 0)
    for area_threshold in (1.0, 0.5, 0.0):
        explanation = XRAI(ig, masks, min_pixel_diff=1, area_threshold=area_threshold).explain(
            images, target=1
        )
        merged = explanation.data["base_attributions"].max(axis=-1)
        saliency, regions = explanation.attributions[0], explanation.data["regions"]
        np.testing.assert_allclose(
            saliency.sum(axis=(1, 2)), merged.sum(axis=(1, 2)), rtol=1e-5, atol=1e-6
        )
        for image in range(len(images)):
            values = [
                saliency[image][regions[image] == rank]
                for rank in range(1, regions[image].max() + 1)
            ]
            densities = [value[0] for value in values]
            assert all(np.all(value == value[0]) for value in values)  # one value per region
            np.testing.assert_allclose(
                densities,
                [
                    merged[image][regions[image] == rank].mean()
                    for rank in range(1, len(values) + 1)
                ],
                rtol=1e-5,
            )
            if area_threshold == 1.0:  # densities fall with the rank, but for the pixels no
                # mask covers (always last)
                assert np.all(np.diff(densities[:-1]) <= 0)


def test_area_threshold_stops_early_and_keeps_the_first_regions(ig, images):
    masks = random_masks(25, SHAPE[:2], 1)
    full = XRAI(ig, masks, min_pixel_diff=1).explain(images, target=1)
    first = XRAI(ig, masks, min_pixel_diff=1, area_threshold=0.0).explain(images, target=1)
    for image in range(len(images)):
        # One region, then the rest of the image as the last one.
        assert first.data["regions"][image].max() == 2
        top = full.data["regions"][image] == 1
        np.testing.assert_array_equal(first.data["regions"][image] == 1, top)
        assert full.data["regions"][image].max() > 2


def test_batches_give_the_images_alone(ig, images):
    masks = np.stack([random_masks(25, SHAPE[:2], seed) for seed in range(len(images))])
    together = XRAI(ig, min_pixel_diff=2).explain(images, segments=masks, target=[0, 1, 2])
    for index in range(len(images)):
        alone = XRAI(ig, min_pixel_diff=2).explain(
            images[index : index + 1], segments=masks[index : index + 1], target=[index]
        )
        np.testing.assert_allclose(
            alone.attributions[0][0], together.attributions[0][index], rtol=1e-6, atol=1e-7
        )
        np.testing.assert_array_equal(alone.data["regions"][0], together.data["regions"][index])


def test_every_segments_form_gives_the_same(ig, images):
    masks = random_masks(20, SHAPE[:2], 5)
    expected = XRAI(ig, masks, min_pixel_diff=2).explain(images, target=1)
    by_callable = XRAI(ig, lambda image: masks, min_pixel_diff=2).explain(images, target=1)
    by_list = XRAI(ig, min_pixel_diff=2).explain(images, segments=[masks] * 3, target=1)
    for explanation in (by_callable, by_list):
        np.testing.assert_array_equal(explanation.attributions[0], expected.attributions[0])
        np.testing.assert_array_equal(explanation.data["regions"], expected.data["regions"])


def test_the_base_explanation_is_passed_through(ig, images):
    base = ig.explain(images, target=[2, 0, 1], baselines=0.5)
    explanation = XRAI(ig, random_masks(10, SHAPE[:2], 0)).explain(
        images, target=[2, 0, 1], baselines=0.5
    )
    for key in ("deltas", "predictions", "target", "baselines"):
        np.testing.assert_array_equal(explanation.data[key], base.data[key])
    np.testing.assert_array_equal(explanation.data["base_attributions"], base.attributions[0])
    assert explanation.meta["name"] == "XRAI"
    assert explanation.meta["params"]["explainer"]["name"] == "IntegratedGradients"


# -- saving, threads -------------------------------------------------------------------------


def offset_masks(image):
    """A segments callable defined at module level (dill pickles it by reference)."""
    masks = np.zeros((2, *image.shape[:2]), dtype=bool)
    masks[0, : image.shape[0] // 2], masks[1, image.shape[0] // 2 :] = True, True
    return masks


@pytest.mark.parametrize("segments", ["felzenszwalb", "array", "callable"])
def test_save_and_load_also_through_alibi(ig, images, segments, tmp_path):
    if segments == "felzenszwalb":
        pytest.importorskip("skimage")
    chosen = {
        "felzenszwalb": None,
        "array": random_masks(12, SHAPE[:2], 2),
        "callable": offset_masks,
    }[segments]
    xrai = XRAI(NoiseTunnel(ig, stdevs=0.1, nt_samples=2, seed=4), chosen, 5, 0.8)
    original = xrai.explain(images[:2], target=1)
    xrai.save(tmp_path)
    for loaded in (
        XRAI.load(tmp_path, cnn()),
        alibi.saving.load_explainer(tmp_path, predictor=cnn()),
    ):
        assert isinstance(loaded, XRAI)
        assert loaded.meta == xrai.meta
        again = loaded.explain(images[:2], target=1)
        np.testing.assert_allclose(again.attributions[0], original.attributions[0], rtol=1e-6)
        np.testing.assert_array_equal(again.data["regions"], original.data["regions"])
    modules = globals_in_pickle(tmp_path / "explainer.dill")
    assert not any(m.split(".")[0] in ("tensorflow", "keras", "tf_keras") for m in modules)
    alibi.saving.save_explainer(xrai, tmp_path / "alibis")
    again = XRAI.load(tmp_path / "alibis", cnn()).explain(images[:2], target=1)
    np.testing.assert_allclose(again.attributions[0], original.attributions[0], rtol=1e-6)


def test_threads_share_one_xrai(ig, images):
    xrai = XRAI(ig, random_masks(20, SHAPE[:2], 6), min_pixel_diff=2)
    expected = [xrai.explain(images, target=target) for target in range(3)]
    results = {}

    def task(target):
        def run():
            results[target] = xrai.explain(images, target=target)

        return run

    run_together([task(target) for target in range(3)] * 2)
    for target in range(3):
        np.testing.assert_array_equal(
            results[target].attributions[0], expected[target].attributions[0]
        )
        np.testing.assert_array_equal(
            results[target].data["regions"], expected[target].data["regions"]
        )


# -- bad inputs ------------------------------------------------------------------------------


def test_bad_constructor_arguments(counting, ig):
    tabular = IntegratedGradients(counting)
    with pytest.raises(TypeError, match="`explainer` must be an ig_plugin explainer"):
        XRAI(lambda x: x)
    with pytest.raises(TypeError, match="cannot wrap another XRAI"):
        XRAI(XRAI(tabular))
    with pytest.raises(ValueError, match="not to a layer"):
        XRAI(IntegratedGradients(counting, layer=counting.dense))
    with pytest.raises(ValueError, match="min_pixel_diff"):
        XRAI(tabular, min_pixel_diff=0)
    with pytest.raises(TypeError, match="min_pixel_diff"):
        XRAI(tabular, min_pixel_diff=2.5)
    with pytest.raises(ValueError, match="area_threshold"):
        XRAI(tabular, area_threshold=1.5)
    with pytest.raises(TypeError, match="`segments` must be"):
        XRAI(tabular, segments=np.ones((4, 4), dtype=bool))
    with pytest.raises(TypeError, match="booleans"):
        XRAI(tabular, segments=np.ones((2, 4, 4), dtype=int))
    with pytest.raises(ValueError, match=r"shape \(K, 4, 4\)"):
        XRAI(tabular, segments=np.ones((0, 4, 4), dtype=bool))
    assert counting.calls == 0


def test_non_images_are_refused_before_any_tensorflow_work(counting):
    with pytest.raises(ValueError, match=r"X must be one array \(N, H, W, C\)"):
        XRAI(IntegratedGradients(counting)).explain(np.ones((2, 3), dtype="float32"))
    assert counting.calls == 0


def test_bad_segments_are_refused_before_any_tensorflow_work(images):
    # A fresh explainer: it builds its compiled passes on its first TensorFlow work.
    base = IntegratedGradients(cnn())
    xrai = XRAI(base, min_pixel_diff=1)
    masks = random_masks(5, SHAPE[:2], 0)
    cases = [
        (np.stack([masks] * 2), ValueError, r"\(N=3, K, 16, 16\)"),  # one image short
        ([masks, masks, masks[:, :8]], ValueError, r"segments\[2\].*shape \(K, 16, 16\)"),
        ([masks, masks, masks.astype("uint8")], TypeError, r"segments\[2\].*booleans"),
        ("grid", ValueError, "each image its masks"),
    ]
    for segments, error, message in cases:
        with pytest.raises(error, match=message):
            xrai.explain(images, segments=segments, target=0)
        with pytest.raises(error, match=message):
            xrai.validate(images, segments=segments, target=0)
    fixed = XRAI(base, segments=np.ones((2, 8, 8), dtype=bool))
    with pytest.raises(ValueError, match=r"shape \(K, 16, 16\)"):
        fixed.explain(images, target=0)
    assert "_compiled" not in vars(base)


def test_a_callable_returning_bad_masks_is_named(ig, images):
    with pytest.raises(ValueError, match="the masks `segments` returned"):
        XRAI(ig, lambda image: np.ones((2, 3, 3), dtype=bool)).explain(images, target=0)


def test_the_wrapped_explainers_checks_come_first(counting):
    with pytest.raises(ValueError, match="target"):
        XRAI(IntegratedGradients(counting)).explain(
            np.ones((1, 2, 2, 3), dtype="float32"), target=[0, 1]
        )
    assert counting.calls == 0
