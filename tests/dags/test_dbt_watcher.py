"""The producer's dbt-event parser pushes to XCom only what a node task reads
(orchestration.dbt_watcher.reporting_what_node_tasks_read), on the events of a real dbt build,
turned into JSON lines as Cosmos turns them, parsed by Cosmos' own parser: each node's end, never
its progress; each model's tests' status, never a test's own; a node's keys folded into one
report (orchestration.node_reports); pushed on a thread of their own, in order, the parser not
waiting for them (orchestration.xcom_pushes)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson

from orchestration.dbt_watcher import (
    NODE_PROGRESS_EVENTS,
    _read_by_the_parser,
    finishing_its_pushes,
    reporting_what_node_tasks_read,
)
from orchestration.node_reports import NodeReports, report_key
from orchestration.xcom_pushes import PushesInOrder, PushingInTheBackground
from warehouse.dbt_runner import invoke_dbt

MODEL = "model.healthcare_warehouse.stg_ehr__patients"


@dataclass
class Build:
    lines: list[str]  # every event, as Cosmos' producer gets it
    manifest: dict
    read: list[bool]  # whether each event reaches Cosmos' parser (_read_by_the_parser)


@pytest.fixture(scope="module")
def build(test_warehouse) -> Build:
    """`dbt build` of a staging model and its tests."""
    lines: list[str] = []
    read: list[bool] = []

    def on_event(event) -> None:
        lines.append(MessageToJson(event, preserving_proto_field_name=True))
        read.append(_read_by_the_parser(event))

    built = invoke_dbt(
        ["build", "--select", "stg_ehr__patients"],
        test_warehouse.dbt_env("build_blue", "watcher_events"),
        on_event=on_event,
    )
    assert built.returncode == 0, built.stdout[-3000:]
    manifest = json.loads((test_warehouse.var_dir / "dbt_target" / "manifest.json").read_text())
    return Build(lines, manifest, read)


def test_the_parser_gets_every_event_but_a_nodes_progress(build):
    parsed: list[dict] = []
    make = reporting_what_node_tasks_read(
        lambda: lambda line, extra: parsed.append(json.loads(line)), PushesInOrder()
    )
    parse = make()
    for line in build.lines:
        parse(line, {"context": None})

    def names(events) -> list[str]:
        return [event["info"]["name"] for event in events]

    every = names(json.loads(line) for line in build.lines)
    assert set(NODE_PROGRESS_EVENTS) <= set(every)  # dbt sent them ...
    assert not set(NODE_PROGRESS_EVENTS) & set(names(parsed))  # ... the parser saw none
    assert [name for name in every if name not in NODE_PROGRESS_EVENTS] == names(parsed)
    finished = {
        event["data"]["node_info"]["unique_id"]
        for event in parsed
        if event["info"]["name"] == "NodeFinished"
    }
    # the model's end, and each of its tests' (the model's task reads their status)
    assert {MODEL} <= finished
    assert any(unique_id.startswith("test.") for unique_id in finished)


class RecordingTaskInstance:
    """The producer's task instance as Cosmos' parser uses it: what was pushed, by key. A push
    of a key `held_keys` matches waits until `release` is set."""

    def __init__(self, held_keys=lambda key: False) -> None:
        self.pushed: dict[str, Any] = {}
        self.history: list[tuple[str, Any]] = []
        self.held_keys = held_keys
        self.release = threading.Event()
        self.release.set()

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        if self.held_keys(key):
            assert self.release.wait(timeout=60), "a push held for ever"
        self.pushed[key] = value
        self.history.append((key, value))

    def xcom_pull(self, key: str | None = None, **_: Any) -> Any:
        return self.pushed.get(key)


def repeated_pushes(task_instance: RecordingTaskInstance) -> list[str]:
    """The keys pushed again with the value they had."""
    last: dict[str, Any] = {}
    repeated = []
    for key, value in task_instance.history:
        if key in last and last[key] == value:
            repeated.append(key)
        last[key] = value
    return repeated


def _tests_of_the_model(build: Build) -> list[str]:
    return [
        unique_id
        for unique_id, node in build.manifest["nodes"].items()
        if node["resource_type"] == "test" and node.get("attached_node") == MODEL
    ]


def _producer(tests: list[str]) -> SimpleNamespace:
    """What Cosmos' parser reads of the producer: its tests per model and its accumulators."""
    return SimpleNamespace(
        tests_per_model={MODEL: tests},
        test_results_per_model={},
        _model_outlet_uris={},
        _dataset_namespace=None,
        _should_generate_model_uris=False,
        _upstream_failure_skipped_ids=set(),
    )


