"""The plotting functions: layout, honest colour scales, sign modes, HTML markup, bad arguments.

Figures are inspected through matplotlib's objects (axes, images, norms, bars), never by pixels.
"""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from alibi.api.interfaces import Explanation

from ig_plugin import IntegratedGradients
from ig_plugin import visualization as viz

pytestmark = pytest.mark.filterwarnings("error::matplotlib.MatplotlibDeprecationWarning")

GREEN = tuple(c / 255 for c in (26, 150, 65))
RED = tuple(c / 255 for c in (215, 48, 39))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def seeded(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def explanation(attributions, X=None, target=None):
    """A hand-made Explanation with ig_plugin's data keys; no model needed."""
    if not isinstance(attributions, list):
        attributions = [attributions]
    data = {"attributions": attributions, "X": X, "target": target, "deltas": None}
    return Explanation(meta={"name": "IntegratedGradients"}, data=data)


def heat_axes(fig):
    """The heatmap panels: the axes drawn with the attributions' centred norm."""
    return [ax for ax in fig.axes if ax.images and ax.images[0].norm.vmin < 0]


# --- images ---------------------------------------------------------------------------------------


def test_image_grid_has_an_image_and_a_heatmap_per_sample_and_a_colour_bar():
    fig = viz.plot_image_attributions(seeded((3, 8, 8, 1)), np.ones((3, 8, 8, 1)))
    assert len(fig.axes) == 3 * 2 + 1
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles == [
        "sample 0",
        "attribution",
        "sample 1",
        "attribution",
        "sample 2",
        "attribution",
    ]
    assert "attribution" in fig.axes[-1].get_ylabel()  # the colour bar is labelled


def test_grid_wraps_into_rows_without_empty_panels():
    fig = viz.plot_image_attributions(seeded((5, 4, 4)), np.ones((5, 4, 4)), ncols=2)
    assert len(fig.axes) == 5 * 2 + 1
    assert all(ax.images for ax in fig.axes[:-1])
    rows = {round(ax.get_position().y0, 3) for ax in fig.axes[:-1]}
    assert len(rows) == 3


def test_heatmaps_only_without_images():
    fig = viz.plot_image_attributions(seeded((2, 4, 4)), titles=["a", "b"])
    assert len(fig.axes) == 2 + 1
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]


@pytest.mark.parametrize("channels", [1, 3])
def test_one_image_without_its_batch_axis_is_refused(channels):
    """One (H, W, C) image was drawn as H grey images of W x C."""
    one = seeded((16, 16, channels))
    with pytest.raises(ValueError, match=r"looks like one image.*attributions\[np.newaxis\]"):
        viz.plot_image_attributions(one)
    with pytest.raises(ValueError, match=r"`images` of shape \(16, 16, 3\) looks like one image"):
        viz.plot_image_attributions(seeded((1, 16, 16, 3)), np.ones((16, 16, 3)))
    fig = viz.plot_image_attributions(one[np.newaxis], np.ones((1, 16, 16, channels)))
    assert len(fig.axes) == 2 + 1


def test_colour_scale_is_centred_and_shared():
    fig = viz.plot_image_attributions(seeded((4, 6, 6, 1)) + 0.7, np.ones((4, 6, 6, 1)))
    norms = [ax.images[0].norm for ax in heat_axes(fig)]
    assert len(norms) == 4
    for norm in norms:
        assert norm.vmin == -norm.vmax
        assert norm.vmax == norms[0].vmax


def test_channels_are_summed():
    attributions = seeded((1, 3, 3, 3))
    fig = viz.plot_image_attributions(attributions, np.ones((1, 3, 3, 3)), clip_percentile=100)
    shown = heat_axes(fig)[0].images[0].get_array()
    np.testing.assert_allclose(shown, attributions[0].sum(axis=-1))


