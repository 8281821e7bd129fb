"""`make up`'s Airflow (api-server, scheduler, dag-processor, triggerer) and vitals processor, under
supervisord, on the module's throwaway warehouse: a file dropped into a landing folder is loaded
and archived without a manual trigger, a vitals micro-batch is scored within seconds and the device
feed's DAG finds the processor healthy, a vitals processor killed with SIGKILL is restarted and
scores the next micro-batch within 30 s, a missed deadline emails its alert, the UI takes the
generated password and shows Cosmos' tasks, and `make down` stops every process it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime

import psutil
import psycopg
import pytest
import yaml
from playwright.sync_api import sync_playwright

from common import settings
from common.env_file import GENERATED
from demo.claims_files import write_claims
from demo.ward_vitals import drop, micro_batches
from orchestration import airflow_services
from tests.dags.airflow_cli import model_task, run_airflow
from tests.dags.conftest import orchestration_config
from tests.dags.process_environments import ProcessEnvironments, Seen
from tests.dags.smtp_sink import body_of
from warehouse.connection import AIRFLOW_DATABASE
from warehouse.throwaway import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Left paused: what the tests here do not need (a dbt build would take both cores for minutes)
PAUSED = ("warehouse_build", "fhir_api", "research_db", "weekly_report", "maintenance", "ehr_batch")


@pytest.fixture(scope="module")
def process_environments():
    """Every process make up starts and their children, with their environments, from before
    the services start until the module ends (tests.dags.process_environments)."""
    watch = ProcessEnvironments(
        airflow_services.MARKER, str(airflow_services._supervisor_dir() / "supervisord.conf")
    )
    watch.start()
    yield watch
    watch.stop()


@pytest.fixture(scope="module")
def services_set_up(test_warehouse, airflow_env, smtp_sink, process_environments):
    settings_for_up = {
        **smtp_sink.env,
        "AIRFLOW_PORT": str(free_port()),
        "ORCHESTRATION_CONFIG": orchestration_config(
            test_warehouse.var_dir / "airflow",
            # every device feed run misses its deadline (0.6 s after it was queued)
            vitals_feed={"deadline_minutes": 0.01},
            landing_watch={"poll_seconds": 1, "settle_seconds": 1},
        ),
    }
    os.environ.update(settings_for_up)
    env = airflow_services.services_environment(test_warehouse.warehouse)
    paused = f"^({'|'.join(PAUSED)})$"  # one command for all (each command is an Airflow start)
    for command in (
        ["dags", "reserialize"],
        ["dags", "pause", "-y", "--treat-dag-id-as-regex", paused],
    ):
        done = run_airflow(env, *command)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _paused(test_warehouse.warehouse) == set(PAUSED)
    airflow_services.up()
    yield
    airflow_services.down()
    for name in settings_for_up:
        os.environ.pop(name, None)


@pytest.fixture
def services(services_set_up) -> int:
    """make up's services running (started again if a test stopped them): supervisord's pid."""
    if airflow_services.running() is None:
        airflow_services.up()
    return airflow_services.running()


# Airflow's people, as a hospital's users.yml lists them (airflow/users.example.yml's shape)
PEOPLE = {"ada.admin": "administrator", "dan.engineer": "data_engineer", "vera.viewer": "viewer"}


@pytest.fixture(scope="module")
def people(services_set_up, tmp_path_factory) -> dict[str, str]:
    """The people added as an administrator adds them (`hcw users add`): each one's password, as
    the command printed it, once."""
    users = tmp_path_factory.mktemp("people") / "users.yml"
    users.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {
                        "username": name,
                        "first_name": name.split(".")[0].title(),
                        "last_name": name.split(".")[1].title(),
                        "email": f"{name}@hospital.example",
                        "role": role,
                    }
                    for name, role in PEOPLE.items()
                ]
            }
        )
    )

    def users_add() -> str:
        """`hcw users add` of the file: what it printed."""
        done = subprocess.run(
            [sys.executable, "-m", "cli", "users", "add", str(users)],
            cwd=settings.PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    printed = re.findall(
        r"^(\S+): created, \S+ \(\w+\), password (\S+)$", users_add(), re.MULTILINE
    )
    assert sorted(name for name, _ in printed) == sorted(PEOPLE)
    # a second time, nobody is created again and no password is shown
    again = users_add()
    assert "password" not in again, again[-2000:]
    return dict(printed)


def _paused(warehouse) -> set[str]:
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        return {dag_id for (dag_id,) in conn.execute("select dag_id from dag where is_paused")}


def _dag_runs(warehouse, dag_id: str) -> list[tuple[str, str]]:
    """(run id, state) of every run of `dag_id` in Airflow's metadata."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        return conn.execute(
            "select run_id, state from dag_run where dag_id = %s order by id", (dag_id,)
        ).fetchall()


