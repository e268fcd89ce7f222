"""``ig_plugin.text.attribute_generation``: every generated token of a causal language model in
one teacher-forced pass, each row equal to a separate explain of that token's log-probability,
complete, and zero at and after its own position; a tied embedding called twice per pass."""

import threading

import numpy as np
import pytest
import tensorflow as tf
from compat import keras
from concurrency import run_together
from matplotlib.figure import Figure
from models import set_seeded_weights
from sequence_models import CausalLM, causal_lm, padding_mask, token_ids

from ig_plugin import IntegratedGradients
from ig_plugin.text import GenerationAttributions, GenerationExplainer, attribute_generation

VOCABULARY, LENGTH, PROMPT = 16, 8, 3
IDS = token_ids((4, LENGTH), VOCABULARY, seed=140)
MASK = padding_mask([8, 7, 8, 6], LENGTH)


@pytest.fixture(scope="module", params=[False, True], ids=["dense head", "tied embedding"])
def lm(request):
    return causal_lm(VOCABULARY, LENGTH, dim=8, tied=request.param, seed=141)


class LogProbs(keras.Model):
    """The language model's log-probabilities: what one row of the matrix explains."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def call(self, ids, padding_mask=None):
        return tf.nn.log_softmax(self.lm(ids, padding_mask=padding_mask), axis=-1)


def log_probs(lm, ids, **kwargs):
    """``(N, T, V)`` log-probabilities, computed outside ig_plugin."""
    return tf.nn.log_softmax(lm(ids, **kwargs), axis=-1).numpy()


def row_targets(ids, position):
    """Each sample's explained scalar for generated ``position``: (position - 1, its token)."""
    return np.stack([np.full(len(ids), position - 1), ids[:, position]], axis=1)


