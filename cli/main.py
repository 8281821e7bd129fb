"""`hcw`: the warehouse's one command line. `hcw --help` lists the commands, `hcw COMMAND --help`
says what each takes.

Every command imports what it works with when it runs, never before its arguments are parsed: a
`--help` starts no server, reads no `.env` and opens no connection. The logic lives in the stages'
packages; a command only parses, calls and reports. `python -m cli` is the same command line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

# names only: the sources themselves are imported when a command runs
from ingestion.sources import API_SOURCE_NAMES, BATCH_FILE_SOURCE_NAMES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _warehouse():
    from warehouse.connection import from_environment

    return from_environment()


@contextmanager
def _as_person(role: str) -> Iterator:
    """The warehouse for a person's command, as `role` only (warehouse.connection.for_person):
    a server that is not running, or credentials it refuses, end the command with what to do."""
    import psycopg

    from warehouse.connection import ROLE_PASSWORD_VARIABLES, for_person

    try:
        warehouse = for_person(role)
    except RuntimeError as missing:
        raise click.ClickException(str(missing)) from None
    try:
        yield warehouse
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        raise click.ClickException(
            f"cannot reach the warehouse as {role}: {reason} (this command never starts it: an"
            " operator does, `make up`; the password is your own, from"
            f" {ROLE_PASSWORD_VARIABLES[role]} or your ~/.pgpass)"
        ) from None


def main() -> None:
    """The `hcw` script and `python -m cli`: the command line, whose process then ends without
    the interpreter's last garbage collections (common.process_exit)."""
    from common.process_exit import exit_without_collecting

    try:
        hcw(prog_name="hcw")
    finally:
        exit_without_collecting()


@click.group(context_settings=CONTEXT)
@click.option("-v", "--verbose", is_flag=True, help="log debug lines too")
def hcw(verbose: bool) -> None:
    """The healthcare warehouse: land, build, gate, publish, monitor (README.md)."""
    from common.private_files import make_var_private, restrict_new_files

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    restrict_new_files()  # what it writes holds PHI: its owner's only, and its children's too
    make_var_private()


# -- setting up and running -------------------------------------------------------------------


@hcw.command("setup-env")
def setup_env() -> None:
    """Write `.env` with fresh random secrets; keep those it made before (`make setup`)."""
    from common.env_file import write_env_file
    from common.settings import ENV_FILE
    from warehouse.tls_certificates import ensure_compose_certificates

    created = write_env_file(ENV_FILE)
    if created:
        click.echo(f"{ENV_FILE.name}: generated {len(created)} new secrets")
    else:
        click.echo(f"{ENV_FILE.name}: kept the existing secrets")
    if folder := ensure_compose_certificates():
        click.echo(f"{folder}: a certificate for docker-compose.yml's PostgreSQL (TLS only)")


@hcw.command("data-docs-assets")
def data_docs_assets() -> None:
    """Fetch the pinned, checksummed scripts and styles Data Docs pages load (`make setup`)."""
    from common import settings
    from expectations import data_docs_assets as assets

    settings.load_env()  # NPM_REGISTRY may be set there
    try:
        assets.fetch()
    except (OSError, assets.IntegrityError) as failed:
        raise click.ClickException(f"could not fetch the Data Docs assets: {failed}") from failed


@hcw.command()
def run() -> None:
    """The main job on demo data: start the warehouse, write demo files, run every source's DAG and
    the warehouse build through Airflow, print the summary (`make run`)."""
    from cli.run import run_demo

    if not run_demo():
        sys.exit(1)


@hcw.command()
def bootstrap() -> None:
    """Start the warehouse if embedded; create its roles and databases, bring its schemas up to
    date."""
    from warehouse.bootstrap import bootstrap as bootstrap_warehouse

    bootstrap_warehouse(_warehouse())


