"""Validate what landed since the last validation, before dbt builds on it (runs as `loader`).

For each raw table of `quality.yml`'s `landed` section, its batch is the rows of files (or API
pulls) not validated yet. The batch is claimed, validated by a checkpoint whose results hold
counts only (raw tables hold PHI), and then, in one transaction: every row breaking a validity
or uniqueness check moves from the raw table to quarantine with the check's rule and this run
(the ledger's loaded and quarantined counts move with it, so received = loaded + quarantined
still holds), and the batch is marked validated. The checkpoint's verdict, the failing rows'
files and positions, and the batch's quality scores are recorded for the gate before publishing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

from expectations import checks
from expectations import context as gx_context
from expectations.results import Failure, Verdict, failures_of, record, scores_of
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

CHECKPOINT = "landed"
# Raw tables hold PHI: a result says how many rows failed, never which values.
RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
}
POSITIONS_NAMED = 20  # in a failure's message; every failing row is in quarantine


@dataclass(frozen=True)
class Batch:
    """The rows of one raw table this validation covers, as SQL."""

    table: checks.LandedTable

    @property
    def from_files(self) -> bool:
        return self.table.source not in checks.API_SOURCES

    @property
    def relation(self) -> sql.Composable:
        return sql.Identifier(*self.table.table.split("."))

    def typed_copies(self) -> sql.Composable:
        """A typed copy of each column a check reads as another type (`as:`), blanks as null."""
        return sql.SQL("").join(
            sql.SQL(", ") + checks.typed_copy(check) for check in self.table.checks if check.cast
        )

    def query(self) -> sql.Composable:
        """The batch's rows, each with its file's name, hash and landing order (file sources)."""
        if self.from_files:
            return sql.SQL(
                "select row.*{}, ledger.file_name as _file_name, ledger.file_hash as _file_hash,"
                " ledger.recorded_at as _landed_at"
                " from {} as row join audit.file_ledger as ledger"
                " on ledger.file_key = row._file_key"
                " where ledger.source = {} and ledger.validation_state = 'validating'"
            ).format(self.typed_copies(), self.relation, sql.Literal(self.table.source))
        return sql.SQL(
            "select row.*{} from {} as row where row._pulled_in in (select run_id"
            " from audit.api_pulls where source = {} and validation_state = 'validating')"
        ).format(self.typed_copies(), self.relation, sql.Literal(self.table.source))


def _claim(conn: psycopg.Connection) -> None:
    """Mark every unvalidated file and pull as this validation's (again, after a crash)."""
    conn.execute(
        "update audit.file_ledger set validation_state = 'validating'"
        " where status = 'loaded' and validation_state = 'pending'"
    )
    conn.execute(
        "update audit.api_pulls set validation_state = 'validating'"
        " where validation_state = 'pending'"
    )


def _freshness_query(sources: dict[str, str]) -> sql.Composable:
    """One row: for each source, the hours since its newest landing (null: never landed)."""
    columns = []
    for source in sources:
        if source in checks.API_SOURCES:
            newest = sql.SQL("select max(recorded_at) from audit.api_pulls where source = {}")
        else:
            newest = sql.SQL(
                "select max(recorded_at) from audit.file_ledger"
                " where source = {} and status = 'loaded'"
            )
        columns.append(
            sql.SQL("(extract(epoch from now() - ({})) / 3600)::float8 as {}").format(
                newest.format(sql.Literal(source)), sql.Identifier(source)
            )
        )
    return sql.SQL("select ") + sql.SQL(", ").join(columns)


def _freshness_suite(quality: checks.QualityConfig):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx.ExpectationSuite(
        name=f"{CHECKPOINT}.freshness",
        expectations=[
            gxe.ExpectColumnMaxToBeBetween(
                column=source,
                max_value=quality.thresholds.freshness_hours,
                meta={"severity": severity, "rule": f"{source}_landed_within_hours",
                      "dimension": "freshness"},
            )
            for source, severity in quality.freshness.items()
        ],
    )  # fmt: skip


