"""Layer attributions: parity with alibi, completeness around and beside the layer, embeddings,
nested and subclassed layers, reset_predictor, and a model that is never left changed."""

import alibi.explainers
import numpy as np
import pytest
import tensorflow as tf
from alibi.explainers.integrated_gradients import LayerState as AlibiLayerState
from compat import keras
from sequence_models import causal_lm, token_ids

from ig_plugin import IntegratedGradients, LayerState
from ig_plugin._engine import spans as _spans

RNG_SEED = 0


def _seed_weights(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([0.7 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def _floats(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def functional_chain(seed=0):
    """6 -> Dense 5 tanh -> Dense 4 tanh -> Dense 3 softmax; no branch bypasses a layer."""
    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="tanh")(inputs)
    h = keras.layers.Dense(4, activation="tanh")(h)
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    return _seed_weights(keras.Model(inputs, outputs), seed)


def sequential_chain(seed=0):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    return _seed_weights(model, seed)


def skip_model(seed=0):
    """The tanh layer is bypassed by a skip connection from the input to the head."""
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(3, activation="tanh", name="bypassed")(inputs)
    joined = keras.layers.Concatenate()([hidden, inputs])
    outputs = keras.layers.Dense(1, activation="tanh")(keras.layers.Dense(4, "tanh")(joined))
    return _seed_weights(keras.Model(inputs, outputs), seed)


def two_input_model(seed=0):
    """Only input ``a`` goes through the ``through_a`` layer."""
    a, b = keras.Input((3,)), keras.Input((2,))
    through_a = keras.layers.Dense(4, activation="tanh", name="through_a")(a)
    joined = keras.layers.Concatenate()([through_a, b])
    outputs = keras.layers.Dense(2, activation="softmax")(joined)
    return _seed_weights(keras.Model([a, b], outputs), seed)


def text_model(seed=0, vocab=30, length=7, dim=4):
    """Token ids -> Embedding -> masked mean -> Dense softmax; the mask is a forward kwarg."""

    class MaskedText(keras.Model):
        def __init__(self):
            super().__init__()
            self.embedding = keras.layers.Embedding(vocab, dim)
            self.head = keras.layers.Dense(2, activation="softmax")

        def call(self, ids, attention_mask=None):
            vectors = self.embedding(ids)
            if attention_mask is not None:
                mask = tf.cast(attention_mask, vectors.dtype)[..., None]
                vectors = vectors * mask
            return self.head(tf.tanh(tf.reduce_sum(vectors, axis=1)))

    model = MaskedText()
    model(np.zeros((1, length), dtype="int32"))
    return _seed_weights(model, seed)


def nested_model(seed=0):
    """A Functional model with a sub-model inside; its middle layer is nested."""
    inner_in = keras.Input((4,))
    inner = keras.Model(
        inner_in,
        keras.layers.Dense(3, activation="tanh", name="inner_dense")(inner_in),
        name="block",
    )
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="softmax")(
        inner(keras.layers.Dense(4, "tanh")(inputs))
    )
    return _seed_weights(keras.Model(inputs, outputs), seed)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(5, activation="tanh")
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed_model(seed=0):
    model = Subclassed()
    model(np.zeros((1, 6), dtype="float32"))
    return _seed_weights(model, seed)


def completeness_gap(explanation):
    """Largest |delta| relative to the largest |attribution sum|."""
    total = sum(a.reshape(len(a), -1).sum(axis=1) for a in explanation.attributions)
    return np.abs(explanation.deltas).max() / max(np.abs(total).max(), 1e-6)


# --- parity with alibi where no branch bypasses the layer --------------------------------------


@pytest.mark.parametrize("builder", [functional_chain, sequential_chain])
@pytest.mark.parametrize("to_inputs", [False, True])
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle"])
def test_layer_attributions_match_alibi(builder, to_inputs, method):
    model = builder()
    X = _floats((9, 6), seed=1)
    target = np.arange(9) % 3
    layer_index = 2 if builder is functional_chain else 1  # the second Dense in both
    ours = IntegratedGradients(
        model, layer=model.layers[layer_index], method=method, n_steps=20, internal_batch_size=13
    ).explain(X, target=target, attribute_to_layer_inputs=to_inputs)
    theirs = alibi.explainers.IntegratedGradients(
        model, layer=model.layers[layer_index], method=method, n_steps=20, internal_batch_size=13
    ).explain(X, target=target, attribute_to_layer_inputs=to_inputs)
    expected_width = 5 if to_inputs else 4
    assert ours.attributions[0].shape == (9, expected_width)
    np.testing.assert_allclose(ours.attributions[0], theirs.attributions[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.deltas, theirs.deltas, atol=1e-5)
    assert ours.meta["params"]["layer"] == layer_index


@pytest.mark.parametrize("to_inputs", [False, True])
def test_layer_attributions_in_spans_of_one_sample(monkeypatch, to_inputs):
    # Each compiled call gets one sample's layer values and its rows of the real inputs.
    model = functional_chain()
    X = _floats((5, 6), seed=2)
    target = np.arange(5) % 3
    explainer = IntegratedGradients(model, layer=model.layers[2], n_steps=9, internal_batch_size=4)
    reference = explainer.explain(X, target=target, attribute_to_layer_inputs=to_inputs)
    monkeypatch.setattr(_spans, "SPAN_BYTES", 1)
    spanned = explainer.explain(X, target=target, attribute_to_layer_inputs=to_inputs)
    np.testing.assert_allclose(
        spanned.attributions[0], reference.attributions[0], rtol=1e-6, atol=1e-8
    )


# --- completeness when branches bypass the layer ------------------------------------------------


@pytest.mark.parametrize("to_inputs", [False, True])
def test_completeness_with_a_skip_connection_around_the_layer(to_inputs):
    model = skip_model()
    X = _floats((6, 3), seed=2)
    explanation = IntegratedGradients(model, layer=model.get_layer("bypassed")).explain(
        X, baselines=0.3, attribute_to_layer_inputs=to_inputs
    )
    # The gap is measured against F with the layer at its start and the skip branch at x.
    assert completeness_gap(explanation) < 1e-4
    # Deltas are not the plain F(x) - F(baseline) gap: the skip branch keeps x.
    plain = IntegratedGradients(model).explain(X, baselines=0.3)
    total_layer = explanation.attributions[0].sum(axis=1)
    total_plain = plain.attributions[0].sum(axis=1)
    assert not np.allclose(total_layer, total_plain, atol=1e-3)


def test_completeness_when_only_one_input_goes_through_the_layer():
    model = two_input_model()
    X = [_floats((5, 3), seed=3), _floats((5, 2), seed=4)]
    explanation = IntegratedGradients(model, layer=model.get_layer("through_a")).explain(
        X, target=1
    )
    assert len(explanation.attributions) == 1
    assert explanation.attributions[0].shape == (5, 4)
    assert completeness_gap(explanation) < 1e-4


# --- embeddings, forward kwargs, nested and subclassed layers ----------------------------------


def test_embedding_token_attributions_add_up_to_the_output_difference():
    model = text_model()
    ids = np.random.default_rng(5).integers(1, 30, size=(4, 7)).astype("int32")
    mask = np.ones((4, 7), dtype="int32")
    mask[:, 5:] = 0
    explainer = IntegratedGradients(model, layer=lambda m: m.embedding, n_steps=64)
    explanation = explainer.explain(ids, forward_kwargs={"attention_mask": mask}, target=1)
    per_token = explanation.attributions[0].sum(axis=2)  # (N, T)
    assert per_token.shape == (4, 7)
    # F(x) - F(x') computed here, independently of the explainer: x' is all token 0.
    baseline_ids = np.zeros_like(ids)
    f_x = model(ids, attention_mask=mask).numpy()[:, 1]
    f_baseline = model(baseline_ids, attention_mask=mask).numpy()[:, 1]
    np.testing.assert_allclose(per_token.sum(axis=1), f_x - f_baseline, atol=1e-5)
    # Masked tokens do not reach the output: exactly zero attribution.
    assert np.all(per_token[:, 5:] == 0)
    assert explanation.meta["params"]["layer"] == LayerState.CALLABLE


def test_integer_layer_inputs_are_refused_with_a_clear_error():
    model = text_model()
    ids = np.ones((2, 7), dtype="int32")
    explainer = IntegratedGradients(model, layer=model.embedding)
    with pytest.raises(TypeError, match=r"inputs of `layer`.*int"):
        explainer.explain(ids, target=0, attribute_to_layer_inputs=True)


def test_integer_baselines_must_be_whole_numbers():
    """A float baseline for token ids was silently truncated (2.7 became token 2)."""
    model = text_model()
    ids = np.random.default_rng(6).integers(1, 30, size=(3, 7)).astype("int32")
    explainer = IntegratedGradients(model, layer=lambda m: m.embedding, n_steps=8)
    with pytest.raises(ValueError, match=r"`baselines` must hold whole numbers.*2\.7"):
        explainer.explain(ids, target=1, baselines=2.7)
    with pytest.raises(ValueError, match=r"`baselines` must hold whole numbers"):
        explainer.explain(ids, target=1, baselines=np.full((1, 7), 0.5))
    whole = explainer.explain(ids, target=1, baselines=2.0)
    as_int = explainer.explain(ids, target=1, baselines=2)
    np.testing.assert_array_equal(whole.attributions[0], as_int.attributions[0])
    assert whole.baselines.dtype == np.int32


@pytest.mark.parametrize("bad", ["baselines", "X"])
@pytest.mark.parametrize("value", [99, -3])
def test_ids_outside_the_vocabulary_are_a_value_error(bad, value):
    """-3 was wrapped around by Keras 3 (explained as id 27) instead of refused."""
    model = text_model()  # a vocabulary of 30
    ids = np.random.default_rng(7).integers(1, 30, size=(3, 7)).astype("int32")
    explainer = IntegratedGradients(model, layer=lambda m: m.embedding, n_steps=8)
    arguments = {"baselines": value} if bad == "baselines" else {}
    X = ids if bad == "baselines" else np.where(ids == ids[0, 0], value, ids).astype("int32")
    with pytest.raises(
        ValueError, match=rf"`{bad}` holds ids outside the vocabulary.*valid ids are 0 to 29"
    ):
        explainer.explain(X, target=1, **arguments)
    assert "call" not in vars(model.embedding)
    # The explainer still works, as a fresh one does.
    fresh = IntegratedGradients(model, layer=lambda m: m.embedding, n_steps=8)
    np.testing.assert_allclose(
        explainer.explain(ids, target=1).attributions[0],
        fresh.explain(ids, target=1).attributions[0],
        rtol=1e-6,
    )


def functional_text_model(seed=0, vocab=20, length=6, offset=0):
    """int32 token ids (a declared Input) -> [ids + offset] -> Embedding -> mean -> softmax."""
    ids = keras.Input((length,), dtype="int32", name="ids")
    fed = ids if not offset else keras.layers.Lambda(lambda t: t + offset)(ids)
    vectors = keras.layers.Embedding(vocab, 3, name="tokens")(fed)
    pooled = keras.layers.GlobalAveragePooling1D()(vectors)
    return _seed_weights(
        keras.Model(ids, keras.layers.Dense(2, activation="softmax")(pooled)), seed
    )


@pytest.mark.parametrize("builder", [functional_text_model, text_model])
def test_float_ids_must_be_whole_numbers(builder):
    """1.7 for an int32 input was explained as id 1."""
    model = builder()
    length = 6 if builder is functional_text_model else 7
    explainer = IntegratedGradients(model, layer=lambda m: m.layers[1], n_steps=8)
    if builder is text_model:
        explainer = IntegratedGradients(model, layer=lambda m: m.embedding, n_steps=8)
    with pytest.raises(ValueError, match=r"`X` must hold whole numbers.*Received: a value 1\.7"):
        explainer.explain(np.full((1, length), 1.7, np.float32), target=1)
    ids = np.random.default_rng(8).integers(1, 20, size=(2, length))
    whole = explainer.explain(ids.astype("float32"), target=1)
    exact = explainer.explain(ids.astype("int32"), target=1)
    np.testing.assert_array_equal(whole.attributions[0], exact.attributions[0])


def test_ids_that_reach_the_embedding_through_other_layers_are_left_to_the_model():
    """The vocabulary bounds the embedding's own input: with ids + 5 in between, id 16 is out of
    a vocabulary of 20 only after the offset, which the model itself refuses."""
    model = functional_text_model(offset=5)
    explainer = IntegratedGradients(model, layer=model.get_layer("tokens"), n_steps=8)
    inside = np.full((1, 6), 14, np.int32)  # 19 after the offset: fine
    assert explainer.explain(inside, target=1).attributions[0].shape == (1, 6, 3)
    with pytest.raises(ValueError, match=r"cannot run on `X`.*valid ids"):
        explainer.explain(np.full((1, 6), 16, np.int32), target=1)


def test_nested_layer_object_is_non_serializable_and_gives_complete_attributions():
    model = nested_model()
    nested = model.get_layer("block").get_layer("inner_dense")
    explainer = IntegratedGradients(model, layer=nested)
    assert explainer.meta["params"]["layer"] == LayerState.NON_SERIALIZABLE
    explanation = explainer.explain(_floats((5, 4), seed=6), target=0)
    assert explanation.attributions[0].shape == (5, 3)
    assert completeness_gap(explanation) < 1e-4


def test_subclassed_model_layer_attribute_matches_functional_copy():
    sub = subclassed_model()
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="tanh")
    functional = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden(inputs)))
    functional.set_weights(sub.get_weights())
    X = _floats((4, 6), seed=7)
    ours = IntegratedGradients(sub, layer=sub.hidden).explain(X, target=2)
    reference = IntegratedGradients(functional, layer=hidden).explain(X, target=2)
    np.testing.assert_allclose(ours.attributions[0], reference.attributions[0], rtol=1e-5)
    assert ours.attributions[0].dtype == np.float32


