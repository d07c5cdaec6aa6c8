"""Byte-pair encoding (BPE): subword tokens learned from a text, offline.

BPE (Sennrich et al. 2016, after Gage 1994) starts from the characters of a text and
repeatedly merges the most frequent pair of adjacent tokens into a new token, until the
vocabulary has the size asked for. Frequent words end up as one token, rare words as a few
pieces, and nothing is ever out of vocabulary that the alphabet covers: the middle ground
between characters (long sequences) and words (a vocabulary that never ends).

The text is first cut into words that keep their leading space (" the", " cat", "."), as
GPT-2 does, so merges never cross a word boundary and decoding is a plain concatenation:
`decode(encode(text)) == text` for any text whose characters the tokenizer knows.

    tokenizer = BPETokenizer.train(load_pydoc_text("train"), vocab_size=1000)
    ids = tokenizer.encode("The for statement")
    tokenizer.tokens(ids)   # [' The', ' for', ' statement'] or smaller pieces
"""

import collections
import re

import numpy as np

_WORDS = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")


def _words(text):
    return _WORDS.findall(text)


class BPETokenizer:
    """Subword tokens from byte-pair merges.

    Ids 0 .. len(alphabet) - 1 are single characters (id 0 is the unknown character), the
    following ids are the merged tokens in the order they were learned.

    Args:
        alphabet: the characters to know.
        merges: the learned merges, pairs of token strings, first learned first.
    """

    UNKNOWN = 0
    UNKNOWN_CHAR = "\ufffd"

    def __init__(self, alphabet, merges=()):
        alphabet = sorted(set(alphabet) - {self.UNKNOWN_CHAR})
        if not alphabet:
            raise ValueError("a BPE tokenizer needs at least one character.")
        self.tokens_ = [self.UNKNOWN_CHAR, *alphabet]
        self.merges = [tuple(pair) for pair in merges]
        self.ids = {token: i for i, token in enumerate(self.tokens_)}
        for a, b in self.merges:
            if a not in self.ids or b not in self.ids:
                raise ValueError(f"merge {(a, b)!r} uses a token that neither the alphabet nor "
                                 "an earlier merge makes.")
            self.ids[a + b] = len(self.tokens_)
            self.tokens_.append(a + b)
        self._rank = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache = {}

    @classmethod
    def train(cls, text, vocab_size, min_frequency=2):
        """Learns merges from `text` until the vocabulary has `vocab_size` tokens (alphabet
        and the unknown character included) or no pair occurs `min_frequency` times. Ties
        between equally frequent pairs go to the pair that sorts first, so the same text
        always gives the same tokenizer."""
        if not text:
            raise ValueError("cannot train a BPE tokenizer on an empty text.")
        alphabet = sorted(set(text))
        if vocab_size < len(alphabet) + 1:
            raise ValueError(f"vocab_size={vocab_size} is smaller than the text's alphabet "
                             f"({len(alphabet)} characters) plus the unknown character.")
        counts = collections.Counter(_words(text))
        words = [list(word) for word in counts]
        frequency = [counts[word] for word in counts]
        pairs = collections.Counter()
        where = collections.defaultdict(set)  # pair -> indices of the words that hold it
        for index, word in enumerate(words):
            for pair in zip(word, word[1:]):
                pairs[pair] += frequency[index]
                where[pair].add(index)
        merges = []
        while len(alphabet) + 1 + len(merges) < vocab_size and pairs:
            best = min(pairs, key=lambda pair: (-pairs[pair], pair))
            if pairs[best] < min_frequency:
                break
            merges.append(best)
            merged = best[0] + best[1]
            for index in list(where[best]):
                word, n = words[index], frequency[index]
                for pair in zip(word, word[1:]):  # forget the word's old pairs
                    pairs[pair] -= n
                    if pairs[pair] <= 0:
                        del pairs[pair]
                new, i = [], 0
                while i < len(word):
                    if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                        new.append(merged)
                        i += 2
                    else:
                        new.append(word[i])
                        i += 1
                words[index] = new
                for pair in zip(new, new[1:]):
                    pairs[pair] += n
                    where[pair].add(index)
            del where[best]
        return cls(alphabet, merges)

    @property
    def size(self):
        return len(self.tokens_)

    def _encode_word(self, word):
        if word in self._cache:
            return self._cache[word]
        pieces = list(word)
        while len(pieces) > 1:
            ranked = [(self._rank.get(pair, len(self._rank)), i)
                      for i, pair in enumerate(zip(pieces, pieces[1:]))]
            rank, i = min(ranked)
            if rank == len(self._rank):
                break
            pieces[i:i + 2] = [pieces[i] + pieces[i + 1]]
        ids = [self.ids.get(piece, self.UNKNOWN) for piece in pieces]
        self._cache[word] = ids
        return ids

    def encode(self, text, unknown="error"):
        """Token ids (int32) for `text`: each word's characters, merged in the order the
        merges were learned. With `unknown="error"`, characters outside the alphabet raise a
        ValueError that names them; with `"map"`, they become id 0."""
        if unknown not in ("error", "map"):
            raise ValueError(f'unknown must be "error" or "map", got {unknown!r}.')
        missing = sorted({c for c in set(text) if c not in self.ids})
        if missing and unknown == "error":
            shown = ", ".join(repr(c) for c in missing[:10])
            raise ValueError(f"{len(missing)} character(s) not in the tokenizer's alphabet: "
                             f"{shown}. Train it on text that has them, or pass "
                             'unknown="map".')
        ids = [i for word in _words(text) for i in self._encode_word(word)]
        return np.asarray(ids, dtype=np.int32)

    def tokens(self, ids):
        """The token strings of `ids`."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must be in [0, {self.size}), got {ids.min()}..{ids.max()}.")
        return [self.tokens_[i] for i in ids]

    def decode(self, ids):
        return "".join(self.tokens(ids))

    def get_config(self):
        return {"alphabet": "".join(self.tokens_[1:len(self.tokens_) - len(self.merges)]),
                "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_config(cls, config):
        return cls(config["alphabet"], config["merges"])
