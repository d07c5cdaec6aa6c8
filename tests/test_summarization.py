"""Summarization: the bundled pairs, ROUGE wiring, the baselines and the two summarizers."""

import keras
import numpy as np
import pytest

from course_lib import summarization as summ
from course_lib.data.summaries import (
    WordVocabulary,
    load_docstring_pairs,
    split_sentences,
    tokenize,
)
from course_lib.models.summarizer import (
    MaskedLanguageModel,
    PointerGenerator,
    SentenceScorer,
    TextEncoder,
    encode_pairs,
    encode_sentences,
    greedy_summaries,
    mask_tokens,
    mlm_dataset,
    pair_dataset,
)


# -- data ------------------------------------------------------------------------------------------
def test_bundled_pairs_and_their_split():
    splits = {name: load_docstring_pairs(name) for name in ("train", "validation", "test")}
    assert [len(p) for p in splits.values()] == [2934, 385, 394]
    summaries = {name: {p["summary"].lower() for p in pairs} for name, pairs in splits.items()}
    assert not summaries["train"] & summaries["test"]
    assert not summaries["train"] & summaries["validation"]
    assert not summaries["validation"] & summaries["test"]
    for pair in splits["test"]:
        assert pair["sentences"] and len(tokenize(pair["document"])) >= 25
    assert len(load_docstring_pairs("all")) == 3713


def test_pairs_by_source_and_clear_errors():
    numpy_pairs = load_docstring_pairs("train", sources="numpy")
    assert numpy_pairs and {p["source"] for p in numpy_pairs} == {"numpy"}
    with pytest.raises(ValueError, match="unknown source"):
        load_docstring_pairs("train", sources=["pytorch"])
    with pytest.raises(ValueError, match="split must be one of"):
        load_docstring_pairs("dev")


def test_split_sentences_knows_abbreviations_and_lines():
    text = "Use e.g. NumPy here. Then stop! A. Turing wrote it.\nA new line"
    assert split_sentences(text) == ["Use e.g. NumPy here.", "Then stop!",
                                     "A. Turing wrote it.", "A new line"]
    assert split_sentences("  \n ") == []


def test_word_vocabulary_example_and_extra_words():
    vocab = WordVocabulary.from_texts(["Returns the sum.", "Returns the mean."])
    assert vocab.encode("Returns the median.") == [8, 9, 1, 7]
    assert vocab.decode([8, 9, 10, 7]) == "returns the mean ."
    assert vocab.decode([8, vocab.size, vocab.EOS, 9], extra_words=["median"]) == "returns median"
    with pytest.raises(ValueError, match="past the vocabulary"):
        vocab.decode([vocab.size + 1], extra_words=["median"])
    assert WordVocabulary.from_config(vocab.get_config()).words == vocab.words
    with pytest.raises(ValueError, match="no words"):
        WordVocabulary.from_texts(["", "  "])
    with pytest.raises(ValueError, match="special"):
        WordVocabulary(["[MASK]"])


# -- ROUGE and the baselines -----------------------------------------------------------------------
def test_rouge_against_known_values():
    scores = summ.rouge_scores(["the cat sat", "a b c d"], ["the cat", "a c d e"])
    # ROUGE-1: P = 1, R = 2/3 -> F = 0.8; ROUGE-2: 1 shared bigram of 1 and 2 -> 2/3
    assert np.allclose(scores[0], [0.8, 2 / 3, 0.8])
    assert np.isclose(scores[1, 2], 0.75)  # LCS "a c d": P = R = 3/4
    # stemming: "computes" and "computing" are one token
    assert summ.rouge_scores(["computes sums"], ["computing sum"])[0, 0] == 1.0
    means = summ.mean_rouge(["the cat sat"], ["the cat sat"])
    assert means == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    with pytest.raises(ValueError, match="one candidate per reference"):
        summ.rouge_scores(["a"], ["a", "b"])
    with pytest.raises(TypeError, match="strings"):
        summ.rouge_scores(["a"], [["a"]])


def test_pagerank_prefers_the_hub_and_sums_to_one():
    star = np.zeros((5, 5))
    star[0, 1:] = star[1:, 0] = 1.0
    rank = summ.pagerank(star)
    assert np.isclose(rank.sum(), 1.0) and rank.argmax() == 0
    assert np.allclose(summ.pagerank(np.zeros((3, 3))), 1 / 3)  # no edges: uniform


