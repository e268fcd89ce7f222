"""Small sequence models with seeded weights, for every Keras stack: a token tagger, a model with
two heads, and causal language models (one with a tied embedding, as GPT-2 has).

They mix positions (a mean over the sequence, or causal self-attention), so that a position's
output depends on other positions' embeddings: the attributions of one pass are then not trivially
those of separate passes.
"""

import numpy as np
import tensorflow as tf
from compat import keras
from models import set_seeded_weights


def token_ids(shape, vocabulary, seed):
    """Seeded int32 ids in ``[1, vocabulary)``: id 0 is kept for padding and baselines."""
    return np.random.default_rng(seed).integers(1, vocabulary, size=shape).astype("int32")


def padding_mask(lengths, length):
    """``(N, length)`` int32: 1 for the first ``lengths[i]`` positions of sample i, then 0."""
    return (np.arange(length)[np.newaxis] < np.asarray(lengths)[:, np.newaxis]).astype("int32")


class Tagger(keras.Model):
    """Token classification: ids ``(N, T)`` to tag scores ``(N, T, C)``.

    Each position sees its own embedding and the mean of the sequence's (over the positions the
    ``attention_mask`` keeps, when given), so tags depend on every unmasked position.
    """

    def __init__(self, vocabulary, dim, n_tags):
        super().__init__()
        self.embedding = keras.layers.Embedding(vocabulary, dim)
        self.mix = keras.layers.Dense(dim, activation="tanh")
        self.tags = keras.layers.Dense(n_tags)

    def call(self, ids, attention_mask=None):
        h = self.embedding(ids)  # (N, T, D)
        if attention_mask is None:
            context = tf.reduce_mean(h, axis=1, keepdims=True)
        else:
            keep = tf.cast(attention_mask, h.dtype)[:, :, tf.newaxis]
            context = tf.reduce_sum(h * keep, axis=1, keepdims=True) / tf.reduce_sum(
                keep, axis=1, keepdims=True
            )
        return self.tags(self.mix(tf.concat([h, h + context], axis=-1)))


def tagger(vocabulary=20, length=8, dim=6, n_tags=4, seed=0):
    model = Tagger(vocabulary, dim, n_tags)
    model(np.zeros((1, length), "int32"))  # build
    return set_seeded_weights(model, seed)


def intent_and_tags(vocabulary=20, length=8, dim=6, n_intents=3, n_tags=4, seed=0):
    """A functional model with two heads: ``{"intent": (N, n_intents), "tags": (N, T, n_tags)}``."""
    ids = keras.Input((length,), dtype="int32")
    h = keras.layers.Embedding(vocabulary, dim, name="embedding")(ids)
    h = keras.layers.Dense(dim, activation="tanh")(h)
    pooled = keras.layers.GlobalAveragePooling1D()(h)
    intent = keras.layers.Dense(n_intents, name="intent")(pooled)
    mixed = keras.layers.Concatenate()([h, keras.layers.RepeatVector(length)(pooled)])
    tags = keras.layers.Dense(n_tags, name="tags")(mixed)
    model = keras.Model(ids, {"intent": intent, "tags": tags})
    return set_seeded_weights(model, seed)


def start_and_end(vocabulary=20, length=8, dim=6, seed=0):
    """Question answering's two heads: a list ``[start_logits (N, T), end_logits (N, T)]``."""
    ids = keras.Input((length,), dtype="int32")
    h = keras.layers.Embedding(vocabulary, dim, name="embedding")(ids)
    pooled = keras.layers.RepeatVector(length)(keras.layers.GlobalAveragePooling1D()(h))
    h = keras.layers.Dense(dim, activation="tanh")(keras.layers.Concatenate()([h, pooled]))
    start = keras.layers.Reshape((length,), name="start")(keras.layers.Dense(1)(h))
    end = keras.layers.Reshape((length,), name="end")(keras.layers.Dense(1)(h))
    return set_seeded_weights(keras.Model(ids, [start, end]), seed)


class TiedEmbedding(keras.layers.Embedding):
    """An embedding that is also the output projection: ``reverse=True`` maps hidden states to
    logits with the transposed embedding matrix (the weight tying of GPT-2)."""

    def call(self, inputs, reverse=False):
        if reverse:
            return tf.matmul(inputs, self.embeddings, transpose_b=True)
        return super().call(inputs)


class CausalLM(keras.Model):
    """A one-block causal language model: ids ``(N, T)`` to next-token logits ``(N, T, V)``.

    Token and position embeddings, causal self-attention (masked further by ``padding_mask``
    where given), a feed-forward layer, and the output projection: a Dense layer, or the token
    embedding itself with ``tied``.
    """

    def __init__(self, vocabulary, length, dim, tied):
        super().__init__()
        embedding_class = TiedEmbedding if tied else keras.layers.Embedding
        self.token_embedding = embedding_class(vocabulary, dim)
        self.position_embedding = keras.layers.Embedding(length, dim)
        self.attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=dim // 2)
        self.norm = keras.layers.LayerNormalization()
        self.feed_forward = keras.layers.Dense(dim, activation="tanh")
        self.project = None if tied else keras.layers.Dense(vocabulary)
        self.length = length

    def call(self, ids, padding_mask=None):
        positions = tf.range(tf.shape(ids)[1])
        h = self.token_embedding(ids) + self.position_embedding(positions)[tf.newaxis]
        mask = None
        if padding_mask is not None:
            mask = tf.cast(padding_mask, "bool")[:, tf.newaxis, :]  # (N, 1, T): keys kept
        h = h + self.attention(h, h, attention_mask=mask, use_causal_mask=True)
        h = self.norm(h + self.feed_forward(h))
        if self.project is None:
            return self.token_embedding(h, reverse=True)
        return self.project(h)


def causal_lm(vocabulary=16, length=8, dim=8, tied=False, seed=0):
    model = CausalLM(vocabulary, length, dim, tied)
    model(np.zeros((1, length), "int32"))  # build
    return set_seeded_weights(model, seed)
