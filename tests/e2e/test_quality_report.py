"""The demo data through the whole pipeline (every source, without Airflow), then what everyone
reads about its quality: received = loaded + quarantined counted from the files and the API's
responses, the quarantine view and a re-submission, the quality report and Data Docs in a real
browser, and the PHI scan over both.

Beside the demo data, one EHR extract carries two visits dated 1850: landing takes them (real
dates), the landed checkpoint moves them to quarantine (a few rows: under the threshold, so the
run still publishes); another holds three visits of the fourth quarter of 2023, a small cell of the
regulatory summary; and the FHIR API sends one Patient that is not valid R4. A few records of
every source carry their patient's full name and MRN in every free-text field
(tests/privacy/planted_text.py): none reaches analysts, the report, Data Docs or the email.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import sync_playwright

from cli.run import DEMO_WRITERS
from common import settings, small_cells
from demo.ehr_extracts import write_extracts
from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from demo.research_db import DATABASE as RESEARCH_DATABASE
from demo.research_db import ensure_database, fill
from expectations import report, weekly_summary
from expectations.weekly_summary import summarize_week
from ingestion import resubmit
from ingestion.sources import BATCH_FILE_SOURCE_NAMES
from monitoring.processor import Processor, load_config
from orchestration import pipeline
from tests.pipeline_steps import build_and_publish
from tests.privacy import planted_text
from tests.privacy.derivation import given_away
from warehouse.phi_scan import (
    IdentifierIndex,
    known_non_identifiers,
    raw_identifiers,
    scan_files,
    scan_relations,
)

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RAW_TABLES = {
    "ehr_patients": "raw_ehr.patients",
    "ehr": "raw_ehr.encounters",
    "claims": "raw_claims.claims",
    "vitals": "raw_vitals.readings",
}


@dataclass
class Demo:
    served: list[tuple[str, str]]  # (resource type, id) of every entry the FHIR API sent
    research_rows: int
    held_file: str
    quarantined: list[tuple]  # (source, stage, rule, status) of each record held, after the run
    planted: set[tuple[str, str]]  # (staging relation, column) of each free-text field planted


def query(tw, role: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**tw.warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement, params).fetchall()


def run_pipeline(tw, run_id: str) -> None:
    for source in BATCH_FILE_SOURCE_NAMES:
        pipeline.land_files(source, run_id, settle_seconds=0)
    processor = Processor(tw.warehouse, load_config())  # the device feed's only consumer
    try:
        processor.run(once=True)
    finally:
        processor.close()
    pipeline.land_fhir_api(run_id)
    pipeline.land_research_db(run_id)
    build_and_publish(tw, run_id)


@pytest.fixture(scope="module")
def demo(test_warehouse) -> Demo:
    tw = test_warehouse
    ensure_database(tw.warehouse)
    fill(tw.warehouse)
    for source, write in DEMO_WRITERS.items():
        write(tw.landing_dir / source)
    names = planted_text.registry_names(tw.landing_dir)
    planted = planted_text.plant_in_files(tw.landing_dir)
    planted |= planted_text.plant_in_research_db(tw.warehouse, names)
    resources = demo_resources()
    planted |= planted_text.plant_in_fhir(resources)
    store = FhirStore(resources)
    store.add({"resourceType": "Patient", "id": "pat-invalid", "birthDate": "31/02/1990"})  # not R4
    server = DemoFhirServer(store, "healthcare-warehouse", os.environ["FHIR_CLIENT_SECRET"])
    os.environ["FHIR_BASE_URL"] = server.start()
    [held] = write_extracts(
        tw.landing_dir / "ehr", files=1, rows=30, defects_per_file=0, seed=3,
        first_day=date(2024, 7, 1),
    )  # fmt: skip
    rows = held.read_text().splitlines()
    for line in (3, 8):  # records 2 and 7
        fields = rows[line - 1].split(",")
        fields[1] = "1850-01-0" + str(line)
        rows[line - 1] = ",".join(fields)
    held.write_text("\n".join(rows) + "\n")
    write_extracts(
        tw.landing_dir / "ehr", files=1, rows=3, defects_per_file=0, seed=5,
        first_day=date(2023, 11, 1),
    )  # fmt: skip
    try:
        run_pipeline(tw, "run_demo")
    finally:
        server.stop()
    admin = tw.warehouse.admin_user
    with psycopg.connect(**tw.warehouse.connect_kwargs(admin, RESEARCH_DATABASE)) as conn:
        research_rows = conn.execute("select count(*) from clinical_trials").fetchone()[0]
    quarantined = query(
        tw, "steward", "select source, stage, rule, status from quarantine.quarantined_records"
    )
    return Demo(list(server.state.served), research_rows, held.name, quarantined, planted)


def records_in(path: Path) -> int:
    """How many records a landed file holds, read here, not by the loader."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return sum(1 for _ in csv.reader(handle)) - 1
    if path.suffix == ".ndjson":
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    return len(json.loads(path.read_text()))


