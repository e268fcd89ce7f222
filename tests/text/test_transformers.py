"""Hugging Face transformers 4.x TensorFlow models on the tf_keras stack, explained end to end:
built from a config with random weights (nothing downloaded), attributed to the embeddings with
the attention mask as a forward kwarg, complete, and equal to alibi's result on the same model.

transformers is in the tf_keras CI stage only (``make test-tf-keras``, which sets
IG_PLUGIN_EXPECT_TRANSFORMERS so that the tests cannot skip there); they skip elsewhere.
"""

import os

import numpy as np
import pytest

if os.environ.get("IG_PLUGIN_EXPECT_TRANSFORMERS"):
    import transformers
elif os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    pytest.skip(
        "Hugging Face TF models need tf_keras (TF_USE_LEGACY_KERAS=1)", allow_module_level=True
    )
else:
    transformers = pytest.importorskip("transformers")

import tensorflow as tf
from compat import keras
from sequence_models import padding_mask, token_ids

from ig_plugin import IntegratedGradients

VOCABULARY, LENGTH = 64, 10
IDS = token_ids((4, LENGTH), VOCABULARY, seed=160)
MASK = padding_mask([10, 7, 9, 5], LENGTH)


@pytest.fixture(scope="module")
def classifier():
    config = transformers.DistilBertConfig(
        vocab_size=VOCABULARY,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=16,
        num_labels=3,
    )
    # Keras' own seed too: tf.random.set_seed alone left the initial weights to whatever random
    # draws the tests before this module had made.
    keras.utils.set_random_seed(161)
    model = transformers.TFDistilBertForSequenceClassification(config)
    model(IDS[:1])  # build
    rng = np.random.default_rng(162)
    # Larger weights than the initialiser's 0.02, so that the classes differ.
    model.set_weights([w + 0.2 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def logits(model, ids):
    return model(ids, attention_mask=MASK).logits.numpy()


def test_explained_through_the_embeddings_with_the_attention_mask(classifier):
    layer = classifier.distilbert.embeddings
    explainer = IntegratedGradients(classifier, layer=layer, n_steps=128)
    explanation = explainer.explain(IDS, forward_kwargs={"attention_mask": MASK}, target=1)
    assert explanation.attributions[0].shape == (4, LENGTH, 32)
    np.testing.assert_allclose(explanation.predictions, logits(classifier, IDS), rtol=1e-5)
    # Completeness against the model run outside ig_plugin: the baseline is all id 0 with the
    # sample's mask, and everything after the embeddings sees the mask only.
    change = logits(classifier, IDS)[:, 1] - logits(classifier, np.zeros_like(IDS))[:, 1]
    total = explanation.attributions[0].sum(axis=(1, 2))
    np.testing.assert_allclose(total - explanation.deltas, change, atol=1e-5)
    # Random weights of this size make a rough model: 128 steps leave about 1% of the change.
    assert np.abs(explanation.deltas).max() < 2e-2 * np.abs(change).max()


def test_several_classes_in_one_pass(classifier):
    explainer = IntegratedGradients(classifier, layer=classifier.distilbert.embeddings, n_steps=8)
    kwargs = {"forward_kwargs": {"attention_mask": MASK}}
    every = explainer.explain(IDS, targets="all", **kwargs)
    for target in range(3):
        alone = explainer.explain(IDS, target=target, **kwargs)
        np.testing.assert_allclose(
            every.attributions[0][:, target], alone.attributions[0], rtol=1e-5, atol=1e-6
        )


class Logits(keras.Model):
    """The transformer's logits as one tensor: what alibi needs (its own transformers example
    wraps the model the same way)."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def call(self, input_ids, attention_mask=None):
        return self.transformer(input_ids, attention_mask=attention_mask).logits


def test_equal_to_alibi_on_the_same_model(classifier):
    from alibi.explainers import IntegratedGradients as AlibiIntegratedGradients

    wrapped = Logits(classifier)
    wrapped(IDS, attention_mask=MASK)
    layer = classifier.distilbert.embeddings
    settings = {"layer": layer, "n_steps": 16, "internal_batch_size": 32}
    kwargs = {"forward_kwargs": {"attention_mask": MASK}, "target": np.array([0, 2, 1, 2])}
    ours = IntegratedGradients(classifier, **settings).explain(IDS, **kwargs)
    theirs = AlibiIntegratedGradients(wrapped, **settings).explain(IDS, **kwargs)
    scale = np.abs(theirs.attributions[0]).max()
    assert scale > 1e-3
    np.testing.assert_allclose(
        ours.attributions[0], theirs.attributions[0], rtol=1e-4, atol=1e-5 * scale
    )
    np.testing.assert_allclose(ours.deltas, theirs.deltas, atol=1e-5)


def test_a_gpt2_generation_through_its_token_embedding():
    """TFGPT2LMHeadModel returns its logits beside a cache: ``output="logits"`` picks them."""
    from ig_plugin.text import attribute_generation

    config = transformers.GPT2Config(
        vocab_size=VOCABULARY, n_positions=16, n_embd=32, n_layer=2, n_head=2
    )
    tf.random.set_seed(163)
    model = transformers.TFGPT2LMHeadModel(config)
    model(IDS[:1])
    rng = np.random.default_rng(164)
    model.set_weights([w + 0.1 * rng.normal(size=w.shape) for w in model.get_weights()])
    prompt = 4
    generation = attribute_generation(
        model,
        model.transformer.wte,
        IDS,
        prompt,
        forward_kwargs={"attention_mask": MASK},
        n_steps=128,
        output="logits",
    )
    positions = np.arange(prompt, LENGTH)
    rows = np.arange(len(IDS))[:, np.newaxis]

    def scored(ids):
        outputs = model(ids, attention_mask=MASK).logits
        return tf.nn.log_softmax(outputs, axis=-1).numpy()[rows, positions - 1, IDS[:, positions]]

    change = scored(IDS) - scored(np.zeros_like(IDS))
    np.testing.assert_allclose(generation.log_probs, scored(IDS), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(generation.matrix.sum(axis=2) - generation.deltas, change, atol=1e-4)
    for row, position in enumerate(positions):
        np.testing.assert_array_equal(generation.matrix[:, row, position:], 0.0)
