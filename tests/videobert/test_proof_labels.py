"""The proof's ground truth: the shape a generated video shows, read from its sentence."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from videobert_cbt_proof import shape_of  # noqa: E402


def item(text: str) -> SimpleNamespace:
    return SimpleNamespace(name="v.mp4", segments=[SimpleNamespace(text=text)])


def test_shape_is_read_from_whole_words():
    # "across" holds "cross": a substring match would call this box a square and a cross
    assert shape_of(item("a box in emerald moves to the left across the screen")) == "square"
    assert shape_of(item("growing, an azure plus sign")) == "cross"
    assert shape_of(item("the three-sided shape, which is red, sinks")) == "triangle"


def test_a_sentence_without_one_shape_is_refused():
    with pytest.raises(ValueError, match="cannot tell the shape"):
        shape_of(item("something moves"))