def test_every_record_received_is_loaded_or_quarantined_across_the_pipeline(test_warehouse, demo):
    tw = test_warehouse
    quarantined = Counter(
        dict(
            query(
                tw,
                "steward",
                "select source, count(*) from quarantine.quarantined_records group by source",
            )
        )
    )
    assert quarantined["ehr"] and quarantined["vitals"] and quarantined["claims"]
    for source, table in RAW_TABLES.items():
        files = sorted((settings.ARCHIVE_DIR / source).glob("*"))
        assert files, source
        received = sum(records_in(path) for path in files)
        loaded = query(tw, "steward", f"select count(*) from {table}")[0][0]
        assert received == loaded + quarantined[source], source

    # The API: every entry its responses carried is loaded, quarantined or superseded by a
    # later version of the same resource within the pull.
    fhir_loaded = query(tw, "steward", "select count(*) from raw_fhir.resources")[0][0]
    superseded = len(demo.served) - len(set(demo.served))
    assert len(demo.served) == fhir_loaded + quarantined["fhir"] + superseded
    research_loaded = query(tw, "steward", "select count(*) from raw_research.clinical_trials")
    assert demo.research_rows == research_loaded[0][0] + quarantined["research"]


def test_the_quarantine_view_lists_every_stage_for_stewards_only(test_warehouse, demo):
    rows = demo.quarantined  # as the run left them (a test here resubmits one)
    stages = {(source, stage) for source, stage, _, _ in rows}
    assert {("ehr", "landing"), ("ehr", "after_landing"), ("vitals", "landing")} <= stages
    assert {status for *_, status in rows} == {"waiting"}
    for role in ("analyst", "transformer"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            query(test_warehouse, role, "select 1 from quarantine.quarantined_records limit 1")


@dataclass
class Resubmission:
    held_visit_date: str  # the quarantined record's, as the steward reads it
    written_to: Path
    status_once_resubmitted: list[tuple]
    landed: dict
    status_once_landed: list[tuple]
    received: int  # EHR records in the archived files, the correction's included
    loaded: int
    held: int


@pytest.fixture(scope="module")
def resubmission(test_warehouse, demo) -> Resubmission:
    """The steward corrects the second of the held file's 1850 visits and resubmits it; the next
    run lands it."""
    tw = test_warehouse
    [(record_id,)] = query(
        tw,
        "steward",
        "select record_id from quarantine.quarantined_records"
        " where file_name = %s and record_position = 2",
        (demo.held_file,),
    )
    _, record = resubmit.quarantined_record(tw.warehouse, record_id)
    path = resubmit.resubmit(tw.warehouse, record_id, {**record, "visit_date": "2024-07-01"})
    status = "select status from quarantine.quarantined_records where record_id = %s"
    once_resubmitted = query(tw, "steward", status, (record_id,))
    landed = pipeline.land_files("ehr", "run_resubmitted", settle_seconds=0)
    pipeline.validate_landed_batches("run_resubmitted")
    return Resubmission(
        held_visit_date=record["visit_date"],
        written_to=path,
        status_once_resubmitted=once_resubmitted,
        landed=landed,
        status_once_landed=query(tw, "steward", status, (record_id,)),
        received=sum(records_in(p) for p in (settings.ARCHIVE_DIR / "ehr").glob("*")),
        loaded=query(tw, "steward", "select count(*) from raw_ehr.encounters")[0][0],
        held=query(
            tw,
            "steward",
            "select count(*) from quarantine.quarantined_records where source = 'ehr'",
        )[0][0],
    )


def test_a_corrected_record_resubmitted_reconciles(test_warehouse, resubmission):
    assert resubmission.held_visit_date == "1850-01-03"
    assert resubmission.written_to.parent == test_warehouse.landing_dir / "ehr"
    assert resubmission.status_once_resubmitted == [("resubmitted",)]
    landed = resubmission.landed
    assert (landed["received"], landed["loaded"]) == (1, 1)
    assert resubmission.status_once_landed == [("reconciled",)]
    # the correction counts as received and loaded: the books still balance
    assert resubmission.received == resubmission.loaded + resubmission.held


def test_a_record_from_the_api_is_corrected_at_its_source(test_warehouse, demo):
    rows = query(
        test_warehouse,
        "steward",
        "select record_id from quarantine.quarantined_records where source = 'fhir' limit 1",
    )
    with pytest.raises(resubmit.CannotResubmit, match="correct it in the source system"):
        resubmit.quarantined_record(test_warehouse.warehouse, rows[0][0])


@pytest.fixture(scope="module")
def built_report(test_warehouse, demo, resubmission) -> tuple[Path, Path]:
    """The report and Data Docs, after the demo run and the resubmission."""
    return report.build_data_docs(), report.build_report(test_warehouse.warehouse)


def test_the_report_and_data_docs_in_a_browser(test_warehouse, built_report, tmp_path):
    docs, page_file = built_report
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(page_file.as_uri())
        decisions = page.locator("tr.decision").all_inner_texts()
        scores = page.locator("tr.score").all_inner_texts()
        held = page.locator("tr.quarantine").all_inner_texts()
        [processor] = page.locator("tr.processor-health").all_inner_texts()
        charts = page.eval_on_selector_all(
            "svg.chart > title", "titles => titles.map(t => t.textContent)"
        )
        page.screenshot(path=str(tmp_path / "quality_report.png"), full_page=True)

        page.goto(docs.as_uri())
        page.wait_for_load_state("load")
        docs_text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "data_docs_index.png"), full_page=True)
        browser.close()
    assert (tmp_path / "quality_report.png").stat().st_size > 10_000
    heartbeat, lag, waiting, _, checkpoint, _ = processor.split("\t")
    assert heartbeat.endswith(" s ago") and lag == "0.0 s" and waiting == "0", processor
    assert checkpoint.startswith(str(date.today().year)), processor
    assert any("run_demo" in row and "PASS" in row and "yes" in row for row in decisions)
    scored = query(
        test_warehouse,
        "steward",
        "select run_id, score, rows_checked from audit.quality_scores"
        " where table_name = 'raw_ehr.encounters' and dimension = 'validity' order by recorded_at",
    )
    assert scored[0][0] == "run_demo" and scored[0][1] < 1  # the two visits of 1850
    # a share of rows is hidden where its failing or passing rows are 1 to 10 (small cells)
    run_id, latest, rows_checked = scored[-1]
    failing = round((1 - latest) * rows_checked)
    score = "hidden" if 0 < failing < 11 or 0 < rows_checked - failing < 11 else f"{latest:.3f}"
    assert f"raw_ehr.encounters\tvalidity\t{score}\t\t{run_id}" in scores
    assert any(row.startswith("fct_encounters\tvalidity\t1.000") for row in scores), scores[:5]
    plausible = [row for row in held if "visit_date_is_plausible" in row]
    assert {row.split("\t")[3] for row in plausible} == {"waiting", "reconciled"}, held
    assert {"raw_ehr.encounters", "fct_encounters", "quarantined records by rule"} <= set(charts)
    for suite in ("landed.raw_ehr.encounters", "publish_gate.fct_encounters"):
        assert suite in docs_text


