"""Text and language models: words from subwords, every position in one pass, a generation.

Three small models trained in seconds on generated text (nothing is downloaded):

1. A sentiment classifier on subword tokens: its token attributions (at the embedding layer)
   are summed into words with ``aggregate_words`` and highlighted in HTML
   (``text_models_words.html``).
2. A tagger (O, PER, LOC for each token; a name is PER after "mr" or "ms" and LOC after "in" or
   "to"): the predicted tag of every position explained in one pass with ``targets=``, drawn as
   a picture of which token each tag was read from (``text_models_tags.png``).
3. A small causal language model of counting sequences ("3 5 7 9 ..." modulo 20): a greedy
   generation after a 4-token prompt, every generated token attributed to the tokens before it
   in one pass with ``GenerationExplainer`` (``text_models_generation.png``).

    python examples/text_models.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from matplotlib.figure import Figure

from ig_plugin import IntegratedGradients
from ig_plugin.text import GenerationExplainer, aggregate_words
from ig_plugin.visualization import ATTRIBUTION_CMAP, text_attributions_html

# --- 1. sentiment on subword tokens ---------------------------------------------------------------

POSITIVE = ["wonderful", "superb", "delightful", "moving", "good"]
NEGATIVE = ["dreadful", "tedious", "clumsy", "awful", "bad"]
NEUTRAL = ["the", "film", "plot", "actors", "was", "and", "story", "music", "really", "quite"]
PIECE = 4  # a word longer than this is cut into pieces of PIECE letters, as subword tokenizers do


def pieces(word: str) -> list[str]:
    cut = [word[i : i + PIECE] for i in range(0, len(word), PIECE)]
    return [cut[0]] + ["##" + piece for piece in cut[1:]]


_PIECES = {p for word in POSITIVE + NEGATIVE + NEUTRAL for p in pieces(word)}
SUBWORDS = ["[PAD]", "[CLS]", *sorted(_PIECES)]
SUBWORD_ID = {piece: i for i, piece in enumerate(SUBWORDS)}
REVIEW_TOKENS = 24


def tokenize(words: list[str]) -> tuple[list[int], list[int | None]]:
    """Token ids padded to REVIEW_TOKENS and, like a Hugging Face tokenizer's ``word_ids()``,
    each token's word (None for [CLS] and padding)."""
    ids, word_ids = [SUBWORD_ID["[CLS]"]], [None]
    for index, word in enumerate(words):
        for piece in pieces(word):
            ids.append(SUBWORD_ID[piece])
            word_ids.append(index)
    padding = REVIEW_TOKENS - len(ids)
    return ids + [0] * padding, word_ids + [None] * padding


def reviews(n: int, rng: np.random.Generator) -> tuple[list[list[str]], np.ndarray]:
    texts, labels = [], np.zeros(n, dtype="int32")
    for row in range(n):
        n_positive, n_negative = rng.choice(3, size=2, replace=False)  # never a tie
        words = [*rng.choice(POSITIVE, n_positive), *rng.choice(NEGATIVE, n_negative)]
        words += list(rng.choice(NEUTRAL, rng.integers(3, 7)))
        rng.shuffle(words)
        texts.append([str(w) for w in words])
        labels[row] = n_positive > n_negative
    return texts, labels