@pytest.mark.parametrize("to_inputs", [False, True])
def test_subclassed_model_never_called_before(to_inputs):
    """Keras builds such a model inside the first trace, running the layer in a scratch graph
    first: that run is not the forward pass and must not be recorded."""
    model = Subclassed()
    assert not model.built
    X = _floats((4, 6), seed=12)
    first = IntegratedGradients(model, layer=lambda m: m.hidden).explain(
        X, target=1, attribute_to_layer_inputs=to_inputs
    )
    assert completeness_gap(first) < 1e-4
    again = IntegratedGradients(model, layer=lambda m: m.hidden).explain(
        X, target=1, attribute_to_layer_inputs=to_inputs
    )
    np.testing.assert_allclose(first.attributions[0], again.attributions[0], rtol=1e-6)


# --- the user's model is never left changed -----------------------------------------------------


class FailingHead(keras.Model):
    """Fails during tracing, after the attributed layer has run, when ``fail`` is set."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(4, activation="tanh")
        self.out = keras.layers.Dense(2)
        self.fail = False

    def call(self, x):
        hidden = self.hidden(x)
        if self.fail:
            raise RuntimeError("failure inside the forward pass")
        return self.out(hidden)


def test_model_is_unchanged_after_an_explain_that_raised_midway():
    model = FailingHead()
    X = _floats((3, 5), seed=8)
    model(X)
    call_before = model.hidden.__dict__.get("call")
    predictions_before = model(X).numpy()
    explainer = IntegratedGradients(model, layer=model.hidden)
    model.fail = True
    with pytest.raises(RuntimeError, match="failure inside the forward pass"):
        explainer.explain(X, target=0)
    model.fail = False
    assert model.hidden.__dict__.get("call") is call_before
    np.testing.assert_array_equal(model(X).numpy(), predictions_before)
    # And the explainer still works once the model does.
    assert completeness_gap(explainer.explain(X, target=0)) < 1e-4


def test_model_predictions_and_layer_calls_unchanged_after_explain():
    model = functional_chain()
    X = _floats((4, 6), seed=9)
    calls_before = [layer.__dict__.get("call") for layer in model.layers]
    predictions_before = model(X).numpy()
    IntegratedGradients(model, layer=model.layers[2]).explain(X, target=0)
    IntegratedGradients(model, layer=model.layers[2]).explain(
        X, target=0, attribute_to_layer_inputs=True
    )
    assert [layer.__dict__.get("call") for layer in model.layers] == calls_before
    np.testing.assert_array_equal(model(X).numpy(), predictions_before)


def test_two_explainers_on_one_model_do_not_disturb_each_other():
    model = functional_chain()
    X = _floats((5, 6), seed=10)
    first = IntegratedGradients(model, layer=model.layers[1])
    second = IntegratedGradients(model, layer=model.layers[2])
    alone_first = IntegratedGradients(model, layer=model.layers[1]).explain(X, target=1)
    alone_second = IntegratedGradients(model, layer=model.layers[2]).explain(X, target=1)
    for _ in range(2):  # interleaved, and again once both are traced
        a = first.explain(X, target=1)
        b = second.explain(X, target=1)
        np.testing.assert_allclose(a.attributions[0], alone_first.attributions[0], rtol=1e-6)
        np.testing.assert_allclose(b.attributions[0], alone_second.attributions[0], rtol=1e-6)


def test_a_layer_shared_by_two_inputs_is_refused_and_the_model_left_intact():
    """Applied twice to inputs alike, a layer's first call alone would leave the second out
    (a tied embedding, called again on other inputs, is tests/text/test_generation.py's)."""
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3, activation="tanh")
    model = keras.Model(inputs, keras.layers.Dense(1)(shared(shared(inputs))))
    X = _floats((2, 3), seed=11)
    before = model(X).numpy()
    with pytest.raises(ValueError, match=r"called 2 times per .*call 2 takes inputs like the"):
        IntegratedGradients(model, layer=shared).explain(X)
    assert "call" not in shared.__dict__ or shared.__dict__["call"].__self__ is shared
    np.testing.assert_array_equal(model(X).numpy(), before)