def test_the_report_and_data_docs_hold_no_raw_identifier(test_warehouse, built_report):
    docs, page_file = built_report
    index = IdentifierIndex(raw_identifiers(test_warehouse.warehouse))
    assert index.count > 5000
    non_identifiers = known_non_identifiers(test_warehouse.warehouse)
    findings = scan_files([docs.parent, page_file.parent], index, non_identifiers)
    assert findings == []
    # the scan does find an identifier where there is one
    [(mrn,)] = query(test_warehouse, "steward", "select patient_id from raw_ehr.patients limit 1")
    leak = page_file.parent / "leak.txt"
    [(visit,)] = query(
        test_warehouse, "steward", "select visit_date from raw_ehr.encounters limit 1"
    )
    leak.write_text(f"patient {mrn} was here\nseen on {visit}\n")
    try:
        found = scan_files([page_file.parent], index, non_identifiers)
    finally:
        leak.unlink()
    assert {f.relation for f in found} == {str(leak)}
    assert {"medical_record_number", "dates"} <= {f.identifier_class for f in found}


# --- free text ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(test_warehouse, demo) -> IdentifierIndex:
    return IdentifierIndex(raw_identifiers(test_warehouse.warehouse))


def test_planted_identifiers_reach_the_phi_zone_and_no_analyst(test_warehouse, demo, index):
    """Every free-text field of every source, planted with its patient's name and MRN, landed
    (the PHI zone holds them: the scan finds them there) and reaches no published relation."""
    held = scan_relations(test_warehouse.warehouse, "transformer", "staging", index)
    found = {
        (finding.relation.removeprefix("staging."), finding.column)
        for finding in held
        if finding.identifier_class in ("names", "medical_record_number")
    }
    assert len(demo.planted) == 17  # EHR 4, claims 3, vitals 3, research 2, FHIR 5
    assert demo.planted <= found, demo.planted - found
    leaked = scan_relations(test_warehouse.warehouse, "analyst", "analytics", index)
    assert leaked == [], "\n".join(map(str, leaked))


