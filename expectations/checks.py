"""The gate's configuration (`quality.yml`) as checks: each one a Great Expectations expectation
and, for raw tables, the SQL that finds the rows breaking it (to name and quarantine them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from psycopg import sql

HERE = Path(__file__).parent
CONFIG_FILE = HERE / "quality.yml"

DIMENSION_OF_CHECK = {
    "not_null": "completeness",
    "unique": "uniqueness",
    "between": "validity",
    "regex": "validity",
    "in_set": "validity",
}
SEVERITIES = ("blocking", "warning")
# Rows breaking a check of these dimensions are held in quarantine; a missing optional value is
# counted against completeness but is no reason to hold a record.
QUARANTINED_DIMENSIONS = ("uniqueness", "validity")
# The types a raw text column may be read as (`as:`); `text` is the blank-is-missing reading.
CASTS = ("date", "timestamptz", "numeric", "text")
# Rows of these sources carry no file position and cannot be held back after landing: their
# invalid records are quarantined at landing (ingestion/sources/), and their batch checks warn.
API_SOURCES = ("fhir", "research")


class ConfigError(ValueError):
    """quality.yml says something the gate cannot check."""


@dataclass(frozen=True)
class Check:
    table: str  # schema.table for raw tables, the bare name for marts
    check: str
    columns: tuple[str, ...]
    severity: str
    rule: str
    params: dict[str, Any] = field(default_factory=dict)
    # a type to read the column as (raw dates land as ISO text; text: blank is missing)
    cast: str | None = None

    @property
    def dimension(self) -> str:
        return DIMENSION_OF_CHECK[self.check]

    @property
    def column(self) -> str:
        """The column checked: with `cast`, the batch's typed copy of it."""
        return f"{self.columns[0]}__{self.cast}" if self.cast else self.columns[0]

    def bounds(self, today: date) -> tuple[Any, Any]:
        return tuple(_resolve(self.params.get(end), today) for end in ("min", "max"))


def _resolve(value: Any, today: date) -> Any:
    """`today`, `tomorrow` and `today+N` (N days on) in a bound become dates, as ISO strings
    (raw dates are text)."""
    if value == "today":
        return today.isoformat()
    if value == "tomorrow":
        return (today + timedelta(days=1)).isoformat()
    if isinstance(value, str) and (days := re.fullmatch(r"today\+(\d+)", value)):
        return (today + timedelta(days=int(days.group(1)))).isoformat()
    return value


@dataclass(frozen=True)
class Thresholds:
    completeness: float
    uniqueness: float
    validity: float
    freshness_hours: float

    def share(self, dimension: str) -> float:
        return getattr(self, dimension)


@dataclass(frozen=True)
class LandedTable:
    table: str
    source: str
    checks: list[Check]
    children: dict[str, str]  # name in the record -> child table, keyed by file and position


@dataclass(frozen=True)
class PublishedTable:
    table: str
    key: str
    checks: list[Check]
    suite_file: str | None


@dataclass(frozen=True)
class QualityConfig:
    thresholds: Thresholds
    landed: list[LandedTable]
    freshness: dict[str, str]  # source -> severity
    published: list[PublishedTable]


def _checks(table: str, specs: list[dict], raw: bool = False) -> list[Check]:
    """The checks of one table; in a raw table, not_null reads a blank text as missing too (an
    empty CSV field lands as an empty string)."""
    checks = []
    for number, spec in enumerate(specs, start=1):
        where = f"{CONFIG_FILE.name}: {table}: check {number}"
        kind = spec.get("check")
        if kind not in DIMENSION_OF_CHECK:
            raise ConfigError(f"{where}: unknown check {kind!r} ({', '.join(DIMENSION_OF_CHECK)})")
        if spec.get("severity") not in SEVERITIES:
            raise ConfigError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        columns = tuple(spec.get("columns") or [spec.get("column")])
        if not all(columns):
            raise ConfigError(f"{where}: names no column")
        params = {k: v for k, v in spec.items() if k in ("min", "max", "regex", "values")}
        needed = {"between": ("min", "max"), "regex": ("regex",), "in_set": ("values",)}
        if kind in needed and not any(params.get(name) is not None for name in needed[kind]):
            raise ConfigError(f"{where}: {kind} needs {' or '.join(needed[kind])}")
        rule = spec.get("rule") or f"{'_'.join(columns)}_{kind}"
        if rule in {c.rule for c in checks}:
            raise ConfigError(f"{where}: rule {rule} is named twice: give each check its own")
        cast = "text" if raw and kind == "not_null" else spec.get("as")
        if cast is not None and cast not in CASTS:
            raise ConfigError(f"{where}: as: {cast!r} is not one of {', '.join(CASTS)}")
        checks.append(Check(table, kind, columns, spec["severity"], rule, params, cast))
    return checks


