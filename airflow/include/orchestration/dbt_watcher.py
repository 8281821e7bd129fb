"""Cosmos' watcher execution mode as the warehouse build uses it (docs/architecture.md says why).

A producer task runs one `dbt build` of the plan's selection, tests included; a task per model,
seed and snapshot reports what that build did to its node and to the node's tests (Cosmos renders
no test tasks: `TestBehavior.NONE`, which would also leave the tests out of the producer's build,
were its flags not reset here). `watch_the_planned_build` finishes the wiring Cosmos leaves to its
user in a task group:

- the producer builds the plan's selection (`--select` templated from the plan's XCom; Cosmos
  would give it RenderConfig's `select`, which also leaves nodes unrendered);
- `upstream` (the task that skips what the plan leaves out) >> producer >> `build_ended` >> every
  node task. They read what the producer's build wrote, so they start once it ended, however it
  ended: a build with a failing model fails the producer, and each node's task must still say
  which model failed and which were not built (`build_ended`'s trigger rule all_done; a node
  task's own, none_failed, keeps it from running after its parent's task failed). Every node
  task waits for it, not only those with no parent node: a planned model whose parents the plan
  left out (skipped) would otherwise start beside the build. `airflow dags test` runs one task at
  a time: a node task started before the producer would wait for it for ever;
- a node's task reads one XCom, the producer's report of its node (orchestration.node_reports:
  the producer folds Cosmos' four keys of a node into it; the task reads it as its fields are
  rendered, where Cosmos' poke read six), and fails when the node failed or its tests failed in
  the build, so its dependents' tasks do not run, as dbt did not build them;
- a node's task retried (or cleared) builds its node itself with `dbt build --select <node>`: the
  node and its tests (Cosmos' own retry would `dbt run` it, without its tests);
- a test across several models counts among the tests of the model it is defined on (dbt's
  `attached_node`; a singular test, defined on none, counts for each model it reads). Cosmos
  counts it for every model it reads, so a model that failed would fail the task of a model it
  merely references, and that model's dependents would not run;
- the producer pushes to XCom only what a node task reads (`reporting_what_node_tasks_read`):
  Cosmos 1.15 pushes an XCom for each of a node's start, compiling, executing and end events,
  and a status and an event for each test, from dbt's threads one at a time, which made its
  build ~1.9x dbt's own. The node tasks start once the build is over and read each node's end
  and its tests' status together; so what it pushes is queued and pushed on a thread of its own
  (orchestration.xcom_pushes), and its dbt run ends once the last push is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestration.node_reports import (
    NodeReports,
    building_as_planned,
    poke_from_the_report,
    rendering_with_the_report,
)
from orchestration.planned_nodes import PLANNED_SELECTION
from orchestration.xcom_pushes import PushesInOrder, PushingInTheBackground


def tests_by_attached_model(
    tests_per_model: dict[str, list[str]], manifest_path: Path
) -> dict[str, list[str]]:
    """Cosmos' tests per model, each test with an attached node counted for that node only."""
    nodes = json.loads(manifest_path.read_text())["nodes"]
    counted: dict[str, list[str]] = {}
    for model, tests in tests_per_model.items():
        for test in tests:
            attached = (nodes.get(test) or {}).get("attached_node")
            if attached is None or attached == model:
                counted.setdefault(model, []).append(test)
    return counted


# dbt's events of a node's progress: debug-level, and read by no node task (they start once the
# producer's build is over, and read the node's end)
NODE_PROGRESS_EVENTS = ("NodeStart", "NodeCompiling", "NodeExecuting")
# the nodes that have no task of their own (Cosmos renders none for tests: TestBehavior.NONE)
TASKLESS_RESOURCE_TYPES = ("test", "unit_test")
# a line that may be either, read as JSON only then (most of a build's events are neither)
_MAYBE_FILTERED = re.compile(
    r'"name":\s*"(?:' + "|".join(NODE_PROGRESS_EVENTS) + r')"'
    r'|"resource_type":\s*"(?:' + "|".join(TASKLESS_RESOURCE_TYPES) + r')"'
)

ParseLine = Callable[[str, Any], None]


