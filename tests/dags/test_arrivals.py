"""The landing watch's rules: which files are new, settled and not yet announced, and when its
trigger fires (the trigger runs here as the triggerer runs it: its async generator, awaited)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from orchestration.arrivals import (
    AnnouncedFiles,
    LandingWatchSensor,
    NewFilesTrigger,
    settled_files,
)


def _file(folder, name: str, age_seconds: float = 60):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("x\n")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def _fire(trigger: NewFilesTrigger, timeout: float = 10) -> dict:
    async def first_event():
        return await asyncio.wait_for(anext(trigger.run()), timeout)

    return asyncio.run(first_event()).payload


def test_only_settled_files_matching_a_source_pattern_count(tmp_path):
    _file(tmp_path / "claims", "claims_2024-09-01_001.json")
    _file(tmp_path / "claims", "claims_2024-09-02_001.json", age_seconds=0)  # still being written
    _file(tmp_path / "claims", "claims_2024-09-03_001.json.tmp")  # not renamed yet
    _file(tmp_path / "vitals", "notes.txt")
    found = settled_files(tmp_path, ["claims", "vitals", "ehr"], settle_seconds=2)
    assert [(source, name) for source, name, _, _ in found] == [
        ("claims", "claims_2024-09-01_001.json")
    ]


def test_the_trigger_fires_for_a_new_file_but_not_for_one_announced_before(tmp_path):
    announced = _file(tmp_path / "ehr", "ehr_2024-09-01_001.csv")
    [signature] = settled_files(tmp_path, ["ehr"], 1)
    arguments = {"landing_dir": str(tmp_path), "sources": ["ehr", "claims"], "poll_seconds": 0.1,
                 "settle_seconds": 1, "watch_seconds": 1}  # fmt: skip
    assert _fire(NewFilesTrigger(announced=[list(signature)], **arguments)) == {"new": []}

    _file(tmp_path / "claims", "claims_2024-09-01_001.json")
    event = _fire(NewFilesTrigger(announced=[list(signature)], **arguments))
    assert [list(entry[:2]) for entry in event["new"]] == [["claims", "claims_2024-09-01_001.json"]]

    announced.write_text("changed\n")  # the same name, new content: announced again
    os.utime(announced, (time.time() - 60, time.time() - 60))
    event = _fire(NewFilesTrigger(announced=[list(signature)], **arguments))
    assert ["ehr", announced.name] in [list(entry[:2]) for entry in event["new"]]


def test_the_sensor_announces_a_file_once_and_forgets_it_when_it_has_landed(tmp_path):
    landing, state = tmp_path / "landing", tmp_path / "announced.json"
    sensor = LandingWatchSensor(
        task_id="wait_for_new_files", landing_dir=landing, state_file=state,
        poll_seconds=1, settle_seconds=1, watch_seconds=5,
    )  # fmt: skip
    extract = _file(landing / "ehr", "ehr_2024-09-01_001.csv")
    assert sensor.execute({}) == {"ehr": [extract.name]}
    with pytest.raises(TaskDeferred):  # nothing new: it waits in the triggerer
        sensor.execute({})

    extract.unlink()  # landed and archived
    with pytest.raises(TaskDeferred):
        sensor.execute({})
    assert sensor.execute_complete({}, {"new": [["vitals", "vitals_1.ndjson", 2, 0]]}) == {
        "vitals": ["vitals_1.ndjson"]
    }
    assert AnnouncedFiles(state).load() == {("vitals", "vitals_1.ndjson", 2, 0)}
    with pytest.raises(AirflowSkipException):  # a watch that saw nothing ends skipped
        sensor.execute_complete({}, {"new": []})
