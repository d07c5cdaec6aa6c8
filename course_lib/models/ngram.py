"""Character n-gram language models: the baseline every neural language model must beat.

An n-gram model predicts a character from the n - 1 before it, by counting:

    P(c | context) = (count(context, c) + k) / (count(context) + k V)      (add-k smoothing)

with V the vocabulary size; k > 0 gives unseen continuations a little probability, so the
model never assigns zero (which would be infinitely many bits). Interpolated Kneser-Ney
(Kneser and Ney 1995; Chen and Goodman 1999) does better by discounting every count by a
fixed d and giving the mass saved to a lower-order model that counts in how many different
contexts a character follows, not how often:

    P_KN(c | h) = max(count(h, c) - d, 0) / count(h) + d N1+(h .) / count(h) P_KN(c | h')

where h' is h without its first character and N1+(h .) the number of distinct characters
seen after h. Both are fitted on integer ids (`course_lib.data.CharVocabulary`) with NumPy.
"""

import numpy as np


class NGramModel:
    """A character n-gram model of one order, smoothed with add-k or Kneser-Ney.

    Args:
        order: n (1 for unigram frequencies, 2 for bigrams, ...).
        vocabulary_size: the number of ids (`CharVocabulary.size`).
        smoothing: "kneser-ney" (interpolated, with absolute discount `discount`) or
            "add-k" (with `k`).
        k: the add-k pseudo-count.
        discount: Kneser-Ney's d, in (0, 1).

    Example:

        model = NGramModel(4, vocab.size).fit(train_ids)
        model.bits_per_char(validation_ids)
    """

    def __init__(self, order, vocabulary_size, smoothing="kneser-ney", k=0.1, discount=0.75):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}.")
        if vocabulary_size < 2:
            raise ValueError(f"vocabulary_size must be >= 2, got {vocabulary_size}.")
        if smoothing not in ("kneser-ney", "add-k"):
            raise ValueError(f'smoothing must be "kneser-ney" or "add-k", got {smoothing!r}.')
        if smoothing == "add-k" and k <= 0:
            raise ValueError(f"k must be > 0 (k = 0 gives unseen characters probability 0), "
                             f"got {k}.")
        if smoothing == "kneser-ney" and not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {discount}.")
        if vocabulary_size ** order >= 2 ** 63:
            raise ValueError(f"{vocabulary_size} ** {order} n-gram codes do not fit in int64: "
                             "use a lower order or a smaller vocabulary.")
        self.order, self.vocabulary_size = order, vocabulary_size
        self.smoothing, self.k, self.discount = smoothing, k, discount
        self._tables = None

    def _codes(self, ids, n):
        """Each position's n-gram (the n ids ending there) as one int64 code."""
        codes = np.zeros(len(ids) - n + 1, np.int64)
        for j in range(n):
            codes = codes * self.vocabulary_size + ids[j:len(ids) - n + 1 + j]
        return codes

    def fit(self, ids):
        """Counts the n-grams of `ids` (one long sequence), and for Kneser-Ney those of
        every lower order too. Returns the model."""
        ids = self._check(ids)
        if len(ids) < self.order:
            raise ValueError(f"{len(ids)} ids are fewer than the order {self.order}.")
        self._tables = {}
        for n in range(1, self.order + 1):
            codes, counts = np.unique(self._codes(ids, n), return_counts=True)
            self._tables[n] = (codes, counts)
        # Kneser-Ney's lower orders use continuation counts N1+(. gram): in how many
        # distinct contexts each (n-1)-gram ends
        self._continuations = {}
        for n in range(1, self.order):
            higher, _ = self._tables[n + 1]
            self._continuations[n] = np.unique(higher % (self.vocabulary_size ** n),
                                               return_counts=True)
        return self

    def _check(self, ids):
        ids = np.asarray(ids, np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocabulary_size):
            raise ValueError(f"ids must be in [0, {self.vocabulary_size}), got "
                             f"{ids.min()}..{ids.max()}.")
        return ids

    @staticmethod
    def _lookup(table, keys):
        codes, counts = table
        index = np.clip(np.searchsorted(codes, keys), 0, max(len(codes) - 1, 0))
        found = codes[index] == keys if len(codes) else np.zeros(len(keys), bool)
        return np.where(found, counts[index], 0).astype(np.float64)

    def probabilities(self, ids):
        """P(ids[i] | the order - 1 ids before it) for every position i of `ids`; the first
        positions use the text before them padded with id 0."""
        if self._tables is None:
            raise RuntimeError("fit the model before asking it for probabilities.")
        ids = self._check(ids)
        padded = np.concatenate([np.zeros(self.order - 1, np.int64), ids])
        if self.smoothing == "add-k":
            grams = self._codes(padded, self.order)
            contexts = grams // self.vocabulary_size
            counts = self._lookup(self._tables[self.order], grams)
            if self.order == 1:
                totals = np.full(len(grams), self._tables[1][1].sum(), np.float64)
            else:
                totals, _ = self._context_totals(self._tables[self.order], contexts)
            return (counts + self.k) / (totals + self.k * self.vocabulary_size)
        # Interpolated Kneser-Ney, from the unigram up
        probability = np.full(len(ids), 1.0 / self.vocabulary_size)
        for n in range(1, self.order + 1):
            grams = self._codes(padded[self.order - n:], n)
            table = self._tables[n] if n == self.order else self._continuations[n]
            counts = self._lookup(table, grams)
            if n == 1:
                totals = np.full(len(grams), table[1].sum(), np.float64)
                distinct = np.full(len(grams), len(table[0]), np.float64)
            else:
                contexts = grams // self.vocabulary_size
                totals, distinct = self._context_totals(table, contexts)
            safe = np.maximum(totals, 1.0)
            estimate = (np.maximum(counts - self.discount, 0.0) / safe
                        + self.discount * distinct / safe * probability)
            probability = np.where(totals > 0, estimate, probability)
        return probability

    def _context_totals(self, table, contexts):
        """count(h) and N1+(h .) for contexts h (codes one id shorter than the table's)."""
        codes, counts = table
        heads = codes // self.vocabulary_size
        unique, first = np.unique(heads, return_index=True)
        totals = np.add.reduceat(counts, first)
        distinct = np.diff(np.append(first, len(heads)))
        index = np.clip(np.searchsorted(unique, contexts), 0, len(unique) - 1)
        found = unique[index] == contexts
        return (np.where(found, totals[index], 0.0).astype(np.float64),
                np.where(found, distinct[index], 0.0).astype(np.float64))

    def next_probabilities(self, context_ids):
        """The distribution P(. | context) over every id, for the last order - 1 ids of
        `context_ids` (shorter contexts are padded with id 0, as at the text's start)."""
        context = self._check(context_ids)[-(self.order - 1):] if self.order > 1 else []
        context = np.concatenate([np.zeros(self.order - 1 - len(context), np.int64), context])
        # One sequence holding "context, c" for every id c: each c is scored from the
        # order - 1 ids before it, which are exactly the context.
        candidates = np.arange(self.vocabulary_size)
        blocks = np.concatenate([np.tile(context, (self.vocabulary_size, 1)),
                                 candidates[:, None]], axis=1)
        scores = self.probabilities(blocks.reshape(-1))[self.order - 1::self.order]
        return scores / scores.sum()

    def generate(self, prompt_ids, num_chars, temperature=1.0, seed=0):
        """Samples `num_chars` ids after `prompt_ids` from P(. | context) ** (1 / T)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        rng = np.random.default_rng(seed)
        ids = list(self._check(prompt_ids))
        for _ in range(num_chars):
            weights = self.next_probabilities(ids) ** (1.0 / temperature)
            ids.append(rng.choice(self.vocabulary_size, p=weights / weights.sum()))
        return np.array(ids[len(ids) - num_chars:], np.int32)

    def bits_per_char(self, ids):
        """The mean of -log2 P over `ids`: the cross-entropy in bits per character."""
        return float(-np.mean(np.log2(self.probabilities(ids))))

    def get_config(self):
        return {"order": self.order, "vocabulary_size": self.vocabulary_size,
                "smoothing": self.smoothing, "k": self.k, "discount": self.discount}
