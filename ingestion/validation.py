"""Row validation with rules from configuration, evaluated a column at a time (no loop per row).

A rule file (`ingestion/rules/<source>.yml`) names the source's columns (required or not, and the
type each lands as) and a list of rules, each a `check` on one `column` of the records or of a
child table (`table: <child>`). Columns arrive as text, exactly as sent; a column with a type gets
an implicit rule that its text reads as that type. Reasons name the rule and the column, never
the value: values of identifying fields must not reach logs or error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ingestion import code_sets

RULES_DIR = Path(__file__).parent / "rules"

NUMBER_PATTERN = r"^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$"
INTEGER_PATTERN = r"^\s*-?\d+(\.0+)?\s*$"
ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
ISO_TIMESTAMP_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
OFFSET_PATTERN = r"(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class Column:
    name: str
    required: bool = False
    type: str = "text"  # text | number | money | integer | date | timestamp


@dataclass(frozen=True)
class Rule:
    name: str
    check: str
    column: str
    table: str | None = None  # a child table's name, or None for the records themselves
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSet:
    source: str
    columns: list[Column]
    rules: list[Rule]
    time_zone: str = "UTC"
    children: dict[str, list[Column]] = field(default_factory=dict)
    duplicate_prefilter: list[str] = field(default_factory=list)
    # the columns naming a record across files (a device's reading: device and time); a record
    # whose key landed before, from any file, is held in quarantine instead of landing twice
    record_key: list[str] = field(default_factory=list)
    # the column whose records each keep their own order of times (a device's readings): it
    # settles a local time of the autumn's repeated hour (settle_ambiguous_local_times)
    local_time_order: str | None = None

    @property
    def required_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.required]

    def column_names(self, table: str | None = None) -> list[str]:
        columns = self.columns if table is None else self.children[table]
        return [column.name for column in columns]

    def code_sets(self) -> dict[str, str]:
        """The code sets its rules check codes against, each with its version (recorded in
        the file ledger with every file checked)."""
        used = [
            code_sets.CHECKS[rule.check]() for rule in self.rules if rule.check in code_sets.CHECKS
        ]
        return {code_set.name: code_set.version for code_set in used}


@dataclass
class Verdict:
    """Per record: the first rule it broke (or None), and the reasons of every rule it broke."""

    failed: np.ndarray  # bool, one per record
    first_rule: np.ndarray  # object: rule name or None
    reasons: dict[int, list[str]]  # record index -> reasons, for failed records only


def _columns(spec: list[dict]) -> list[Column]:
    return [Column(**item) for item in spec]


def _type_rules(columns: list[Column], table: str | None) -> list[Rule]:
    return [
        Rule(
            name=f"{column.name}_is_{column.type}",
            check=column.type,
            column=column.name,
            table=table,
        )
        for column in columns
        if column.type != "text"
    ]


def load_rules(name: str) -> RuleSet:
    spec = yaml.safe_load((RULES_DIR / f"{name}.yml").read_text())
    columns = _columns(spec["columns"])
    children = {child: _columns(cols) for child, cols in spec.get("children", {}).items()}
    rules = [
        Rule(
            name=rule["name"],
            check=rule["check"],
            column=rule["column"],
            table=rule.get("table"),
            options={
                k: v for k, v in rule.items() if k not in ("name", "check", "column", "table")
            },
        )
        for rule in spec["rules"]
    ]
    required = [
        Rule(name=f"{column.name}_required", check="required", column=column.name, table=table)
        for table, cols in [(None, columns), *children.items()]
        for column in cols
        if column.required
    ]
    typed = _type_rules(columns, None) + [
        rule for child, cols in children.items() for rule in _type_rules(cols, child)
    ]
    return RuleSet(
        source=spec["source"],
        columns=columns,
        rules=required + typed + rules,
        time_zone=spec.get("time_zone", "UTC"),
        children=children,
        duplicate_prefilter=spec.get("duplicates", {}).get("prefilter", []),
        record_key=spec.get("record_key", []),
        local_time_order=spec.get("local_time_order"),
    )


def _present(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(values), ""), False)


def _fails(matched: pa.Array, values: pa.Array) -> np.ndarray:
    """Present values that did not match; absent values are the `required` rule's business."""
    bad = pc.and_(_present(values), pc.invert(pc.fill_null(matched, False)))
    return bad.to_numpy(zero_copy_only=False)