def test_the_producer_pushes_what_node_tasks_read_and_nothing_of_a_test_of_its_own(build):
    import cosmos  # noqa: F401  (before its submodules)
    from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
    from cosmos.operators._watcher.state import get_dbt_event_xcom_key, get_status_xcom_key
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    tests = _tests_of_the_model(build)
    assert tests
    # Cosmos' own parser, with what the producer gives it (its tests per model)
    producer = _producer(tests)
    cosmos_parser = partial(DbtProducerWatcherOperator._make_parse_callable, producer)

    def pushed(make_parse, task_instance) -> dict[str, Any]:
        producer.test_results_per_model = {}
        parse = make_parse()
        for line in build.lines:
            parse(line, {"context": {"ti": task_instance}, "project_dir": None})
        return task_instance.pushed

    cosmos_task_instance = RecordingTaskInstance()
    by_cosmos = pushed(cosmos_parser, cosmos_task_instance)
    # ours, with the pushes of the model held back until the parser has seen every event ...
    held = RecordingTaskInstance(held_keys=lambda key: key.startswith(MODEL.replace(".", "__")))
    held.release.clear()
    pushes = PushesInOrder()
    reports = NodeReports([MODEL])
    ours = pushed(reporting_what_node_tasks_read(cosmos_parser, pushes, reports), held)
    # ... which it saw without waiting for them
    assert not [key for key in ours if key.startswith(MODEL.replace(".", "__"))]
    held.release.set()
    pushes.finish()

    def of_a_test(key: str) -> bool:
        return key.startswith(("test__", "unit_test__"))

    of_the_model = {
        get_status_xcom_key(MODEL),
        get_dbt_event_xcom_key(MODEL),
        get_tests_status_xcom_key(MODEL),
    }
    # Cosmos pushes each test's last event (and a unit test's status), which no task reads ...
    assert {get_dbt_event_xcom_key(test) for test in tests} <= set(by_cosmos)
    assert of_the_model <= set(by_cosmos)
    # ... ours pushes nothing of a test; the model's keys as one report; the rest as Cosmos does
    assert not [key for key in ours if of_a_test(key)]
    assert {key: value for key, value in ours.items() if key != report_key(MODEL)} == {
        key: value
        for key, value in by_cosmos.items()
        if not of_a_test(key) and key not in of_the_model
    }
    # what the model's task reads, in one: its end, its last event, its tests' status
    assert ours[report_key(MODEL)] == {
        "status": "success",
        "event": by_cosmos[get_dbt_event_xcom_key(MODEL)],
        "tests_status": "pass",
    }
    assert by_cosmos[get_status_xcom_key(MODEL)]["status"] == "success"
    # Cosmos pushes a status at each event that carries it, the same again; ours only a change
    assert repeated_pushes(cosmos_task_instance) and not repeated_pushes(held)
    # the report is pushed as its fields changed, however many: fewer pushes than Cosmos' four
    # keys of the model
    reported = [key for key, _ in held.history if key == report_key(MODEL)]
    cosmos_keys = [key for key, _ in cosmos_task_instance.history if key in of_the_model]
    assert 1 <= len(reported) < len(cosmos_keys)