def _table_suite(table: checks.LandedTable, quality: checks.QualityConfig, today: date):
    import great_expectations as gx

    return gx.ExpectationSuite(
        name=f"{CHECKPOINT}.{table.table}",
        expectations=[checks.expectation(c, quality.thresholds, today) for c in table.checks],
    )


class ValidationFailed(Exception):
    """A check could not be run on a batch: the message names the table, rule and SQLSTATE only
    (the database's own message may quote a value of the row)."""


def _execute(conn: psycopg.Connection, statement: sql.Composable, check: checks.Check):
    try:
        return conn.execute(statement)
    except psycopg.Error as error:
        raise ValidationFailed(
            f"{check.table}: check {check.rule} could not run (SQLSTATE {error.sqlstate})"
        ) from None


def _positions(
    conn: psycopg.Connection, batch: Batch, check: checks.Check, today: date
) -> list[tuple[str, int]]:
    """(file name, record position) of every batch row breaking `check`, in file order."""
    rows = _execute(
        conn,
        sql.SQL(
            "with batch as ({}) select row._file_name, row._record_position from batch as row"
            " where {} order by row._landed_at, row._file_key, row._record_position"
        ).format(batch.query(), checks.breaking_rows(check, today)),
        check,
    ).fetchall()
    return [(name, position) for name, position in rows]


def _quarantine(
    conn: psycopg.Connection, batch: Batch, check: checks.Check, today: date, run_id: str
) -> dict[str, int]:
    """Move the batch rows breaking `check` (and their child rows) to quarantine; per file hash,
    how many moved."""
    failing = sql.SQL(
        "failing as (select row._file_key, row._record_position from batch as row where {})"
    ).format(checks.breaking_rows(check, today))
    children, child_json = [], []
    present = {
        label: child
        for label, child in batch.table.children.items()
        if conn.execute("select to_regclass(%s)", (child,)).fetchone()[0] is not None
    }
    for number, (label, child) in enumerate(present.items()):
        name, rows = sql.Identifier(f"child_{number}"), sql.Identifier(f"child_{number}_rows")
        children.append(
            sql.SQL(
                "{name} as (delete from {child} as child using failing where"
                " child._file_key = failing._file_key"
                " and child._record_position = failing._record_position returning child.*),"
                " {rows} as (select _file_key, _record_position,"
                " jsonb_agg(to_jsonb({name}) - '_file_key' - '_record_position' - '_line_number'"
                " order by _line_number) as rows from {name} group by 1, 2)"
            ).format(name=name, rows=rows, child=sql.Identifier(*child.split(".")))
        )
        child_json.append(
            sql.SQL(
                " || jsonb_build_object({label}, coalesce((select rows from {rows} as c"
                " where c._file_key = moved._file_key"
                " and c._record_position = moved._record_position), '[]'))"
            ).format(label=sql.Literal(label), rows=rows)
        )
    statement = sql.SQL(
        "with batch as ({batch}), {failing}, {children}"
        " moved as (delete from {table} as row using failing"
        " where row._file_key = failing._file_key"
        " and row._record_position = failing._record_position returning row.*)"
        " insert into quarantine.rejected_records"
        " (source, file_name, file_hash, record_position, rule, reason, record, run_id, stage)"
        " select ledger.source, ledger.file_name, ledger.file_hash, moved._record_position,"
        " {rule}, {reason}, (to_jsonb(moved) - '_file_key' - '_record_position'){child_json},"
        " {run_id}, 'after_landing'"
        " from moved join audit.file_ledger as ledger on ledger.file_key = moved._file_key"
        " returning file_hash"
    ).format(
        batch=batch.query(),
        failing=failing,
        children=sql.SQL("").join(c + sql.SQL(", ") for c in children),
        table=batch.relation,
        rule=sql.Literal(check.rule),
        reason=sql.Literal(checks.reason(check, today)),
        child_json=sql.SQL("").join(child_json),
        run_id=sql.Literal(run_id),
    )
    moved: dict[str, int] = {}
    for (file_hash,) in _execute(conn, statement, check).fetchall():
        moved[file_hash] = moved.get(file_hash, 0) + 1
    return moved