def untied_copy(tied):
    """The tied model with a Dense output projection holding the transposed embedding matrix:
    the same function, with the embedding called once."""
    untied = causal_lm(16, 8, dim=8, tied=False, seed=0)
    shared = ("token_embedding", "position_embedding", "attention", "norm", "feed_forward")
    for name in shared:
        getattr(untied, name).set_weights(getattr(tied, name).get_weights())
    matrix = tied.token_embedding.get_weights()[0]
    untied.project.set_weights([matrix.T, np.zeros(len(matrix), "float32")])
    return untied


def test_a_tied_embedding_is_attributed_at_its_first_call():
    """GPT-2's weight tying: the embedding is called again as the output projection, on hidden
    states. Its first call (the lookup) is attributed; the second runs unchanged, so the result
    is that of the same model with a separate projection."""
    tied = causal_lm(16, 8, dim=8, tied=True, seed=1)
    untied = untied_copy(tied)
    ids = token_ids((3, 8), 16, seed=2)
    np.testing.assert_allclose(np.asarray(tied(ids)), np.asarray(untied(ids)), atol=1e-5)
    target = np.stack([np.arange(3) + 2, ids[:, 4]], axis=1)  # (position, token) per sample
    explained = [
        IntegratedGradients(model, layer=model.token_embedding, n_steps=16).explain(
            ids, target=target
        )
        for model in (tied, untied)
    ]
    np.testing.assert_allclose(
        explained[0].attributions[0], explained[1].attributions[0], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(explained[0].deltas, explained[1].deltas, atol=1e-5)
    assert "call" not in vars(tied.token_embedding)


# --- reset_predictor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "layer_of"),
    [
        (functional_chain, lambda m: m.layers[2]),  # by object: found again by index
        (functional_chain, "callable"),
        (nested_model, lambda m: m.get_layer("block").get_layer("inner_dense")),  # by path
    ],
)
def test_reset_predictor_finds_the_layer_again(builder, layer_of):
    old, new = builder(seed=0), builder(seed=1)
    if layer_of == "callable":
        explainer = IntegratedGradients(old, layer=lambda m: m.layers[2])
        fresh = IntegratedGradients(new, layer=lambda m: m.layers[2])
    else:
        explainer = IntegratedGradients(old, layer=layer_of(old))
        fresh = IntegratedGradients(new, layer=layer_of(new))
    X = _floats((4, old.inputs[0].shape[1]), seed=12)
    before = explainer.explain(X, target=1)
    explainer.reset_predictor(new)
    after = explainer.explain(X, target=1)
    np.testing.assert_allclose(after.attributions[0], fresh.explain(X, target=1).attributions[0])
    assert not np.allclose(after.attributions[0], before.attributions[0])


