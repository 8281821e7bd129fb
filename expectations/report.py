"""The data quality report, for everyone: `make report` (hcw report).

Builds two static sites from what the gate recorded:
- Great Expectations' Data Docs (every suite and validation result, under var/gx/): exact counts
  of failing rows, for stewards only (the report does not link them);
- the project's own quality report, for everyone (var/reports/quality/index.html): the gate's decision for each
  run, quality scores over time per source and table, quarantined records by reason and status,
  received = loaded + quarantined per source, the FHIR references that resolve to nothing, and
the vitals processor's health (heartbeat, lag,
  throughput, last checkpoint).

Both hold counts, rules, file positions and surrogate keys only, never a value of a record (the
landed checkpoint's results carry no values; marts hold no PHI). Read as `steward`. The report's
figures about records of patients (received, loaded and quarantined rows, quarantined records by
rule and status, a score's share of rows) follow the small-cell rule (common/small_cells.py): a
count of 1 to 10, a figure that would give one away through the sums that tie them, and a score
whose failing or passing rows are 1 to 10 are shown as "hidden".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
import psycopg

from common import settings
from common.small_cells import LEGEND, Figures, display, rate_hidden
from common.whole_files import write_whole
from expectations import charts, data_docs_assets
from expectations import context as gx_context
from monitoring.health import read_health
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
DIMENSIONS = ("completeness", "uniqueness", "validity", "freshness")


def report_dir() -> Path:
    return settings.VAR_DIR / "reports" / "quality"


@dataclass(frozen=True)
class RunDecision:
    run_id: str
    started_at: datetime
    landed: str  # PASS / FAIL / not run
    gate: str
    blocking: int
    warnings: int
    published: bool


def _decisions(conn: psycopg.Connection) -> list[RunDecision]:
    rows = conn.execute(
        """
        select runs.run_id, runs.started_at,
               landed.passed, gate.passed,
               -- the gate's count includes the landed checkpoint's blocking failures
               coalesce(gate.expectations_failed, landed.expectations_failed, 0),
               coalesce(landed.warnings, 0) + coalesce(gate.warnings, 0),
               exists (select 1 from audit.publications as p where p.run_id = runs.run_id)
        from audit.pipeline_runs as runs
        left join lateral (
            select * from audit.gate_results as g
            where g.run_id = runs.run_id and g.checkpoint = 'landed'
            order by g.recorded_at desc limit 1
        ) as landed on true
        left join lateral (
            select * from audit.gate_results as g
            where g.run_id = runs.run_id and g.checkpoint = 'publish_gate'
            order by g.recorded_at desc limit 1
        ) as gate on true
        -- builds: a source DAG's run (landing only) decides nothing
        where runs.workflow = 'warehouse_build' or landed.run_id is not null
        order by runs.started_at
        """
    ).fetchall()

    def word(passed: bool | None) -> str:
        return "not run" if passed is None else "PASS" if passed else "FAIL"

    return [
        RunDecision(run_id, started, word(landed), word(gate), blocking, warnings, published)
        for run_id, started, landed, gate, blocking, warnings, published in rows
    ]


def _score_charts(
    conn: psycopg.Connection, runs: list[str], labels: list[str]
) -> tuple[list[str], list[dict]]:
    """A chart a table (or source, for freshness) of its scores over the runs (labelled by their
    start); the latest scores."""
    rows = conn.execute(
        """
        select run_id, coalesce(table_name, 'landings of ' || source) as subject, dimension,
               score, passed, observed, rows_checked
        from audit.quality_scores order by recorded_at
        """
    ).fetchall()
    # a share of rows gives the rows failing beside those checked: hidden where either is small
    rows = [
        (*row[:3], None if _share_hidden(conn, row[3], row[6]) else row[3], *row[4:6])
        for row in rows
    ]
    by_subject: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    latest: dict[tuple[str, str], dict] = {}
    for run_id, subject, dimension, score, passed, observed in rows:
        by_subject[subject][dimension][run_id] = score
        latest[(subject, dimension)] = {
            "subject": subject,
            "dimension": dimension,
            "score": score,
            "passed": passed,
            "observed": observed,
            "run_id": run_id,
        }
    freshness = defaultdict(dict)
    svgs = []
    for subject in sorted(by_subject):
        dimensions = by_subject[subject]
        if subject.startswith("landings of "):
            freshness[subject.removeprefix("landings of ")] = dimensions["freshness"]
            continue
        series = {
            d: [dimensions[d].get(run) for run in runs] for d in DIMENSIONS if d in dimensions
        }
        svgs.append(charts.line_chart(subject, labels, series))
    if freshness:
        series = {source: [values.get(run) for run in runs] for source, values in freshness.items()}
        svgs.append(
            charts.line_chart("freshness of each source (1: landed in time)", labels, series)
        )
    ordered = sorted(
        latest.values(), key=lambda s: (s["subject"], DIMENSIONS.index(s["dimension"]))
    )
    return svgs, ordered


def _share_hidden(conn: psycopg.Connection, share: float, rows_checked: int | None) -> bool:
    if rows_checked is None:  # freshness: a landing on time or not, no rows
        return False
    meeting = round(share * rows_checked)
    return rate_hidden(conn, meeting, rows_checked)


def _counts(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Quarantined records by source, stage, rule and status, and by rule; received = loaded +
    quarantined (+ superseded, in an API pull) by source: as they may be shown."""
    by_status = conn.execute(
        """
        select source, stage, rule, status, count(*)
        from quarantine.quarantined_records group by 1, 2, 3, 4 order by 1, 2, 3, 4
        """
    ).fetchall()
    by_reason: dict[str, int] = defaultdict(int)
    for _, _, rule, _, count in by_status:
        by_reason[rule] += count
    reconciliation = _reconciliation(conn)
    figures = Figures()
    for source, stage, rule, status, count in by_status:
        figures.count(("held", source, stage, rule, status), count)
    for rule, count in by_reason.items():
        figures.count(("rule", rule), count)
        figures.sum([("rule", rule)], [("held", *row[:4]) for row in by_status if row[2] == rule])
    kinds = ("received", "loaded", "quarantined", "superseded")
    for source, *counts in reconciliation:
        for kind, count in zip(kinds, counts, strict=True):
            figures.count((source, kind), count)
        figures.sum([(source, "received")], [(source, kind) for kind in kinds[1:]])
    # a source's quarantined rows are its records held; every record held is some source's
    for source, *_ in reconciliation:
        figures.sum(
            [(source, "quarantined")], [("held", *row[:4]) for row in by_status if row[0] == source]
        )
    figures.sum(
        [(source, "quarantined") for source, *_ in reconciliation],
        [("rule", rule) for rule in by_reason],
    )
    shown = figures.shown(conn)
    return (
        [(*row[:4], shown[("held", *row[:4])]) for row in by_status],
        sorted(
            ((rule, shown[("rule", rule)]) for rule in by_reason),
            key=lambda item: -(item[1] or 0),
        ),
        [(source, *(shown[(source, kind)] for kind in kinds)) for source, *_ in reconciliation],
    )


