"""Trunk passwords sealed at rest: the trunks file holds ciphertext, a key file opens it.

A password in the trunks file may be written sealed
(``password = "sealed:v1:..."``, made by ``callbridge trunk-password``):
AES-256-GCM under a key kept in another file (``key_file`` at the top of the
trunks file), with the trunk's name bound in as associated data, so a sealed
password moved to another trunk does not open. The key file is 32 random
bytes in base64, mode 0600, owned by the server's user; kept apart from the
trunks file (a credentials mount, a secrets store), a copy or backup of the
trunks file alone gives away no password.

The password is opened in memory when the file is loaded and goes nowhere
else: no log line, no API, and the command that seals it reads it from
standard input (not the command line, which other users may list) and
prints only the sealed form.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
_AAD = b"callbridge trunk password\x00"
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretError(ValueError):
    """A key file or sealed password that cannot be used (the message says why, no secret)."""


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def seal(key: bytes, trunk: str, password: str) -> str:
    """``password`` of trunk ``trunk`` sealed under ``key``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, password.encode(), _AAD + trunk.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: bytes, trunk: str, value: str) -> str:
    """The password sealed in ``value`` for trunk ``trunk``; ``SecretError`` if it does not open."""
    try:
        raw = base64.b64decode(value.removeprefix(PREFIX).encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("the sealed password is not base64") from None
    if len(raw) <= NONCE_BYTES + 16:
        raise SecretError("the sealed password is too short")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _AAD + trunk.encode())
    except InvalidTag:
        raise SecretError(
            "the sealed password does not open with the key file (another key, or "
            "sealed for another trunk)"
        ) from None
    return plain.decode()


def new_key_file(path: Path) -> None:
    """Write a fresh key to ``path`` (mode 0600); refuses to overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")


def read_key_file(path: Path) -> bytes:
    """The key in ``path``; refuses a file others may read or another user owns."""
    try:
        info = path.stat()
    except OSError as error:
        raise SecretError(f"key_file {path}: {error.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"key_file {path}: readable by others; chmod 600 it")
    if info.st_uid != os.getuid():
        raise SecretError(f"key_file {path}: not owned by the server's user")
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(
            f"key_file {path}: not a key (callbridge trunk-password --new-key)"
        ) from None
    if len(key) != KEY_BYTES:
        raise SecretError(f"key_file {path}: a key is {KEY_BYTES} bytes, this one {len(key)}")
    return key