def _progress_or_taskless_node(line: str) -> tuple[bool, str | None]:
    """Whether a dbt event line is a node's progress; the unique id of the taskless node (a
    test) it is about, if it is one."""
    if not _MAYBE_FILTERED.search(line):
        return False, None
    try:
        event = json.loads(line)
    except ValueError:
        return False, None
    if event.get("info", {}).get("name") in NODE_PROGRESS_EVENTS:
        return True, None
    node_info = event.get("data", {}).get("node_info") or {}
    if node_info.get("resource_type") in TASKLESS_RESOURCE_TYPES:
        return False, node_info.get("unique_id")
    return False, None


def reporting_what_node_tasks_read(
    make_parse_callable: Callable[[], ParseLine],
    pushes: PushesInOrder,
    reports: NodeReports | None = None,
) -> Callable[[], ParseLine]:
    """The producer's maker of its dbt-event parser (Cosmos' `_make_parse_callable`, the same for
    dbt run in process or as a command: each event as a JSON line), wrapped so that it pushes
    to XCom only what a node task reads, through `pushes` (on a thread of their own):

    - a node's progress events never reach it; everything else does, the node's end among them;
    - a test's end reaches it (Cosmos counts it towards its model's tests' status, which the
      model's task reads), but the test's own status and last event, which no task reads, are
      not pushed;
    - what it pushes is queued, not waited for: under `airflow dags test` each push took
      20-45 ms, one at a time under Cosmos' lock while dbt's threads waited. The producer's run
      ends with `pushes.finish()` (`finishing_its_pushes`);
    - a node's status, last event, compiled SQL and tests' status become fields of the node's
      report (`reports`), the one XCom its task reads."""
    from cosmos.operators._watcher.state import get_dbt_event_xcom_key, get_status_xcom_key

    def make() -> ParseLine:
        parse = make_parse_callable()

        def parse_what_is_read(line: str, extra_kwargs: Any) -> None:
            progress, test = _progress_or_taskless_node(line)
            if progress:
                return
            context = (extra_kwargs or {}).get("context")
            if context is not None and context.get("ti") is not None:
                unread = (
                    frozenset({get_dbt_event_xcom_key(test), get_status_xcom_key(test)})
                    if test is not None
                    else frozenset()
                )
                task_instance = PushingInTheBackground(
                    context["ti"], pushes, unread, reports.fold if reports else None
                )
                extra_kwargs = {**extra_kwargs, "context": {**context, "ti": task_instance}}
            parse(line, extra_kwargs)

        return parse_what_is_read

    return make


# dbt's events below info that Cosmos' parser acts on: a node's end or error, a node skipped after
# its parent failed, dbt's version and adapter (logged by a node task's trigger)
_DEBUG_EVENTS_READ = frozenset({"MainReportVersion", "AdapterRegistered", "SkippingDetails"})


def _read_by_the_parser(event: Any) -> bool:
    """Whether Cosmos' parser does anything with a dbt event (an EventMsg): every event above
    debug (it logs its message), a debug one only when it ends or fails a node, or is named above.
    Three quarters of a build's ~6,000 events are neither (its SQL, its connections, its timing:
    logged at debug, which a task's log leaves out)."""
    import cosmos  # noqa: F401  (before its submodules)
    from cosmos.operators._watcher.base import _DBT_EVENT_ALLOWLIST
    from cosmos.operators._watcher.state import is_dbt_node_status_terminal

    info = event.info
    if info.level != "debug" or info.name in _DEBUG_EVENTS_READ:
        return True
    if info.name in _DBT_EVENT_ALLOWLIST and info.name not in NODE_PROGRESS_EVENTS:
        return True
    node_info = getattr(event.data, "node_info", None)
    return node_info is not None and is_dbt_node_status_terminal(node_info.node_status)


def giving_the_parser_only_what_it_reads(run: Callable[..., Any]) -> Callable[..., Any]:
    """The producer's dbt run in process (Cosmos' `run_dbt_runner`), its event callbacks called
    only with the events `_read_by_the_parser`: Cosmos turns each event into JSON
    (`MessageToJson`, 0.14 ms) and parses it again, on dbt's threads, for about 6,000 events a
    build. Cosmos makes its dbtRunner with `cosmos.dbt.runner.get_runner(callbacks)`, replaced for
    the run's span (the producer's process runs one task at a time)."""

    def run_reading_less(*args: Any, **kwargs: Any) -> Any:
        from cosmos.dbt import runner

        get_runner = runner.get_runner

        def runner_with_fewer_events(callbacks: list | None = None) -> Any:
            if not callbacks:
                return get_runner(callbacks=callbacks)
            return get_runner(callbacks=[_only_read_events(callback) for callback in callbacks])

        runner.get_runner = runner_with_fewer_events
        try:
            return run(*args, **kwargs)
        finally:
            runner.get_runner = get_runner

    return run_reading_less