def _required(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    return pc.invert(_present(values)).to_numpy(zero_copy_only=False), f"{rule.column} is empty"


def _pattern(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    matched = pc.match_substring_regex(values, rule.options["pattern"])
    return _fails(matched, values), f"{rule.column} does not match its format"


def _number(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    matched = pc.match_substring_regex(values, NUMBER_PATTERN)
    return _fails(matched, values), f"{rule.column} is not a number"


def _integer(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    matched = pc.match_substring_regex(values, INTEGER_PATTERN)
    return _fails(matched, values), f"{rule.column} is not a whole number"


def _date(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """YYYY-MM-DD naming a real day (strptime alone would roll 02-30 over to 03-01)."""
    shaped = pc.match_substring_regex(values, ISO_DATE_PATTERN)
    parsed = pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True)
    day = pc.cast(pc.utf8_slice_codeunits(pc.if_else(shaped, values, None), 8, 10), pa.int64())
    real = pc.and_(shaped, pc.equal(pc.day(parsed), day))
    return _fails(real, values), f"{rule.column} is not a date in the form YYYY-MM-DD"


def _timestamp(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    parsed = parse_timestamps(values, context["time_zone"])
    return _fails(pc.is_valid(parsed), values), (
        f"{rule.column} is not an ISO 8601 timestamp (or names a local time that does not exist"
        f" in {context['time_zone']}, or one of the autumn's repeated hour that the record's order"
        " does not settle)"
    )


def _not_in_future(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """A timestamp no later than now plus `tolerance_minutes` (a device clock a little ahead).
    One far ahead is a wrong clock or time zone, and would hide the readings after it."""
    import pandas as pd

    tolerance = rule.options.get("tolerance_minutes", 5)
    latest = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=tolerance)
    parsed = parse_timestamps(values, context["time_zone"])
    ahead = pc.fill_null(pc.greater(parsed, pa.scalar(latest.to_pydatetime(), parsed.type)), False)
    return ahead.to_numpy(zero_copy_only=False), (
        f"{rule.column} is more than {tolerance} minutes in the future"
    )


def _not_before(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """A timestamp no earlier than `earliest` (a date): before it, a clock reset, not a reading."""
    import pandas as pd

    earliest = pd.Timestamp(rule.options["earliest"], tz="UTC").to_pydatetime()
    parsed = parse_timestamps(values, context["time_zone"])
    before = pc.fill_null(pc.less(parsed, pa.scalar(earliest, parsed.type)), False)
    return before.to_numpy(zero_copy_only=False), (
        f"{rule.column} is before {rule.options['earliest']}"
    )


def _range(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    numbers = to_number(values)
    low, high = rule.options.get("min"), rule.options.get("max")
    inside = pc.is_valid(numbers)
    if low is not None:
        inside = pc.and_(inside, pc.greater_equal(numbers, low))
    if high is not None:
        inside = pc.and_(inside, pc.less_equal(numbers, high))
    present_numbers = pc.is_valid(numbers)
    bad = pc.and_(present_numbers, pc.invert(pc.fill_null(inside, False)))
    return bad.to_numpy(zero_copy_only=False), f"{rule.column} is outside [{low}, {high}]"


def _icd10cm(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """A code of the shipped ICD-10-CM code set (ingestion/code_sets.py), any level."""
    code_set = code_sets.icd10cm()
    known = pc.is_in(pc.utf8_upper(pc.utf8_trim_whitespace(values)), value_set=code_set.codes)
    return _fails(known, values), f"{rule.column} is not an ICD-10-CM code ({code_set.version})"


def _icd10cm_complete(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """A code with no code below it: a category with subcategories (E11) is a heading, not a
    diagnosis (ICD-10-CM Official Guidelines for Coding and Reporting, I.A.2 and I.B.3: a code
    is used only at its highest level of detail). A code not in the set is `icd10cm`'s failure,
    not this one's."""
    code_set = code_sets.icd10cm()
    codes = pc.utf8_upper(pc.utf8_trim_whitespace(values))
    heading = pc.and_(
        pc.is_in(codes, value_set=code_set.codes),
        pc.invert(pc.is_in(codes, value_set=code_set.complete)),
    )
    return _fails(pc.invert(heading), values), (
        f"{rule.column} is an ICD-10-CM category with codes below it, not a complete diagnosis"
        f" ({code_set.version})"
    )


def _npi(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """Ten digits whose last is the Luhn check digit of '80840' + the first nine (CMS)."""
    shaped = pc.fill_null(pc.match_substring_regex(values, r"^\d{10}$"), False)
    ok = np.zeros(len(values), dtype=bool)
    indices = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    if len(indices):
        chosen = pc.cast(pc.take(values, pa.array(indices)), pa.binary())
        offsets = np.frombuffer(chosen.buffers()[1], dtype=np.int32)[chosen.offset :]
        data = np.frombuffer(chosen.buffers()[2], dtype=np.uint8)
        digits = data[offsets[0] : offsets[0] + len(indices) * 10]
        digits = digits.reshape(len(indices), 10).astype(np.int64) - ord("0")
        body = digits[:, :9]
        doubled = body[:, 0::2] * 2  # from the right of the nine digits: positions 9, 7, 5, 3, 1
        doubled = np.where(doubled > 9, doubled - 9, doubled)
        total = 24 + doubled.sum(axis=1) + body[:, 1::2].sum(axis=1)
        ok[indices] = (10 - total % 10) % 10 == digits[:, 9]
    return _fails(pa.array(ok), values), f"{rule.column} fails the NPI check digit"


def _greater_than(values: pa.Array, rule: Rule, context: dict):
    """`column` is greater than `other` (e.g. systolic above diastolic pressure)."""
    other = to_number(context["table"].column(rule.options["greater_than"]))
    numbers = to_number(values)
    above = pc.greater(numbers, other)
    both = pc.and_(pc.is_valid(numbers), pc.is_valid(other))
    bad = pc.and_(both, pc.invert(pc.fill_null(above, False)))
    return bad.to_numpy(zero_copy_only=False), (
        f"{rule.column} is not above {rule.options['greater_than']}"
    )


def _on_or_after(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """A date (YYYY-MM-DD) no earlier than the record's `on_or_after` date (a discharge on or
    after its admission). Dates compared as text: ISO dates sort as the days they name; a value
    that is no date is its own date rule's business."""
    if rule.options["on_or_after"] not in context["table"].column_names:
        return np.zeros(len(values), dtype=bool), ""
    other = context["table"].column(rule.options["on_or_after"]).combine_chunks()
    both = pc.and_(
        pc.fill_null(pc.match_substring_regex(values, ISO_DATE_PATTERN), False),
        pc.fill_null(pc.match_substring_regex(other, ISO_DATE_PATTERN), False),
    )
    before = pc.and_(both, pc.fill_null(pc.less(values, other), False))
    return before.to_numpy(zero_copy_only=False), (
        f"{rule.column} is before {rule.options['on_or_after']}"
    )


def _sum_of_children(values: pa.Array, rule: Rule, context: dict) -> tuple[np.ndarray, str]:
    """The record's `column` equals the sum of its child rows' `child_column`."""
    child: pa.Table = context["children"][rule.options["child"]]
    positions: np.ndarray = context["positions"]
    sums = (
        pa.table(
            {
                "_parent_position": child.column("_parent_position"),
                "amount": to_number(child.column(rule.options["child_column"])),
            }
        )
        .group_by("_parent_position")
        .aggregate([("amount", "sum")])
    )
    parent_positions = sums.column("_parent_position").to_numpy()
    parent_sums = sums.column("amount_sum").to_numpy(zero_copy_only=False).astype(float)
    order = np.argsort(parent_positions)
    parent_positions, parent_sums = parent_positions[order], parent_sums[order]
    slot = np.clip(np.searchsorted(parent_positions, positions), 0, max(len(order) - 1, 0))
    expected = np.zeros(len(positions), dtype=float)
    if len(order):
        matched = parent_positions[slot] == positions
        expected[matched] = parent_sums[slot][matched]
    totals = to_number(values).to_numpy(zero_copy_only=False)
    tolerance = rule.options.get("tolerance", 0.005)
    with np.errstate(invalid="ignore"):
        bad = np.abs(np.nan_to_num(totals, nan=np.inf) - expected) > tolerance
    bad &= ~np.isnan(totals.astype(float))
    return (
        bad,
        f"{rule.column} is not the sum of its {rule.options['child']} {rule.options['child_column']}",
    )


CHECKS: dict[str, Callable[[pa.Array, Rule, dict], tuple[np.ndarray, str]]] = {
    "required": _required,
    "pattern": _pattern,
    "number": _number,
    "money": _number,
    "integer": _integer,
    "date": _date,
    "timestamp": _timestamp,
    "not_in_future": _not_in_future,
    "not_before": _not_before,
    "range": _range,
    "icd10cm": _icd10cm,
    "icd10cm_complete": _icd10cm_complete,
    "npi": _npi,
    "greater_than": _greater_than,
    "on_or_after": _on_or_after,
    "sum_of_children": _sum_of_children,
}


def to_number(values: pa.Array) -> pa.Array:
    """Text to float64; what does not read as a number becomes null."""
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        return pc.cast(values, pa.float64())
    numeric = pc.fill_null(pc.match_substring_regex(values, NUMBER_PATTERN), False)
    return pc.cast(pc.utf8_trim_whitespace(pc.if_else(numeric, values, None)), pa.float64())


def settle_ambiguous_local_times(table: pa.Table, rules: RuleSet) -> pa.Table:
    """Give each local time of the autumn's repeated hour (01:30 without an offset names two
    moments an hour apart) the offset its device's own order of readings settles, before anything
    reads the times: where a device's local times in this batch step back into the repeated hour
    (the clock fell back), its readings there before the step are the first pass (summer time) and
    from the step on the second (standard time). A time no step settles is left as sent: it
    parses as no time, and the timestamp rule holds the record in quarantine with that reason
    (counted, and alerted on by the vitals processor), never guessed, never dropped."""
    import pandas as pd

    order = rules.local_time_order
    if order is None or order not in table.column_names:
        return table
    zone = ZoneInfo(rules.time_zone)
    for column in [c.name for c in rules.columns if c.type == "timestamp"]:
        if column not in table.column_names:
            continue
        values = table.column(column).combine_chunks()
        has_offset = pc.fill_null(pc.match_substring_regex(values, OFFSET_PATTERN), True)
        if pc.all(has_offset).as_py():  # the usual feed: every time carries its offset
            continue
        texts = pd.Series(values.to_pandas(), dtype="object")
        local = texts.str.match(ISO_TIMESTAMP_PATTERN, na=False) & ~texts.str.contains(
            OFFSET_PATTERN, regex=True, na=False
        )
        if not local.any():
            continue
        naive = pd.to_datetime(texts[local], format="ISO8601", errors="coerce")
        summer = naive.dt.tz_localize(zone, ambiguous=np.ones(len(naive), bool), nonexistent="NaT")
        winter = naive.dt.tz_localize(zone, ambiguous=np.zeros(len(naive), bool), nonexistent="NaT")
        ambiguous = summer.notna() & (summer != winter)
        if not ambiguous.any():
            continue
        devices = pd.Series(table.column(order).to_pandas(), dtype="object")[local.index[local]]
        settled = texts.copy()
        for _, rows in naive.groupby(devices, sort=False):
            times = rows.to_numpy()
            steps = (
                np.flatnonzero(times[1:] < times[:-1]) + 1
            )  # positions where the clock fell back
            steps = [k for k in steps if ambiguous[rows.index[k]]]
            if not steps:
                continue
            for position, row in enumerate(rows.index):
                if ambiguous[row]:
                    moment = summer[row] if position < steps[0] else winter[row]
                    settled[row] = moment.isoformat()
        table = table.set_column(
            table.column_names.index(column), column, pa.array(settled, pa.string())
        )
    return table


def parse_timestamps(values: pa.Array, time_zone: str) -> pa.Array:
    """ISO 8601 text to UTC timestamps; a time without an offset is read in `time_zone`.

    A local time that does not exist (spring forward) or is ambiguous (fall back; see
    settle_ambiguous_local_times) becomes null.
    """
    import pandas as pd

    shaped = pc.fill_null(pc.match_substring_regex(values, ISO_TIMESTAMP_PATTERN), False)
    texts = pd.Series(pc.if_else(shaped, values, None).to_pandas(), dtype="object")
    has_offset = texts.str.contains(OFFSET_PATTERN, regex=True, na=False)
    result = pd.Series(pd.NaT, index=texts.index, dtype="datetime64[us, UTC]")
    if has_offset.any():
        result[has_offset] = pd.to_datetime(
            texts[has_offset], format="ISO8601", utc=True, errors="coerce"
        )
    local = texts.notna() & ~has_offset
    if local.any():
        naive = pd.to_datetime(texts[local], format="ISO8601", errors="coerce")
        result[local] = naive.dt.tz_localize(
            ZoneInfo(time_zone), ambiguous="NaT", nonexistent="NaT"
        ).dt.tz_convert("UTC")
    return pa.array(result, type=pa.timestamp("us", tz="UTC"))


def validate(
    table: pa.Table,
    rules: RuleSet,
    positions: np.ndarray,
    children: dict[str, pa.Table] | None = None,
) -> Verdict:
    """Evaluate every rule; a record fails if it or any of its child rows breaks one."""
    children = children or {}
    count = table.num_rows
    failed = np.zeros(count, dtype=bool)
    first_rule = np.full(count, None, dtype=object)
    reasons: dict[int, list[str]] = {}
    index_of: dict[int, int] = {}  # position -> record index, built only for child rules
    for rule in rules.rules:
        target = table if rule.table is None else children.get(rule.table)
        if target is None or rule.column not in target.column_names:
            continue
        context = {
            "table": target,
            "children": children,
            "positions": positions,
            "time_zone": rules.time_zone,
        }
        bad, reason = CHECKS[rule.check](target.column(rule.column).combine_chunks(), rule, context)
        bad_rows = np.flatnonzero(bad)
        if rule.table is None:
            hits = [(row, f"{rule.name}: {reason}") for row in bad_rows.tolist()]
        else:
            if not index_of:
                index_of = {position: index for index, position in enumerate(positions.tolist())}
            parents = target.column("_parent_position").to_numpy()[bad_rows]
            lines = target.column("_line").to_numpy()[bad_rows]
            hits = [
                (index_of[parent], f"{rule.name}: {rule.table}[{line}]: {reason}")
                for parent, line in zip(parents.tolist(), lines.tolist(), strict=True)
            ]
        for row, message in hits:
            if not failed[row]:
                failed[row] = True
                first_rule[row] = rule.name
            reasons.setdefault(row, []).append(message)
    return Verdict(failed=failed, first_rule=first_rule, reasons=reasons)