def test_the_weekly_email_holds_no_raw_identifier(test_warehouse, demo, index):
    email = summarize_week(test_warehouse.warehouse).render()
    assert "received = loaded + quarantined" in email
    assert index.classes_in(email) == set(), email
    [(mrn,)] = query(test_warehouse, "steward", "select patient_id from raw_ehr.patients limit 1")
    assert "medical_record_number" in index.classes_in(email + f"\nabout {mrn}")


# --- small cells --------------------------------------------------------------------------


def _primary_only(self, conn):
    """The rule weakened to hiding small counts alone, as before issue 21."""
    return {key: None if 1 <= value < 11 else value for key, value in self.counts.items()}


def _email_figures(summary) -> tuple[dict, list]:
    shown, sums = {}, []
    for source, received, loaded, quarantined in summary.volumes:
        shown |= {(source, "received"): received, (source, "loaded"): loaded}
        shown[(source, "quarantined")] = quarantined
        sums.append(([(source, "received")], [(source, "loaded"), (source, "quarantined")]))
    shown |= {("rule", rule): count for rule, count in summary.quarantined_by_rule}
    sums.append(
        (
            [(source, "quarantined") for source, *_ in summary.volumes],
            [("rule", rule) for rule, _ in summary.quarantined_by_rule],
        )
    )
    return shown, sums


@pytest.fixture
def three_readmissions(test_warehouse, demo):
    """The published readmissions, 3 of them readmitted: a rate with a numerator of 3."""
    [(schema,)] = query(
        test_warehouse,
        "transformer",
        "select table_schema from information_schema.view_table_usage"
        " where view_schema = 'analytics' and view_name = 'mart_readmissions_30d'",
    )
    table = f"{schema}.mart_readmissions_30d"
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        before = conn.execute(f"select encounter_key, is_readmitted_within_30_days from {table}")
        before = before.fetchall()
        conn.execute(
            f"update {table} set is_readmitted_within_30_days = encounter_key in"
            f" (select encounter_key from {table} order by encounter_key limit 3)"
        )
    yield len(before)
    kwargs = test_warehouse.warehouse.connect_kwargs("transformer")
    with psycopg.connect(**kwargs) as conn, conn.cursor() as cursor:
        cursor.executemany(
            f"update {table} set is_readmitted_within_30_days = %s where encounter_key = %s",
            [(flag, key) for key, flag in before],
        )


def _holding(sums: list, truth: dict) -> list:
    """The sums that hold on the true figures: those a reader can use."""
    return [
        (totals, members)
        for totals, members in sums
        if sum(truth[k] for k in totals) == sum(truth[k] for k in members)
    ]


