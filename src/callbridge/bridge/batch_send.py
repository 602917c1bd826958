"""Sending one datagram from each of many sockets, in as few system calls as it can.

A conference sends a frame to every listener every 20 ms, each from the
leg's own RTP socket (the port its SDP answer named: symmetric RTP, which
carriers and NATs expect). ``sendmmsg`` cannot help there: it batches
datagrams of one socket. io_uring can: one ``io_uring_enter`` submits a
``sendmsg`` for every leg, each on its own socket, and the packets, their
addresses and the submission entries are all laid out in numpy arrays, so
no Python runs per listener.

Two ways to send, one interface:

* ``UringSender``: io_uring through its two system calls (ctypes); the
  rings are memory shared with the kernel, read and written as numpy views.
  ``MSG_DONTWAIT`` on every send: a socket whose buffer is full drops the
  frame (counted), it is never queued behind the next one.
* ``LoopSender``: ``socket.sendto`` per datagram, where io_uring is missing
  or refused (an older kernel, a container's seccomp profile, the
  ``kernel.io_uring_disabled`` sysctl).

``batch_sender()`` picks the first that works.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import mmap
import os
import socket
import struct
import sys
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from callbridge.bridge.rtp_transport import libc_function

log = logging.getLogger(__name__)

Address = tuple[str, int]
Rows = npt.NDArray[np.intp]
Lengths = npt.NDArray[np.uint32]
Buffer = npt.NDArray[np.uint8]

SOCKADDR_SIZE = 28  # sizeof(struct sockaddr_in6), room for either family
MSG_DONTWAIT = 0x40


@functools.lru_cache(maxsize=65536)
def sockaddr(host: str, port: int) -> bytes:
    """``(host, port)`` as the kernel's ``struct sockaddr_in`` or ``sockaddr_in6``.

    Raises ValueError for anything but an IP address literal (SDP may name
    a host; such a leg is sent to one datagram at a time).
    """
    try:
        return (
            struct.pack("=H", socket.AF_INET)
            + struct.pack("!H", port)
            + socket.inet_pton(socket.AF_INET, host)
            + bytes(8)
        )
    except OSError:
        pass
    try:
        address = socket.inet_pton(socket.AF_INET6, host)
    except OSError as error:
        raise ValueError(f"not an IP address: {host!r}") from error
    return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + address + bytes(4)


class BatchTarget(Protocol):
    """One datagram per row of a buffer, row ``i`` from ``sockets[i]`` to ``remotes[i]``.

    A row whose socket is None is never sent (a leg that left; its socket may be closed).

    Where ``connected[i]``, the socket is connected to ``remotes[i]`` and
    the datagram goes without an address (no route lookup in the kernel).
    """

    def send(self, rows: Rows, lengths: Lengths) -> Rows:
        """Send ``buffer[row, :lengths[row]]`` for every row; returns the rows that failed."""

    def close(self) -> None: ...


class BatchSender(Protocol):
    name: str

    def target(
        self,
        sockets: Sequence[socket.socket | None],
        remotes: Sequence[Address],
        buffer: Buffer,
        connected: Sequence[bool] | None = None,
    ) -> BatchTarget:
        """Prepare sending the rows of ``buffer`` (which must not move while the target lives)."""

    def close(self) -> None: ...


# -- one sendto per datagram ----------------------------------------------------------------


def _never_sent(data: memoryview, address: Address) -> int:
    raise OSError("a row without a socket is not sent")


class _LoopTarget:
    def __init__(
        self, sockets: Sequence[socket.socket | None], remotes: Sequence[Address], buffer: Buffer
    ) -> None:
        self._sends = [_never_sent if s is None else s.sendto for s in sockets]
        self._remotes = list(remotes)
        self._rows = [memoryview(row) for row in buffer]

    def send(self, rows: Rows, lengths: Lengths) -> Rows:
        failed: list[int] = []
        sends, remotes, views = self._sends, self._remotes, self._rows
        for row, length in zip(rows.tolist(), lengths[rows].tolist(), strict=True):
            try:
                sends[row](views[row][:length], remotes[row])
            except OSError:
                # Full buffer, the caller's port gone, or a socket closed under us.
                failed.append(row)
        return np.asarray(failed, dtype=np.intp)

    def close(self) -> None:
        self._rows.clear()


class LoopSender:
    """``socket.sendto`` per datagram: works everywhere."""

    name = "sendto"

    def target(
        self,
        sockets: Sequence[socket.socket | None],
        remotes: Sequence[Address],
        buffer: Buffer,
        connected: Sequence[bool] | None = None,
    ) -> BatchTarget:
        # sendto with the address a connected socket already has is allowed (Linux).
        return _LoopTarget(sockets, remotes, buffer)

    def close(self) -> None:
        pass


# -- io_uring ---------------------------------------------------------------------------------

_SYS_IO_URING_SETUP = 425  # the same number on every architecture
_SYS_IO_URING_ENTER = 426
_IORING_OFF_SQ_RING = 0
_IORING_OFF_SQES = 0x10000000
_IORING_FEAT_SINGLE_MMAP = 1 << 0
_IORING_SETUP_SUBMIT_ALL = 1 << 7  # keep submitting past a failed entry (5.18)
_IORING_SETUP_COOP_TASKRUN = 1 << 8
_IORING_OP_SENDMSG = 9
_IORING_OP_SEND = 26


class _RingOffsets(ctypes.Structure):
    _fields_ = [
        ("head", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
        ("ring_mask", ctypes.c_uint32),
        ("ring_entries", ctypes.c_uint32),
        ("flags_or_overflow", ctypes.c_uint32),
        ("dropped_or_cqes", ctypes.c_uint32),
        ("array_or_flags", ctypes.c_uint32),
        ("resv1", ctypes.c_uint32),
        ("user_addr", ctypes.c_uint64),
    ]


class _Params(ctypes.Structure):
    _fields_ = [
        ("sq_entries", ctypes.c_uint32),
        ("cq_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("sq_thread_cpu", ctypes.c_uint32),
        ("sq_thread_idle", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
        ("wq_fd", ctypes.c_uint32),
        ("resv", ctypes.c_uint32 * 3),
        ("sq_off", _RingOffsets),
        ("cq_off", _RingOffsets),
    ]


_SQE = np.dtype(
    [
        ("opcode", "u1"),
        ("flags", "u1"),
        ("ioprio", "<u2"),
        ("fd", "<i4"),
        ("off", "<u8"),
        ("addr", "<u8"),
        ("len", "<u4"),
        ("msg_flags", "<u4"),
        ("user_data", "<u8"),
        ("buf_index", "<u2"),
        ("personality", "<u2"),
        ("splice_fd_in", "<i4"),
        ("addr3", "<u8"),
        ("pad", "<u8"),
    ]
)
_CQE = np.dtype([("user_data", "<u8"), ("res", "<i4"), ("flags", "<u4")])
_IOVEC = np.dtype([("base", "<u8"), ("len", "<u8")])
_MSGHDR = np.dtype(
    [
        ("name", "<u8"),
        ("namelen", "<u4"),
        ("pad1", "<u4"),
        ("iov", "<u8"),
        ("iovlen", "<u8"),
        ("control", "<u8"),
        ("controllen", "<u8"),
        ("flags", "<i4"),
        ("pad2", "<u4"),
    ]
)
assert _SQE.itemsize == 64 and _CQE.itemsize == 16 and _MSGHDR.itemsize == 56


class UringUnavailable(Exception):
    """io_uring cannot be used here (missing, refused or disabled)."""


class _UringTarget:
    """The submission entries, message headers and addresses of one buffer's rows."""

    def __init__(
        self,
        ring: UringSender,
        sockets: Sequence[socket.socket | None],
        remotes: Sequence[Address],
        buffer: Buffer,
        connected: Sequence[bool] | None = None,
    ) -> None:
        count = len(sockets)
        if buffer.shape[0] != count or not buffer.flags.c_contiguous:
            raise ValueError("one contiguous buffer row per socket")
        self.ring = ring
        self.buffer = buffer
        # Laid out in one go: a listener joining re-prepares every row.
        packed = [sockaddr(host, port) for host, port in remotes]
        self.names = (
            np.frombuffer(b"".join(p.ljust(SOCKADDR_SIZE, b"\0") for p in packed), dtype=np.uint8)
            .reshape(count, SOCKADDR_SIZE)
            .copy()
        )
        name_lengths = np.fromiter((len(p) for p in packed), dtype=np.uint32, count=count)
        stride = buffer.strides[0]
        self.iovecs = np.zeros(count, dtype=_IOVEC)
        self.iovecs["base"] = buffer.ctypes.data + np.arange(count, dtype=np.uint64) * stride
        self.headers = np.zeros(count, dtype=_MSGHDR)
        self.headers["name"] = self.names.ctypes.data + np.arange(count, dtype=np.uint64) * (
            SOCKADDR_SIZE
        )
        self.headers["namelen"] = name_lengths
        self.headers["iov"] = self.iovecs.ctypes.data + np.arange(count, dtype=np.uint64) * (
            _IOVEC.itemsize
        )
        self.headers["iovlen"] = 1
        self.entries = np.zeros(count, dtype=_SQE)
        self.entries["opcode"] = _IORING_OP_SENDMSG
        self.entries["fd"] = [-1 if s is None else s.fileno() for s in sockets]
        self.entries["addr"] = self.headers.ctypes.data + np.arange(count, dtype=np.uint64) * (
            _MSGHDR.itemsize
        )
        self.entries["len"] = 1
        self.entries["msg_flags"] = MSG_DONTWAIT
        self.entries["user_data"] = np.arange(count, dtype=np.uint64)
        # A connected socket's row is a plain send of the buffer row, no message header.
        self.connected = np.zeros(count, dtype=bool)
        if connected is not None:
            self.connected[:] = connected
        self.entries["opcode"][self.connected] = _IORING_OP_SEND
        self.entries["addr"][self.connected] = self.iovecs["base"][self.connected]
        self.entries["len"][self.connected] = 0
        self._any_connected = bool(self.connected.any())

    def send(self, rows: Rows, lengths: Lengths) -> Rows:
        if len(rows) == len(self.entries):
            self.iovecs["len"] = lengths
            if self._any_connected:
                self.entries["len"][self.connected] = lengths[self.connected]
            return self.ring.submit(self.entries)
        self.iovecs["len"][rows] = lengths[rows]
        if self._any_connected:
            self.entries["len"][self.connected] = lengths[self.connected]
        return self.ring.submit(self.entries[rows])

    def close(self) -> None:
        # The arrays the kernel was pointed at stay alive as long as this object:
        # every send completed before ``submit`` returned (MSG_DONTWAIT).
        pass


