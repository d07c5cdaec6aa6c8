"""Summaries written by people: the first line of a docstring summarises the rest.

    load_docstring_pairs  3,713 (document, summary) pairs from the docstrings of TensorFlow,
                          Keras, the standard library, NumPy, SciPy, scikit-learn and
                          scikit-image, bundled with the course (see `bundled/README.md`)
    split_sentences       a rule-based sentence splitter that knows "e.g." and "i.e."
    tokenize              lower-cased words and punctuation marks
    WordVocabulary        words to integer ids and back, with the special tokens a
                          sequence-to-sequence model and a BERT-style encoder need

The pairs are frozen: extracting them again (`tools/extract_docstring_pairs.py`) gives other
pairs under other library versions, and the scores would follow. A pair's split comes from a
hash of its summary, so two objects that share a summary (a function and its alias) are never
in different splits.
"""

import collections
import gzip
import json
import re
from importlib import resources

from course_lib.data.text import SPLITS, _check_split

PAIRS_FILE = "docstring_pairs.jsonl.gz"
ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "eq", "eqs", "fig", "ref", "refs", "cf", "resp",
                 "approx", "no", "dr", "mr", "al", "sec", "ch", "vol", "pp", "p", "ed", "eds",
                 "min", "max", "std", "incl", "esp", "viz", "jr", "sr", "st"}
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[`]?[A-Z0-9])")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def split_sentences(text):
    """The sentences of `text`: each line break ends one, and so does ". " before a capital
    letter or a digit, unless the word before the full stop is an abbreviation ("e.g.") or a
    single letter (an initial)."""
    sentences = []
    for line in text.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            before = line[start:match.start()].split()
            last = before[-1].lower().rstrip(".") if before else ""
            if (last in ABBREVIATIONS or re.fullmatch(r"[a-z]", last)
                    or re.fullmatch(r"([a-z]\.)+[a-z]", last)):
                continue
            sentences.append(line[start:match.end()].strip())
            start = match.end()
        sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def tokenize(text):
    """Lower-cased words (letters, digits and `_`) and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def load_docstring_pairs(split="train", sources=None):
    """The bundled pairs of one split (train 2,934, validation 385, test 394), each a dict with
    `id` (e.g. "tf.math.reduce_sum"), `source` ("tensorflow", "keras", "stdlib", "numpy",
    "scipy", "sklearn" or "skimage"), `summary`, `document` and `sentences` (the document
    split by `split_sentences`). `split="all"` gives every pair; `sources` keeps only pairs
    from those sources."""
    if split != "all":
        _check_split(split)
    with resources.files("course_lib.data").joinpath("bundled", PAIRS_FILE).open("rb") as raw:
        rows = [json.loads(line) for line in gzip.open(raw)]
    known = sorted({row["source"] for row in rows})
    if sources is not None:
        sources = [sources] if isinstance(sources, str) else list(sources)
        unknown = sorted(set(sources) - set(known))
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; the pairs come from {known}.")
    pairs = []
    for row in rows:
        if (split == "all" or row["split"] == split) and (sources is None
                                                         or row["source"] in sources):
            row["sentences"] = split_sentences(row["document"])
            pairs.append(row)
    return pairs


class WordVocabulary:
    """Words to integer ids and back.

    The first ids are special tokens: padding (0), an unknown word (1), the start and end of a
    summary, and the classification, separator and mask tokens of a BERT-style encoder. The
    other ids are the `max_size` most frequent words of the texts the vocabulary was built
    from that occur at least `min_count` times (ties broken alphabetically, so the same texts
    always give the same ids).

    Example:

        vocab = WordVocabulary.from_texts(["Returns the sum.", "Returns the mean."])
        vocab.encode("Returns the median.")   # [8, 9, 1, 7]: "median" is unknown
        vocab.decode([8, 9, 10, 7])           # "returns the mean ."
    """

    PAD, UNK, BOS, EOS, CLS, SEP, MASK = range(7)
    SPECIALS = ("<pad>", "<unk>", "<s>", "</s>", "[CLS]", "[SEP]", "[MASK]")

    def __init__(self, words):
        words = list(words)
        clash = sorted(set(words) & set(self.SPECIALS))
        if clash or len(set(words)) != len(words):
            problem = f"special token(s) {clash}" if clash else "a repeated word"
            raise ValueError(f"words must be distinct and not special tokens, got {problem}.")
        self.words = [*self.SPECIALS, *words]
        self._ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def from_texts(cls, texts, max_size=None, min_count=1):
        counts = collections.Counter(token for text in texts for token in tokenize(text))
        if not counts:
            raise ValueError("the texts hold no words to build a vocabulary from.")
        ranked = sorted((word for word, n in counts.items() if n >= min_count),
                        key=lambda word: (-counts[word], word))
        return cls(ranked[:max_size])

    @property
    def size(self):
        return len(self.words)

    def id(self, word):
        return self._ids.get(word, self.UNK)

    def encode(self, text):
        """The ids of `text`'s tokens; words the vocabulary does not know become `UNK`."""
        return [self._ids.get(token, self.UNK) for token in tokenize(text)]

    def decode(self, ids, extra_words=()):
        """Tokens joined by spaces, stopping at the end token and skipping padding. Ids past the
        vocabulary name `extra_words` (a copying model's words from its source document)."""
        tokens = []
        for i in (int(i) for i in ids):
            if i == self.EOS:
                break
            if i == self.PAD:
                continue
            if i < self.size:
                tokens.append(self.words[i])
            elif i - self.size < len(extra_words):
                tokens.append(extra_words[i - self.size])
            else:
                raise ValueError(f"id {i} is past the vocabulary ({self.size} words) and the "
                                 f"{len(extra_words)} extra words given.")
        return " ".join(tokens)

    def get_config(self):
        return {"words": self.words[len(self.SPECIALS):]}

    @classmethod
    def from_config(cls, config):
        return cls(config["words"])


__all__ = ["ABBREVIATIONS", "SPLITS", "WordVocabulary", "load_docstring_pairs", "split_sentences",
           "tokenize"]
