"""Text metrics checked on strings whose answers are known by hand."""

import numpy as np
import pytest

from course_lib import text_metrics


def test_repetition_and_distinct_n():
    assert text_metrics.repetition_rate("abcdefghijklmnop", width=3) == 0.0
    assert np.isclose(text_metrics.repetition_rate("abababab", width=2), 5 / 7)  # ab ba ab...
    assert text_metrics.distinct_n([[1, 2, 3, 4, 5]], n=2) == 1.0
    assert np.isclose(text_metrics.distinct_n([[1, 1, 1, 1], [1, 1, 1]], n=2), 1 / 5)
    with pytest.raises(ValueError, match="no sequence is 4 tokens long"):
        text_metrics.distinct_n([[1, 2]], n=4)


def test_copied_fraction_counts_only_worded_pieces():
    reference = "the quick brown fox jumps over the lazy dog"
    assert text_metrics.copied_fraction("quick brown fox", reference, width=5) == 1.0
    assert text_metrics.copied_fraction("qzxkv wqplm trsnb", reference, width=5) == 0.0
    # half copied: the first 8 characters are in the reference, the rest are not
    assert np.isclose(text_metrics.copied_fraction("lazy dogzzzzzzzz", reference, width=8),
                      1 / 9)
    assert text_metrics.copied_fraction("--------  ", reference, width=5) == 0.0  # no letters


def test_lzma_reuses_what_it_was_given():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefghij"), 3000))
    alone = text_metrics.lzma_bits_per_char(text)
    given = text_metrics.lzma_bits_per_char(text, given=text)  # a copy costs almost nothing
    assert given < 0.1 < 2.5 < alone < 8
    with pytest.raises(ValueError, match="empty"):
        text_metrics.lzma_bits_per_char("")