def sentiment(rng: np.random.Generator, output: Path) -> None:
    texts, labels = reviews(3000, rng)
    ids = np.array([tokenize(words)[0] for words in texts], dtype="int32")
    keras.utils.set_random_seed(0)
    tokens = keras.Input((REVIEW_TOKENS,), dtype="int32")
    h = keras.layers.Embedding(len(SUBWORDS), 16, name="embedding")(tokens)
    h = keras.layers.Conv1D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(tokens, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(ids[:2700], labels[:2700], epochs=12, batch_size=64, verbose=0)

    shown = range(2700, 2706)
    explainer = IntegratedGradients(model, layer=model.get_layer("embedding"), n_steps=32)
    # The baseline keeps [CLS] and replaces every word's pieces by [PAD]: [CLS] gets zero.
    chosen = ids[list(shown)]
    baselines = np.where(chosen == SUBWORD_ID["[CLS]"], chosen, 0)
    explanation = explainer.explain(chosen, baselines=baselines, target=1)  # p(positive)
    scores = explanation.attributions[0].sum(axis=-1)  # (6, tokens)
    words = aggregate_words(scores, [tokenize(texts[i])[1] for i in shown])
    scale = float(max(np.abs(w).max() for w in words))
    parts = [
        text_attributions_html(
            texts[i],
            word_scores,
            scale=scale,
            title=f"p(positive) = {explanation.predictions[k, 0]:.2f}, label {labels[i]}",
            legend=k == len(shown) - 1,
        )
        for k, (i, word_scores) in enumerate(zip(shown, words, strict=True))
    ]
    (output / "text_models_words.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Word attributions</title>'
        "</head><body>\n" + "\n".join(parts) + "\n</body></html>\n",
        encoding="utf-8",
    )
    gap = max(abs(w.sum() - s.sum()) for w, s in zip(words, scores, strict=True))
    print(f"sentiment: words summed from subwords add up to the tokens (largest gap {gap:.1e})")


# --- 2. a tagger, every position in one pass ---------------------------------------------------

TAGS = ["O", "PER", "LOC"]
NAMES = ["paris", "jordan", "florence", "austin", "georgia", "chelsea"]
FILLER = ["we", "met", "then", "went", "and", "saw", "today", "later", "with", "friends"]
CUES = {"mr": 1, "ms": 1, "in": 2, "to": 2}  # the tag of a name that follows the cue
WORDS = ["<pad>", *FILLER, *CUES, *NAMES]
WORD_ID = {w: i for i, w in enumerate(WORDS)}
SENTENCE = 12


def sentences(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((n, SENTENCE), dtype="int32")
    tags = np.zeros((n, SENTENCE), dtype="int32")
    for row in range(n):
        position = 0
        while position < SENTENCE:
            if position < SENTENCE - 1 and rng.random() < 0.3:
                cue = str(rng.choice(list(CUES)))
                ids[row, position : position + 2] = WORD_ID[cue], WORD_ID[str(rng.choice(NAMES))]
                tags[row, position + 1] = CUES[cue]
                position += 2
            else:
                ids[row, position] = WORD_ID[str(rng.choice(FILLER))]
                position += 1
    return ids, tags


def tagger(rng: np.random.Generator, output: Path) -> None:
    ids, tags = sentences(4000, rng)
    keras.utils.set_random_seed(1)
    tokens = keras.Input((SENTENCE,), dtype="int32")
    h = keras.layers.Embedding(len(WORDS), 16, name="embedding")(tokens)
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    model = keras.Model(tokens, keras.layers.Dense(len(TAGS))(h))  # (N, T, 3) tag scores
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(ids[:3600], tags[:3600], epochs=8, batch_size=64, verbose=0)

    test = ids[3600:3608]
    predicted = np.asarray(model(test)).argmax(axis=-1)  # (8, T)
    accuracy = float((np.asarray(model(ids[3600:])).argmax(-1) == tags[3600:]).mean())
    # Every position's predicted tag, one (position, tag) tuple per position and sample.
    targets = np.stack([np.tile(np.arange(SENTENCE), (len(test), 1)), predicted], axis=-1)
    explainer = IntegratedGradients(model, layer=model.get_layer("embedding"), n_steps=32)
    explanation = explainer.explain(test, targets=targets)  # one pass for all 12 positions
    per_token = explanation.attributions[0].sum(axis=-1)  # (8, 12 tagged, 12 attributed)
    alone = explainer.explain(test, target=targets[:, 5])  # position 5 alone: the same numbers
    gap = np.abs(alone.attributions[0].sum(axis=-1) - per_token[:, 5]).max()

    sample = int(np.argmax((predicted > 0).sum(axis=1)))  # the sentence with the most names
    words = [WORDS[i] for i in test[sample]]
    figure = Figure(figsize=(7.5, 6.0), layout="constrained")
    axes = figure.add_subplot()
    matrix = per_token[sample]
    scale = float(np.abs(matrix).max()) or 1.0
    image = axes.imshow(matrix, cmap=ATTRIBUTION_CMAP, vmin=-scale, vmax=scale)
    axes.set_xticks(range(SENTENCE), labels=words, rotation=90)
    labels = [f"{w} = {TAGS[t]}" for w, t in zip(words, predicted[sample], strict=True)]
    axes.set_yticks(range(SENTENCE), labels=labels)
    axes.set_xlabel("token attributed to")
    axes.set_ylabel("tagged token = predicted tag")
    axes.set_title("Every position's tag explained in one pass")
    figure.colorbar(image, ax=axes, label="attribution", shrink=0.8)
    figure.savefig(output / "text_models_tags.png", dpi=110)
    print(
        f"tagger: accuracy {accuracy:.3f}; all {SENTENCE} positions in one pass equal "
        f"position 5 alone to {gap:.1e}; largest |delta| {np.abs(explanation.deltas).max():.1e}"
    )


# --- 3. a causal language model and its generation ---------------------------------------------

NUMBERS = 20  # tokens "0" to "19"
RUN = 12  # tokens per sequence: 4 of prompt, 8 generated


def counting(n: int, rng: np.random.Generator) -> np.ndarray:
    """Sequences ``x, x + s, x + 2 s, ...`` modulo NUMBERS, with a step s of 1, 2 or 3."""
    starts = rng.integers(0, NUMBERS, size=(n, 1))
    steps = rng.integers(1, 4, size=(n, 1))
    return ((starts + steps * np.arange(RUN)) % NUMBERS).astype("int32")


def language_model(rng: np.random.Generator, output: Path) -> None:
    runs = counting(4000, rng)
    keras.utils.set_random_seed(2)
    tokens = keras.Input((None,), dtype="int32")  # any length: trained on RUN - 1 tokens
    h = keras.layers.Embedding(NUMBERS, 24, name="embedding")(tokens)
    # Causal convolutions: position t reads only positions t - 4 to t.
    h = keras.layers.Conv1D(64, 3, padding="causal", activation="relu")(h)
    h = keras.layers.Conv1D(64, 3, padding="causal", activation="relu")(h)
    model = keras.Model(tokens, keras.layers.Dense(NUMBERS)(h))  # next-token logits (N, T, V)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(runs[:, :-1], runs[:, 1:], epochs=10, batch_size=64, verbose=0)

    # Greedy generation after a 4-token prompt, one token at a time (padding the rest).
    prompt = np.array([[3, 5, 7, 9], [17, 18, 19, 0]], dtype="int32")
    generated = np.zeros((len(prompt), RUN), dtype="int32")
    generated[:, :4] = prompt
    for t in range(4, RUN):
        logits = np.asarray(model(generated))
        generated[:, t] = logits[:, t - 1].argmax(axis=-1)
    print("language model: generated", [" ".join(map(str, row)) for row in generated])

    explainer = GenerationExplainer(model, model.get_layer("embedding"), n_steps=64)
    generation = explainer.explain(generated, prompt_length=4)  # all 8 rows in one pass
    vocabulary = [str(i) for i in range(NUMBERS)]
    generation.plot(index=0, vocabulary=vocabulary).savefig(
        output / "text_models_generation.png", dpi=110
    )
    # The model continues the count from the last two tokens: how much of each row's total
    # |attribution| do they hold?
    rows = np.arange(RUN - 4)
    last_two = np.abs(generation.matrix[:, rows, rows + 2]) + np.abs(
        generation.matrix[:, rows, rows + 3]
    )
    share = last_two.sum() / np.abs(generation.matrix).sum()
    after = max(np.abs(generation.matrix[:, g, 4 + g :]).max() for g in rows)
    print(
        f"language model: the two tokens before each generated one hold {share:.0%} of the "
        f"|attributions|; at and after its own position: {after:.1f}; largest |delta| "
        f"{np.abs(generation.deltas).max():.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sentiment(rng, args.output)
    tagger(rng, args.output)
    language_model(rng, args.output)
    print(
        f"wrote text_models_words.html, text_models_tags.png, text_models_generation.png to "
        f"{args.output}"
    )


if __name__ == "__main__":
    main()
