"""io_uring for tests: a ring, or the test skipped where the kernel refuses one."""

from __future__ import annotations

import pytest

from callbridge.bridge.batch_send import UringSender, UringUnavailable


def uring(entries: int = 4096) -> UringSender:
    try:
        return UringSender(entries)
    except UringUnavailable as error:
        pytest.skip(f"io_uring not available here: {error}")