def test_clip_percentile_bounds_the_scale():
    attributions = np.linspace(-1.0, 1.0, 2 * 5 * 5).reshape(2, 5, 5)
    attributions[1, 2, 2] = 50.0  # one outlier
    full = viz.plot_image_attributions(attributions, clip_percentile=100)
    clipped = viz.plot_image_attributions(attributions, clip_percentile=90)
    full_norm, clipped_norm = (heat_axes(f)[0].images[0].norm for f in (full, clipped))
    assert full_norm.vmax == pytest.approx(50.0)
    assert clipped_norm.vmax == pytest.approx(np.percentile(np.abs(attributions), 90))
    assert clipped_norm.vmax < 1.0
    assert clipped_norm.vmin == -clipped_norm.vmax
    # The colour bar admits the clipping, on the sides where it happened.
    positive = viz.plot_image_attributions(attributions, sign="positive", clip_percentile=90)
    extends = [heat_axes(f)[-1].images[0].colorbar.extend for f in (full, clipped, positive)]
    assert extends == ["neither", "both", "max"]


@pytest.mark.parametrize(
    ("sign", "expected"),
    [
        ("all", lambda a: a),
        ("positive", lambda a: np.maximum(a, 0)),
        ("negative", lambda a: np.minimum(a, 0)),
        ("absolute", np.abs),
    ],
)
def test_sign_modes_keep_one_sign(sign, expected):
    attributions = seeded((2, 4, 4), seed=1)
    fig = viz.plot_image_attributions(attributions, sign=sign, clip_percentile=100)
    for k, ax in enumerate(fig.axes[:2]):
        shown = np.asarray(ax.images[0].get_array())
        np.testing.assert_allclose(shown, expected(attributions[k]))
    if sign == "positive":
        assert (shown >= 0).all() and (shown > 0).any()
    if sign == "negative":
        assert (shown <= 0).all() and (shown < 0).any()
    norm = fig.axes[0].images[0].norm
    assert norm.vmin == -norm.vmax


def test_explanation_supplies_images_titles_and_input():
    images = np.random.default_rng(2).random((3, 4, 4, 1))
    tabular = seeded((3, 5))
    attributions = [seeded((3, 4, 4, 1)), tabular]
    expl = explanation(attributions, X=[images, tabular], target=np.array([7, 1, 4]))
    fig = viz.plot_image_attributions(expl, samples=[2, 0])
    assert [ax.get_title() for ax in fig.axes[:4]] == [
        "sample 2, target 4",
        "attribution",
        "sample 0, target 7",
        "attribution",
    ]
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), images[2, ..., 0])


def test_no_pyplot_figure_is_created():
    before = plt.get_fignums()
    viz.plot_image_attributions(seeded((2, 4, 4)))
    viz.plot_feature_attributions(seeded(3))
    assert plt.get_fignums() == before


IMAGE_ERRORS = {
    "unknown sign": ({"sign": "pos"}, ValueError, "`sign`"),
    "sign not a string": ({"sign": 1}, ValueError, "`sign`"),
    "percentile zero": ({"clip_percentile": 0}, ValueError, "`clip_percentile`"),
    "percentile above 100": ({"clip_percentile": 101}, ValueError, "`clip_percentile`"),
    "percentile a string": ({"clip_percentile": "99"}, TypeError, "`clip_percentile`"),
    "images of another size": ({"images": np.ones((2, 5, 5))}, ValueError, "`images`"),
    "images with 2 channels": ({"images": np.ones((2, 4, 4, 2))}, ValueError, "`images`"),
    "sample out of range": ({"samples": [2]}, ValueError, "`samples`"),
    "no samples": ({"samples": []}, ValueError, "`samples`"),
    "samples an int": ({"samples": 1}, TypeError, "`samples`"),
    "titles of the wrong length": ({"titles": ["a"]}, ValueError, "`titles`"),
    "titles a string": ({"titles": "ab"}, TypeError, "`titles`"),
    "ncols zero": ({"ncols": 0}, ValueError, "`ncols`"),
    "panel_size zero": ({"panel_size": 0}, ValueError, "`panel_size`"),
}


@pytest.mark.parametrize("case", IMAGE_ERRORS.values(), ids=IMAGE_ERRORS.keys())
def test_image_bad_arguments_raise(case):
    kwargs, error, name = case
    with pytest.raises(error, match=re.escape(name)):
        viz.plot_image_attributions(seeded((2, 4, 4)), **kwargs)


