from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from callbridge.bridge.batch_send import BatchSender, LoopSender
from tests.support.uring import uring

SENDERS: dict[str, Callable[[], BatchSender]] = {"sendto": LoopSender, "io_uring": uring}


@pytest.fixture(params=sorted(SENDERS))
def sender(request: pytest.FixtureRequest) -> Iterator[BatchSender]:
    """Each way of sending a batch: the tests run once with each."""
    made = SENDERS[request.param]()
    yield made
    made.close()
