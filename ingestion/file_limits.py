"""The limits a landed file is held to (ingestion/file_limits.yml), and the checks that apply
them before a reader takes the file: a regular file, not a link, a FIFO or a device; no larger
than its limit. The readers apply the others as they first read the file (ingestion.file_formats):
no line longer than its limit, JSON nested no deeper than its limit.

Each refusal is a `FileUnreadable` naming the rule: the file is quarantined whole with it and
the other files of the run land (ingestion/file_source.py).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from common.number_settings import read_whole_numbers
from ingestion.file_formats import FileUnreadable

LIMITS_FILE = Path(__file__).with_name("file_limits.yml")
# pyarrow reads CSV in blocks of this size (file_formats.BATCH_BYTES): no record may be larger
BLOCK_BYTES = 64 << 20


class FileLimitsError(ValueError):
    """ingestion/file_limits.yml breaks a rule."""


@dataclass(frozen=True)
class FileLimits:
    max_file_bytes: int
    max_line_bytes: int
    max_json_depth: int
    max_json_document_bytes: int


@cache
def limits(path: Path = LIMITS_FILE) -> FileLimits:
    read = read_whole_numbers(path, FileLimits, FileLimitsError)
    if read.max_line_bytes >= BLOCK_BYTES:
        raise FileLimitsError(
            f"{path.name}: max_line_bytes is below {BLOCK_BYTES} (the CSV reader's block)"
        )
    return read


_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def not_a_regular_file(path: Path) -> str | None:
    """What `path` is when it is not a regular file (itself, not what a link points to)."""
    kind = stat.S_IFMT(os.lstat(path).st_mode)
    return None if kind == stat.S_IFREG else _KINDS.get(kind, "not a regular file")


def open_regular(path: Path) -> int:
    """A descriptor of `path` for reading, refused unless it is a regular file: a link is not
    followed (O_NOFOLLOW) and a FIFO never blocks the opening (O_NONBLOCK)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == 40:  # ELOOP: the name is a symbolic link
            raise FileUnreadable("regular_file", "a symbolic link: not followed") from None
        raise
    kind = stat.S_IFMT(os.fstat(descriptor).st_mode)
    if kind != stat.S_IFREG:
        os.close(descriptor)
        raise FileUnreadable("regular_file", f"{_KINDS.get(kind, 'not a regular file')}")
    os.set_blocking(descriptor, True)
    return descriptor


def check_size(path: Path, limit: str = "max_file_bytes") -> None:
    """FileUnreadable (rule `file_size`) when `path` is larger than the limit named `limit`."""
    size, most = os.lstat(path).st_size, getattr(limits(), limit)
    if size > most:
        raise FileUnreadable(
            "file_size", f"{size} bytes, over {limit} ({most}, ingestion/file_limits.yml)"
        )


def json_depth(value: object) -> int:
    """How deeply arrays and objects nest in `value` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
