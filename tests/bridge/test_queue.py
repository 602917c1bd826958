"""The question queue's state machine: every listed move, and every unlisted one raising."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callbridge.bridge.queue import (
    TRANSITIONS,
    WRITTEN_TRANSITIONS,
    Asked,
    Floor,
    Move,
    QuestionQueue,
    QueueFull,
    QueueTransitionError,
)


def queue_with(*listeners: str, speakers: tuple[str, ...] = ()) -> QuestionQueue:
    queue = QuestionQueue()
    for pid in listeners:
        queue.arrive(pid, speaking=False)
    for pid in speakers:
        queue.arrive(pid, speaking=True)
    return queue


def test_a_listener_queues_withdraws_and_queues_again() -> None:
    queue = queue_with("a", "b")
    queue.raise_hand("a")
    queue.raise_hand("b")
    assert queue.order == ["a", "b"]
    assert queue.floor("a") is Floor.QUEUED
    queue.withdraw("a")
    assert (queue.order, queue.floor("a")) == (["b"], Floor.LISTENING)
    queue.raise_hand("a")
    assert queue.order == ["b", "a"]
    assert queue.position("a") == 1 and queue.position("nobody") is None


def test_the_moderator_reorders_dequeues_opens_and_closes() -> None:
    queue = queue_with("a", "b", "c")
    for pid in ("a", "b", "c"):
        queue.raise_hand(pid)
    queue.reorder("c", 0)
    assert queue.order == ["c", "a", "b"]
    queue.reorder("c", 99)  # clamped to the end
    assert queue.order == ["a", "b", "c"]
    queue.reorder("b", -5)  # clamped to the front
    assert queue.order == ["b", "a", "c"]
    queue.dequeue("a")
    assert queue.order == ["b", "c"] and queue.floor("a") is Floor.LISTENING
    queue.open_line("b")  # out of the queue, on the air
    assert queue.order == ["c"] and queue.floor("b") is Floor.ON_AIR
    queue.close_line("b")
    assert queue.floor("b") is Floor.LISTENING and queue.order == ["c"]
    queue.open_line("a")  # a listener who never queued may be given the floor too
    assert queue.floor("a") is Floor.ON_AIR


def test_leaving_from_every_place_clears_the_queue() -> None:
    queue = queue_with("listening", "queued", "on_air", speakers=("ceo",))
    queue.raise_hand("queued")
    queue.open_line("on_air")
    for pid in ("listening", "queued", "on_air", "ceo"):
        queue.leave(pid)
        assert queue.floor(pid) is Floor.LEFT
    assert queue.order == [] and len(queue) == 0


def place(floor: Floor) -> tuple[QuestionQueue, str]:
    """A queue with one caller "x" standing at ``floor``."""
    queue = queue_with(speakers=("x",)) if floor is Floor.SPEAKING else queue_with("x")
    if floor is Floor.QUEUED:
        queue.raise_hand("x")
    elif floor is Floor.ON_AIR:
        queue.open_line("x")
    elif floor is Floor.LEFT:
        queue.leave("x")
    return queue, "x"


MOVES: dict[Move, Callable[[QuestionQueue, str], None]] = {
    Move.RAISE_HAND: QuestionQueue.raise_hand,
    Move.WITHDRAW: QuestionQueue.withdraw,
    Move.DEQUEUE: QuestionQueue.dequeue,
    Move.REORDER: lambda queue, pid: queue.reorder(pid, 0),
    Move.OPEN_LINE: QuestionQueue.open_line,
    Move.CLOSE_LINE: QuestionQueue.close_line,
    Move.PROMOTE: QuestionQueue.promote,
    Move.DEMOTE: QuestionQueue.demote,
    Move.LEAVE: QuestionQueue.leave,
    Move.READ_OUT: QuestionQueue.read_out,
    Move.ANSWER: lambda queue, pid: queue.settle(pid, Move.ANSWER),
    Move.DISMISS: lambda queue, pid: queue.settle(pid, Move.DISMISS),
}


@pytest.mark.parametrize("floor", list(Floor))
@pytest.mark.parametrize("move", list(Move))
def test_every_move_goes_where_the_table_says_or_raises(floor: Floor, move: Move) -> None:
    queue, pid = place(floor)
    assert queue.floor(pid) is floor
    before = queue.order
    target = TRANSITIONS[floor].get(move)
    if target is None:
        with pytest.raises(QueueTransitionError) as raised:
            MOVES[move](queue, pid)
        assert (raised.value.floor, raised.value.move) == (floor, move)
        # A refused move changes nothing.
        assert queue.floor(pid) is floor and queue.order == before
        assert not queue.allows(pid, move)
    else:
        assert queue.allows(pid, move)
        MOVES[move](queue, pid)
        assert queue.floor(pid) is target
        assert (pid in queue.order) == (target is Floor.QUEUED)


def test_the_table_lists_every_place() -> None:
    assert set(TRANSITIONS) == set(Floor)
    # Anyone on the call may leave, whatever their place; after that nothing moves.
    on_the_call = [moves for floor, moves in TRANSITIONS.items() if floor is not Floor.LEFT]
    assert all(Move.LEAVE in moves for moves in on_the_call)
    assert TRANSITIONS[Floor.LEFT] == {}


def test_a_caller_the_queue_does_not_know_raises() -> None:
    queue = QuestionQueue()
    for move, run in MOVES.items():
        with pytest.raises(QueueTransitionError, match="not on the call"):
            run(queue, "stranger")
        assert not queue.allows("stranger", move)
    assert queue.floor("stranger") is None


def test_arriving_twice_is_a_bug() -> None:
    queue = queue_with("a")
    with pytest.raises(ValueError):
        queue.arrive("a", speaking=False)


def test_the_queue_has_a_limit() -> None:
    queue = QuestionQueue(limit=2)
    for pid in "abc":
        queue.arrive(pid, speaking=False)
    queue.raise_hand("a")
    queue.raise_hand("b")
    with pytest.raises(QueueFull):
        queue.raise_hand("c")
    assert queue.floor("c") is Floor.LISTENING and queue.order == ["a", "b"]


# -- written questions --------------------------------------------------------------------------


def asked_at(asked: Asked) -> tuple[QuestionQueue, str]:
    """A queue with a caller and a written question "q1" standing at ``asked``."""
    queue = queue_with("a")
    queue.raise_hand("a")
    queue.ask_in_writing("q1")
    if asked is Asked.READING:
        queue.read_out("q1")
    elif asked is not Asked.WAITING:
        queue.settle("q1", Move.ANSWER if asked is Asked.ANSWERED else Move.DISMISS)
    return queue, "q1"


@pytest.mark.parametrize("asked", list(Asked))
@pytest.mark.parametrize("move", list(Move))
def test_a_written_question_moves_where_its_table_says_or_raises(asked: Asked, move: Move) -> None:
    queue, qid = asked_at(asked)
    assert queue.asked(qid) is asked
    before = queue.order
    target = WRITTEN_TRANSITIONS[asked].get(move)
    if target is None:
        with pytest.raises(QueueTransitionError):
            MOVES[move](queue, qid)
        assert queue.asked(qid) is asked and queue.order == before
    else:
        MOVES[move](queue, qid)
        assert queue.asked(qid) is target
        assert (qid in queue.order) == (target in (Asked.WAITING, Asked.READING))


def test_written_questions_wait_in_one_order_with_the_callers() -> None:
    queue = queue_with("a", "b")
    queue.raise_hand("a")
    queue.ask_in_writing("q1")
    queue.raise_hand("b")
    assert queue.order == ["a", "q1", "b"]
    queue.reorder("q1", 0)
    assert queue.order == ["q1", "a", "b"]
    queue.reorder("b", 1)
    assert queue.order == ["q1", "b", "a"]
    queue.read_out("q1")
    assert queue.order[0] == "q1" and queue.asked("q1") is Asked.READING
    queue.settle("q1", Move.ANSWER)
    assert queue.order == ["b", "a"] and queue.asked("q1") is Asked.ANSWERED
    with pytest.raises(ValueError, match="already"):
        queue.ask_in_writing("q1")


def test_reading_a_question_out_puts_it_first() -> None:
    queue = queue_with("a")
    queue.raise_hand("a")
    queue.ask_in_writing("q1")
    queue.ask_in_writing("q2")
    queue.read_out("q2")
    assert queue.order == ["q2", "a", "q1"]


def test_written_questions_count_towards_the_limit() -> None:
    queue = QuestionQueue(limit=1)
    queue.ask_in_writing("q1")
    with pytest.raises(QueueFull):
        queue.ask_in_writing("q2")


def test_settle_takes_only_an_answer_or_a_dismissal() -> None:
    queue = QuestionQueue()
    queue.ask_in_writing("q1")
    with pytest.raises(QueueTransitionError):
        queue.settle("q1", Move.REORDER)
    assert queue.asked("q1") is Asked.WAITING


def test_the_written_table_lists_every_place() -> None:
    assert set(WRITTEN_TRANSITIONS) == set(Asked)
    assert WRITTEN_TRANSITIONS[Asked.ANSWERED] == WRITTEN_TRANSITIONS[Asked.DISMISSED] == {}