def test_baselines_pick_sentences_of_the_document():
    pair = {"id": "x", "summary": "Adds two numbers.",
            "sentences": ["This function is old.", "It adds two numbers together.",
                          "Numbers may be floats."]}
    assert summ.lead(pair) == "This function is old."
    assert summ.oracle_sentence(pair) == "It adds two numbers together."
    assert summ.random_sentence(pair) == summ.random_sentence(pair) in pair["sentences"]
    tfidf = summ.fit_tfidf(pair["sentences"])
    assert summ.textrank(pair, tfidf) in pair["sentences"]
    assert summ.textrank({**pair, "sentences": ["Only one."]}, tfidf) == "Only one."
    with pytest.raises(ValueError, match="no sentences"):
        summ.lead({**pair, "sentences": []})


# -- the pointer-generator -------------------------------------------------------------------------
PAIRS = [{"id": str(i), "document": f"The zork{i} function adds numbers. It is fast.",
          "summary": f"Adds numbers with zork{i}."} for i in range(8)]


def _vocab():
    return WordVocabulary.from_texts(["the function adds numbers . it is fast with"])


def test_encode_pairs_gives_unknown_words_copyable_ids():
    vocab = _vocab()
    arrays, oovs = encode_pairs(PAIRS[:2], vocab, max_document=12, max_summary=6)
    assert oovs == [["zork0"], ["zork1"]]
    source_ext, target = arrays["source_ext"][0], arrays["target"][0]
    assert source_ext[1] == vocab.size and arrays["source"][0, 1] == vocab.UNK
    assert vocab.decode(target, oovs[0]) == "adds numbers with zork0 ."
    assert arrays["decoder_in"][0, 0] == vocab.BOS and vocab.EOS in target
    # an unknown summary word that is not in the document cannot be copied: UNK
    arrays, _ = encode_pairs([{"document": "it is fast", "summary": "blorp"}], vocab)
    assert arrays["target"][0, 0] == vocab.UNK
    with pytest.raises(ValueError, match="empty document"):
        encode_pairs([{"document": "  ", "summary": "x"}], vocab)


def test_pointer_mixture_is_a_distribution_that_copies():
    vocab = _vocab()
    arrays, oovs = encode_pairs(PAIRS[:3], vocab)
    keras.utils.set_random_seed(0)
    model = PointerGenerator(vocab.size, embedding_dim=8, units=8)
    states, state, mask = model.encode(arrays["source"])
    p_vocab, attention, p_gen, _ = model.decode(arrays["decoder_in"][:, :1], state, states, mask)
    mixed = model.next_word_distribution(p_vocab[:, 0], attention[:, 0], p_gen[:, 0],
                                         arrays["source_ext"], 1).numpy()
    assert mixed.shape == (3, vocab.size + 1) and np.allclose(mixed.sum(-1), 1, atol=1e-5)
    want = np.concatenate([p_gen[0, 0].numpy() * p_vocab[0, 0].numpy(), [0.0]])
    np.add.at(want, arrays["source_ext"][0],
              (1 - p_gen[0, 0].numpy()) * attention[0, 0].numpy() * (arrays["source"][0] > 0))
    assert np.allclose(mixed[0], want, atol=1e-6)
    assert model(arrays).shape == arrays["target"].shape
    config = model.get_config()
    assert PointerGenerator.from_config(config).get_config() == config


def test_without_copy_an_unknown_word_is_scored_as_unk():
    vocab = _vocab()
    arrays, _ = encode_pairs(PAIRS[:1], vocab)
    model = PointerGenerator(vocab.size, embedding_dim=8, units=8, copy=False)
    as_unk = dict(arrays, target=np.where(arrays["target"] < vocab.size, arrays["target"],
                                          vocab.UNK))
    assert np.allclose(model(arrays), model(as_unk))