def test_reset_predictor_to_a_model_without_the_layer_raises():
    model = functional_chain()
    by_index = IntegratedGradients(model, layer=model.layers[3])
    inputs = keras.Input((6,))
    short = keras.Model(inputs, keras.layers.Dense(3)(inputs))  # layers: InputLayer, Dense
    with pytest.raises(ValueError, match="no layer at index 3"):
        by_index.reset_predictor(short)
    nested = nested_model()
    by_path = IntegratedGradients(nested, layer=nested.get_layer("block").get_layer("inner_dense"))
    with pytest.raises(ValueError, match="no layer at path 'block/inner_dense'"):
        by_path.reset_predictor(short)


# --- bad layer arguments ------------------------------------------------------------------------


def test_a_layer_of_another_model_is_a_value_error():
    model, other = functional_chain(), functional_chain()
    with pytest.raises(ValueError, match=r"`layer` must be a layer of the model"):
        IntegratedGradients(model, layer=other.layers[2])


def test_a_callable_returning_another_models_layer_is_a_value_error():
    model, other = functional_chain(), functional_chain()
    with pytest.raises(ValueError, match=r"returned by the callable"):
        IntegratedGradients(model, layer=lambda m: other.layers[2])


@pytest.mark.parametrize("bad", ["dense", 3, 2.5])
def test_a_layer_that_is_neither_layer_nor_callable_is_a_type_error(bad):
    with pytest.raises(TypeError, match=r"`layer` must be None, a Keras layer or a callable"):
        IntegratedGradients(functional_chain(), layer=bad)


