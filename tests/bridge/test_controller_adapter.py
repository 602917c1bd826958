"""The bridge (``bridge.service``) has a way to carry out every command the controller and the
lobby return."""

from __future__ import annotations

import typing

from callbridge.bridge import lobby
from callbridge.bridge.commands import Command, EndConference, NodeCommand, SetEventState
from callbridge.bridge.service import Bridge, BridgeConfig
from callbridge.store.calllog import CallLog
from callbridge.store.db import Database
from callbridge.store.events import EventStore


def test_every_command_has_a_carrier(sqlite_database: Database) -> None:
    bridge = Bridge(BridgeConfig(), EventStore(sqlite_database), CallLog(sqlite_database))
    every = set(typing.get_args(Command)) | set(typing.get_args(lobby.Command))
    # Awaited in turn by ``_carry_out_awaiting``.
    awaited = {SetEventState, EndConference}
    # Only a cascade's nodes have a bus (tests/cascade checks theirs).
    cascade = {NodeCommand}
    # The controller's events the lobby returns go to the controller.
    assert set(bridge._carriers) == every - awaited - cascade