@pytest.mark.slow
def test_pointer_generator_learns_to_copy_unknown_names():
    vocab = _vocab()
    arrays, oovs = encode_pairs(PAIRS, vocab)
    keras.utils.set_random_seed(0)
    model = PointerGenerator(vocab.size, embedding_dim=16, units=16, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(pair_dataset(arrays, batch_size=8), epochs=60, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    written = greedy_summaries(model, arrays, oovs, vocab, max_length=8)
    assert sum(f"zork{i}" in s for i, s in enumerate(written)) >= 6, written


def test_greedy_summaries_never_repeat_a_trigram():
    vocab = _vocab()
    arrays, oovs = encode_pairs(PAIRS[:4], vocab)
    keras.utils.set_random_seed(1)
    model = PointerGenerator(vocab.size, embedding_dim=8, units=8)
    for summary in greedy_summaries(model, arrays, oovs, vocab, max_length=20):
        words = summary.split()
        trigrams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
        assert len(trigrams) == len(set(trigrams)), summary
    with pytest.raises(ValueError, match="max_length"):
        greedy_summaries(model, arrays, oovs, vocab, max_length=0)


# -- the BERT-style sentence picker ----------------------------------------------------------------
SENTENCE_PAIRS = [{"id": str(i), "sentences": ["It is fast.", "The function adds numbers.",
                                               "It is fast with numbers."]} for i in range(6)]


def test_encode_sentences_marks_each_cls_and_labels_what_fits():
    vocab = _vocab()
    batch = encode_sentences(SENTENCE_PAIRS[:1], vocab, max_length=12, max_sentences=4,
                             sentence_scores=[[0.1, 0.2, 0.9]])
    tokens = batch["tokens"][0]
    assert list(tokens[batch["cls"][0][batch["sentence_mask"][0]]]) == [vocab.CLS, vocab.CLS]
    assert batch["sentence_mask"][0].sum() == 2  # the third sentence does not fit in 12
    assert batch["label"][0] == 1  # the best of the two that fit
    assert list(batch["segments"][0][:5]) == [0, 0, 0, 0, 0] and batch["segments"][0][6] == 1
    with pytest.raises(ValueError, match="no sentences"):
        encode_sentences([{"id": "e", "sentences": []}], vocab)


def test_mask_tokens_follows_bert():
    tokens = np.tile(np.arange(7, 107), (200, 1))
    tokens[:, :3] = [WordVocabulary.CLS, WordVocabulary.PAD, WordVocabulary.SEP]
    corrupted, chosen = mask_tokens(tokens, vocab_size=107, rate=0.15, seed=0)
    assert not chosen[:, :3].any()
    assert abs(chosen.mean() - 0.15 * 97 / 100) < 0.01
    masked = (corrupted == WordVocabulary.MASK)[chosen].mean()
    kept = (corrupted == tokens)[chosen].mean()
    assert abs(masked - 0.8) < 0.03 and 0.08 < kept < 0.13  # 10% kept + random hits itself
    assert (corrupted[~chosen] == tokens[~chosen]).all()


def test_encoder_pretraining_and_picking_run_and_check_lengths():
    vocab = _vocab()
    batch = encode_sentences(SENTENCE_PAIRS, vocab, max_length=16, max_sentences=3,
                             sentence_scores=[[0, 1, 0]] * 6)
    keras.utils.set_random_seed(0)
    encoder = TextEncoder(vocab.size, max_length=16, width=16, num_layers=1, num_heads=2)
    bert = MaskedLanguageModel(encoder)
    bert.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = bert.fit(mlm_dataset(batch["tokens"], batch["segments"], vocab.size, 3, rate=0.5),
                       epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    picker = SentenceScorer(encoder)
    picker.compile(optimizer=keras.optimizers.Adam(1e-2))
    import tensorflow as tf

    picker.fit(tf.data.Dataset.from_tensor_slices(batch).batch(6), epochs=15, verbose=0)
    assert (picker.pick(batch) == 1).all()
    # metrics are means over examples, not over batches: batches of 5 and 1 here
    batch["label"] = np.array([1, 1, 1, 1, 1, 0], np.int32)
    scores = picker.evaluate(tf.data.Dataset.from_tensor_slices(batch).batch(5), verbose=0,
                             return_dict=True)
    assert np.isclose(scores["accuracy"], 5 / 6)
    config = encoder.get_config()
    assert TextEncoder.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="longer than"):
        encoder(np.ones((1, 17), np.int32), np.zeros((1, 17), np.int32))
