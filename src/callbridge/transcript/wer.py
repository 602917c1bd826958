"""Word error rate: how far a transcript is from what was said.

WER = (substitutions + deletions + insertions) / words in the reference, on
words normalised for case and punctuation. With ``numbers=True`` numerals are
spelt out first ("12%" → "twelve percent", "4.2" → "four point two"), so an
engine that writes digits is not charged for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def number_words(value: int) -> str:
    """English words for a non-negative integer ("1205" → "one thousand two hundred five")."""
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if value >= scale:
            head, rest = divmod(value, scale)
            return f"{number_words(head)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _spell_number(match: re.Match[str]) -> str:
    whole, fraction, percent = match.group(1), match.group(2), match.group(3)
    words = number_words(int(whole.replace(",", "")))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    if percent:
        words += " percent"
    return f" {words} "


_NUMBER = re.compile(r"(\d[\d,]*)(?:\.(\d+))?\s*(%)?")


def normalise(text: str, *, numbers: bool = False) -> list[str]:
    """Lower-case words without punctuation; apostrophes inside words are kept ("don't")."""
    text = text.lower().replace("\u2019", "'")
    if numbers:
        text = _NUMBER.sub(_spell_number, text)
    else:
        # "4.2" and "12,000" stay one word each.
        text = re.sub(r"(?<=\d)[.,](?=\d)", "", text.replace("%", " percent "))
    words = re.findall(r"[\w]+(?:'[\w]+)*", text)
    return words


@dataclass(frozen=True)
class WerResult:
    """The edit counts behind a word error rate."""

    reference_words: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        if self.reference_words == 0:
            return 0.0 if self.insertions == 0 else float(self.insertions)
        return self.errors / self.reference_words


# Spelt either way by engines and transcribers alike, and scored as the same words, as
# NIST's scoring tool does with its global mapping files: contractions are
# scored as their full forms, and two words as the compound the other text writes.
_CONTRACTIONS = {
    "i'm": "i am",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "that's": "that is",
    "it's": "it is",
    "there's": "there is",
    "what's": "what is",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "isn't": "is not",
    "aren't": "are not",
    "i'll": "i will",
    "you'll": "you will",
    "we'll": "we will",
    "i've": "i have",
    "we've": "we have",
    "you've": "you have",
    "let's": "let us",
}


def _expanded(words: list[str]) -> list[str]:
    return [part for word in words for part in _CONTRACTIONS.get(word, word).split()]


def _compounds(words: list[str], other: set[str]) -> list[str]:
    """``words`` with each pair that ``other`` writes as one word ("mail box") joined."""
    out: list[str] = []
    index = 0
    while index < len(words):
        pair = "".join(words[index : index + 2])
        if index + 1 < len(words) and pair in other:
            out.append(pair)
            index += 2
        else:
            out.append(words[index])
            index += 1
    return out


def word_errors(
    reference: str, hypothesis: str, *, numbers: bool = False, strict: bool = False
) -> WerResult:
    """Minimum-edit alignment of the two texts' words (Levenshtein over words), with
    contractions and compounds scored as the same words (above) unless ``strict``."""
    ref = normalise(reference, numbers=numbers)
    hyp = normalise(hypothesis, numbers=numbers)
    if not strict:
        ref, hyp = _expanded(ref), _expanded(hyp)
        ref, hyp = _compounds(ref, set(hyp)), _compounds(hyp, set(ref))
    # Each cell holds (total edits, substitutions, deletions, insertions).
    previous = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i, ref_word in enumerate(ref, start=1):
        current = [(i, 0, i, 0)]
        for j, hyp_word in enumerate(hyp, start=1):
            diagonal = previous[j - 1]
            if ref_word == hyp_word:
                best = diagonal
            else:
                best = (diagonal[0] + 1, diagonal[1] + 1, diagonal[2], diagonal[3])
            up = previous[j]  # a reference word missing from the hypothesis
            if up[0] + 1 < best[0]:
                best = (up[0] + 1, up[1], up[2] + 1, up[3])
            left = current[j - 1]  # a word the hypothesis added
            if left[0] + 1 < best[0]:
                best = (left[0] + 1, left[1], left[2], left[3] + 1)
            current.append(best)
        previous = current
    _, substitutions, deletions, insertions = previous[-1]
    return WerResult(len(ref), substitutions, deletions, insertions)


def word_error_rate(reference: str, hypothesis: str, *, numbers: bool = False) -> float:
    """(S + D + I) / N over normalised words; 0.0 for a perfect transcript, may exceed 1."""
    return word_errors(reference, hypothesis, numbers=numbers).wer