def test_the_events_the_parser_is_not_given_change_nothing_it_pushes_or_logs(build, caplog):
    import cosmos  # noqa: F401  (before its submodules)
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    tests = _tests_of_the_model(build)
    producer = _producer(tests)

    def pushed_and_logged(lines: list[str]) -> tuple[dict, list[str]]:
        """What Cosmos' parser pushes, and what it logs at info and above (a task's log)."""
        producer.test_results_per_model, producer._upstream_failure_skipped_ids = {}, set()
        parse = DbtProducerWatcherOperator._make_parse_callable(producer)
        task_instance = RecordingTaskInstance()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="cosmos"):
            for line in lines:
                parse(line, {"context": {"ti": task_instance}, "project_dir": None})
        logged = [
            record.getMessage()
            for record in caplog.records
            if record.levelno >= logging.INFO and record.name.startswith("cosmos")
        ]
        return task_instance.pushed, logged

    given = [line for line, read in zip(build.lines, build.read, strict=True) if read]
    assert len(given) < len(build.lines) / 2  # most of a build's events are read by nothing
    pushed_from_given, logged_from_given = pushed_and_logged(given)
    pushed_from_all, logged_from_all = pushed_and_logged(build.lines)
    assert pushed_from_given == pushed_from_all
    assert logged_from_given == logged_from_all
    # none of a node's ends is left out
    for line, read in zip(build.lines, build.read, strict=True):
        if not read:
            assert json.loads(line)["info"]["name"] != "NodeFinished"


class FailingTaskInstance(RecordingTaskInstance):
    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        raise ConnectionError("the execution API is down")


def test_a_failed_push_fails_the_producers_run_once_the_run_is_over():
    pushes = PushesInOrder()
    task_instance = PushingInTheBackground(FailingTaskInstance(), pushes)

    def dbt_run() -> str:  # its parser pushing, as Cosmos' does, through the task instance
        for number in range(3):
            task_instance.xcom_push(f"node_{number}_status", "success")
        return "built"

    with pytest.raises(ConnectionError, match="execution API is down"):
        finishing_its_pushes(dbt_run, pushes)()
    # the next run starts afresh
    assert finishing_its_pushes(lambda: "built", pushes)() == "built"


def test_a_report_is_found_by_the_nodes_whole_unique_id():
    # model `a`'s tests' status and model `a_tests`'s status have one key in Cosmos
    reports = NodeReports(["model.project.a", "model.project.a_tests"])
    same_key = "model__project__a_tests_status"
    assert reports.fold(same_key, "pass") == ("model__project__a_report", "tests_status", "pass")
    assert reports.fold(same_key, {"status": "error", "outlet_uris": []}) == (
        "model__project__a_tests_report",
        "status",
        "error",
    )
    assert reports.fold("model__project__a_compiled_sql", "select 1") == (
        "model__project__a_report",
        "compiled_sql",
        "select 1",
    )
    # a key of a node with no task (a test's), or of none (the producer's own), is kept as it is
    assert reports.fold("test__project__unique_a_id_status", {"status": "pass"}) is None
    assert reports.fold("dbt_startup_events", []) is None


def test_merged_fields_waiting_for_their_turn_are_pushed_together():
    task_instance = RecordingTaskInstance(held_keys=lambda key: key == "first")
    task_instance.release.clear()
    pushes = PushesInOrder()
    pushes.push(task_instance, "first", 1)  # the thread waits on it ...
    for field, value in (("status", "success"), ("event", {"msg": "OK"}), ("status", "error")):
        pushes.merge(task_instance, "report", field, value)  # ... while these come
    task_instance.release.set()
    pushes.finish()
    assert task_instance.history == [
        ("first", 1),
        ("report", {"status": "error", "event": {"msg": "OK"}}),
    ]
    # a change after its push is pushed again; the same value is not
    pushes.merge(task_instance, "report", "status", "success")
    pushes.merge(task_instance, "report", "status", "success")
    pushes.finish()
    assert task_instance.history[2:] == [("report", {"status": "success"})]