def load(path: Path = CONFIG_FILE) -> QualityConfig:
    spec = yaml.safe_load(path.read_text())
    for table, item in spec["landed"].items():
        if item["source"] in API_SOURCES and any(
            c.get("severity") == "blocking" for c in item.get("checks", [])
        ):
            raise ConfigError(
                f"{path.name}: {table}: a check of an API source can only warn (its rows have no"
                " file position to hold them back by: validate them at landing)"
            )
    landed = [
        LandedTable(
            table,
            item["source"],
            _checks(table, item.get("checks", []), raw=True),
            item.get("children", {}),
        )
        for table, item in spec["landed"].items()
    ]
    published = [
        PublishedTable(
            table, item["key"], _checks(table, item.get("checks", [])), item.get("suite")
        )
        for table, item in spec["published"].items()
    ]
    freshness = {source: item["severity"] for source, item in spec["freshness"].items()}
    for source, severity in freshness.items():
        if severity not in SEVERITIES:
            raise ConfigError(f"{path.name}: freshness of {source}: severity {severity!r}")
    return QualityConfig(Thresholds(**spec["thresholds"]), landed, freshness, published)


def expectation(check: Check, thresholds: Thresholds, today: date):
    """The Great Expectations expectation for `check`, its severity and rule in its meta."""
    import great_expectations.expectations as gxe

    meta = {"severity": check.severity, "rule": check.rule, "dimension": check.dimension}
    mostly = thresholds.share(check.dimension)
    if check.check == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=check.column, mostly=mostly, meta=meta)
    if check.check == "unique":
        if len(check.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=check.column, mostly=mostly, meta=meta)
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(check.columns), mostly=mostly, meta=meta
        )
    if check.check == "between":
        low, high = check.bounds(today)
        return gxe.ExpectColumnValuesToBeBetween(
            column=check.column, min_value=low, max_value=high, mostly=mostly, meta=meta
        )
    if check.check == "regex":
        return gxe.ExpectColumnValuesToMatchRegex(
            column=check.column, regex=check.params["regex"], mostly=mostly, meta=meta
        )
    return gxe.ExpectColumnValuesToBeInSet(
        column=check.column, value_set=list(check.params["values"]), mostly=mostly, meta=meta
    )


def reason(check: Check, today: date) -> str:
    """The rule and what it asks, in column names and bounds: never a value of a row."""
    columns = ", ".join(check.columns) + (f" (as {check.cast})" if check.cast else "")
    if check.check == "between":
        low, high = ("" if end is None else end for end in check.bounds(today))
        return f"{check.rule}: {columns} outside [{low}, {high}]"
    if check.check == "unique":
        return f"{check.rule}: ({columns}) repeats an earlier row of the batch"
    if check.check == "in_set":
        return f"{check.rule}: {columns} not one of {', '.join(map(str, check.params['values']))}"
    if check.check == "regex":
        return f"{check.rule}: {columns} does not match {check.params['regex']}"
    return f"{check.rule}: {columns} is empty"


def typed_copy(check: Check) -> sql.Composable:
    """The batch's copy of a column read as `check.cast`, named `check.column`. A value that does
    not read as the type never stops the validation (nor puts its value in an error message): it
    becomes a value outside any bounds (below the minimum, or above the maximum), so the row
    breaks the check."""
    column = sql.Identifier("row", check.columns[0])
    if check.cast == "text":
        expression = sql.SQL("nullif(btrim(cast({} as text)), '')").format(column)
    else:
        outside = "-infinity" if check.params.get("min") is not None else "infinity"
        expression = sql.SQL(
            "case when pg_input_is_valid(cast({col} as text), {type}) then cast({col} as {cast})"
            " else cast({outside} as {cast}) end"
        ).format(
            col=column,
            type=sql.Literal(check.cast),
            cast=sql.SQL(check.cast),  # one of CASTS
            outside=sql.Literal(outside),
        )
    return sql.SQL("{} as {}").format(expression, sql.Identifier(check.column))


def breaking_rows(check: Check, today: date) -> sql.Composable:
    """A condition on a raw row (alias `row`, its batch `batch`) true when the row breaks `check`.

    Nulls break only not_null, as in Great Expectations; a repeated key breaks `unique` in every
    copy but the first landed (file landing order, then position in the file).
    """
    column = sql.Identifier("row", check.column)
    if check.check == "not_null":
        return sql.SQL("{} is null").format(column)
    if check.check == "unique":
        same_key = sql.SQL(" and ").join(
            sql.SQL("earlier.{0} = row.{0}").format(sql.Identifier(name)) for name in check.columns
        )
        return sql.SQL(
            "exists (select 1 from batch as earlier where {} and (earlier._landed_at,"
            " earlier._file_key, earlier._record_position)"
            " < (row._landed_at, row._file_key, row._record_position))"
        ).format(same_key)
    if check.check == "between":
        low, high = check.bounds(today)
        conditions = []
        if low is not None:
            conditions.append(sql.SQL("{} < {}").format(column, sql.Literal(low)))
        if high is not None:
            conditions.append(sql.SQL("{} > {}").format(column, sql.Literal(high)))
        return sql.SQL("({})").format(sql.SQL(" or ").join(conditions))
    if check.check == "regex":
        return sql.SQL("not ({} ~ {})").format(column, sql.Literal(check.params["regex"]))
    return sql.SQL("not ({} = any({}))").format(column, sql.Literal(list(check.params["values"])))
