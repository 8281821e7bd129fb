"""A file another stage reads appears whole or not at all: it is written under a temporary name
in its folder (a leading dot and `.part`, which no landing pattern matches), flushed to disk,
then renamed into place. A landing run, the landing watch or the vitals processor never sees a
file half written; a writer that fails leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_name(path: Path) -> Path:
    """Its name while written: this process's own, so two writers never share one."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def _owner_only(name: str, flags: int) -> int:
    return os.open(name, flags, 0o600)


@contextmanager
def written_whole(
    path: Path, mode: str = "w", owner_only: bool = False, **options: Any
) -> Iterator[IO]:
    """`open(path, mode, **options)`, but the file is `path` only once the block has written
    it whole (created 0600 from the start when `owner_only`: a secret); on an error, neither it
    nor its temporary name is left."""
    temporary = temporary_name(path)
    temporary.unlink(missing_ok=True)  # created anew: never an older file's mode
    if owner_only:
        options["opener"] = _owner_only
    try:
        with open(temporary, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_whole(path: Path, content: str | bytes) -> Path:
    """`content` into `path`, which appears whole."""
    with written_whole(path, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)
    return path