def assert_rows_equal_separate_calls(lm, generation, ids, n_steps, forward_kwargs=None):
    oracle = IntegratedGradients(LogProbs(lm), layer=lm.token_embedding, n_steps=n_steps)
    for row in range(LENGTH - PROMPT):
        alone = oracle.explain(
            ids,
            target=row_targets(ids, PROMPT + row),
            baselines=np.zeros_like(ids),
            forward_kwargs=forward_kwargs,
        )
        np.testing.assert_allclose(
            generation.explanation.attributions[0][:, row],
            alone.attributions[0],
            rtol=1e-5,
            atol=1e-6,
        )
        np.testing.assert_allclose(
            generation.matrix[:, row], alone.attributions[0].sum(axis=-1), rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(generation.deltas[:, row], alone.deltas, atol=1e-5)


def test_rows_equal_separate_calls(lm):
    generation = attribute_generation(lm, lm.token_embedding, IDS, PROMPT, n_steps=12)
    assert isinstance(generation, GenerationAttributions)
    assert generation.matrix.shape == (4, LENGTH - PROMPT, LENGTH)
    assert generation.deltas.shape == generation.log_probs.shape == (4, LENGTH - PROMPT)
    assert_rows_equal_separate_calls(lm, generation, IDS, n_steps=12)


def test_rows_equal_separate_calls_with_a_padding_mask(lm):
    kwargs = {"padding_mask": MASK}
    generation = attribute_generation(lm, lm.token_embedding, IDS, PROMPT, kwargs, n_steps=10)
    assert_rows_equal_separate_calls(lm, generation, IDS, n_steps=10, forward_kwargs=kwargs)


def test_each_row_is_complete_and_zero_from_its_own_position(lm):
    generation = attribute_generation(lm, lm.token_embedding, IDS, PROMPT, n_steps=256)
    positions = np.arange(PROMPT, LENGTH)
    rows = np.arange(4)[:, np.newaxis]
    real = log_probs(lm, IDS)[rows, positions - 1, IDS[:, positions]]
    baseline = log_probs(lm, np.zeros_like(IDS))[rows, positions - 1, IDS[:, positions]]
    np.testing.assert_allclose(generation.log_probs, real, rtol=1e-6)
    np.testing.assert_allclose(generation.matrix.sum(axis=2), real - baseline, atol=2e-4)
    np.testing.assert_allclose(
        generation.matrix.sum(axis=2) - generation.deltas, real - baseline, atol=1e-5
    )
    for row, position in enumerate(positions):
        # A causal model cannot see position t when it predicts token t: exactly zero.
        np.testing.assert_array_equal(generation.matrix[:, row, position:], 0.0)
        assert np.abs(generation.matrix[:, row, :position]).sum(axis=1).min() > 0


def test_another_baseline_token(lm):
    generation = attribute_generation(
        lm, lm.token_embedding, IDS, PROMPT, n_steps=256, baseline_id=5
    )
    positions = np.arange(PROMPT, LENGTH)
    rows = np.arange(4)[:, np.newaxis]
    start = log_probs(lm, np.full_like(IDS, 5))[rows, positions - 1, IDS[:, positions]]
    np.testing.assert_allclose(
        generation.matrix.sum(axis=2) - generation.deltas,
        generation.log_probs - start,
        atol=1e-5,
    )


def test_auto_steps(lm):
    generation = attribute_generation(lm, lm.token_embedding, IDS[:2], PROMPT, n_steps="auto")
    changes = generation.matrix.sum(axis=2) - generation.deltas
    assert (np.abs(generation.deltas) <= 1e-3 * np.abs(changes) + 1e-6).all()
    assert generation.explanation.data["n_steps"].shape == (2,)


class Masked(keras.layers.Layer):
    """Embeddings times the padding mask: padded positions contribute nothing."""

    def call(self, inputs):
        embeddings, mask = inputs
        return embeddings * tf.cast(mask, embeddings.dtype)[:, :, tf.newaxis]


def dict_input_lm(seed):
    """A functional causal model taking a dict, as KerasHub's do: token ids and a padding mask."""
    ids = keras.Input((LENGTH,), dtype="int32", name="token_ids")
    mask = keras.Input((LENGTH,), dtype="int32", name="padding_mask")
    h = keras.layers.Embedding(VOCABULARY, 6, name="token_embedding")(ids)
    h = Masked()([h, mask])
    h = keras.layers.Conv1D(6, 3, padding="causal", activation="tanh")(h)
    logits = keras.layers.Dense(VOCABULARY)(h)
    model = keras.Model({"token_ids": ids, "padding_mask": mask}, logits)
    return set_seeded_weights(model, seed)


def test_a_dict_of_inputs_keeps_the_samples_mask_in_the_baseline():
    model = dict_input_lm(seed=142)
    layer = model.get_layer("token_embedding")
    inputs = {"token_ids": IDS, "padding_mask": MASK}
    generation = attribute_generation(model, layer, inputs, PROMPT, n_steps=256)
    positions = np.arange(PROMPT, LENGTH)
    rows = np.arange(4)[:, np.newaxis]

    def scored(ids):
        outputs = model({"token_ids": ids, "padding_mask": MASK})
        return tf.nn.log_softmax(outputs, axis=-1).numpy()[rows, positions - 1, IDS[:, positions]]

    np.testing.assert_allclose(
        generation.matrix.sum(axis=2) - generation.deltas,
        scored(IDS) - scored(np.zeros_like(IDS)),
        atol=1e-5,
    )
    np.testing.assert_array_equal(generation.explanation.data["baselines"]["padding_mask"], MASK)
    for row, position in enumerate(positions):
        np.testing.assert_array_equal(generation.matrix[:, row, position:], 0.0)


class TracingCounter(CausalLM):
    """Counts the runs of its Python ``call``: in compiled passes, one per trace."""

    calls = 0

    def call(self, ids, padding_mask=None):
        type(self).calls += 1
        return super().call(ids, padding_mask)


def test_a_generation_explainer_compiles_once():
    model = TracingCounter(VOCABULARY, LENGTH, 8, tied=True)
    model(IDS[:1])
    set_seeded_weights(model, seed=145)
    explainer = GenerationExplainer(model, model.token_embedding, n_steps=6)
    first = explainer.explain(IDS, PROMPT)
    traced = TracingCounter.calls
    again = explainer.explain(IDS[::-1].copy(), PROMPT)
    assert TracingCounter.calls == traced, "the second explain traced the model again"
    alone = attribute_generation(model, model.token_embedding, IDS, PROMPT, n_steps=6)
    np.testing.assert_allclose(first.matrix, alone.matrix, rtol=1e-6)
    np.testing.assert_allclose(again.matrix, first.matrix[::-1], rtol=1e-5, atol=1e-6)


def test_threads_share_a_tied_model():
    """The tied embedding is hooked at its first call only in the tracing thread: threads
    explaining at once (with their own explainers, and sharing one) and a thread serving the
    model all get their own results."""
    model = causal_lm(VOCABULARY, LENGTH, dim=8, tied=True, seed=143)
    expected = attribute_generation(model, model.token_embedding, IDS, PROMPT, n_steps=8)
    served = np.asarray(model(IDS))
    shared = GenerationExplainer(model, model.token_embedding, n_steps=8)
    done, failures = threading.Event(), []

    def serve():
        while not done.is_set():
            if not np.allclose(np.asarray(model(IDS)), served, rtol=1e-5, atol=1e-6):
                failures.append("a plain call of the model changed")

    def explain(explainer=None):
        for _ in range(2):
            if explainer is None:
                result = attribute_generation(model, model.token_embedding, IDS, PROMPT, n_steps=8)
            else:
                result = explainer.explain(IDS, PROMPT)
            np.testing.assert_allclose(result.matrix, expected.matrix, rtol=1e-5, atol=1e-6)

    explaining = [lambda: explain(), lambda: explain(shared), lambda: explain(shared)]
    remaining, lock = [len(explaining)], threading.Lock()

    def until_the_last_ends(task):
        def run():
            try:
                task()
            finally:
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

        return run

    run_together([serve, *map(until_the_last_ends, explaining)])
    assert failures == []
    assert "call" not in vars(model.token_embedding)


# --- the picture ---------------------------------------------------------------------------------


class FakeTokenizer:
    """What a Hugging Face tokenizer offers for labels."""

    def convert_ids_to_tokens(self, ids):
        return [f"tok{i}" for i in ids]


@pytest.fixture(scope="module")
def generation():
    model = causal_lm(VOCABULARY, LENGTH, dim=8, seed=144)
    return attribute_generation(model, model.token_embedding, IDS, PROMPT, n_steps=4)


@pytest.mark.parametrize(
    "vocabulary, first",
    [
        (None, str(IDS[1, 0])),
        ([f"w{i}" for i in range(VOCABULARY)], f"w{IDS[1, 0]}"),
        ({f"w{i}": i for i in range(VOCABULARY)}, f"w{IDS[1, 0]}"),
        ({i: f"v{i}" for i in range(VOCABULARY)}, f"v{IDS[1, 0]}"),
        (FakeTokenizer(), f"tok{IDS[1, 0]}"),
    ],
    ids=["ids", "list", "token to id", "id to token", "tokenizer"],
)
def test_the_heatmap_is_labelled_with_tokens(generation, vocabulary, first):
    figure = generation.plot(index=1, vocabulary=vocabulary)
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    columns = [label.get_text() for label in axes.get_xticklabels()]
    rows = [label.get_text() for label in axes.get_yticklabels()]
    assert len(columns) == LENGTH and columns[0] == first
    assert rows == columns[PROMPT:]
    np.testing.assert_allclose(axes.images[0].get_array(), generation.matrix[1])


def test_bad_pictures(generation):
    with pytest.raises(ValueError, match="`index`"):
        generation.plot(index=4)
    with pytest.raises(ValueError, match="no token for id"):
        generation.plot(vocabulary=["a", "b"])
    with pytest.raises(TypeError, match="`vocabulary` must be"):
        generation.plot(vocabulary=3.5)


# --- errors before the model runs ----------------------------------------------------------------


class CountingLM(keras.Model):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.token_embedding = keras.layers.Embedding(VOCABULARY, 4)
        self.head = keras.layers.Dense(VOCABULARY)

    def call(self, ids):
        self.calls += 1
        return self.head(self.token_embedding(ids))


ERRORS = {
    "prompt_length 0": ({"prompt_length": 0}, ValueError, r"`prompt_length`.*position 0"),
    "prompt_length T": ({"prompt_length": LENGTH}, ValueError, r"`prompt_length`.*\[1, 8\)"),
    "prompt_length float": ({"prompt_length": 2.0}, TypeError, "`prompt_length` must be an int"),
    "float ids": ({"token_ids": IDS * 1.0}, ValueError, "`token_ids` must hold integer ids"),
    "1-D ids": ({"token_ids": IDS[0]}, ValueError, r"shape \(N, T\)"),
    "a dict without ids": (
        {"token_ids": {"ids": IDS}},
        ValueError,
        r"under one of the keys \['token_ids', 'input_ids'\]",
    ),
    "a string": ({"token_ids": "the cat"}, TypeError, "`token_ids` must be an integer array"),
    "negative baseline": ({"baseline_id": -1}, ValueError, "`baseline_id`"),
    "n_steps": ({"n_steps": 0}, ValueError, "`n_steps`"),
}


@pytest.mark.parametrize("changes, error, match", ERRORS.values(), ids=ERRORS.keys())
def test_bad_arguments_are_refused_before_the_model_runs(changes, error, match):
    model = CountingLM()
    model(IDS[:1])
    model.calls = 0
    arguments = {"token_ids": IDS, "prompt_length": PROMPT, **changes}
    with pytest.raises(error, match=match):
        attribute_generation(model, model.token_embedding, **arguments)
    assert model.calls == 0


def test_a_batch_size_chosen_by_memory_gives_the_same_matrix(lm):
    """internal_batch_size="auto" gives the matrix of a fixed size; memory_budget is checked."""
    fixed = attribute_generation(lm, lm.token_embedding, IDS, PROMPT, n_steps=10)
    auto = GenerationExplainer(
        lm, lm.token_embedding, n_steps=10, internal_batch_size="auto", memory_budget=2_000_000
    ).explain(IDS, PROMPT)
    np.testing.assert_allclose(auto.matrix, fixed.matrix, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(auto.deltas, fixed.deltas, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="`memory_budget` applies with internal_batch_size='auto'"):
        GenerationExplainer(lm, lm.token_embedding, memory_budget=2_000_000)
