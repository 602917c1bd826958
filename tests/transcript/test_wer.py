from __future__ import annotations

import pytest

from callbridge.transcript.wer import normalise, number_words, word_error_rate, word_errors


def test_identical_up_to_case_and_punctuation() -> None:
    assert word_error_rate("Good morning, everyone.", "good morning everyone") == 0.0
    assert word_error_rate("We don't guide.", "we don’t guide") == 0.0


def test_each_kind_of_error_is_counted() -> None:
    result = word_errors("the cat sat on the mat", "the cat sat on a mat today")
    assert (result.substitutions, result.deletions, result.insertions) == (1, 0, 1)
    assert result.wer == pytest.approx(2 / 6)
    result = word_errors("one two three four", "one three")
    assert (result.substitutions, result.deletions, result.insertions) == (0, 2, 0)
    assert word_error_rate("a b", "c d e f") == pytest.approx(2.0)


def test_empty_reference() -> None:
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "hello there") == 2.0


def test_numbers_are_optional() -> None:
    reference = "Revenue grew twelve percent to four point two billion"
    hypothesis = "Revenue grew 12% to 4.2 billion"
    assert word_error_rate(reference, hypothesis) > 0.3
    assert word_error_rate(reference, hypothesis, numbers=True) == 0.0
    assert normalise("12,000 units", numbers=True) == ["twelve", "thousand", "units"]
    assert normalise("4.2 and 12,000") == ["42", "and", "12000"]


def test_number_words() -> None:
    assert number_words(0) == "zero"
    assert number_words(40) == "forty"
    assert number_words(1205) == "one thousand two hundred five"
    assert number_words(3_000_000_017) == "three billion seventeen"


def test_contractions_and_compounds_are_scored_as_the_same_words() -> None:
    assert word_error_rate("I am sorry, that's not valid.", "I'm sorry that is not valid") == 0.0
    assert word_error_rate("You can not send audio", "you cannot send audio") == 0.0
    assert word_error_rate("the user's mail box", "the user's mailbox") == 0.0
    assert word_error_rate("press three to rerecord", "press three to re record") == 0.0
    # "log in" is "login"; "and correct" stays two errors for "incorrect".
    assert word_errors("login incorrect", "log in and correct").errors == 2
    assert word_errors("mail box", "mail box").reference_words == 2  # no compound to match