def test_no_hidden_figure_of_the_email_can_be_worked_out(
    test_warehouse, demo, three_readmissions, monkeypatch
):
    summary = summarize_week(test_warehouse.warehouse)
    shown, sums = _email_figures(summary)
    with monkeypatch.context() as unsuppressed:  # the true figures, to keep the sums that hold
        unsuppressed.setattr(small_cells.Figures, "shown", lambda self, conn: dict(self.counts))
        truth, _ = _email_figures(summarize_week(test_warehouse.warehouse))
    sums = _holding(sums, truth)
    assert len(sums) >= len(summary.volumes)
    hidden = [key for key, value in shown.items() if value is None]
    assert len(hidden) >= 3, summary.render()  # the demo's few quarantined records, and theirs
    assert given_away(shown, sums) == {}, summary.render()
    # the rate of 3 readmissions is hidden; its stays are not small
    assert summary.index_stays == three_readmissions > 10
    assert summary.readmission_rate is None
    assert f"hidden of {three_readmissions} index stays" in summary.render()

    # the reader wins against the rule weakened to small counts alone
    monkeypatch.setattr(small_cells.Figures, "shown", _primary_only)
    monkeypatch.setattr(weekly_summary, "rate_hidden", lambda conn, numerator, denominator: False)
    weakened = summarize_week(test_warehouse.warehouse)
    assert given_away(_email_figures(weakened)[0], sums) != {}
    assert round(weakened.readmission_rate * weakened.index_stays) == 3


def _report_figures(page: Path) -> dict:
    """The figures of the report's quarantine and reconciliation, as a reader parses them."""
    text = page.read_text()

    def cells(kind: str) -> list[list[str]]:
        rows = re.findall(rf'<tr class="{kind}">(.*?)</tr>', text, re.DOTALL)
        return [
            [
                re.sub(r"<[^>]+>|\s+", "", c)
                for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
            ]
            for row in rows
        ]

    def number(value: str) -> int | None:
        return None if value == small_cells.HIDDEN else int(value)

    chart = text[text.index("<title>quarantined records by rule</title>") :]
    chart = chart[: chart.index("</svg>")]
    bars = re.findall(r'class="legend">([^<]*)</text><rect[^>]*/><text[^>]*>([^<]*)</text>', chart)
    shown = {("held", *row[:4]): number(row[4]) for row in cells("quarantine")}
    shown |= {("rule", rule): number(count) for rule, count in bars}
    for source, *counts in cells("reconciliation"):
        for kind, count in zip(
            ("received", "loaded", "quarantined", "superseded"), counts, strict=True
        ):
            shown[(source, kind)] = number(count)
    return shown


def _report_sums(test_warehouse, shown: dict) -> list:
    """Every sum a reader could try that holds on the records: the rules' records by status and
    source, the sources' received rows, and the quarantined records against the rows."""
    held = query(
        test_warehouse, "steward",
        "select source, stage, rule, status, count(*) from quarantine.quarantined_records"
        " group by 1, 2, 3, 4",
    )  # fmt: skip
    truth = {("held", *row[:4]): row[4] for row in held}
    rules = {key[1] for key in shown if key[0] == "rule"} | {key[3] for key in truth}
    sources = {key[0] for key in shown if key[1:] == ("received",)}
    candidates = [
        ([("rule", rule)], [key for key in truth if key[3] == rule]) for rule in rules
    ] + [
        ([(source, "received")], [(source, k) for k in ("loaded", "quarantined", "superseded")])
        for source in sources
    ] + [
        ([(source, "quarantined")], [key for key in truth if key[1] == source])
        for source in sources
    ] + [
        ([(source, "quarantined") for source in sources], [("rule", rule) for rule in rules])
    ]  # fmt: skip
    by_rule = {rule: sum(v for k, v in truth.items() if k[3] == rule) for rule in rules}
    truth |= {("rule", rule): count for rule, count in by_rule.items()}
    for source, *counts in query(
        test_warehouse, "steward",
        "select source, sum(rows_received), sum(rows_loaded), sum(rows_quarantined), 0"
        " from audit.file_ledger group by source union all select source, sum(rows_received),"
        " sum(rows_loaded), sum(rows_quarantined), sum(rows_superseded) from audit.api_pulls"
        " group by source",
    ):  # fmt: skip
        for kind, count in zip(("received", "loaded", "quarantined", "superseded"), counts):
            truth[(source, kind)] = count
    return _holding(candidates, truth | {key: 0 for key in shown if key not in truth})


