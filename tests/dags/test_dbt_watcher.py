"""The producer's dbt-event parser sees each node's end, never its progress
(orchestration.dbt_watcher.reporting_node_ends_only), on the events of a real dbt build, turned
into JSON lines as Cosmos turns them."""

from __future__ import annotations

import json

from google.protobuf.json_format import MessageToJson

from orchestration.dbt_watcher import NODE_PROGRESS_EVENTS, reporting_node_ends_only
from warehouse.dbt_runner import invoke_dbt


def _event_lines(test_warehouse) -> list[str]:
    """Every event of `dbt build` of a staging model and its tests, as Cosmos' producer gets it."""
    lines: list[str] = []
    built = invoke_dbt(
        ["build", "--select", "stg_ehr__patients"],
        test_warehouse.dbt_env("build_blue", "watcher_events"),
        on_event=lambda event: lines.append(MessageToJson(event, preserving_proto_field_name=True)),
    )
    assert built.returncode == 0, built.stdout[-3000:]
    return lines


def test_the_parser_gets_every_event_but_a_nodes_progress(test_warehouse):
    lines = _event_lines(test_warehouse)
    parsed: list[dict] = []
    make = reporting_node_ends_only(lambda: lambda line, extra: parsed.append(json.loads(line)))
    parse = make()
    for line in lines:
        parse(line, {"context": None})

    def names(events) -> list[str]:
        return [event["info"]["name"] for event in events]

    every = names(json.loads(line) for line in lines)
    assert set(NODE_PROGRESS_EVENTS) <= set(every)  # dbt sent them ...
    assert not set(NODE_PROGRESS_EVENTS) & set(names(parsed))  # ... the parser saw none
    assert [name for name in every if name not in NODE_PROGRESS_EVENTS] == names(parsed)
    finished = {
        event["data"]["node_info"]["unique_id"]
        for event in parsed
        if event["info"]["name"] == "NodeFinished"
    }
    # the model's end, and each of its tests' (the node tasks read them)
    assert {"model.healthcare_warehouse.stg_ehr__patients"} <= finished
    assert any(unique_id.startswith("test.") for unique_id in finished)
