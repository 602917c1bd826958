"""The question queue of one call, as an explicit state machine.

Every caller on the call has a place on the floor (``Floor``): a listener
just listens, presses ``*1`` to queue for a question, and is put on the air
when the moderator opens their line; speakers have the floor by their role
and never queue. Which place follows which on which move is the table
``TRANSITIONS``, one target per (place, move); a move the table does not
list raises ``QueueTransitionError``, and the caller of ``QuestionQueue``
decides what that means (a keypad press that does not apply is ignored, a
moderator's action is refused with the reason).

Written questions from web listeners wait in the same order as the ``*1``
callers, so the moderator takes them in one sequence. A written question
has its own, shorter life (``Asked``, table ``WRITTEN_TRANSITIONS``): it
waits, may be read out, and ends answered or dismissed.

The order of the queued callers and questions is kept beside the machines:
the console shows it and the moderator may reorder it. Pure: no clock is
needed, since nothing here expires.
"""

from __future__ import annotations

import enum


class Floor(enum.Enum):
    LISTENING = "listening"  # a listener, not asking
    QUEUED = "queued"  # pressed *1: waits for the moderator
    ON_AIR = "on_air"  # a listener whose line the moderator opened
    SPEAKING = "speaking"  # a speaker or host: the floor is theirs by role
    LEFT = "left"


class Move(enum.Enum):
    RAISE_HAND = "raise_hand"  # *1
    WITHDRAW = "withdraw"  # *2
    DEQUEUE = "dequeue"  # the moderator takes a caller out of the queue
    REORDER = "reorder"  # the moderator moves a caller within the queue
    OPEN_LINE = "open_line"
    CLOSE_LINE = "close_line"
    PROMOTE = "promote"  # the moderator makes a listener a speaker for good
    DEMOTE = "demote"  # and a speaker a listener
    LEAVE = "leave"
    # A written question's moves (the moderator's).
    READ_OUT = "read_out"
    ANSWER = "answer"
    DISMISS = "dismiss"


class Asked(enum.Enum):
    """Where a written question stands."""

    WAITING = "waiting"  # in the queue
    READING = "reading"  # the moderator is reading it out (first in the queue)
    ANSWERED = "answered"
    DISMISSED = "dismissed"


# place → move → the place it leads to; anything unlisted raises.
TRANSITIONS: dict[Floor, dict[Move, Floor]] = {
    Floor.LISTENING: {
        Move.RAISE_HAND: Floor.QUEUED,
        # The moderator may give the floor to any listener, queued or not.
        Move.OPEN_LINE: Floor.ON_AIR,
        Move.PROMOTE: Floor.SPEAKING,
        Move.LEAVE: Floor.LEFT,
    },
    Floor.QUEUED: {
        Move.WITHDRAW: Floor.LISTENING,
        Move.DEQUEUE: Floor.LISTENING,
        Move.REORDER: Floor.QUEUED,
        Move.OPEN_LINE: Floor.ON_AIR,
        Move.PROMOTE: Floor.SPEAKING,
        Move.LEAVE: Floor.LEFT,
    },
    Floor.ON_AIR: {
        Move.CLOSE_LINE: Floor.LISTENING,
        Move.PROMOTE: Floor.SPEAKING,
        Move.LEAVE: Floor.LEFT,
    },
    Floor.SPEAKING: {Move.DEMOTE: Floor.LISTENING, Move.LEAVE: Floor.LEFT},
    Floor.LEFT: {},
}

# question → move → where it leads; anything unlisted raises.
WRITTEN_TRANSITIONS: dict[Asked, dict[Move, Asked]] = {
    Asked.WAITING: {
        Move.REORDER: Asked.WAITING,
        Move.READ_OUT: Asked.READING,
        Move.ANSWER: Asked.ANSWERED,
        Move.DISMISS: Asked.DISMISSED,
    },
    Asked.READING: {Move.ANSWER: Asked.ANSWERED, Move.DISMISS: Asked.DISMISSED},
    Asked.ANSWERED: {},
    Asked.DISMISSED: {},
}

# At most this many callers wait in one queue (it never holds more than the call's listeners).
MAX_QUEUED = 5000


class QueueTransitionError(Exception):
    """A move the queue does not allow from the caller's present place."""

    def __init__(self, participant_id: str, floor: Floor | Asked | None, move: Move) -> None:
        where = floor.value if floor is not None else "not on the call"
        super().__init__(f"{participant_id} ({where}) cannot {move.value}")
        self.participant_id = participant_id
        self.floor = floor
        self.move = move


class QueueFull(Exception):
    """The queue holds its limit of callers already."""