def test_no_hidden_figure_of_the_report_can_be_worked_out(
    test_warehouse, built_report, tmp_path, monkeypatch
):
    _, page = built_report
    shown = _report_figures(page)
    sums = _report_sums(test_warehouse, shown)
    assert len(sums) >= 8
    assert sum(value is None for value in shown.values()) >= 3
    assert given_away(shown, sums) == {}

    monkeypatch.setattr(small_cells.Figures, "shown", _primary_only)
    weakened = report.build_report(test_warehouse.warehouse, tmp_path)
    assert given_away(_report_figures(weakened), sums) != {}


def test_no_hidden_cell_of_a_reporting_mart_can_be_worked_out(test_warehouse, demo):
    """Each reporting mart's counts against the total a reader of the published tables counts:
    the quarters' encounters, the providers' claims, the condition groups' encounters (a reader
    has the public seed of categories by group)."""
    categories = [
        row["icd10cm_category"]
        for row in csv.DictReader(
            (settings.PROJECT_ROOT / "seeds" / "chronic_condition_groups.csv").open()
        )
    ]
    marts = {
        "mart_regulatory_summary": (
            "select year_quarter, encounter_count from analytics.mart_regulatory_summary",
            "select count(*) from analytics.fct_encounters",
        ),
        "mart_claims_by_provider": (
            "select billing_provider_npi, claim_count from analytics.mart_claims_by_provider",
            "select count(*) from analytics.fct_claims",
        ),
        "mart_chronic_conditions": (
            "select condition_group, encounter_count from analytics.mart_chronic_conditions",
            (
                "select count(*) from analytics.fct_encounters"
                f" where left(diagnosis_code, 3) = any(array{categories})"
            ),
        ),
    }
    hidden = {}
    for mart, (cells_sql, total_sql) in marts.items():
        cells = query(test_warehouse, "analyst", cells_sql.replace(" from", ", patient_count from"))
        # a cell's patients are at most its count: never shown beside it hidden
        assert all(patients is None for _, count, patients in cells if count is None), mart
        cells = [(key, count) for key, count, _ in cells]
        [(total,)] = query(test_warehouse, "analyst", total_sql)
        assert sum(count or 0 for _, count in cells) <= total, mart
        shown = dict(cells) | {"all": total}
        hidden[mart] = [key for key, count in cells if count is None]
        assert given_away(shown, [(["all"], [key for key, _ in cells])]) == {}, mart
    # the three visits planted in the fourth quarter of 2023, and the quarter hidden beside them
    assert "2023-Q4" in hidden["mart_regulatory_summary"]
    assert len(hidden["mart_regulatory_summary"]) >= 2


def test_the_analyst_guides_example_follows_the_rule(test_warehouse, demo):
    """The guide's example, run as `analyst`: no stays or readmissions of a cell it hides can be
    worked out from what it shows and the mart's totals."""
    guide = (settings.PROJECT_ROOT / "docs" / "analyst_guide.md").read_text()
    start = guide.index("```sql", guide.index("## Example")) + len("```sql")
    cells = query(test_warehouse, "analyst", guide[start : guide.index("```", start)])
    [(stays, readmitted)] = query(
        test_warehouse, "analyst",
        "select count(*), count(*) filter (where is_readmitted_within_30_days)"
        " from analytics.mart_readmissions_30d",
    )  # fmt: skip
    assert len(cells) >= 4 and stays > 0
    shown_stays = {"all": stays} | {cell[:2]: cell[2] for cell in cells}
    shown_readmitted = {"all": readmitted} | {
        cell[:2]: None if cell[3] is None else round(cell[3] * cell[2]) for cell in cells
    }
    for shown in (shown_stays, shown_readmitted):
        assert given_away(shown, [(["all"], [cell[:2] for cell in cells])]) == {}
