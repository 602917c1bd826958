"""Joining two readings that overlap where a cut fell inside speech: pure, with made-up text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.transcript.engine import Segment
from callbridge.transcript.junction import join_readings


def test_the_readings_are_joined_on_the_words_they_share() -> None:
    # Cut at 5.0 s in "...eighteen million dollars up...": each piece read 1.2 s into the other.
    first = [Segment(0.0, 6.2, "Revenue was two hundred eighteen million dol.")]
    second = [Segment(3.8, 9.0, "Eighteen million dollars up twelve percent.")]
    joined = join_readings(first, second, cut=5.0, overlap=1.2)
    text = " ".join(s.text for s in joined)
    assert text == "Revenue was two hundred eighteen million dollars up twelve percent."
    assert joined[0].start == 0.0 and joined[-1].end == 9.0
    assert joined[0].end <= joined[1].start + 1e-9


def test_one_word_read_two_ways_inside_the_run_still_joins() -> None:
    first = [Segment(0.0, 6.0, "net loss per share was thirty one sense and we")]
    second = [Segment(4.0, 9.0, "Share was thirty one cents and we ended the quarter.")]
    joined = join_readings(first, second, cut=5.0, overlap=1.2)
    words = " ".join(s.text for s in joined).split()
    assert words[:3] == ["net", "loss", "per"] and words[-3:] == ["ended", "the", "quarter."]
    assert words.count("thirty") == 1 and words.count("and") == 1


def test_readings_that_do_not_agree_keep_their_own_side_of_the_cut() -> None:
    first = [Segment(0.0, 4.0, "alpha bravo charlie delta"), Segment(4.0, 6.0, "echo foxtrot")]
    second = [Segment(4.0, 6.0, "golf hotel"), Segment(6.0, 8.0, "india juliet")]
    joined = join_readings(first, second, cut=5.0, overlap=1.0)
    # Each keeps its side; "echo" ends no sentence, so it and "hotel" are one segment.
    texts = [s.text for s in joined]
    assert texts == ["alpha bravo charlie delta", "echo hotel", "india juliet"]
    assert joined[1] == Segment(4.0, 6.0, "echo hotel")


def test_a_reading_with_nothing_leaves_the_other_whole() -> None:
    other = [Segment(3.8, 9.0, "eighteen million dollars")]
    assert join_readings([], other, 5.0, 1.2) == other
    assert join_readings(other, [], 5.0, 1.2) == other


def test_an_inaudible_stretch_keeps_its_side_of_the_cut() -> None:
    first = [Segment(0.0, 6.2, "[inaudible]")]
    second = [Segment(3.8, 9.0, "million dollars up twelve percent")]
    joined = join_readings(first, second, 5.0, 1.2)
    # No words to join on: the stretch is inaudible up to the cut, and read after it.
    assert joined[0] == Segment(0.0, 5.0, "[inaudible]")
    assert " ".join(s.text for s in joined[1:]) == "dollars up twelve percent"
    assert joined[1].start == 5.0


VOCABULARY = [f"w{n}" for n in range(60)]


@settings(max_examples=150, deadline=None)
@given(
    # Words once each: a run of one word said again and again has no one alignment.
    st.lists(st.sampled_from(VOCABULARY), min_size=12, max_size=40, unique=True),
    st.floats(0.3, 0.7),
    st.booleans(),
    st.booleans(),
)
def test_every_word_comes_back_once_when_the_overlap_holds_enough_of_them(
    words: list[str], where: float, clip_first: bool, clip_second: bool
) -> None:
    """Words 0.4 s each; the cut somewhere in the middle; each reading garbles (or not)
    the one word its edge clips; the overlap (1.2 s each way) holds six words."""
    step, overlap = 0.4, 1.2
    times = [(k * step, (k + 1) * step) for k in range(len(words))]
    cut = round(where * len(words)) * step + step / 2  # inside a word
    said_first = [(w, t) for w, t in zip(words, times, strict=True) if t[0] < cut + overlap]
    said_second = [(w, t) for w, t in zip(words, times, strict=True) if t[1] > cut - overlap]
    if clip_first:
        said_first[-1] = ("garbled", said_first[-1][1])
    if clip_second:
        said_second[0] = ("garbled", said_second[0][1])
    first = [Segment(said_first[0][1][0], said_first[-1][1][1], " ".join(w for w, _ in said_first))]
    second = [
        Segment(said_second[0][1][0], said_second[-1][1][1], " ".join(w for w, _ in said_second))
    ]
    joined = join_readings(first, second, cut, overlap)
    assert " ".join(s.text for s in joined).split() == words


def test_a_phrase_said_twice_near_the_cut_is_joined_where_it_was_said() -> None:
    first = [Segment(0.0, 6.2, "up 12% to $42 million dollars and $43 million dollars in")]
    second = [Segment(3.8, 10.0, "$43 million dollars in cash at the end of the quarter.")]
    joined = join_readings(first, second, cut=5.0, overlap=1.2)
    assert " ".join(s.text for s in joined) == (
        "up 12% to $42 million dollars and $43 million dollars in cash at the end of the quarter."
    )


def test_the_readings_are_not_joined_inside_a_figure() -> None:
    # The shared run's middle is "seven hundred | twenty three billion": joined at the comma.
    said = "six hundred twenty nine million dollars, seven hundred twenty three billion"
    first = [Segment(35.2, 41.2, said)]
    heard = "dollars, seven hundred twenty three billion dollars, one hundred three million"
    second = [Segment(38.8, 45.3, heard)]
    joined = join_readings(first, second, cut=40.0, overlap=1.2)
    assert joined[0].text == "six hundred twenty nine million dollars,"
    assert joined[1].text.startswith("seven hundred twenty three billion dollars,")
    assert " ".join(s.text for s in joined).count("seven hundred") == 1
