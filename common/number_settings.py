"""A settings file of whole numbers above 0, read into its dataclass: exactly the dataclass's
fields, each a whole number above 0, or an error naming the file and the rule
(ingestion/file_limits.yml, warehouse/backups.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def read_whole_numbers(path: Path, kind: type[T], error: type[Exception] = ValueError) -> T:
    """`kind(**the file's numbers)`, once the file has exactly `kind`'s fields, each above 0."""
    document = yaml.safe_load(path.read_text()) or {}
    fields: dict[str, Any] = kind.__dataclass_fields__  # type: ignore[attr-defined]
    if not isinstance(document, dict) or set(document) != set(fields):
        raise error(f"{path.name}: exactly {', '.join(sorted(fields))}, each a number")
    for name, value in document.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise error(f"{path.name}: {name} is a whole number above 0")
    return kind(**document)