@hcw.command("stop-warehouse")
def stop_warehouse() -> None:
    """Stop the embedded PostgreSQL (its data stays in var/pgdata)."""
    from common import settings
    from warehouse import embedded

    embedded.stop(settings.EMBEDDED_PGDATA)
    click.echo(f"embedded PostgreSQL at {settings.EMBEDDED_PGDATA} stopped")


@hcw.command()
def manifest() -> None:
    """Parse the dbt project again if it changed: the warehouse DAG renders from its manifest."""
    from common import settings
    from orchestration.dbt_manifest import MANIFEST, ensure_manifest

    state = "parsed again" if ensure_manifest() else "is current"
    click.echo(f"dbt manifest {state}: {MANIFEST.relative_to(settings.PROJECT_ROOT)}")


@hcw.command()
def up() -> None:
    """Start Airflow (api-server on 127.0.0.1:8080, scheduler, dag-processor, triggerer) and the
    vitals processor (`make up`)."""
    from orchestration import airflow_services

    airflow_services.up(prepare=_demo_sources)


def _demo_sources(warehouse) -> None:
    """The demo research database, unless a real one is configured (as `hcw run` does)."""
    import os

    if os.environ.get("RESEARCH_DB_HOST"):
        return
    try:
        from demo.research_db import ensure_database
    except ModuleNotFoundError as missing:  # installed without the demo group
        logging.getLogger(__name__).warning(
            "no demo research database (%s is not installed): set RESEARCH_DB_HOST for the"
            " research_db DAG",
            missing.name,
        )
        return
    ensure_database(warehouse)


@hcw.command()
def down() -> None:
    """Stop everything `hcw up` started."""
    from orchestration import airflow_services

    airflow_services.down()


PASS_THROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False}


