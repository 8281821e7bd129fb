"""Backups are encrypted with age (age-encryption.org/v1: X25519 recipients, ChaCha20-Poly1305 in
64 KiB chunks, so a flipped byte or a cut-off file fails to decrypt) by pyrage.

`make setup` generates the identity into `.env` (BACKUP_IDENTITY, a secret). What encrypts needs
only its public half, the recipient: the WAL archiver holds nothing that could read a backup.
What decrypts (verification, a restore) needs the identity. Keep a copy of it away from this
machine (docs/runbook.md, "Backups and restore"): without it no backup can be read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pyrage import decrypt_io, encrypt_io, x25519

from common import settings
from common.whole_files import written_whole

IDENTITY_SETTING = "BACKUP_IDENTITY"
RECIPIENT_SETTING = "BACKUP_RECIPIENT"
SUFFIX = ".age"


def identity() -> x25519.Identity:
    return x25519.Identity.from_str(settings.require_secret(IDENTITY_SETTING))


def recipient() -> x25519.Recipient:
    """BACKUP_RECIPIENT (make setup writes it: not a secret), else the identity's public half."""
    settings.load_env()
    public = os.environ.get(RECIPIENT_SETTING)
    return x25519.Recipient.from_str(public) if public else identity().to_public()


def encrypt_into(path: Path, plain: IO[bytes], to: x25519.Recipient) -> Path:
    """Everything `plain` yields, encrypted to `to`, into `path`: owner-only, whole or absent."""
    with written_whole(path, "wb", owner_only=True) as encrypted:
        encrypt_io(plain, encrypted, [to])
    return path


class _Worker(threading.Thread):
    """`work` in a thread of its own, its error kept for the thread that waits on it; a
    BrokenPipeError (the other end stopped early, with an error of its own) is not one."""

    def __init__(self, work: Callable[[], object], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.work, self.failure = work, None
        self.start()

    def run(self) -> None:
        try:
            self.work()
        except BrokenPipeError:
            pass
        except Exception as error:  # noqa: BLE001 - raised by finish(), in the waiting thread
            self.failure = error

    def finish(self, end: IO[bytes]) -> Exception | None:
        """Close this side's `end` of the pipe, wait, and return the error the work met (a
        writer's last flush fails when the work died first: the work's error is the one)."""
        try:
            end.close()
        except BrokenPipeError:
            pass
        self.join()
        return self.failure


@contextmanager
def encrypting(path: Path, to: x25519.Recipient) -> Iterator[IO[bytes]]:
    """A stream to write plain text into, encrypted to `to` into `path` as it comes (owner-only,
    whole or absent): for a reader that takes what it reads on to the encryption too."""
    read_end, write_end = os.pipe()

    def encrypt() -> None:
        with os.fdopen(read_end, "rb") as plain:
            encrypt_into(path, plain, to)

    worker = _Worker(encrypt, f"encrypt {path.name}")
    sink = os.fdopen(write_end, "wb")
    try:
        yield sink
    except BaseException as error:
        failure = worker.finish(sink)  # the encryption sees the end: its file is discarded
        path.unlink(missing_ok=True)
        if failure and isinstance(error, BrokenPipeError):
            raise failure from error  # the encryption died first (a full disk): its error
        raise
    if failure := worker.finish(sink):
        path.unlink(missing_ok=True)
        raise failure


@contextmanager
def decrypted(path: Path, key: x25519.Identity) -> Iterator[IO[bytes]]:
    """A stream of `path` decrypted, never written to disk. Whatever reads it must read to its
    end: a byte changed or missing anywhere raises BackupUnreadable when the block is done, after
    the plain text before it has been read."""
    read_end, write_end = os.pipe()

    def decrypt() -> None:
        # the pipe's end first: closed whatever fails, or the reader would wait for ever
        with os.fdopen(write_end, "wb") as plain, path.open("rb") as encrypted:
            decrypt_io(encrypted, plain, [key])

    worker = _Worker(decrypt, f"decrypt {path.name}")
    plain = os.fdopen(read_end, "rb")
    try:
        yield plain
        while plain.read(1 << 20):  # the rest, so the last chunk's tag is checked
            pass
    except Exception:
        # the reader's error (a stream cut short) may come from the decryption's
        if failure := worker.finish(plain):
            raise BackupUnreadable(f"{path.name}: {failure}") from failure
        raise
    if failure := worker.finish(plain):
        raise BackupUnreadable(f"{path.name}: {failure}") from failure


class BackupUnreadable(RuntimeError):
    """A backup file does not decrypt whole: changed, cut off, or for another identity."""
