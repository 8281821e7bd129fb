"""What a landing folder may hold that must not hurt (ingestion/file_limits.py): a symbolic link,
a FIFO, a record of 100 MiB (on one line or many), JSON nested 10,000 deep, a file over its size limit. Each is
quarantined with its reason, the other files of the same run land, nothing waits on a FIFO and no
link is followed."""

from __future__ import annotations

import json
import os
import threading

import psycopg
import pytest

from ingestion import file_limits
from ingestion.file_formats import count_json_array_records
from ingestion.file_limits import FileLimits, FileLimitsError
from ingestion.file_source import land
from ingestion.sources.claims_files import CLAIMS_FILES
from ingestion.sources.ehr_files import EHR_FILES
from ingestion.sources.vitals_files import VITALS_FILES
from tests.ingestion.test_bad_inputs import (
    HEADER,
    _accounted,
    _claim,
    _quarantined,
    _reading,
    _rows,
)


def _land_in_time(source, warehouse, run_id: str, seconds: float = 120) -> list:
    """land(), which must come back: a FIFO opened for reading would wait for a writer."""
    outcomes: list = []
    landing = threading.Thread(
        target=lambda: outcomes.extend(land(source, warehouse, run_id)), daemon=True
    )
    landing.start()
    landing.join(seconds)
    assert not landing.is_alive(), f"land() did not come back within {seconds} s"
    return outcomes


def _by_name(outcomes) -> dict:
    return {outcome.file_name: outcome for outcome in outcomes}


def test_a_link_a_fifo_and_a_100_mib_record_are_quarantined_and_the_rest_lands(
    test_warehouse, tmp_path
):
    folder = test_warehouse.landing_dir / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ehr_2024-07-01_001.csv").write_text("\n".join([HEADER, *_rows(5)]) + "\n")
    secrets = tmp_path / "secrets.txt"  # what a link would land, were it followed
    secrets.write_text("\n".join(f"PAT_9{n},s3cret-line-{n}" for n in range(5)) + "\n")
    (folder / "ehr_2024-07-01_002.csv").symlink_to(secrets)
    os.mkfifo(folder / "ehr_2024-07-01_003.csv")
    with (folder / "ehr_2024-07-01_004.csv").open("w") as big:
        big.write(HEADER + "\n")
        big.write("PAT_1," + "x" * (100 << 20) + ",I10,a,b,c,d\n")  # one record of 100 MiB
    with (folder / "ehr_2024-07-01_005.csv").open("w") as spread:
        spread.write(HEADER + "\n" + 'PAT_2,"')  # one record of 100 MiB in lines of 1 KiB
        spread.writelines("y" * 1023 + "\n" for _ in range(100 << 10))
        spread.write('",I10,a,b,c,d\n')

    outcomes = _by_name(_land_in_time(EHR_FILES, test_warehouse.warehouse, "hostile_files"))

    assert outcomes["ehr_2024-07-01_001.csv"].status == "loaded"
    assert outcomes["ehr_2024-07-01_001.csv"].rows_loaded == 5
    link, fifo, big, spread = (outcomes[f"ehr_2024-07-01_00{n}.csv"] for n in (2, 3, 4, 5))
    assert link.reason == "regular_file: a symbolic link, not a regular file: not read"
    assert fifo.reason == "regular_file: a FIFO, not a regular file: not read"
    for record in (big, spread):
        assert record.reason.startswith("line_size: the record starting on line 2 is longer")
    for outcome in (link, fifo, big, spread):
        assert outcome.status == "rejected"
        _accounted(outcome)
        [(position, rule, _, record)] = _quarantined(test_warehouse, outcome.file_name)
        assert (position, rule) == (0, outcome.reason.split(":")[0])
        assert record["_quarantined_file"].endswith(outcome.file_name)
        assert not (folder / outcome.file_name).exists()  # moved aside, out of landing
    # the link itself was moved, never what it names, which nobody read
    kept = test_warehouse.var_dir / "quarantine" / "ehr" / "ehr_2024-07-01_002.csv"
    assert kept.is_symlink() and secrets.read_text().startswith("PAT_90,s3cret-line-0")
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        found = conn.execute(
            "select count(*) from quarantine.rejected_records where record::text like '%s3cret%'"
        ).fetchone()[0]
    assert found == 0
    # the ledger keeps each, so the counts reconcile
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        statuses = dict(
            conn.execute(
                "select file_name, status from audit.file_ledger where run_id = 'hostile_files'"
            ).fetchall()
        )
    assert statuses == {name: outcome.status for name, outcome in outcomes.items()}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_10000_deep_is_quarantined_and_the_rest_lands(test_warehouse):
    folder = test_warehouse.landing_dir / "claims"
    folder.mkdir(parents=True, exist_ok=True)
    good = [_claim("CLM_D1", 150, [150])]
    (folder / "claims_2024-07-02_001.json").write_text(json.dumps(good))
    (folder / "claims_2024-07-02_002.json").write_text(_nested(10_000))
    too_deep = [_claim("CLM_D2", 150, [150]) | {"notes": json.loads(_nested(70))}]
    (folder / "claims_2024-07-02_003.json").write_text(json.dumps(too_deep))

    outcomes = _by_name(_land_in_time(CLAIMS_FILES, test_warehouse.warehouse, "deep_json"))

    assert outcomes["claims_2024-07-02_001.json"].status == "loaded"
    assert outcomes["claims_2024-07-02_001.json"].rows_loaded == 1
    for name in ("claims_2024-07-02_002.json", "claims_2024-07-02_003.json"):
        assert outcomes[name].status == "rejected"
        assert outcomes[name].reason == "json_depth: nested deeper than max_json_depth (64)"
        _accounted(outcomes[name])