def _only_read_events(callback: Callable[[Any], None]) -> Callable[[Any], None]:
    def callback_on_read_events(event: Any) -> None:
        if _read_by_the_parser(event):
            callback(event)

    return callback_on_read_events


def finishing_its_pushes(run: Callable[..., Any], pushes: PushesInOrder) -> Callable[..., Any]:
    """The producer's dbt run (Cosmos' `run_dbt_runner` or `run_subprocess`), returning once every
    push its parser queued is made; raising the first that failed, as Cosmos raises its parser's
    first error after the run."""

    def run_then_finish(*args: Any, **kwargs: Any) -> Any:
        from warehouse.dbt_runner import without_stack_inspection_per_adapter

        without_stack_inspection_per_adapter()
        try:
            return run(*args, **kwargs)
        finally:
            pushes.finish()

    return run_then_finish


def no_openlineage_events(*args: Any, **kwargs: Any) -> bool:
    """Cosmos' `calculate_openlineage_events_completes` on every dbt task: no OpenLineage events.
    No OpenLineage provider is installed, so nothing would send them; Cosmos would read the whole
    build's manifest and results to make them (0.16-0.25 s a build) and first copy the task's
    environment, the transformer's password among it, into its process's (for the library)."""
    return False


def producer_task_id(group_id: str) -> str:
    from cosmos.constants import PRODUCER_WATCHER_TASK_ID

    return f"{group_id}.{PRODUCER_WATCHER_TASK_ID}"


def watch_the_planned_build(dbt_group: Any, upstream: Any, manifest_path: Path) -> None:
    producer = dbt_group.children[producer_task_id(dbt_group.group_id)]
    producer.select = PLANNED_SELECTION
    # TestBehavior.NONE added `--resource-type` flags that would leave the tests out of the build
    producer.dbt_cmd_flags = []
    producer.tests_per_model = tests_by_attached_model(producer.tests_per_model, manifest_path)
    node_tasks = [
        task
        for task in dbt_group.children.values()
        if getattr(task, "extra_context", {}).get("dbt_node_config") is not None
    ]
    pushes = PushesInOrder()
    reports = NodeReports(task.model_unique_id for task in node_tasks)
    producer._make_parse_callable = reporting_what_node_tasks_read(
        producer._make_parse_callable, pushes, reports
    )
    producer.run_dbt_runner = finishing_its_pushes(
        giving_the_parser_only_what_it_reads(producer.run_dbt_runner), pushes
    )
    producer.run_subprocess = finishing_its_pushes(producer.run_subprocess, pushes)
    for task in (producer, *node_tasks):
        task.calculate_openlineage_events_completes = no_openlineage_events
    for task in node_tasks:
        task.render_template_fields = rendering_with_the_report
        task.poke = poke_from_the_report
        task._fallback_to_non_watcher_run = building_as_planned
        task.base_cmd = ["build"]
    upstream >> producer
    build_ended = _build_ended(dbt_group, producer)
    for task in node_tasks:
        build_ended >> task


BUILD_ENDED_TASK_ID = "build_ended"


def _build_ended(dbt_group: Any, producer: Any) -> Any:
    """The task every node task waits for: the producer's end, however it ended (trigger rule
    all_done). A node task's parents are other node tasks, skipped when the plan leaves them out:
    waiting for its parents alone, a planned model whose parents are all unchanged would start
    beside the producer's build and read a report not yet complete."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    ended = EmptyOperator(
        task_id=BUILD_ENDED_TASK_ID,
        task_group=dbt_group,
        dag=producer.dag,
        trigger_rule="all_done",
        doc_md="The producer's `dbt build` has ended, however it ended: each model's task may "
        "read what it did to the model (orchestration.dbt_watcher).",
    )
    producer >> ended
    return ended