def _task_states(warehouse) -> list[tuple]:
    """(DAG, run, task, state, start, end) of every task instance so far: why a run is late."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        return conn.execute(
            "select dag_id, run_id, task_id, state, start_date::time(0), end_date::time(0)"
            " from task_instance order by start_date nulls last"
        ).fetchall()


def test_a_dropped_file_is_loaded_and_archived_without_a_manual_trigger(test_warehouse, services):
    # On start, the scheduler runs claims_batch for its latest cron tick (of four hours ago at
    # most); the file is dropped once that run is over, so that only its arrival can land it.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = _dag_runs(test_warehouse.warehouse, "claims_batch")
        if runs and all(state in ("success", "failed") for _, state in runs):
            break
        time.sleep(2)
    [dropped] = write_claims(
        test_warehouse.landing_dir / "claims", files=1, claims=8, defects_per_file=0,
        first_day=date(2024, 10, 1),
    )  # fmt: skip
    archived = test_warehouse.var_dir / "archive" / "claims" / dropped.name
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not archived.exists():
        time.sleep(2)
    assert archived.exists() and not dropped.exists(), (
        f"not archived within 5 minutes: {_task_states(test_warehouse.warehouse)}"
    )
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        received, run_id = conn.execute(
            "select rows_received, run_id from audit.file_ledger where file_name = %s",
            (dropped.name,),
        ).fetchone()
    assert received == 8
    # claims_batch ran on the landing watch's asset event, not on its cron or by hand
    assert run_id.startswith("claims_batch__asset_triggered__")
    assert run_id.removeprefix("claims_batch__") in {
        run for run, _ in _dag_runs(test_warehouse.warehouse, "claims_batch")
    }


def test_make_up_starts_the_vitals_processor_and_vitals_feed_sees_it_healthy(
    test_warehouse, services
):
    name, text = next(micro_batches(5, files=1, start=datetime(2024, 10, 2, 8, 0, tzinfo=UTC)))
    drop(test_warehouse.landing_dir / "vitals", name, text)
    deadline = time.monotonic() + 60
    scored = []
    while time.monotonic() < deadline and not scored:
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
            scored = conn.execute(
                "select readings from monitoring.processed_files where file_name = %s", (name,)
            ).fetchall()
        time.sleep(0.5)
    assert scored == [(25,)], "the processor did not score the micro-batch within 60 s"
    # the minutely vitals_feed run finds the processor's heartbeat fresh and its queue empty
    deadline = time.monotonic() + 180
    checks = []
    while time.monotonic() < deadline and "success" not in checks:
        with psycopg.connect(
            **test_warehouse.warehouse.connect_kwargs(
                test_warehouse.warehouse.admin_user, AIRFLOW_DATABASE
            )
        ) as conn:
            checks = [
                state
                for (state,) in conn.execute(
                    "select state from task_instance"
                    " where dag_id = 'vitals_feed' and task_id = 'check_vitals_processor'"
                )
            ]
        time.sleep(2)
    assert "success" in checks, checks


def _scored(warehouse, file_name: str) -> list[tuple[int]]:
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        return conn.execute(
            "select readings from monitoring.processed_files where file_name = %s", (file_name,)
        ).fetchall()


def test_a_killed_vitals_processor_is_restarted_and_scores_a_later_micro_batch_within_30_s(
    test_warehouse, services
):
    killed = airflow_services.service_pids()["vitals-processor"]
    os.kill(killed, signal.SIGKILL)
    killed_at = time.monotonic()
    name, text = next(micro_batches(5, files=1, start=datetime(2024, 10, 3, 8, 0, tzinfo=UTC)))
    drop(test_warehouse.landing_dir / "vitals", name, text)
    scored = []
    while time.monotonic() - killed_at < 30 and not scored:
        scored = _scored(test_warehouse.warehouse, name)
        time.sleep(0.5)
    took = time.monotonic() - killed_at
    print(f"killed the vitals processor; the next micro-batch was scored {took:.1f} s later")
    assert scored == [(25,)], "no micro-batch scored within 30 s of the processor's SIGKILL"
    # supervisord calls it RUNNING once it has stayed up for startsecs (3 s): it may score first
    deadline = time.monotonic() + 10
    while "vitals-processor" not in airflow_services.service_pids():
        assert time.monotonic() < deadline, "supervisord does not report the processor RUNNING"
        time.sleep(0.5)
    restarted = airflow_services.service_pids()["vitals-processor"]
    assert restarted != killed and psutil.pid_exists(restarted)
    assert not _alive_pid(killed)


def _alive_pid(pid: int) -> bool:
    try:
        return _alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def test_a_missed_deadline_emails_its_alert(smtp_sink, services):
    alert = smtp_sink.wait_for("DEADLINE MISSED vitals_feed", timeout=240)
    body = body_of(alert)
    assert "vitals_feed run scheduled__" in body
    assert f"{airflow_services.ui_url()}/dags/vitals_feed/runs/scheduled__" in body


def _log_in(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")


def test_the_ui_takes_the_generated_password_and_shows_cosmos_tasks(services, people, tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{airflow_services.ui_url()}/dags/warehouse_build")
        _log_in(page, "admin", "admin")  # no default account
        # refused, and still the login form
        page.get_by_text("Invalid login").wait_for()
        assert page.locator("input[name=password]").count() == 1
        _log_in(page, "dan.engineer", people["dan.engineer"])
        page.wait_for_url("**/dags/warehouse_build**", timeout=60_000)
        page.get_by_role("button", name="Collapse Details Panel").click()
        page.get_by_role("button", name="Show Graph (Press g)").click()
        page.get_by_role("button", name="Expand all task groups").click()  # Cosmos' `dbt` group
        page.locator(".react-flow__node", has_text="dbt_producer_watcher").first.wait_for()
        nodes = [node.split() for node in page.locator(".react-flow__node").all_inner_texts()]
        page.screenshot(path=str(tmp_path / "warehouse_build_graph.png"))
        browser.close()
    # one `dbt build` in the producer; a task per model reports on the model and its tests
    names = {node[0]: node[1:] for node in nodes if node}
    assert names["dbt_producer_watcher"][0] == "DbtProducerWatcherOperator"
    for model in ("stg_ehr__encounters", "patient_crosswalk", "deid_encounters", "fct_encounters"):
        assert names[model_task(model).removeprefix("dbt.")][0] == "DbtRunWatcherOperator", model
    operators = [node[1] for node in nodes if len(node) > 1]
    assert operators.count("DbtRunWatcherOperator") >= 40
    assert "DbtTestWatcherOperator" not in operators
    assert "dbt" in names and "quality_gate" in names
    assert (tmp_path / "warehouse_build_graph.png").stat().st_size > 20_000


def _trigger(page, dag_id: str) -> int:
    """Trigger `dag_id` from its page as the logged-in person; the API's answer's status."""
    page.goto(f"{airflow_services.ui_url()}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    # a paused DAG's dialog offers to unpause it: not here (its run only has to exist)
    unpause = dialog.get_by_label(f"Unpause {dag_id} on trigger")
    if unpause.count() and unpause.is_checked():
        dialog.get_by_text(f"Unpause {dag_id} on trigger").click()  # its input is hidden
        assert not unpause.is_checked()
    with page.expect_response(f"**/api/v2/dags/{dag_id}/dagRuns") as answer:
        dialog.get_by_role("button", name="Trigger").click()
    return answer.value.status


def test_a_viewer_cannot_trigger_a_dag_and_a_data_engineer_can(
    test_warehouse, services, people, tmp_path
):
    dag_id = "ehr_batch"  # paused here: a run it is given waits, nothing lands

    def triggered() -> list[str]:
        runs = _dag_runs(test_warehouse.warehouse, dag_id)
        return [run_id for run_id, _ in runs if run_id.startswith("manual__")]

    before = triggered()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        viewer = browser.new_page(viewport={"width": 1600, "height": 1000})
        viewer.goto(f"{airflow_services.ui_url()}/dags/{dag_id}")
        _log_in(viewer, "vera.viewer", people["vera.viewer"])
        viewer.wait_for_url(f"**/dags/{dag_id}**")
        assert _trigger(viewer, dag_id) == 403
        viewer.get_by_text("You do not have permission to perform this action").wait_for()
        viewer.screenshot(path=str(tmp_path / "viewer_cannot_trigger.png"))
        assert triggered() == before

        engineer = browser.new_context().new_page()
        engineer.set_viewport_size({"width": 1600, "height": 1000})
        engineer.goto(f"{airflow_services.ui_url()}/dags/{dag_id}")
        _log_in(engineer, "dan.engineer", people["dan.engineer"])
        engineer.wait_for_url(f"**/dags/{dag_id}**")
        assert _trigger(engineer, dag_id) == 200
        engineer.screenshot(path=str(tmp_path / "data_engineer_triggered.png"))
        browser.close()
    assert len(triggered()) == len(before) + 1
    assert (tmp_path / "viewer_cannot_trigger.png").stat().st_size > 20_000


ALL_DAGS = sorted(path.stem for path in settings.DAGS_DIR.glob("*.py"))


def _api(method: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    """One call to Airflow's REST API as the logged-in administrator (`token`)."""
    request = urllib.request.Request(
        f"{airflow_services.ui_url()}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def _task_dags(warehouse) -> dict[str, str]:
    """Each task instance's id -> its DAG."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        return dict(conn.execute("select id::text, dag_id from task_instance").fetchall())


def _dags_seen_running(watch: ProcessEnvironments, warehouse) -> dict[str, list]:
    """Each DAG -> the processes seen running one of its tasks (and what those ran)."""
    dags = _task_dags(warehouse)
    by_dag: dict[str, list] = {}
    for seen in watch.snapshot().values():
        for task_instance in seen.task_instance_ids():
            if task_instance in dags:
                by_dag.setdefault(dags[task_instance], []).append(seen)
    return by_dag


# what a process started by a task may hold beside nothing: the one credential it runs with
ALLOWED_IN_CHILDREN = {
    "dbt": {".env WAREHOUSE_TRANSFORMER_PASSWORD", "env WAREHOUSE_TRANSFORMER_PASSWORD"},
}

SUPERUSER_PROBE = """
import sys
import psycopg
from orchestration.task_warehouse import task_warehouse
from warehouse.connection import NotTheirRole, from_environment
admin, host, port, database = sys.argv[1:]
try:
    from_environment()
    print("from_environment: an administrator's warehouse")
except RuntimeError as refused:
    print("from_environment refused:", refused)
try:
    task_warehouse().connect_kwargs(admin)
    print("task_warehouse: the administrator's password")
except NotTheirRole as refused:
    print("task_warehouse refused:", refused)
try:
    psycopg.connect(host=host, port=port, user=admin, dbname=database, connect_timeout=5).close()
    print("connected as the superuser")
except psycopg.OperationalError as refused:
    print("the server refused:", str(refused).strip().splitlines()[-1])
"""


def test_no_service_nor_task_of_any_dag_holds_a_secret_it_does_not_use(
    test_warehouse, services, people, process_environments
):
    warehouse = test_warehouse.warehouse
    # every secret `make setup` generates and the alert channels', as .env and this process's
    # environment (the throwaway warehouse's role passwords, Airflow's keys) hold them, and the
    # superuser's password and URL: listed here, not by the rule the product filters with
    names = (set(GENERATED) - {"WAREHOUSE_PORT"}) | {"SMTP_PASSWORD", "CLINICAL_ALERT_WEBHOOK_URL"}
    secrets = {
        f"{source} {name}": value
        for source, values in ((".env", settings.env_file_values_all()), ("env", os.environ))
        for name, value in values.items()
        if name in names and value
    } | {"superuser password": warehouse.admin_password, "superuser URL": warehouse.admin_url()}
    assert {"env WAREHOUSE_LOADER_PASSWORD", "env AIRFLOW_FERNET_KEY"} <= set(secrets)
    token = _api(
        "POST", "/auth/token", body={"username": "ada.admin", "password": people["ada.admin"]}
    )["access_token"]
    paused = _paused(warehouse)
    triggered = {}
    try:
        for dag_id in ALL_DAGS:
            if dag_id in _dags_seen_running(process_environments, warehouse):
                continue
            _api("PATCH", f"/api/v2/dags/{dag_id}", token, {"is_paused": False})
            run = _api("POST", f"/api/v2/dags/{dag_id}/dagRuns", token, {"logical_date": None})
            triggered[dag_id] = run["dag_run_id"]
        deadline = time.monotonic() + 300
        while set(ALL_DAGS) - set(_dags_seen_running(process_environments, warehouse)):
            assert time.monotonic() < deadline, (
                "no task seen running of "
                f"{set(ALL_DAGS) - set(_dags_seen_running(process_environments, warehouse))}"
            )
            time.sleep(1)
    finally:
        for dag_id in paused:
            _api("PATCH", f"/api/v2/dags/{dag_id}", token, {"is_paused": True})
        for dag_id, run_id in triggered.items():  # no build left running beside the other tests
            if _api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token)["state"] in (
                "queued", "running"
            ):  # fmt: skip
                _api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token, {"state": "failed"})
    by_dag = _dags_seen_running(process_environments, warehouse)
    for dag_id in ALL_DAGS:
        for seen in by_dag[dag_id]:
            assert seen.environs and seen.environs[0].get("WAREHOUSE_PORT"), seen.titles
            assert seen.holds(secrets) == set(), (dag_id, seen.titles)
    # the services, and anything a task started, hold nothing but what their duty uses
    # each service's, read now
    service_pids = airflow_services.service_pids()
    assert set(service_pids) == {
        *airflow_services.SERVICES, airflow_services.VITALS_PROCESSOR, airflow_services.WAL_ARCHIVER
    }  # fmt: skip
    for service, pid in service_pids.items():
        environ = psutil.Process(pid).environ()
        assert environ.get("WAREHOUSE_PORT") == str(warehouse.port), service
        assert Seen([environ]).holds(secrets) == set(), service
    for seen in process_environments.snapshot().values():
        allowed = set().union(
            *(names for word, names in ALLOWED_IN_CHILDREN.items() if word in " ".join(seen.titles))
        )
        assert seen.holds(secrets) <= allowed, seen.titles
    # with a task's own environment, every way to the superuser is refused
    [task_environment, *_] = by_dag["maintenance"][0].environs
    probe = subprocess.run(
        [sys.executable, "-c", SUPERUSER_PROBE, warehouse.admin_user, warehouse.host,
         str(warehouse.port), warehouse.database],
        env=task_environment, cwd=settings.PROJECT_ROOT, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    print(probe.stdout)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert "from_environment refused: WAREHOUSE_ADMIN_PASSWORD is not set" in probe.stdout
    assert "task_warehouse refused: an Airflow task has no credentials for" in probe.stdout
    assert "the server refused:" in probe.stdout
    assert "connected as the superuser" not in probe.stdout


def _alive(process: psutil.Process) -> bool:
    """Running, and not just an exit waiting for its parent to collect it."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.last_in_module
def test_make_down_stops_every_process_it_started(services):
    # supervisord, the five services and what they started: task processes (each in a process
    # group of its own) and the dbt or pg_dump those run
    started = airflow_services.started_processes()
    assert services in {process.pid for process in started}
    assert len(started) >= 6
    airflow_services.down()
    assert [process.pid for process in started if _alive(process)] == []
    # nor any other process that carries make up's marker: none was left behind
    assert [
        process.pid for process in airflow_services.started_processes() if _alive(process)
    ] == []
    assert airflow_services.running() is None