@pytest.mark.parametrize(
    ("attributions", "error", "name"),
    [
        (np.ones((2, 4)), ValueError, "`attributions`"),
        (np.full((1, 2, 2), np.nan), ValueError, "`attributions`"),
        ("image", TypeError, "`attributions`"),
        (explanation([np.ones((1, 2, 2))]), None, None),
    ],
)
def test_image_bad_attributions_raise(attributions, error, name):
    if error is None:  # the control: a valid Explanation, then a bad input_index
        viz.plot_image_attributions(attributions)
        with pytest.raises(ValueError, match="`input_index`"):
            viz.plot_image_attributions(attributions, input_index=1)
        return
    with pytest.raises(error, match=re.escape(name)):
        viz.plot_image_attributions(attributions)


def test_layer_attributions_that_do_not_match_x_say_so():
    # e.g. attributions at a conv layer: (N, 4, 4, 8) while X holds (N, 8, 8, 1) images
    expl = explanation(seeded((2, 4, 4, 8)), X=np.ones((2, 8, 8, 1)))
    with pytest.raises(ValueError, match="Explanation's X"):
        viz.plot_image_attributions(expl)
    fig = viz.plot_image_attributions(expl.attributions[0])  # heatmaps only
    assert len(fig.axes) == 2 + 1


# --- text -----------------------------------------------------------------------------------------

SPAN = re.compile(
    r'<span class="ig-token (ig-\w+)"[^>]*data-attribution="([^"]+)"[^>]*'
    r"background-color: ([^;]+);[^>]*>(.*?)</span>"
)


def spans(page):
    """(class, score, background, text) of each token span."""
    return [(kind, float(score), bg, text) for kind, score, bg, text in SPAN.findall(page)]


def rgba(background):
    return tuple(float(v) for v in re.findall(r"[\d.]+", background))


def test_every_token_gets_a_span_and_is_escaped():
    tokens = ["<script>", "a & b", "film", '"quoted"']
    page = viz.text_attributions_html(tokens, [0.5, -0.2, 0.0, 0.1])
    found = spans(page)
    assert [text for *_, text in found] == [
        "&lt;script&gt;",
        "a &amp; b",
        "film",
        "&quot;quoted&quot;",
    ]
    assert "<script>" not in page


def test_positive_tokens_are_green_negative_red_by_magnitude():
    page = viz.text_attributions_html(["good", "fine", "bad", "the"], [0.9, 0.3, -0.6, 0.0])
    (k1, _, good, _), (k2, _, fine, _), (k3, _, bad, _), (k4, _, zero, _) = spans(page)
    assert (k1, k2, k3, k4) == ("ig-positive", "ig-positive", "ig-negative", "ig-zero")
    assert rgba(good)[:3] == rgba(fine)[:3] == (26, 150, 65)
    assert rgba(bad)[:3] == (215, 48, 39)
    assert rgba(good)[3] > rgba(bad)[3] > rgba(fine)[3] > 0
    assert zero == "transparent"


def test_scale_is_shared_and_saturates():
    page = viz.text_attributions_html(["a", "b"], [0.25, 3.0], scale=0.5)
    (_, _, half, _), (_, _, full, _) = spans(page)
    assert rgba(half)[3] == pytest.approx(rgba(full)[3] / 2, abs=1e-3)
    assert "0.5" in page.split("ig-legend")[1]


def test_legend_explains_both_colours():
    page = viz.text_attributions_html(["a"], [1.0])
    legend = page.split('class="ig-legend"')[1]
    assert "rgba(215, 48, 39" in legend and "rgba(26, 150, 65" in legend
    assert "lowers" in legend and "raises" in legend
    assert "ig-legend" not in viz.text_attributions_html(["a"], [1.0], legend=False)


