"""The bridge (``bridge.service``) has a way to carry out every command the controller returns."""

from __future__ import annotations

import typing

from callbridge.bridge.commands import AnswerCaller, Command, EndConference, SetEventState, Tell
from callbridge.bridge.service import Bridge, BridgeConfig
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore


def test_every_command_has_a_carrier(sqlite_database: Database) -> None:
    bridge = Bridge(BridgeConfig(), EventStore(sqlite_database), CallLog(sqlite_database))
    every = set(typing.get_args(Command))
    # Awaited in turn by ``_carry_out_awaiting``; the IVR is answered where it asked.
    awaited = {SetEventState, EndConference}
    answered_in_place = {AnswerCaller}
    # Only a cascade's nodes have a bus (tests/cascade checks theirs).
    cascade = {Tell}
    assert set(bridge._carriers) == every - awaited - answered_in_place - cascade