def test_a_callable_returning_no_layer_is_a_type_error():
    with pytest.raises(TypeError, match=r"must return a Keras layer.*int"):
        IntegratedGradients(functional_chain(), layer=lambda m: 3)


def test_layer_state_values_equal_alibis():
    for state in AlibiLayerState:
        assert LayerState(state.value) == state.value
    assert {s.value for s in LayerState} == {s.value for s in AlibiLayerState}


class Block(keras.layers.Layer):
    """A custom layer with a layer inside, as a Hugging Face model's ``embeddings`` is one:
    tf_keras lists such sub-layers only through ``_flatten_layers``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(3, activation="tanh")

    def call(self, x):
        return 2.0 * self.inner(x)


def test_a_layer_inside_a_custom_layer_is_found_saved_and_found_again(tmp_path):
    inputs = keras.Input((4,))
    block = Block(name="block")
    outputs = keras.layers.Dense(2, activation="softmax")(block(inputs))
    model = _seed_weights(keras.Model(inputs, outputs), seed=21)
    X = _floats((3, 4), seed=22)
    explainer = IntegratedGradients(model, layer=block.inner, n_steps=32)
    assert explainer.meta["params"]["layer"] == LayerState.NON_SERIALIZABLE
    explanation = explainer.explain(X, target=1)
    assert explanation.attributions[0].shape == (3, 3)
    assert completeness_gap(explanation) < 1e-3
    explainer.save(tmp_path)
    loaded = IntegratedGradients.load(tmp_path, model)
    assert loaded.layer is block.inner