class QuestionQueue:
    """Where each caller of one call stands, and the order of those who wait to ask."""

    def __init__(self, limit: int = MAX_QUEUED) -> None:
        self.limit = limit
        self._floor: dict[str, Floor] = {}
        self._asked: dict[str, Asked] = {}
        self._order: list[str] = []

    # -- reading ------------------------------------------------------------------------

    def floor(self, participant_id: str) -> Floor | None:
        """Where the caller stands; None for one the queue was never told of."""
        return self._floor.get(participant_id)

    @property
    def order(self) -> list[str]:
        """The queued callers, next first (a copy)."""
        return list(self._order)

    def asked(self, question_id: str) -> Asked | None:
        """Where a written question stands; None for one the queue was never given."""
        return self._asked.get(question_id)

    def position(self, participant_id: str) -> int | None:
        """The caller's place in the queue (0 is next), or None when not queued."""
        try:
            return self._order.index(participant_id)
        except ValueError:
            return None

    def __len__(self) -> int:
        return len(self._order)

    # -- moves ----------------------------------------------------------------------------

    def arrive(self, participant_id: str, speaking: bool) -> None:
        """A caller joined the call: a speaker has the floor, a listener listens."""
        if participant_id in self._floor:
            raise ValueError(f"{participant_id} is on the call already")
        self._floor[participant_id] = Floor.SPEAKING if speaking else Floor.LISTENING

    def raise_hand(self, participant_id: str) -> None:
        """``*1``: join the end of the queue. Raises QueueFull at the limit."""
        self._check(participant_id, Move.RAISE_HAND)
        if len(self._order) >= self.limit:
            raise QueueFull("the question queue is full")
        self._move(participant_id, Move.RAISE_HAND)
        self._order.append(participant_id)

    def withdraw(self, participant_id: str) -> None:
        """``*2``: the caller leaves the queue."""
        self._move(participant_id, Move.WITHDRAW)
        self._order.remove(participant_id)

    def dequeue(self, participant_id: str) -> None:
        """The moderator takes the caller out of the queue."""
        self._move(participant_id, Move.DEQUEUE)
        self._order.remove(participant_id)

    def reorder(self, participant_id: str, position: int) -> None:
        """The moderator puts a queued caller or question at ``position`` (0 is next; clamped)."""
        if participant_id in self._asked:
            self._answer_move(participant_id, Move.REORDER)
        else:
            self._move(participant_id, Move.REORDER)
        self._order.remove(participant_id)
        self._order.insert(max(0, min(position, len(self._order))), participant_id)

    def open_line(self, participant_id: str) -> None:
        """The moderator gives a listener the floor (out of the queue if they were in it)."""
        was = self._move(participant_id, Move.OPEN_LINE)
        if was is Floor.QUEUED:
            self._order.remove(participant_id)

    def close_line(self, participant_id: str) -> None:
        """The moderator takes the floor back: the caller listens again."""
        self._move(participant_id, Move.CLOSE_LINE)

    def promote(self, participant_id: str) -> None:
        """The moderator makes a listener a speaker (out of the queue if they were in it)."""
        was = self._move(participant_id, Move.PROMOTE)
        if was is Floor.QUEUED:
            self._order.remove(participant_id)

    def demote(self, participant_id: str) -> None:
        """The moderator moves a speaker back to listen only."""
        self._move(participant_id, Move.DEMOTE)

    def leave(self, participant_id: str) -> None:
        """The caller left the call (from wherever they stood)."""
        was = self._move(participant_id, Move.LEAVE)
        if was is Floor.QUEUED:
            self._order.remove(participant_id)

    # -- written questions ------------------------------------------------------------------

    def ask_in_writing(self, question_id: str) -> None:
        """A web listener's question joins the end of the queue. Raises QueueFull at the limit."""
        if question_id in self._asked or question_id in self._floor:
            raise ValueError(f"{question_id} is in the queue already")
        if len(self._order) >= self.limit:
            raise QueueFull("the question queue is full")
        self._asked[question_id] = Asked.WAITING
        self._order.append(question_id)

    def read_out(self, question_id: str) -> None:
        """The moderator reads the question out: it goes first, marked as being read."""
        self._answer_move(question_id, Move.READ_OUT)
        self._order.remove(question_id)
        self._order.insert(0, question_id)

    def settle(self, question_id: str, move: Move) -> None:
        """``Move.ANSWER`` or ``Move.DISMISS``: the question leaves the queue for good."""
        if move not in (Move.ANSWER, Move.DISMISS):
            raise QueueTransitionError(question_id, self._asked.get(question_id), move)
        self._answer_move(question_id, move)
        self._order.remove(question_id)

    def _answer_move(self, question_id: str, move: Move) -> Asked:
        asked = self._asked.get(question_id)
        if asked is None or move not in WRITTEN_TRANSITIONS[asked]:
            # A caller's id names the caller's place: the move is still not theirs.
            raise QueueTransitionError(question_id, asked or self._floor.get(question_id), move)
        was, self._asked[question_id] = asked, WRITTEN_TRANSITIONS[asked][move]
        return was

    # -- the machine ------------------------------------------------------------------------

    def allows(self, participant_id: str, move: Move) -> bool:
        """Whether ``move`` is listed for the caller's present place."""
        floor = self._floor.get(participant_id)
        return floor is not None and move in TRANSITIONS[floor]

    def _check(self, participant_id: str, move: Move) -> Floor:
        floor = self._floor.get(participant_id)
        if floor is None or move not in TRANSITIONS[floor]:
            raise QueueTransitionError(participant_id, floor, move)
        return TRANSITIONS[floor][move]

    def _move(self, participant_id: str, move: Move) -> Floor:
        """Take the listed transition; returns the place the caller left."""
        target = self._check(participant_id, move)
        was = self._floor[participant_id]
        self._floor[participant_id] = target
        return was