def _name_positions(positions: list[tuple[str, int]]) -> list[str]:
    return [f"{name}#{position}" for name, position in positions[:POSITIONS_NAMED]]


def validate_landed(warehouse: Warehouse, run_id: str, today: date | None = None) -> Verdict:
    """Validate, quarantine and score every batch landed since the last validation."""
    try:
        return _validate_landed(warehouse, run_id, today)
    finally:
        gx_context.forget_datasource_urls()


def _validate_landed(warehouse: Warehouse, run_id: str, today: date | None) -> Verdict:
    today = today or date.today()
    quality = checks.load()
    context = gx_context.open_context(warehouse)
    failures: list[Failure] = []
    scores: list[dict] = []
    evaluated = 0
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        # one validation at a time, for as long as this connection lives
        conn.execute("select pg_advisory_lock(hashtext('validate_landed'))")
        _claim(conn)
        conn.commit()  # the GX checkpoint reads the claimed batch through its own connection
        moved_by_file: dict[str, int] = {}
        for table in quality.landed:
            if conn.execute("select to_regclass(%s)", (table.table,)).fetchone()[0] is None:
                continue  # the source never landed: no batch to validate
            batch = Batch(table)
            definition = gx_context.batch_definition(
                context, "landed", table.table, query=batch.query().as_string(conn)
            )
            result = gx_context.run_checkpoint(
                context,
                f"{CHECKPOINT}.{table.table}",
                _table_suite(table, quality, today),
                definition,
                RESULT_FORMAT,
                run_id,
            )
            evaluated += len(result.results)
            scores += scores_of(result, CHECKPOINT, table.source, table.table, quality.thresholds)
            for failure in failures_of(result, table.table):
                if batch.from_files:
                    check = next(c for c in table.checks if c.rule == failure.rule)
                    positions = _positions(conn, batch, check, today)
                    failure = failure.with_positions(_name_positions(positions), len(positions))
                failures.append(failure)
            if batch.from_files:
                # validity first: a valid copy is not held back as the repeat of an invalid one
                held = [c for c in table.checks if c.dimension in checks.QUARANTINED_DIMENSIONS]
                for check in sorted(held, key=lambda c: c.dimension == "uniqueness"):
                    for file_hash, n in _quarantine(conn, batch, check, today, run_id).items():
                        moved_by_file[file_hash] = moved_by_file.get(file_hash, 0) + n
        for file_hash, n in moved_by_file.items():
            conn.execute(
                "update audit.file_ledger set rows_loaded = rows_loaded - %s,"
                " rows_quarantined = rows_quarantined + %s where file_hash = %s",
                (n, n, file_hash),
            )
        freshness = gx_context.run_checkpoint(
            context,
            f"{CHECKPOINT}.freshness",
            _freshness_suite(quality),
            gx_context.batch_definition(
                context,
                "landed",
                "freshness",
                query=_freshness_query(quality.freshness).as_string(conn),
            ),
            RESULT_FORMAT,
            run_id,
        )
        evaluated += len(freshness.results)
        scores += scores_of(freshness, CHECKPOINT, None, None, quality.thresholds)
        failures += failures_of(freshness, "landings")
        conn.execute(
            "update audit.file_ledger set validation_state = 'validated', validated_in = %s"
            " where validation_state = 'validating'",
            (run_id,),
        )
        conn.execute(
            "update audit.api_pulls set validation_state = 'validated', validated_in = %s"
            " where validation_state = 'validating'",
            (run_id,),
        )
        verdict = Verdict(CHECKPOINT, None, evaluated, failures)
        record(conn, verdict, scores, run_id)
    quarantined = sum(moved_by_file.values())
    if quarantined:
        log.warning("%d landed records moved to quarantine after validation", quarantined)
    return verdict