def test_an_ndjson_line_nested_too_deep_is_quarantined_and_the_other_lines_land(test_warehouse):
    folder = test_warehouse.landing_dir / "vitals"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        _reading("2024-07-03T08:00:00Z"),
        _nested(10_000),
        _reading("2024-07-03T08:01:00Z", heart_rate=74),
    ]
    (folder / "vitals_20240703T080000Z.ndjson").write_text("\n".join(lines) + "\n")

    [outcome] = _land_in_time(VITALS_FILES, test_warehouse.warehouse, "deep_line")

    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 2, 1)
    [(position, rule, reason, _)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, rule, reason) == (2, "json_depth", "json_depth: nested deeper than 64")


def test_a_file_over_its_size_limit_is_not_read(test_warehouse, monkeypatch):
    monkeypatch.setattr(file_limits, "limits", lambda: FileLimits(1000, 500, 64, 1000))
    folder = test_warehouse.landing_dir / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ehr_2024-07-04_001.csv").write_text("\n".join([HEADER, *_rows(40)]) + "\n")
    [outcome] = _land_in_time(EHR_FILES, test_warehouse.warehouse, "too_large")
    assert outcome.status == "rejected"
    assert (
        outcome.reason.startswith("file_size: ") and "over max_file_bytes (1000" in outcome.reason
    )
    _accounted(outcome)


def test_a_json_document_over_its_limit_is_not_parsed_and_the_rest_lands(
    test_warehouse, monkeypatch
):
    """A claims file is parsed whole, so it has a lower limit than a file read in blocks."""
    monkeypatch.setattr(file_limits, "limits", lambda: FileLimits(10**6, 10**5, 64, 2000))
    folder = test_warehouse.landing_dir / "claims"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims_2024-07-05_001.json").write_text(json.dumps([_claim("CLM_S1", 150, [150])]))
    large = [_claim(f"CLM_S{n}", 150, [150]) for n in range(2, 40)]
    (folder / "claims_2024-07-05_002.json").write_text(json.dumps(large))

    outcomes = _by_name(_land_in_time(CLAIMS_FILES, test_warehouse.warehouse, "large_json"))

    assert outcomes["claims_2024-07-05_001.json"].rows_loaded == 1
    rejected = outcomes["claims_2024-07-05_002.json"]
    assert rejected.status == "rejected"
    assert "over max_json_document_bytes (2000" in rejected.reason
    _accounted(rejected)


@pytest.mark.parametrize(
    "text",
    ["[]", ' [ {"a": [1, 2]} , "x]" ]\n', "[1,]", "[1] [2]", "{}", "[[], [[]]]", "[1 2]"],
)
def test_a_json_array_is_counted_element_by_element_as_the_parser_reads_it(tmp_path, text):
    path = tmp_path / "claims.json"
    path.write_text(text)
    try:
        parsed = json.loads(text)
        expected = len(parsed) if isinstance(parsed, list) else 0
    except json.JSONDecodeError:
        expected = 0
    assert count_json_array_records(path) == expected


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("max_file_bytes: 10\nmax_line_bytes: 5\n", "exactly max_file_bytes"),
        (
            "max_file_bytes: 10\nmax_line_bytes: 0\nmax_json_depth: 64\nmax_json_document_bytes: 9\n",
            "above 0",
        ),
        (
            "max_file_bytes: 10\nmax_line_bytes: 134217728\nmax_json_depth: 64\nmax_json_document_bytes: 9\n",
            "block",
        ),
    ],
)
def test_a_wrong_limits_file_is_refused_naming_the_file_and_the_rule(tmp_path, text, rule):
    path = tmp_path / "file_limits.yml"
    path.write_text(text)
    with pytest.raises(FileLimitsError, match=rule) as refused:
        file_limits.limits(path)
    assert str(refused.value).startswith("file_limits.yml: ")
