"""The same calls with every call's media on one UDP port (`serve --rtp-mux`).

The tests are the dial-in tests themselves, imported so that pytest runs
them again against a server of this module's. baresip sends RTP from the
address its SDP offers, as trunks and phones do; sipp sends a pcap from an
ephemeral port, which the mux latches while that caller is the only one
from its host not heard yet. That is why the burst of callers is not here:
sipp's callers cannot be told apart on one port (they would be dropped,
never mixed up).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.telephony.conftest import RunningServer, start_server
from tests.telephony.test_baresip import (  # noqa: F401
    test_listener_hears_the_prompt_then_the_speaker,
)
from tests.telephony.test_sipp import (  # noqa: F401
    test_a_silent_caller_is_dropped_after_the_media_timeout,
    test_ending_the_call_says_goodbye_and_hangs_up,
    test_listener_keys_the_passcode_and_joins,
    test_speaker_passcode_joins_as_speaker,
    test_the_call_is_recorded_and_assembled_when_it_ends,
    test_wrong_code_three_times_then_goodbye,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("server-mux"), "--rtp-mux") as running:
        yield running


def test_one_port_carries_every_call(server: RunningServer) -> None:
    assert "media of every call on UDP port" in server.log()
    stats = server.api("GET", "/api/bridge/stats").json()
    assert stats["rtp_ports_in_use"] == 1