@hcw.command(context_settings=PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt(args: tuple[str, ...]) -> None:
    """Run dbt against the warehouse (`hcw dbt build --select fct_encounters`; `hcw dbt build
    --help` is dbt's help)."""
    from warehouse.dbt_runner import exec_dbt

    exec_dbt(list(args), _warehouse())


@hcw.group("limited-data-set")
def limited_data_set() -> None:
    """A limited data set (45 CFR 164.514(e)) for one data use agreement's recipients, in a schema
    of its own (docs/deidentification.md)."""


@limited_data_set.command("create")
@click.argument("agreement")
def limited_data_set_create(agreement: str) -> None:
    """The agreement's schema lds_AGREEMENT and its recipients' login role; prints the role's
    password once (run again: a new password)."""
    from warehouse import limited_data_set as lds

    password = lds.create(_warehouse(), agreement)
    click.echo(f"schema and role {lds.schema_of(agreement)}; its password (shown once): {password}")


@limited_data_set.command("build")
@click.argument("agreement")
def limited_data_set_build(agreement: str) -> None:
    """Build the de-identified models and the marts into lds_AGREEMENT, dates and ZIP codes
    kept (the limited_data_set policy)."""
    from warehouse import limited_data_set as lds

    built = lds.build(_warehouse(), agreement, f"lds_{_utc(datetime.now(UTC)):%Y%m%dT%H%M%S}")
    click.echo(built.stdout[-3000:])
    sys.exit(built.returncode)


@hcw.command(context_settings=PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def airflow(args: tuple[str, ...]) -> None:
    """Run an Airflow command configured for this warehouse (`hcw airflow dags list`)."""
    from orchestration.airflow_env import exec_airflow

    exec_airflow(list(args), _warehouse())


@hcw.command("prepare-airflow")
def prepare_airflow() -> None:
    """Write Airflow's configuration file (its own secrets, owner-only), migrate its database,
    store each task role's credentials in it, and write the vitals processor's secrets file:
    what `make up` does first, and docker-compose's airflow-init."""
    from orchestration.airflow_env import airflow_environment
    from orchestration.service_secrets import write_vitals_processor_secrets
    from orchestration.stored_credentials import prepare_airflow_database

    warehouse = _warehouse()
    prepare_airflow_database(warehouse, airflow_environment(warehouse))
    write_vitals_processor_secrets()


@hcw.command("airflow-service")
@click.argument(
    "service", type=click.Choice(["api-server", "scheduler", "dag-processor", "triggerer"])
)
def airflow_service(service: str) -> None:
    """Run one of Airflow's services as a container runs it (docker-compose.yml): no
    administrator and no secret in its environment; Airflow's own are in the configuration file
    `hcw prepare-airflow` wrote."""
    from orchestration.airflow_env import exec_airflow_service

    exec_airflow_service(service)


@hcw.group()
def users() -> None:
    """Airflow's people: an account each, with the role their duty needs."""


@users.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def users_add(file: Path) -> None:
    """Give each person of FILE (the shape of airflow/users.example.yml) an Airflow account; each
    new person's generated password is printed once and stored nowhere."""
    from orchestration.airflow_env import airflow_environment, exec_airflow_module
    from orchestration.stored_credentials import prepare_airflow_database

    warehouse = _warehouse()
    prepare_airflow_database(warehouse, airflow_environment(warehouse))
    exec_airflow_module("orchestration.airflow_users", ["add", str(file.resolve())], warehouse)


# -- landing and quarantine -------------------------------------------------------------------


@hcw.command()
@click.argument("source", type=click.Choice([*BATCH_FILE_SOURCE_NAMES, *API_SOURCE_NAMES]))
def land(source: str) -> None:
    """Land what waits for SOURCE now: the files in var/landing/<source>/ that have settled (a
    file changed in the last seconds is left for later), or a pull of the FHIR API or the
    research database. Device vitals are the vitals processor's alone (`hcw
    processor`): it lands and scores them together."""
    from orchestration import pipeline
    from warehouse.runs import run_id_of

    run_id = run_id_of("manual", f"{source}_{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}")
    if source == "fhir":
        counts = pipeline.land_fhir_api(run_id)
    elif source == "research":
        counts = pipeline.land_research_db(run_id)
    else:
        counts = pipeline.land_files(source, run_id)
    click.echo(f"{run_id}: {counts}")


@hcw.group()
def quarantine() -> None:
    """What waits in quarantine (stewards only)."""


@quarantine.command("show")
@click.argument("record_id", type=int)
def quarantine_show(record_id: int) -> None:
    """Print quarantined record RECORD_ID as JSON, to correct and re-submit."""
    import json

    from ingestion.resubmit import CannotResubmit, quarantined_record

    try:
        with _as_person("steward") as warehouse:
            _, record = quarantined_record(warehouse, record_id)
    except CannotResubmit as refused:
        raise click.ClickException(str(refused)) from refused
    click.echo(json.dumps(record, indent=2, default=str))


@hcw.command()
@click.argument("record_id", type=int)
@click.argument("corrected", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def resubmit(record_id: int, corrected: Path) -> None:
    """Re-submit quarantined record RECORD_ID as corrected in the JSON file CORRECTED (the shape
    `hcw quarantine show` prints): the next landing takes it like any file."""
    import json

    from ingestion.resubmit import CannotResubmit
    from ingestion.resubmit import resubmit as resubmit_record

    try:
        with _as_person("steward") as warehouse:
            resubmit_record(warehouse, record_id, json.loads(corrected.read_text()))
    except CannotResubmit as refused:
        raise click.ClickException(str(refused)) from refused


# -- privacy, backups -------------------------------------------------------------------------


@hcw.command("phi-scan")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, path_type=Path))
def phi_scan(folders: tuple[Path, ...]) -> None:
    """Look for raw identifier values in what `analyst` can select, or in the files under
    FOLDERS (reports, Data Docs, logs). Exits 1 on a finding; a finding names the place and the
    class of identifier, never the value."""
    from orchestration.dag_settings import NON_IDENTIFIERS
    from warehouse import phi_scan as scan

    warehouse = _warehouse()
    index = scan.IdentifierIndex(scan.raw_identifiers(warehouse))
    if folders:
        click.echo(f"looking for {index.count} raw identifier values in {len(folders)} folder(s)")
        non_identifiers = scan.known_non_identifiers(warehouse, NON_IDENTIFIERS)
        findings = scan.scan_files(folders, index, non_identifiers)
    else:
        click.echo(f"looking for {index.count} raw identifier values in what analyst can select")
        findings = scan.scan_relations(warehouse, "analyst", "analytics", index)
    for finding in findings:
        click.echo(str(finding), err=True)
    click.echo(f"{len(findings)} finding(s)")
    sys.exit(1 if findings else 0)


@hcw.command()
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    help="base backups kept [default: orchestration.yml's backups_kept]",
)
def backup(keep: int | None) -> None:
    """Take a base backup of the server into BACKUP_DIR, encrypted, and check it."""
    from warehouse.backup import back_up

    if keep is None:
        from orchestration.dag_settings import dag_config

        keep = dag_config("maintenance")["backups_kept"]
    click.echo(str(back_up(_warehouse(), keep)))


