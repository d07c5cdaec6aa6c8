"""Scoring summaries, and the extractive baselines every summarizer must beat.

    rouge_scores       ROUGE-1, ROUGE-2 and ROUGE-L F1 of each candidate against its reference,
                       with Google's `rouge-score` package (the reference implementation)
    mean_rouge         their means, times 100, as papers print them
    lead               the document's first sentence
    random_sentence    one sentence drawn at random (seeded by the pair's id)
    oracle_sentence    the sentence closest to the reference: an upper bound for any method
                       that picks one sentence
    textrank           the most central sentence of a TF-IDF similarity graph (Mihalcea and
                       Tarau 2004; Erkan and Radev 2004, LexRank), by PageRank

ROUGE (Lin 2004) counts overlapping units between a candidate summary C and a reference R:
ROUGE-N counts n-grams, ROUGE-L the longest common subsequence (LCS) of their tokens:

    P = LCS(C, R) / |C|,   R_L = LCS(C, R) / |R|,   F1 = 2 P R_L / (P + R_L)

Tokens are lower-cased, letters and digits only, stemmed with Porter's stemmer.
"""

import random

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_scores(references, candidates):
    """(N, 3) array: the ROUGE-1, ROUGE-2 and ROUGE-L F1 of each candidate, in [0, 1]."""
    references, candidates = list(references), list(candidates)
    if len(references) != len(candidates):
        raise ValueError(f"got {len(references)} references and {len(candidates)} candidates; "
                         "give one candidate per reference.")
    scorer = _scorer()
    rows = []
    for reference, candidate in zip(references, candidates):
        if not isinstance(candidate, str):
            raise TypeError(f"candidates must be strings, got {type(candidate).__name__}.")
        scores = scorer.score(reference, candidate)
        rows.append([scores[name].fmeasure for name in ROUGE_TYPES])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(ROUGE_TYPES))


def mean_rouge(references, candidates):
    """{"rouge1": ..., "rouge2": ..., "rougeL": ...}: mean F1 times 100."""
    means = rouge_scores(references, candidates).mean(axis=0) * 100
    return {name: float(value) for name, value in zip(ROUGE_TYPES, means)}


def _sentences(pair):
    sentences = pair["sentences"]
    if not sentences:
        raise ValueError(f"pair {pair.get('id', '?')!r} has no sentences to choose from.")
    return sentences


def lead(pair):
    return _sentences(pair)[0]


def random_sentence(pair, seed=0):
    return random.Random(f"{seed}:{pair['id']}").choice(_sentences(pair))


def sentence_rouge(pair, rouge_type="rougeL"):
    """The F1 (one of ROUGE_TYPES, or "mean" for their mean) of each of the pair's sentences
    against its summary."""
    sentences = _sentences(pair)
    scores = rouge_scores([pair["summary"]] * len(sentences), sentences)
    if rouge_type == "mean":
        return scores.mean(axis=1)
    return scores[:, ROUGE_TYPES.index(rouge_type)]


def oracle_index(pair):
    """Index of the sentence with the best mean of ROUGE-1, -2 and -L F1 against the summary."""
    return int(np.argmax(sentence_rouge(pair, "mean")))


def oracle_sentence(pair):
    return _sentences(pair)[oracle_index(pair)]


def pagerank(similarity, damping=0.85, iterations=50):
    """PageRank of a weighted graph given as a square matrix of non-negative weights: the
    stationary distribution of a walk that follows an edge with probability `damping` (in
    proportion to its weight) and jumps to a uniformly random node otherwise."""
    weights = np.asarray(similarity, dtype=np.float64)
    n = len(weights)
    out = weights.sum(axis=1, keepdims=True)
    transition = np.where(out > 0, weights / np.where(out > 0, out, 1), 1.0 / n)
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        rank = (1 - damping) / n + damping * rank @ transition
    return rank


def fit_tfidf(documents):
    """A TF-IDF vectorizer (scikit-learn's) fitted on training documents, for `textrank`."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(lowercase=True, sublinear_tf=True, stop_words="english").fit(
        list(documents))


def textrank(pair, tfidf):
    """The sentence with the highest PageRank in the graph whose edges are the cosine
    similarities of the sentences' TF-IDF vectors (the first sentence wins ties)."""
    sentences = _sentences(pair)
    if len(sentences) == 1:
        return sentences[0]
    vectors = tfidf.transform(sentences)
    similarity = (vectors @ vectors.T).toarray()
    np.fill_diagonal(similarity, 0.0)
    return sentences[int(np.argmax(pagerank(similarity)))]
