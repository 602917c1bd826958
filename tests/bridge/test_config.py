"""The bridge's settings that decide per caller: SRTP policy by trunk network."""

from __future__ import annotations

import ipaddress

from callbridge.bridge.config import SrtpRules
from callbridge.sip.sdp import SrtpPolicy


def test_the_most_specific_trunk_network_wins() -> None:
    rules = SrtpRules(
        SrtpPolicy.OFFERED,
        (
            (ipaddress.ip_network("10.0.0.0/8"), SrtpPolicy.REQUIRED),
            (ipaddress.ip_network("10.1.0.0/16"), SrtpPolicy.OFF),
            (ipaddress.ip_network("2001:db8::/32"), SrtpPolicy.REQUIRED),
        ),
    )
    assert rules.for_source("10.2.3.4") is SrtpPolicy.REQUIRED
    assert rules.for_source("10.1.3.4") is SrtpPolicy.OFF
    assert rules.for_source("::ffff:10.2.3.4") is SrtpPolicy.REQUIRED  # a dual-stack socket
    assert rules.for_source("2001:db8::1") is SrtpPolicy.REQUIRED
    assert rules.for_source("192.0.2.1") is SrtpPolicy.OFFERED
    assert rules.for_source("not an address") is SrtpPolicy.OFFERED