@hcw.command("verify-backup")
@click.argument("backup_dir", required=False, type=click.Path(exists=True, path_type=Path))
def verify_backup(backup_dir: Path | None) -> None:
    """Decrypt a base backup (the newest by default) and check every file and its WAL."""
    from warehouse.backup import backups, verify
    from warehouse.backup_check import BackupInvalid
    from warehouse.backup_crypto import BackupUnreadable

    if backup_dir is None:
        kept = backups()
        if not kept:
            raise click.ClickException("no base backup yet: hcw backup")
        backup_dir = kept[-1]
    try:
        checked = verify(backup_dir)
    except (BackupInvalid, BackupUnreadable) as failed:
        raise click.ClickException(f"{backup_dir.name}: {failed}") from failed
    click.echo(f"{backup_dir.name}: {checked.files} files, {checked.bytes} bytes, WAL whole: good")


@hcw.command("archive-wal")
@click.option("--watch", is_flag=True, help="keep archiving, every few seconds")
def archive_wal(watch: bool) -> None:
    """Move the WAL the embedded server spooled into BACKUP_DIR, encrypted."""
    from common import settings
    from warehouse import wal_archive

    spool = wal_archive.spool_dir(settings.EMBEDDED_PGDATA)
    if watch:
        wal_archive.watch(spool)
    click.echo(f"{wal_archive.archive_spooled(spool)} WAL files archived")


@hcw.command()
@click.option(
    "--to",
    "moment",
    required=True,
    type=click.DateTime(["%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S.%f%z"]),
    help="the moment, with its time zone: '2026-12-07 08:00:00+0000'",
)
def restore(moment) -> None:
    """Restore the embedded server to a moment from the backups (docs/runbook.md), then have
    the next runs take again what came after it. Stop Airflow first (make down)."""
    from common import settings
    from ingestion.after_restore import after_restore
    from monitoring import baseline
    from orchestration import airflow_services
    from warehouse.point_in_time import RestoreImpossible, restore_to

    if not (settings.EMBEDDED_PGDATA / "PG_VERSION").exists():
        raise click.ClickException(
            f"no embedded server in {settings.EMBEDDED_PGDATA}: a server of your own is restored"
            " by its administrator (docs/runbook.md, 'Backups and restore')"
        )
    if airflow_services.running():
        raise click.ClickException("Airflow's services are running: make down, then restore")
    from warehouse.connection import from_environment

    warehouse = from_environment(start=False)  # a server that will not start is restored too
    try:
        restored = restore_to(moment, warehouse, settings.EMBEDDED_PGDATA)
    except RestoreImpossible as impossible:
        raise click.ClickException(str(impossible)) from impossible
    requeued = after_restore(warehouse)
    # the archived vitals back in landing are history: scored without paging anyone
    baseline.request(warehouse, "restore")
    click.echo(
        f"restored to {restored.target.isoformat()} from {restored.backup} and"
        f" {restored.wal_files} WAL files in {restored.seconds:.0f} s; {requeued.files_requeued}"
        f" landed files back in landing, {requeued.pipelines_reset} dlt pipelines' state reset."
        f" The replaced data folder is {restored.replaced}: delete it once satisfied."
    )


