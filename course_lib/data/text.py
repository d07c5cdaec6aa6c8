"""Text for the language-model chapter: Python's own help text, your text, characters as ids.

    load_pydoc_text     the standard library's help topics (`pydoc_data.topics`): about
                        365,000 characters of English prose about Python once repeated
                        paragraphs are dropped, on every CPython (Colab included), split into
                        train / validation / test
    load_text_file      any UTF-8 text file (any script: a character model learns Chinese as
                        well as English), with clear errors for a missing, empty or non-UTF-8 file
    split_text          the same contiguous 80 / 10 / 10 split, for your own text
    CharVocabulary      characters to integer ids and back
    char_windows        a `tf.data` pipeline of (characters, next characters) windows

The split is contiguous, not random: the topics are joined in alphabetical order and cut at
80% and 90% of the characters, so validation and test are whole passages the model never saw
(a random split of overlapping windows would leak text between them). The topics repeat
each other: "specialnames" holds the sections that "customization", "numeric-types" and
others hold too, and "Note:" or "See also:" open dozens of paragraphs. Left in, about 72% of
the validation text's 40-character pieces occur word for word in the training text, and a
model is scored on copies of its training data. So every paragraph is kept only where it
first occurs (about a fifth of the characters go). The help text follows the Python version
(3.10 to 3.13 differ by a few paragraphs), so its numbers do too.
"""

from pathlib import Path

import numpy as np

SPLITS = ("train", "validation", "test")
FRACTIONS = (0.8, 0.1, 0.1)


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")


def split_text(text, split="train", fractions=FRACTIONS):
    """One contiguous part of `text`: the first 80% for training, the next 10% for validation,
    the last 10% for testing (by default), each cut at the nearest line break."""
    _check_split(split)
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got "
                         f"{fractions!r}.")
    cuts = [0]
    for fraction in np.cumsum(fractions)[:2]:
        cut = int(fraction * len(text))
        line_break = text.find("\n", cut)
        cuts.append(line_break + 1 if 0 <= line_break < cut + 1000 else cut)
    cuts.append(len(text))
    index = SPLITS.index(split)
    return text[cuts[index]:cuts[index + 1]]


def load_pydoc_text(split="train"):
    """The help topics of this Python (`help("assert")` and the like), joined in alphabetical
    order without repeated paragraphs, and one split of them (see `split_text`)."""
    from pydoc_data import topics

    _check_split(split)
    seen, paragraphs = set(), []
    for name in sorted(topics.topics):
        for paragraph in topics.topics[name].split("\n\n"):
            key = paragraph.strip()
            if key and key not in seen:  # a repeated paragraph is kept where it first occurs
                seen.add(key)
                paragraphs.append(paragraph.strip("\n"))
    return split_text("\n\n".join(paragraphs), split)


def load_text_file(path):
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Raises:
        FileNotFoundError, IsADirectoryError, or ValueError for an empty or non-UTF-8 file,
        each saying how to fix it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass the path of a UTF-8 text file.")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: pass the path of one text file.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {error.start}: {raw[error.start:error.start + 4]!r})."
            " Save it as UTF-8 (a text editor's 'Save as', or iconv -f GBK -t UTF-8 for a "
            "Chinese file in GBK).") from None
    if not text.strip():
        raise ValueError(f"{path} holds no text: a language model needs some to learn from.")
    return text


class CharVocabulary:
    """Characters to integer ids and back.

    Id 0 stands for any character the vocabulary was not built with; the others follow the
    characters' order.

    Args:
        characters: the characters to know (duplicates are dropped).

    Example:

        vocab = CharVocabulary.from_text("hello")
        vocab.encode("hole")   # array([3, 4, 2, 1], dtype=int32)
        vocab.decode([3, 4])   # "lo"... ids follow sorted characters: e, h, l, o
    """

    UNKNOWN = 0
    UNKNOWN_CHAR = "\ufffd"  # how decode shows id 0

    def __init__(self, characters):
        characters = sorted(set(characters))
        if not characters:
            raise ValueError("a vocabulary needs at least one character.")
        self.characters = characters
        self._ids = {c: i + 1 for i, c in enumerate(characters)}

    @classmethod
    def from_text(cls, text):
        return cls(text)

    @property
    def size(self):
        """The number of ids, the unknown id 0 included."""
        return len(self.characters) + 1

    def encode(self, text, unknown="error"):
        """Ids for `text`, int32. With `unknown="error"`, characters the vocabulary does not
        know raise a ValueError naming them; with `"map"`, they become id 0."""
        if unknown not in ("error", "map"):
            raise ValueError(f'unknown must be "error" or "map", got {unknown!r}.')
        ids = np.fromiter((self._ids.get(c, 0) for c in text), np.int32, count=len(text))
        if unknown == "error" and (ids == 0).any():
            missing = sorted({c for c in text if c not in self._ids})
            shown = ", ".join(repr(c) for c in missing[:10])
            raise ValueError(
                f"{len(missing)} character(s) not in the vocabulary: {shown}. Build the "
                'vocabulary from text that has them, or pass unknown="map".')
        return ids

    def decode(self, ids):
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must be in [0, {self.size}), got {ids.min()}..{ids.max()}.")
        table = [self.UNKNOWN_CHAR, *self.characters]
        return "".join(table[i] for i in ids)

    def get_config(self):
        return {"characters": "".join(self.characters)}

    @classmethod
    def from_config(cls, config):
        return cls(config["characters"])


def char_windows(ids, seq_len, batch_size, shuffle=True, seed=0):
    """(inputs, targets) batches for a character model: non-overlapping windows of
    `seq_len + 1` ids, inputs the first `seq_len`, targets the last `seq_len` (each
    character's next one). Shapes (batch, seq_len), int32."""
    import tensorflow as tf

    ids = np.asarray(ids, np.int32)
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be >= 1, got {seq_len}, {batch_size}.")
    windows = len(ids) // (seq_len + 1)
    if windows < batch_size:
        raise ValueError(f"{len(ids)} characters make {windows} windows of {seq_len + 1}, "
                         f"fewer than one batch of {batch_size}: use more text or smaller "
                         "windows.")
    chunks = ids[:windows * (seq_len + 1)].reshape(windows, seq_len + 1)
    dataset = tf.data.Dataset.from_tensor_slices((chunks[:, :-1], chunks[:, 1:]))
    if shuffle:
        dataset = dataset.shuffle(windows, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
