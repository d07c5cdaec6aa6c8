"""Numbers about generated text that need no model: copying, repetition, diversity, and a
compressor's bits per character.

    copied_fraction     how much of a sample occurs word for word in the training text
    repetition_rate     how much of a text repeats itself
    distinct_n          how varied a set of generated sequences is (Li et al. 2016)
    lzma_bits_per_char  a general-purpose compressor's cross-entropy on a text, given another

Taught in notebooks/04_text (notebook 1 for copying and lzma, notebook 2 for repetition and
distinct-n).
"""

import lzma

import numpy as np


def copied_fraction(sample, reference, width=20):
    """The fraction of `sample`'s `width`-character pieces that occur in `reference`, among
    the pieces with at least half their characters letters (runs of spaces or of table
    rules are everywhere and prove nothing); 0 when there is no such piece."""
    pieces = [sample[i:i + width] for i in range(len(sample) - width + 1)]
    worded = [piece for piece in pieces if sum(c.isalpha() for c in piece) >= width // 2]
    return float(np.mean([piece in reference for piece in worded])) if worded else 0.0


def repetition_rate(text, width=10):
    """The fraction of `text`'s `width`-character pieces that occurred earlier in it."""
    seen, repeated = set(), 0
    for i in range(len(text) - width + 1):
        piece = text[i:i + width]
        repeated += piece in seen
        seen.add(piece)
    return repeated / max(len(text) - width + 1, 1)


def distinct_n(sequences, n=4):
    """The fraction of distinct n-grams among all the n-grams of `sequences`: 1 when no
    n-gram repeats, near 0 for one phrase over and over."""
    grams = [tuple(row[i:i + n]) for row in sequences for i in range(len(row) - n + 1)]
    if not grams:
        raise ValueError(f"no sequence is {n} tokens long.")
    return len(set(grams)) / len(grams)


def lzma_bits_per_char(text, given=""):
    """The extra bits lzma needs for `text` after `given`, per character of `text`: the
    compressor's cross-entropy on `text` when it may reuse what it saw in `given`."""
    if not text:
        raise ValueError("the text is empty.")

    def compressed_bits(string):
        return 8 * len(lzma.compress(string.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME))

    return (compressed_bits(given + text) - (compressed_bits(given) if given else 0)) / len(text)
