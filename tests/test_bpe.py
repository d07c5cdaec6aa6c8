"""Byte-pair encoding: merges as in Sennrich et al. (2016), exact round trips, clear errors."""

import numpy as np
import pytest

from course_lib.data import BPETokenizer, load_pydoc_text


def test_merges_follow_pair_frequency():
    # "lo" is the most frequent pair (6 times), then "low" (5 with the space: " low")
    text = "low low low low low lower lower newest newest widest"
    tokenizer = BPETokenizer.train(text, vocab_size=20)
    assert tokenizer.merges[0] == ("l", "o") or tokenizer.merges[0] == (" ", "l")
    assert " low" in tokenizer.tokens_
    assert tokenizer.tokens(tokenizer.encode(" low")) == [" low"]
    assert tokenizer.size <= 20


def test_round_trip_on_real_text_and_any_script():
    train, validation = load_pydoc_text("train")[:60000], load_pydoc_text("validation")[:5000]
    tokenizer = BPETokenizer.train(train, vocab_size=400)
    assert tokenizer.size == 400
    ids = tokenizer.encode(validation, unknown="map")
    known = "".join(c if c in tokenizer.ids else tokenizer.UNKNOWN_CHAR for c in validation)
    assert tokenizer.decode(ids) == known
    assert len(ids) < 0.6 * len(validation)  # subwords are shorter than characters
    chinese = "生成模型学习数据的分布。生成模型可以生成新的数据。"
    zh = BPETokenizer.train(chinese, vocab_size=30)
    assert zh.decode(zh.encode(chinese)) == chinese
    assert len(zh.encode(chinese)) < len(chinese)


def test_deterministic_and_serialisable():
    text = load_pydoc_text("train")[:20000]
    a, b = BPETokenizer.train(text, 300), BPETokenizer.train(text, 300)
    assert a.merges == b.merges
    c = BPETokenizer.from_config(a.get_config())
    sample = text[5000:6000]
    assert np.array_equal(c.encode(sample), a.encode(sample)) and c.tokens_ == a.tokens_


def test_clear_errors():
    tokenizer = BPETokenizer.train("abc abc", vocab_size=6)
    with pytest.raises(ValueError, match="not in the tokenizer's alphabet: 'z'"):
        tokenizer.encode("abz")
    assert tokenizer.encode("abz", unknown="map")[-1] == tokenizer.UNKNOWN
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer.train("", 10)
    with pytest.raises(ValueError, match="smaller than the text's alphabet"):
        BPETokenizer.train("abcdef", 3)
    with pytest.raises(ValueError, match="ids must be in"):
        tokenizer.decode([99])
    with pytest.raises(ValueError, match="earlier merge"):
        BPETokenizer("ab", [("ab", "c")])
