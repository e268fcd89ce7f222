"""KerasHub (Keras 3) language models explained end to end: a GPT-2 causal LM's generation and a
BERT text classifier, built from configs with random weights (nothing downloaded), attributed to
the token embedding with the padding mask among the model's inputs.

GPT-2 ties its token embedding to its output projection, so the embedding is called twice per
pass (the lookup, then the logits): the lookup is attributed, the projection runs unchanged.

keras-hub has its own CI stage (``make test-keras-hub``, which sets IG_PLUGIN_EXPECT_KERAS_HUB
so that these tests cannot skip there); they skip elsewhere.
"""

import os

import numpy as np
import pytest

if os.environ.get("IG_PLUGIN_EXPECT_KERAS_HUB"):
    import keras_hub
else:
    keras_hub = pytest.importorskip("keras_hub")

import keras
import tensorflow as tf
from models import set_seeded_weights
from sequence_models import padding_mask, token_ids

from ig_plugin import IntegratedGradients
from ig_plugin.text import attribute_generation

VOCABULARY, LENGTH, PROMPT = 64, 10, 4
IDS = token_ids((3, LENGTH), VOCABULARY, seed=170)
MASK = padding_mask([10, 10, 8], LENGTH)
INPUTS = {"token_ids": IDS, "padding_mask": MASK}


@pytest.fixture(scope="module")
def gpt2():
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=16,
    )
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    return set_seeded_weights(model, seed=171, scale=0.3)


def log_probs(model, ids):
    outputs = model({"token_ids": ids, "padding_mask": MASK})
    return tf.nn.log_softmax(outputs, axis=-1).numpy()


def test_gpt2_generation_is_complete_and_causal(gpt2):
    generation = attribute_generation(
        gpt2, gpt2.backbone.token_embedding, INPUTS, PROMPT, n_steps=128
    )
    assert generation.matrix.shape == (3, LENGTH - PROMPT, LENGTH)
    positions = np.arange(PROMPT, LENGTH)
    rows = np.arange(3)[:, np.newaxis]
    real = log_probs(gpt2, IDS)[rows, positions - 1, IDS[:, positions]]
    start = log_probs(gpt2, np.zeros_like(IDS))[rows, positions - 1, IDS[:, positions]]
    np.testing.assert_allclose(generation.log_probs, real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        generation.matrix.sum(axis=2) - generation.deltas, real - start, atol=1e-4
    )
    assert np.abs(generation.deltas).max() < 2e-2 * np.abs(real - start).max()
    for row, position in enumerate(positions):
        np.testing.assert_array_equal(generation.matrix[:, row, position:], 0.0)
    assert "call" not in vars(gpt2.backbone.token_embedding)


class LogProbs(keras.Model):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def call(self, inputs):
        return tf.nn.log_softmax(self.lm(inputs), axis=-1)


def test_gpt2_rows_equal_separate_calls(gpt2):
    generation = attribute_generation(
        gpt2, gpt2.backbone.token_embedding, INPUTS, PROMPT, n_steps=8
    )
    oracle = IntegratedGradients(LogProbs(gpt2), layer=gpt2.backbone.token_embedding, n_steps=8)
    baselines = {"token_ids": np.zeros_like(IDS), "padding_mask": MASK}
    for row in (0, LENGTH - PROMPT - 1):
        position = PROMPT + row
        target = np.stack([np.full(3, position - 1), IDS[:, position]], axis=1)
        alone = oracle.explain(INPUTS, target=target, baselines=baselines)
        np.testing.assert_allclose(
            generation.explanation.attributions[0][:, row],
            alone.attributions[0],
            rtol=1e-5,
            atol=1e-6,
        )
        np.testing.assert_allclose(generation.deltas[:, row], alone.deltas, atol=1e-5)


@pytest.fixture(scope="module")
def bert():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=16,
    )
    model = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=3, preprocessor=None)
    return set_seeded_weights(model, seed=172, scale=0.3)


def test_bert_classifier_through_the_token_embedding(bert):
    inputs = {**INPUTS, "segment_ids": np.zeros_like(IDS)}
    baselines = {**inputs, "token_ids": np.zeros_like(IDS)}
    explainer = IntegratedGradients(bert, layer=bert.backbone.token_embedding, n_steps=128)
    explanation = explainer.explain(inputs, baselines=baselines, targets=[0, 2])
    assert explanation.attributions[0].shape == (3, 2, LENGTH, 32)
    change = (np.asarray(bert(inputs)) - np.asarray(bert(baselines)))[:, [0, 2]]
    total = explanation.attributions[0].sum(axis=(2, 3))
    np.testing.assert_allclose(total - explanation.deltas, change, atol=1e-4)
    assert np.abs(explanation.deltas).max() < 2e-2 * np.abs(change).max()
    alone = explainer.explain(inputs, baselines=baselines, target=2)
    np.testing.assert_allclose(
        explanation.attributions[0][:, 1], alone.attributions[0], rtol=1e-5, atol=1e-6
    )