# -- the gate and reports ---------------------------------------------------------------------


@hcw.command()
@click.argument("build_schema", type=click.Choice(["build_blue", "build_green"]))
def gate(build_schema: str) -> None:
    """Run the quality gate on BUILD_SCHEMA by hand (publishes nothing). Exits 1 if it fails."""
    from expectations.gate import run_gate

    verdict = run_gate(_warehouse(), build_schema, run_id="manual")
    sys.exit(0 if verdict.passed else 1)


@hcw.command()
def report() -> None:
    """Build the data quality report and Great Expectations' Data Docs (static HTML under var/)."""
    from expectations.report import build_data_docs, build_report
    from warehouse.bootstrap import bootstrap as bootstrap_warehouse

    warehouse = _warehouse()
    bootstrap_warehouse(warehouse)
    click.echo(f"Data Docs:      {build_data_docs()}")
    click.echo(f"quality report: {build_report(warehouse)}")


@hcw.command("weekly-summary")
def weekly_summary() -> None:
    """Print this week's summary, as the Monday email has it."""
    from expectations.weekly_summary import summarize_week

    click.echo(summarize_week(_warehouse()).render())


@hcw.command()
@click.option("--port", type=int, default=8081, show_default=True)
def docs(port: int) -> None:
    """Generate dbt's docs site and serve it on 127.0.0.1:PORT (`make docs`)."""
    from cli.docs_site import serve_docs

    serve_docs(_warehouse(), port)


# -- clinical monitoring ----------------------------------------------------------------------


@hcw.command()
@click.option("--once", is_flag=True, help="take what is waiting, then stop")
def processor(once: bool) -> None:
    """Run the vitals processor: land device micro-batches, score NEWS2, raise clinical alerts."""
    from monitoring.processor import ProcessorBusy, serve
    from warehouse.connection import for_service

    try:
        # its own roles only, never the administrator's, and it never starts the server
        serve(for_service(), once=once)
    except ProcessorBusy as busy:
        raise click.ClickException(str(busy)) from busy


@hcw.group()
def alerts() -> None:
    """Clinical operations' commands on alerts."""


@alerts.command("open")
def alerts_open() -> None:
    """List the open alerts."""
    from monitoring.alerts import open_alerts

    with _as_person("clinical_ops") as warehouse:
        rows = open_alerts(warehouse)
    for key, condition, ward, room, score, raised_at, escalated, by in rows:
        state = f"acknowledged by {by}" if by else "ESCALATED" if escalated else "unacknowledged"
        click.echo(
            f"{key}  {condition:8}  {ward} room {room}  NEWS2 {score}"
            f"  {raised_at:%Y-%m-%d %H:%M:%S}  {state}"
        )


@alerts.command("acknowledge")
@click.argument("alert_key")
@click.option("--by", required=True, help="who acknowledges, e.g. 'Charge nurse, ward 4'")
def alerts_acknowledge(alert_key: str, by: str) -> None:
    """Acknowledge open alert ALERT_KEY: stops its escalation; the scores resolve it."""
    from monitoring.alerts import NotAcknowledged, acknowledge

    try:
        with _as_person("clinical_ops") as warehouse:
            acknowledge(warehouse, alert_key, by)
    except NotAcknowledged as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"alert {alert_key} acknowledged by {by}")