def _reconciliation(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        """
        select source, sum(rows_received), sum(rows_loaded), sum(rows_quarantined), 0
        from audit.file_ledger group by source
        union all
        select source, sum(rows_received), sum(rows_loaded), sum(rows_quarantined),
               sum(rows_superseded)
        from audit.api_pulls group by source
        order by 1
        """
    ).fetchall()


def _source_warnings(conn: psycopg.Connection) -> list[tuple]:
    """The API pulls of the last 30 days that found their source changed, the newest first."""
    return conn.execute(
        """
        select recorded_at, server, resource_type, warning from audit.api_pulls
        where warning is not null and recorded_at > now() - interval '30 days'
        order by recorded_at desc limit 50
        """
    ).fetchall()


@dataclass(frozen=True)
class ReferenceCounts:
    """The latest build's FHIR reference resolution (audit.fhir_reference_counts), as shown: the
    references that resolve to nothing by type, element, form and outcome; all and resolved."""

    unresolved: list[tuple]  # (resource type, element, form, outcome, count shown)
    references: int | None
    resolved: int | None
    unresolved_total: int | None


def _reference_counts(conn: psycopg.Connection) -> ReferenceCounts | None:
    rows = conn.execute(
        """
        select resource_type, element, reference_form, outcome, reference_count
        from audit.fhir_reference_counts
        where invocation_id = (
            select invocation_id from audit.fhir_reference_counts
            order by recorded_at desc limit 1
        )
        order by 1, 2, 3, 4
        """
    ).fetchall()
    if not rows:
        return None
    figures = Figures()
    for *kind, count in rows:
        figures.count(("reference", *kind), count)
    resolved = [("reference", *kind) for *kind, _ in rows if kind[3] == "resolved"]
    unresolved = [("reference", *kind) for *kind, _ in rows if kind[3] != "resolved"]
    figures.count(("references",), sum(count for *_, count in rows))
    figures.count(("resolved",), sum(count for *kind, count in rows if kind[3] == "resolved"))
    figures.count(("unresolved",), sum(count for *kind, count in rows if kind[3] != "resolved"))
    figures.sum([("resolved",)], resolved)
    figures.sum([("unresolved",)], unresolved)
    figures.sum([("references",)], [("resolved",), ("unresolved",)])
    shown = figures.shown(conn)
    return ReferenceCounts(
        [(*key[1:], shown[key]) for key in unresolved],
        shown[("references",)],
        shown[("resolved",)],
        shown[("unresolved",)],
    )


def build_report(warehouse: Warehouse, folder: Path | None = None) -> Path:
    """Write the quality report's page; return its path."""
    folder = folder or report_dir()
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        decisions = _decisions(conn)
        runs = [d.run_id for d in decisions]
        labels = [d.started_at.strftime("%m-%d %H:%M") for d in decisions]
        score_svgs, latest = _score_charts(conn, runs, labels)
        quarantine_rows, by_reason, reconciliation = _counts(conn)
        source_warnings = _source_warnings(conn)
        references = _reference_counts(conn)
    processor = read_health(warehouse)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    page = environment.get_template("quality_report.html.j2").render(
        generated_at=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        decisions=list(reversed(decisions)),
        score_charts=[jinja2.utils.markupsafe.Markup(svg) for svg in score_svgs],
        latest=latest,
        quarantine_rows=quarantine_rows,
        reason_chart=jinja2.utils.markupsafe.Markup(
            charts.bar_chart("quarantined records by rule", by_reason)
        ),
        reconciliation=reconciliation,
        source_warnings=source_warnings,
        references=references,
        processor=processor,
        shown=display,
        legend=LEGEND,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    write_whole(path, page)  # a reader of the site never sees half a page
    return path


def build_data_docs() -> Path:
    """Great Expectations' Data Docs from every stored validation result; return its index."""
    context = gx_context.open_context()
    context.build_data_docs()
    site = gx_context.gx_dir() / "uncommitted" / "data_docs" / "local_site"
    data_docs_assets.localise(site)
    return site / "index.html"