class UringSender:
    """One io_uring for the process; every ``target`` submits through it."""

    name = "io_uring"

    def __init__(self, entries: int = 4096) -> None:
        if not sys.platform.startswith("linux"):
            raise UringUnavailable("io_uring is Linux only")
        # io_uring_enter here never waits: the GIL is kept through it.
        syscall = libc_function("syscall", None, ctypes.c_long, keep_gil=True)
        if syscall is None:
            raise UringUnavailable("no syscall() in the C library")
        self._syscall = syscall
        params = _Params()
        fd = -1
        for flags in (_IORING_SETUP_SUBMIT_ALL | _IORING_SETUP_COOP_TASKRUN, 0):
            params = _Params(flags=flags)
            fd = int(self._syscall(_SYS_IO_URING_SETUP, entries, ctypes.byref(params)))
            if fd >= 0:
                break
            code = ctypes.get_errno()
            if code != errno.EINVAL:
                break
        if fd < 0:
            code = ctypes.get_errno()
            raise UringUnavailable(f"io_uring_setup: {os.strerror(code)}")
        self.fd = fd
        self.params = params
        try:
            self._map(params)
        except (OSError, ValueError) as error:
            os.close(fd)
            raise UringUnavailable(f"io_uring rings: {error}") from error
        self.submitted = 0
        self.failed = 0

    def _map(self, params: _Params) -> None:
        sq, cq = params.sq_off, params.cq_off
        sq_size = sq.array_or_flags + params.sq_entries * 4
        cq_size = cq.dropped_or_cqes + params.cq_entries * _CQE.itemsize
        protection = mmap.PROT_READ | mmap.PROT_WRITE
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        if params.features & _IORING_FEAT_SINGLE_MMAP:
            size = max(sq_size, cq_size)
            self._sq_map = self._cq_map = mmap.mmap(
                self.fd, size, flags, protection, offset=_IORING_OFF_SQ_RING
            )
        else:
            self._sq_map = mmap.mmap(self.fd, sq_size, flags, protection, offset=0)
            self._cq_map = mmap.mmap(self.fd, cq_size, flags, protection, offset=0x8000000)
        self._sqe_map = mmap.mmap(
            self.fd, params.sq_entries * _SQE.itemsize, flags, protection, offset=_IORING_OFF_SQES
        )
        sq_words = np.frombuffer(self._sq_map, dtype=np.uint32)
        cq_words = np.frombuffer(self._cq_map, dtype=np.uint32)
        self._sq_head, self._sq_tail = sq_words[sq.head // 4 :], sq_words[sq.tail // 4 :]
        self._cq_head, self._cq_tail = cq_words[cq.head // 4 :], cq_words[cq.tail // 4 :]
        self._sq_entries = params.sq_entries
        self._cq_mask = params.cq_entries - 1
        # Entry i of the ring is always submission entry i: the index array never changes.
        index = sq_words[sq.array_or_flags // 4 : sq.array_or_flags // 4 + params.sq_entries]
        index[:] = np.arange(params.sq_entries, dtype=np.uint32)
        self._sqes = np.frombuffer(self._sqe_map, dtype=_SQE)
        self._cqes = np.frombuffer(
            self._cq_map, dtype=_CQE, count=params.cq_entries, offset=cq.dropped_or_cqes
        )

    def target(
        self,
        sockets: Sequence[socket.socket | None],
        remotes: Sequence[Address],
        buffer: Buffer,
        connected: Sequence[bool] | None = None,
    ) -> BatchTarget:
        return _UringTarget(self, sockets, remotes, buffer, connected)

    def submit(self, entries: npt.NDArray[np.void]) -> Rows:
        """Submit ``entries`` (at most a ring's worth at a time); the user_data of failures."""
        failed: list[Rows] = []
        done = 0
        size = self._sq_entries
        while done < len(entries):
            tail = int(self._sq_tail[0])
            free = size - ((tail - int(self._sq_head[0])) & 0xFFFFFFFF)
            count = min(len(entries) - done, free)
            if count <= 0:
                # The kernel left entries unconsumed: the rest of this frame is dropped.
                failed.append(entries["user_data"][done:].astype(np.intp))
                break
            start = tail % size
            first = min(count, size - start)
            self._sqes[start : start + first] = entries[done : done + first]
            if first < count:
                self._sqes[: count - first] = entries[done + first : done + count]
            self._sq_tail[0] = (tail + count) & 0xFFFFFFFF
            submitted = int(self._syscall(_SYS_IO_URING_ENTER, self.fd, count, 0, 0, None, 0))
            if submitted < 0:
                code = ctypes.get_errno()
                log.warning("io_uring_enter: %s", os.strerror(code))
                # What the kernel did not take stays queued; the next enter sends it.
                submitted = 0
            self.submitted += submitted
            failed.append(self._reap())
            done += count
        result = np.concatenate(failed) if failed else np.zeros(0, dtype=np.intp)
        self.failed += len(result)
        return result

    def _reap(self) -> Rows:
        head, tail = int(self._cq_head[0]), int(self._cq_tail[0])
        if head == tail:
            return np.zeros(0, dtype=np.intp)
        positions = np.arange(head, head + ((tail - head) & 0xFFFFFFFF)) & self._cq_mask
        completions = self._cqes[positions]
        self._cq_head[0] = tail
        bad = completions["res"] < 0
        failed: Rows = completions["user_data"][bad].astype(np.intp)
        return failed

    def close(self) -> None:
        if self.fd < 0:
            return
        for mapped in {id(m): m for m in (self._sqe_map, self._sq_map, self._cq_map)}.values():
            # A numpy view may still hold it; then the process's exit unmaps it.
            with contextlib.suppress(BufferError):
                mapped.close()
        os.close(self.fd)
        self.fd = -1


def batch_sender(prefer: str = "auto") -> BatchSender:
    """io_uring where it works, else one ``sendto`` per datagram (``prefer="sendto"`` forces it)."""
    if prefer != "sendto":
        try:
            return UringSender()
        except UringUnavailable as error:
            if prefer == "io_uring":
                raise
            log.info("sending media with sendto: %s", error)
    return LoopSender()