class IsoMoment(click.ParamType):
    """An ISO 8601 date or time, as datetime.fromisoformat reads it (UTC when it names no zone)."""

    name = "ISO-8601"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return _utc(datetime.fromisoformat(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or time, e.g. 2024-03-15T14:00", param, ctx
            )


@hcw.command("access-log")
@click.option("--role", default="analyst", show_default=True, help="whose sessions and statements")
@click.option("--since", type=IsoMoment(), help="from this date or time (UTC)")
def access_log(role: str, since: datetime | None) -> None:
    """Who connected and what they asked, from the embedded server's log (owner-only); of a
    server of WAREHOUSE_URL, its operator keeps the log (docs/runbook.md)."""
    import os

    from common import settings
    from warehouse import access_log as log

    settings.load_env()
    if os.environ.get("WAREHOUSE_URL"):
        raise click.ClickException(
            "the warehouse is a server of WAREHOUSE_URL: its log is its operator's to read"
        )
    for record in log.records(settings.EMBEDDED_PGDATA, role or None, since):
        click.echo(record.line())


@hcw.command()
@click.argument("since", type=IsoMoment())
@click.argument("until", type=IsoMoment())
def replay(since: datetime, until: datetime) -> None:
    """Score the landed readings of [SINCE, UNTIL) (UTC) again; the processor must be stopped."""
    from monitoring.processor import ProcessorBusy
    from monitoring.replay import replay as replay_range

    try:
        replay_range(_warehouse(), since, until)
    except ProcessorBusy as busy:
        raise click.ClickException(str(busy)) from busy


@hcw.group()
def news2() -> None:
    """Clinical operations' NEWS2 settings per patient: oxygen, SpO2 scale, validity."""


@news2.command("set")
@click.argument("patient_id")
@click.option("--oxygen/--air", "on_oxygen", default=None, help="on supplemental oxygen, or air")
@click.option(
    "--scale",
    "spo2_scale",
    type=click.IntRange(1, 2),
    help="SpO2 scale (2: as a clinician decides, for hypercapnic respiratory failure)",
)
@click.option("--pregnant/--not-pregnant", default=None, help="NEWS2 is not validated in pregnancy")
@click.option(
    "--under-16/--not-under-16", "under_16", default=None, help="NEWS2 is not validated under 16"
)
@click.option("--by", required=True, help="who decides, e.g. 'Dr Okafor, respiratory'")
@click.option("--reason", help="why, for the record")
@click.option(
    "--from",
    "valid_from",
    type=IsoMoment(),
    help="from this time (UTC), not before now; default now",
)
def news2_set(
    patient_id: str, by: str, reason: str | None, valid_from: datetime | None, **setting
) -> None:
    """Set PATIENT_ID's NEWS2 inputs; the device payload's own values win over them."""
    from monitoring.patient_settings import NotRecorded, Setting, record

    try:
        with _as_person("clinical_ops") as warehouse:
            held_from = record(warehouse, patient_id, Setting(**setting), by, reason, valid_from)
    except NotRecorded as error:
        raise click.ClickException(str(error)) from error
    changes = ", ".join(f"{name} {value}" for name, value in Setting(**setting).changes().items())
    click.echo(f"{patient_id}: {changes} from {held_from:%Y-%m-%d %H:%M:%S %Z}, by {by}")


@news2.command("show")
@click.argument("patient_id")
def news2_show(patient_id: str) -> None:
    """PATIENT_ID's NEWS2 settings, oldest first."""
    from monitoring.patient_settings import history

    with _as_person("clinical_ops") as warehouse:
        rows = history(warehouse, patient_id)
    if not rows:
        click.echo(
            f"{patient_id}: no setting (scored as alert, on air, scale 1 unless the device says)"
        )
    for valid_from, on_oxygen, scale, pregnant, under_16, by, reason in rows:
        said = {"oxygen": on_oxygen, "scale": scale, "pregnant": pregnant, "under 16": under_16}
        changes = ", ".join(f"{name} {value}" for name, value in said.items() if value is not None)
        click.echo(
            f"{valid_from:%Y-%m-%d %H:%M:%S %Z}  {changes}  by {by}"
            + (f" ({reason})" if reason else "")
        )


# -- reference data ---------------------------------------------------------------------------


@hcw.command("icd10cm-seeds")
def icd10cm_seeds() -> None:
    """Write the ICD-10-CM seeds from the installed simple-icd-10-cm code set."""
    from ingestion.reference.icd10cm_seed import write_seeds

    for name, count in write_seeds().items():
        click.echo(f"wrote seeds/{name} ({count} rows)")
