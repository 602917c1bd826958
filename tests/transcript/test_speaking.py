"""Who spoke when: the live captions' speaker timeline (``transcript.speaking``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callbridge.transcript.speaking import MAX_CHANGES, SpeakerTimeline, Talkers, labels_of


def timeline(*changes: tuple[int, tuple[str, ...]]) -> SpeakerTimeline:
    speakers = SpeakerTimeline()
    for at, labels in changes:
        speakers.add(Talkers(at, labels))
    return speakers


def test_the_longest_talker_names_the_span() -> None:
    speakers = timeline(
        (0, ("Mark Chen",)), (8000, ("Mark Chen", "Ana Ruiz")), (12000, ("Ana Ruiz",))
    )
    assert speakers.label(0, 8000) == "Mark Chen"
    assert speakers.label(8000, 16000) == "Ana Ruiz"  # 0.5 s both, then 0.5 s Ana alone
    assert speakers.label(4000, 12000) == "Mark Chen"
    assert speakers.label(20000, 30000) == "Ana Ruiz"  # the last change holds on


def test_an_unnamed_or_absent_talker_gives_no_label() -> None:
    speakers = timeline((0, ("",)), (8000, ()), (16000, ("Mark Chen",)))
    assert speakers.label(0, 8000) is None  # talking, nobody named them
    assert speakers.label(8000, 16000) is None  # nobody talking
    assert speakers.label(0, 7000) is None
    assert speakers.label(14000, 24000) == "Mark Chen"
    assert speakers.label(5, 5) is None and SpeakerTimeline().label(0, 100) is None


def test_a_change_back_in_time_replaces_what_followed() -> None:
    """A restarted packager counts from an earlier sample: its changes win."""
    speakers = timeline((0, ("A",)), (8000, ("B",)), (16000, ("C",)))
    speakers.add(Talkers(4000, ("D",)))
    assert len(speakers) == 2
    assert speakers.label(8000, 24000) == "D"


def test_old_changes_are_forgotten_past_the_limit() -> None:
    speakers = SpeakerTimeline(max_changes=3)
    for at in range(5):
        speakers.add(Talkers(at * 100, (f"S{at}",)))
    assert len(speakers) == 3
    assert speakers.label(0, 150) is None  # before the oldest kept change
    assert speakers.label(400, 500) == "S4"
    assert MAX_CHANGES >= 1000


def test_labels_are_names_in_order_and_blank_for_the_unnamed() -> None:
    names = {"p1": "Mark Chen", "p3": "Ana Ruiz"}
    assert labels_of(["p3", "p2", "p1"], names) == ("", "Ana Ruiz", "Mark Chen")


labels = st.sampled_from(["", "A", "B", "C"])
changes = st.lists(
    st.tuples(st.integers(0, 100_000), st.lists(labels, max_size=3).map(tuple)), max_size=30
)


@given(changes, st.integers(0, 100_000), st.integers(1, 50_000))
def test_a_label_is_one_that_spoke_in_the_span(
    made: list[tuple[int, tuple[str, ...]]], start: int, length: int
) -> None:
    speakers = SpeakerTimeline()
    for at, said in sorted(made):
        speakers.add(Talkers(at, said))
    label = speakers.label(start, start + length)
    if label is not None:
        kept = sorted(made)
        # It talked in a change that reached into the span.
        assert any(
            label in said
            and at < start + length
            and (index + 1 == len(kept) or kept[index + 1][0] > start)
            for index, (at, said) in enumerate(kept)
        )