def test_embedding_attributions_are_summed_per_token_from_an_explanation():
    layer = seeded((3, 4, 5))  # (N, L, D): attributions at an embedding layer
    expl = explanation(layer, X=np.zeros((3, 4), dtype=int), target=np.array([1, 0, 1]))
    page = viz.text_attributions_html(list("wxyz"), expl, sample=1)
    scores = [score for _, score, _, _ in spans(page)]
    np.testing.assert_allclose(scores, layer[1].sum(axis=1), rtol=1e-5)
    assert "sample 1, target 0" in page


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"tokens": "abc"}, TypeError, "`tokens`"),
        ({"tokens": ["a", "b"]}, ValueError, "`tokens`"),
        ({"scale": 0.0}, ValueError, "`scale`"),
        ({"scale": -1}, ValueError, "`scale`"),
        ({"attributions": 3.0}, ValueError, "`attributions`"),
        ({"attributions": explanation(np.ones((2, 3))), "sample": 2}, ValueError, "`sample`"),
    ],
)
def test_text_bad_arguments_raise(kwargs, error, name):
    arguments = {"tokens": ["a", "b", "c"], "attributions": [1.0, 0.0, -1.0], **kwargs}
    with pytest.raises(error, match=re.escape(name)):
        viz.text_attributions_html(**arguments)


# --- tabular features -----------------------------------------------------------------------------


def bars(fig):
    ax = fig.axes[0]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    return labels, [patch.get_width() for patch in ax.patches], ax


def test_bars_are_sorted_by_magnitude_and_coloured_by_sign():
    values = np.array([0.1, -0.8, 0.5, -0.05, 0.3])
    fig = viz.plot_feature_attributions(values, ["a", "b", "c", "d", "e"])
    labels, widths, ax = bars(fig)
    # ticks are listed bottom-up in data order, and the y axis is inverted: top first
    assert ax.yaxis_inverted()
    assert labels == ["b", "c", "e", "a", "d"]
    assert widths == pytest.approx([-0.8, 0.5, 0.3, 0.1, -0.05])
    for patch, width in zip(ax.patches, widths, strict=True):
        assert patch.get_facecolor()[:3] == pytest.approx(GREEN if width > 0 else RED)


@pytest.mark.parametrize(("top_k", "count"), [(2, 2), (5, 5), (50, 5), (None, 5)])
def test_top_k_is_honoured(top_k, count):
    values = np.array([0.1, -0.8, 0.5, -0.05, 0.3])
    labels, widths, ax = bars(viz.plot_feature_attributions(values, top_k=top_k))
    assert len(widths) == count
    assert labels == ["feature 1", "feature 2", "feature 4", "feature 0", "feature 3"][:count]
    if count < 5:
        assert f"top {count} of 5" in ax.get_ylabel()


def test_real_explanation_is_plotted_per_sample(linear, linear_data):
    expl = IntegratedGradients(linear, n_steps=4).explain(linear_data, target=1)
    fig = viz.plot_feature_attributions(expl, ["x0", "x1", "x2"], sample=2)
    labels, widths, ax = bars(fig)
    attributions = expl.attributions[0][2]
    order = np.argsort(-np.abs(attributions))
    assert labels == [f"x{j}" for j in order]
    np.testing.assert_allclose(widths, attributions[order], rtol=1e-6)
    assert ax.get_title() == "sample 2, target 1"


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"attributions": np.ones((2, 3))}, ValueError, "`attributions`"),
        ({"feature_names": ["a", "b"]}, ValueError, "`feature_names`"),
        ({"feature_names": "abc"}, TypeError, "`feature_names`"),
        ({"top_k": 0}, ValueError, "`top_k`"),
        ({"top_k": 1.5}, TypeError, "`top_k`"),
        ({"attributions": explanation(np.ones((2, 3))), "sample": -1}, ValueError, "`sample`"),
        ({"attributions": explanation(np.ones((2, 3))), "sample": 1.0}, TypeError, "`sample`"),
    ],
)
def test_feature_bad_arguments_raise(kwargs, error, name):
    arguments = {"attributions": [0.2, -0.1, 0.4], **kwargs}
    with pytest.raises(error, match=re.escape(name)):
        viz.plot_feature_attributions(**arguments)
