"""Explain a text classifier: attribute to the embedding layer and highlight the tokens.

Token ids are integers and cannot be interpolated, so Integrated Gradients runs in the embedding
layer's space and each token's score is the sum of its attributions over the embedding axis.
The data is generated: short "reviews" made of neutral words plus a few positive and negative
words, labelled positive when the positive words outnumber the negative ones. A good
explanation should light up exactly those words.

Writes ``text_sentiment.html`` (highlighted reviews) and ``text_sentiment_words.png`` (mean
attribution per word) to ``examples/output`` or the folder given with ``--output``.

    python examples/text_sentiment.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from ig_plugin import IntegratedGradients
from ig_plugin.visualization import plot_feature_attributions, text_attributions_html

PAD = "<pad>"  # id 0: padding, and the baseline token
POSITIVE = ["good", "great", "superb", "enjoyable", "wonderful", "moving"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "clumsy"]
NEUTRAL = ["the", "a", "film", "plot", "actors", "was", "is", "and", "but", "story", "music"]
VOCABULARY = [PAD, *POSITIVE, *NEGATIVE, *NEUTRAL]
LENGTH = 12


def generate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` padded sequences of token ids, shape (n, LENGTH), and their 0/1 labels."""
    ids = np.zeros((n, LENGTH), dtype="int32")
    labels = np.zeros(n, dtype="int32")
    word_id = {word: i for i, word in enumerate(VOCABULARY)}
    for row in range(n):
        n_positive, n_negative = rng.choice(4, size=2, replace=False)  # never a tie
        words = [*rng.choice(POSITIVE, n_positive), *rng.choice(NEGATIVE, n_negative)]
        words += list(rng.choice(NEUTRAL, rng.integers(4, LENGTH - len(words) + 1)))
        rng.shuffle(words)
        ids[row, : len(words)] = [word_id[w] for w in words]
        labels[row] = n_positive > n_negative
    return ids, labels


def train(ids: np.ndarray, labels: np.ndarray) -> keras.Model:
    """Embedding, average over positions, a small dense head; one sigmoid output."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(len(VOCABULARY), 8, name="embedding")(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(tokens, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(ids, labels, epochs=15, batch_size=64, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train_ids, train_labels = generate(3000, rng)
    test_ids, test_labels = generate(300, rng)
    model = train(train_ids, train_labels)
    _, accuracy = model.evaluate(test_ids, test_labels, verbose=0)

    # layers[0] is the Input, layers[1] the Embedding. The baseline is all <pad> (id 0), so
    # padding gets exactly zero, and a review's token scores add up to p(review) - p(all pad).
    explainer = IntegratedGradients(model, layer=lambda m: m.layers[1], n_steps=32)
    explanation = explainer.explain(test_ids, target=1)  # explain p(positive)
    scores = explanation.attributions[0].sum(axis=-1)  # (N, LENGTH): one score per token
    p_positive = explanation.predictions[:, 0]

    # Highlighted reviews, on one colour scale so that they can be compared.
    n_shown = 8
    scale = float(np.abs(scores[:n_shown]).max())
    parts = []
    for i in range(n_shown):
        n_words = int((test_ids[i] != 0).sum())  # leave the padding out of the page
        words = [VOCABULARY[t] for t in test_ids[i, :n_words]]
        title = f"review {i}: p(positive) = {p_positive[i]:.2f}, label {test_labels[i]}"
        last = i == n_shown - 1
        parts.append(
            text_attributions_html(
                words, scores[i, :n_words], scale=scale, title=title, legend=last
            )
        )
    args.output.mkdir(parents=True, exist_ok=True)
    html_path = args.output / "text_sentiment.html"
    html_path.write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Token attributions</title>'
        "</head><body>\n" + "\n".join(parts) + "\n</body></html>\n",
        encoding="utf-8",
    )

    # Mean score of each word over its occurrences in the test reviews.
    mean_score = np.array(
        [
            scores[test_ids == t].mean() if (test_ids == t).any() else 0.0
            for t in range(1, len(VOCABULARY))
        ]
    )
    fig = plot_feature_attributions(
        mean_score,
        VOCABULARY[1:],
        top_k=15,
        title="Mean attribution to p(positive) per occurrence of each word",
    )
    png_path = args.output / "text_sentiment_words.png"
    fig.savefig(png_path, dpi=120)

    by_kind = {
        kind: mean_score[[VOCABULARY.index(w) - 1 for w in words]]
        for kind, words in (("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL))
    }
    print(f"test accuracy: {accuracy:.3f}")
    print(
        "mean attribution per occurrence: "
        + ", ".join(f"{kind} words {values.mean():+.3f}" for kind, values in by_kind.items())
    )
    print(f"padding attributions are exactly zero: {bool((scores[test_ids == 0] == 0).all())}")
    print(f"largest |delta| (completeness gap): {np.abs(explanation.deltas).max():.2e}")
    print(f"wrote {html_path} and {png_path}")


if __name__ == "__main__":
    main()
