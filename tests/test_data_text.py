"""Text data: the bundled help text, your own files, characters as ids, training windows."""

import numpy as np
import pytest

from course_lib.data import text


def test_pydoc_splits_are_contiguous_disjoint_and_cover_the_text():
    parts = [text.load_pydoc_text(split) for split in text.SPLITS]
    whole = text.split_text("".join(parts), "train", (1.0, 0.0, 0.0))
    assert "".join(parts) == whole
    sizes = np.array([len(p) for p in parts]) / len(whole)
    assert np.allclose(sizes, text.FRACTIONS, atol=0.01), sizes
    assert len(whole) > 300_000 and "assert" in parts[0]
    # repeated paragraphs are dropped: validation is not a copy of the training text
    pieces = [parts[1][i:i + 40] for i in range(0, len(parts[1]) - 40, 97)]
    assert np.mean([piece in parts[0] for piece in pieces]) < 0.2
    with pytest.raises(ValueError, match="split must be one of"):
        text.load_pydoc_text("valid")


def test_split_text_cuts_at_line_breaks():
    lines = "".join(f"line {i}\n" for i in range(100))
    train, validation, test = (text.split_text(lines, s) for s in text.SPLITS)
    assert train + validation + test == lines
    assert train.endswith("\n") and validation.endswith("\n") and validation.startswith("line")
    with pytest.raises(ValueError, match="summing to 1"):
        text.split_text(lines, "train", (0.5, 0.5, 0.5))


def test_text_files_any_script_and_clear_errors(tmp_path):
    chinese = tmp_path / "poem.txt"
    chinese.write_text("床前明月光，疑是地上霜。\n", encoding="utf-8")
    assert text.load_text_file(chinese).startswith("床前明月光")
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffhello".encode("utf-8"))
    assert text.load_text_file(bom) == "hello"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        text.load_text_file(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError, match="folder"):
        text.load_text_file(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="no text"):
        text.load_text_file(empty)
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("床前明月光".encode("gbk"))
    with pytest.raises(ValueError, match="not UTF-8.*iconv"):
        text.load_text_file(gbk)


def test_vocabulary_round_trips_and_names_unknown_characters():
    vocab = text.CharVocabulary.from_text("hello world")
    assert vocab.size == len(set("hello world")) + 1
    ids = vocab.encode("hold")
    assert ids.dtype == np.int32 and vocab.decode(ids) == "hold"
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("zoo")
    assert vocab.encode("zoo", unknown="map")[0] == text.CharVocabulary.UNKNOWN
    assert vocab.decode(vocab.encode("zoo", unknown="map")) == "\ufffdoo"
    again = text.CharVocabulary.from_config(vocab.get_config())
    assert again.characters == vocab.characters
    with pytest.raises(ValueError, match="ids must be in"):
        vocab.decode([vocab.size])


def test_char_windows_shift_targets_by_one():
    ids = np.arange(1, 41, dtype=np.int32)  # 40 ids: 4 windows of 10
    batches = list(text.char_windows(ids, seq_len=9, batch_size=2, shuffle=False))
    assert len(batches) == 2
    x, y = (b.numpy() for b in batches[0])
    assert x.shape == y.shape == (2, 9)
    assert np.array_equal(y[:, :-1], x[:, 1:]) and x[0, 0] == 1 and y[0, -1] == 10
    with pytest.raises(ValueError, match="fewer than one batch"):
        text.char_windows(ids, seq_len=30, batch_size=2)
