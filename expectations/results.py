"""What a checkpoint found, in the gate's terms: failures (blocking or warning), quality scores,
and the verdict recorded in `audit.gate_results` and `audit.quality_scores`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace

import psycopg

from expectations.checks import Thresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    checkpoint: str
    table: str
    expectation: str
    columns: list[str]
    rule: str
    severity: str
    dimension: str
    failing_rows: int | None  # None: not a count of rows (freshness)
    rows_checked: int | None
    observed: float | None = None
    positions: list[str] = field(default_factory=list)  # file#position, or surrogate keys
    positions_total: int = 0

    @property
    def blocking(self) -> bool:
        return self.severity == "blocking"

    def with_positions(self, positions: list[str], total: int) -> Failure:
        return replace(self, positions=positions, positions_total=total)

    def describe(self) -> str:
        """The expectation, the table, how many rows failed and which: no value of a row."""
        columns = ", ".join(self.columns)
        what = f"{self.expectation}({columns}) [{self.rule}] on {self.table}"
        if self.dimension == "freshness":
            if self.observed is None:
                return f"{what}: nothing has landed yet"
            return f"{what}: {self.observed:.1f} hours since the newest landing"
        if self.failing_rows is None:
            return f"{what}: observed {self.observed}"
        text = f"{what}: {self.failing_rows} of {self.rows_checked} rows fail"
        if self.positions:
            more = self.positions_total - len(self.positions)
            text += ": " + ", ".join(self.positions) + (f" and {more} more" if more > 0 else "")
        return text


@dataclass(frozen=True)
class Verdict:
    checkpoint: str
    build_schema: str | None
    evaluated: int
    failures: list[Failure]

    @property
    def blocking(self) -> list[Failure]:
        return [f for f in self.failures if f.blocking]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if not f.blocking]

    @property
    def passed(self) -> bool:
        return not self.blocking


def _columns(config) -> list[str]:
    kwargs = config.kwargs
    if "column_list" in kwargs:
        return list(kwargs["column_list"])
    return [kwargs["column"]] if "column" in kwargs else []


def failures_of(validation_result, table: str) -> list[Failure]:
    """The failed expectations of one validation; surrogate keys where the result lists them."""
    failures = []
    for outcome in validation_result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        meta = config.meta or {}
        result = outcome.result or {}
        keys = [
            "/".join(
                str(v)
                for k, v in row.items()
                if k in result.get("unexpected_index_column_names", [])
            )
            for row in result.get("partial_unexpected_index_list") or []
        ]
        failures.append(
            Failure(
                checkpoint=validation_result.suite_name.split(".")[0],
                table=table,
                expectation=config.type,
                columns=_columns(config),
                rule=meta.get("rule", config.type),
                severity=meta.get("severity", "blocking"),
                dimension=meta.get("dimension", "validity"),
                failing_rows=result.get("unexpected_count"),
                rows_checked=result.get("element_count"),
                observed=result.get("observed_value"),
                positions=keys,
                positions_total=(result.get("unexpected_count") or 0) if keys else 0,
            )
        )
    return failures


def scores_of(
    validation_result,
    checkpoint: str,
    source: str | None,
    table: str | None,
    thresholds: Thresholds,
) -> list[dict]:
    """One score a dimension of the validated table: the worst share of rows meeting a check of
    that dimension (1.0 when no row was checked is not claimed: no score then). Freshness scores
    1 or 0 per source, its observed age beside."""
    worst: dict[str, dict] = {}
    for outcome in validation_result.results:
        config = outcome.expectation_config
        meta = config.meta or {}
        dimension = meta.get("dimension", "validity")
        result = outcome.result or {}
        if dimension == "freshness":
            observed = result.get("observed_value")
            scores_source = config.kwargs["column"]
            worst[f"freshness:{scores_source}"] = {
                "checkpoint": checkpoint,
                "source": scores_source,
                "table_name": None,
                "dimension": "freshness",
                "score": 1.0 if outcome.success else 0.0,
                "threshold": thresholds.freshness_hours,
                "observed": float(observed) if observed is not None else None,
                "rows_checked": None,
                "passed": bool(outcome.success),
            }
            continue
        checked = result.get("element_count")
        if not checked:
            continue
        share = round(1 - (result.get("unexpected_count") or 0) / checked, 6)
        score = worst.setdefault(
            dimension,
            {
                "checkpoint": checkpoint,
                "source": source,
                "table_name": table,
                "dimension": dimension,
                "score": share,
                "threshold": thresholds.share(dimension),
                "observed": None,
                "rows_checked": checked,
                "passed": True,
            },
        )
        if share < score["score"]:  # the worst check speaks for the dimension, its rows with it
            score["score"], score["rows_checked"] = share, checked
        score["passed"] = score["passed"] and bool(outcome.success)
    return list(worst.values())


def record(conn: psycopg.Connection, verdict: Verdict, scores: list[dict], run_id: str) -> None:
    """Store the verdict and the scores, in the caller's transaction, and log the failures."""
    conn.execute(
        """
        insert into audit.gate_results
            (run_id, checkpoint, build_schema, passed, expectations_evaluated,
             expectations_failed, warnings, details)
        values (%s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            run_id,
            verdict.checkpoint,
            verdict.build_schema,
            verdict.passed,
            verdict.evaluated,
            len(verdict.blocking),
            len(verdict.warnings),
            json.dumps([asdict(f) for f in verdict.failures]),
        ),
    )
    with conn.cursor() as cur:
        cur.executemany(
            """
            insert into audit.quality_scores
                (run_id, checkpoint, source, table_name, dimension, score, threshold, observed,
                 rows_checked, passed)
            values (%(run_id)s, %(checkpoint)s, %(source)s, %(table_name)s, %(dimension)s,
                    %(score)s, %(threshold)s, %(observed)s, %(rows_checked)s, %(passed)s)
            """,
            [{**score, "run_id": run_id} for score in scores],
        )
    for failure in verdict.failures:
        level = logging.ERROR if failure.blocking else logging.WARNING
        log.log(level, "%s %s: %s", verdict.checkpoint, failure.severity, failure.describe())
    log.info(
        "%s%s: %s (%d expectations, %d blocking failures, %d warnings)",
        verdict.checkpoint,
        f" on {verdict.build_schema}" if verdict.build_schema else "",
        "PASS" if verdict.passed else "FAIL",
        verdict.evaluated,
        len(verdict.blocking),
        len(verdict.warnings),
    )


def failure_from_dict(item: dict) -> Failure:
    return Failure(**item)
