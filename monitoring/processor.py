"""The vitals processor: the device feed's only consumer, from landing folder to clinical alert.

    hcw processor          # run until stopped (make up starts it)
    hcw processor --once   # take what is waiting, then stop

Each cycle takes the settled micro-batches in `var/landing/vitals/` in name order, as many as fit
in `max_bytes_per_cycle` (the rest wait on disk: a slow warehouse slows the reading, memory stays
flat), lands them through the file sources' path (ledger, validation, quarantine, reconciliation:
ingestion/file_source.py), then scores each landed file in order: NEWS2 and z-scores per reading,
one-minute windows, alerts (store.py writes it all with the file's checkpoint in one transaction).
A thread of its own (Notifier) sends the notifications the files queued; the loop escalates what
nobody acknowledged in time and records its health in monitoring.processor_status.

A file landed but not scored (a crash between the two) is scored first on the next start. A file
that cannot be landed is set aside in `var/quarantine/vitals/` with its reason, so one bad file
does not hold up the others. Settings in monitoring.yml (MONITORING_CONFIG overrides the path).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import yaml

from common import settings
from monitoring import (
    alert_rules,
    baseline,
    news2,
    news2_inputs,
    notify,
    operational,
    partitions,
    store,
    vital_validity,
)
from monitoring.alert_rules import AlertRules, PatientState, Reading
from monitoring.windows import VITALS, anomalous_vitals, touched_minutes, zscores
from warehouse import cpu_priority
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

CONFIG_FILE = Path(__file__).with_name("monitoring.yml")
NAME = "vitals_processor"
LOCK = 727_001  # the advisory lock only one processor (or replay) holds
MAX_ERROR_PAUSE_SECONDS = 30
LOCK_WAIT_SECONDS = 60  # after a reconnect, for the old session to let go of the lock
# each cycle looks this far back for files landed and not scored (a failed cycle's); older ones
# are scored at the next start, which looks back for ever
RECENTLY = "1 hour"
RETENTION_EVERY_SECONDS = 3600
# the landing rule that holds a reading whose time cannot be read or placed (validation.py)
TIME_RULE = "timestamp_is_timestamp"


class ProcessorBusy(RuntimeError):
    pass


def load_config() -> dict:
    return yaml.safe_load(Path(os.environ.get("MONITORING_CONFIG", CONFIG_FILE)).read_text())


@dataclass(frozen=True)
class LandedFile:
    file_hash: str
    file_key: int
    file_name: str
    found_at: datetime | None = None
    rows_loaded: int = 1  # none: every reading was quarantined (the raw table may not exist yet)
    held_back: bool = False  # put by as unscorable before (alert_rules.Reading.held_back)


class Notifier:
    """Sends due notifications from a thread and connection of its own: a slow or failing channel
    delays notifications only, never scoring. `wake()` after a commit that queued some."""

    def __init__(self, warehouse: Warehouse, poll_seconds: float) -> None:
        self.warehouse = warehouse
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        conn, failures = None, 0
        while not self._stop.is_set():
            try:
                conn = conn or psycopg.connect(**self.warehouse.connect_kwargs("monitor"))
                notify.deliver_due(conn)
                failures = 0
            except Exception as error:  # noqa: BLE001 - the thread must outlive any one failure
                failures += 1
                if failures == 1:
                    log.error("notifier failed (%s); trying again\n%s", _why(error), _trace(error))
                else:
                    log.error("notifier failed again (%s)", _why(error))
                conn = None
            pause = _backoff(self.poll_seconds, failures)
            self._wake.wait(pause if failures else self.poll_seconds)
            self._wake.clear()
        if conn is not None:
            notify.deliver_due(conn)  # what the last cycle queued
            conn.close()


class Processor:
    def __init__(self, warehouse: Warehouse, config: dict) -> None:
        self.warehouse = warehouse
        self.config = config
        self.rules = AlertRules.from_config(config["alerts"])
        self.conn = psycopg.connect(**warehouse.connect_kwargs("monitor"))
        # one consumer at a time: a second processor, or a replay, waits for none and refuses
        locked = self.conn.execute("select pg_try_advisory_lock(%s)", (LOCK,)).fetchone()[0]
        self.conn.commit()
        if not locked:
            self.conn.close()
            raise ProcessorBusy("another vitals processor (or a replay) holds the lock")
        self.state = self._restored()
        self.notifier = Notifier(warehouse, config["poll_seconds"])
        self.stopping = False
        self.set_aside = 0
        self.thresholds = operational.Thresholds.from_config(config["operational"])
        self.watch = operational.Watch(self.thresholds.window_seconds)
        self._measured_at = float("-inf")
        self.partitions = partitions.Partitions()
        self._retention_at = float("-inf")
        self.limits = vital_validity.load_limits()
        self.news2_settings = news2_inputs.PatientSettings()  # refreshed before each file
        self.baseline: baseline.Baseline | None = None  # taken by run(), never by a replay
        self.found_at: dict[str, datetime | None] = {}  # file name -> when it appeared
        self._nice = cpu_priority.nice_by_role()
        self._cpu_yielded_at = float("-inf")

    def _restored(self, sequence: int | None = None) -> store.ProcessorState:
        if sequence is None:
            sequence = store.last_sequence(self.conn)
        state = store.state_as_of(self.conn, sequence, self.config["anomaly"]["window_seconds"])
        self.conn.commit()
        return state

    # --- the loop -------------------------------------------------------------------------------

    def run(self, once: bool = False) -> int:
        """Cycle until stopped (or, `once`, until nothing waits); return the readings scored."""
        self.baseline = baseline.take(self.conn, NAME, self.config["baseline"]["horizon_seconds"])
        self.notifier.start()
        try:
            return self._cycles(once)
        finally:
            self.notifier.stop()

    def _yield_the_cpu(self) -> None:
        """Analysts' server processes below clinical alerting (warehouse/cpu_priority.py), at
        most once a second."""
        now = time.monotonic()
        if now - self._cpu_yielded_at >= 1.0:
            self._cpu_yielded_at = now
            cpu_priority.yield_the_cpu(self.conn, settings.EMBEDDED_PGDATA, self._nice)
            self.conn.commit()  # the activity read in a transaction of its own

    def _cycles(self, once: bool) -> int:
        unscored = self.unscored_files()
        if unscored:
            log.warning("resuming: %d landed files not scored yet", len(unscored))
        scored = self.score_files(unscored)
        errors = 0
        while not self.stopping:
            waiting = self._due(self.waiting_files())
            try:
                self._yield_the_cpu()
                if waiting:
                    scored += self.cycle(waiting)
                else:
                    # a file landed and not scored (its scoring failed) is tried again now, not
                    # when the next file arrives
                    unscored = self.unscored_files(within=RECENTLY)
                    scored += self.score_files(unscored)
                    put_by = self.watch.unscorable  # caught up but for them: they are no news
                    if self.baseline is not None and all(f.file_name in put_by for f in unscored):
                        self._end_baseline()
                self.escalate_due()
                self._retention()
                self.record_status()
                self.watch.cycle_succeeded()
                self._measure()
                errors = 0
            except (psycopg.Error, OSError) as error:
                if once:
                    raise
                # the warehouse away, a disk full: wait and try again, longer each time; what
                # landed and was not scored is scored first then (unscored_files)
                errors += 1
                pause = _backoff(self.config["poll_seconds"], errors)
                log.error(
                    "cycle failed (%s); again in %.1f s\n%s", _why(error), pause, _trace(error)
                )
                self.watch.cycle_failed(type(error).__name__)
                time.sleep(pause)
                self._reconnect()
                self._measure_after_failure()
                continue
            if not waiting:
                if once:
                    break
                time.sleep(self.config["poll_seconds"])
        return scored

    def _due(self, waiting: list[Path]) -> list[Path]:
        """The waiting files to land now: a held one only once its backoff has passed."""
        now = time.time()
        held = self.watch.held
        return [
            path for path in waiting if path.name not in held or held[path.name].retry_at <= now
        ]

    def _retention(self) -> None:
        """Drop the days older than the retention (partitions.py), at start and hourly."""
        now = time.monotonic()
        if now - self._retention_at >= RETENTION_EVERY_SECONDS:
            self._retention_at = now
            partitions.drop_expired(
                self.conn, self.config["retention"], self.state.watermark_us, self.partitions
            )

    def _measure(self, every_seconds: float = 1.0) -> None:
        """Measure what must not stop quietly and raise or resolve operational alerts
        (operational.py), at most once every `every_seconds`."""
        now = time.monotonic()
        if now - self._measured_at < every_seconds:
            return
        self._measured_at = now
        measures = self.watch.measures(*operational.unsent(self.conn))
        if operational.evaluate(self.conn, measures, self.thresholds):
            self.notifier.wake()

    def _measure_after_failure(self) -> None:
        """After a failed cycle: the measures, if the warehouse answers (if not, `vitals_feed`
        finds no heartbeat)."""
        try:
            self._measure(every_seconds=0)
        except psycopg.Error as error:
            self.conn.rollback() if not self.conn.closed else None
            log.error("operational measures not taken: %s", type(error).__name__)

    def _reconnect(self) -> None:
        """A new connection, the lock again (the old session may hold it a while yet), and the
        state as the warehouse has it, with the files landed but not scored first."""
        try:
            self.conn.close()
            self.conn = psycopg.connect(**self.warehouse.connect_kwargs("monitor"))
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while not self.conn.execute("select pg_try_advisory_lock(%s)", (LOCK,)).fetchone()[0]:
                self.conn.commit()
                if time.monotonic() > deadline:
                    raise ProcessorBusy("another vitals processor took the lock meanwhile")
                time.sleep(1)
            self.conn.commit()
            self.state = self._restored()
            self.score_files(self.unscored_files())
        except psycopg.Error as error:
            log.error("warehouse unreachable: %s", type(error).__name__)

    def cycle(self, waiting: list[Path]) -> int:
        """Land the next files and score every landed file not scored yet, in landing order: a
        file landed in an earlier cycle whose scoring failed comes first."""
        batch = self._bounded(waiting)
        self.found_at.update({path.name: _mtime(path) for path in batch})
        self._land(batch)
        return self.score_files(self.unscored_files(within=RECENTLY))

    def _land(self, batch: list[Path]) -> None:
        """Land `batch`; if that fails with the warehouse up, each file still waiting alone: one
        failing for its own fault (unreadable, unparsable) is set aside, one failing for any
        other reason (the disk's, the warehouse's) is held in landing and tried again."""
        from ingestion.file_source import land
        from ingestion.sources.vitals_files import VITALS_FILES
        from warehouse.runs import start_run

        run_id = f"{NAME}__{datetime.now(UTC):%Y-%m-%dT%H}"
        start_run(self.warehouse, run_id)
        try:
            self._landed(land(VITALS_FILES, self.warehouse, run_id, batch))
            return
        except Exception as error:  # noqa: BLE001 - whatever it is, find the file and go on
            self._warehouse_answers()  # if not, the cycle fails and is tried again later
            if len(batch) == 1:
                self._not_landed(batch[0], error)
                return
            log.warning(
                "landing %d files failed (%s): one by one", len(batch), type(error).__name__
            )
        for path in batch:
            if not path.exists():  # landed (and archived) before the failure
                self.watch.held.pop(path.name, None)
                continue
            try:
                self._landed(land(VITALS_FILES, self.warehouse, run_id, [path]))
            except Exception as error:  # noqa: BLE001 - set aside or held, whatever the reason
                self._warehouse_answers()
                self._not_landed(path, error)

    def _landed(self, outcomes: list) -> None:
        """What landing did with each file: quarantined readings and rejected files noted."""
        for outcome in outcomes:
            if self.watch.held.pop(outcome.file_name, None) is not None:
                log.warning("%s: landed after all", outcome.file_name)
            self.watch.readings_quarantined(
                outcome.file_name,
                outcome.rows_quarantined,
                outcome.quarantined_by_rule.get(TIME_RULE, 0),
            )
            if outcome.status == "rejected":  # unreadable: set aside by landing itself
                self.watch.file_set_aside(outcome.file_name)

    def _not_landed(self, path: Path, error: Exception) -> None:
        if _the_file_s_own(error):
            self._set_aside(path, error)
            return
        now = time.time()
        held = self.watch.held.get(path.name)
        if held is None:
            held = self.watch.held[path.name] = operational.HeldFile(now, _why(error))
        else:
            held.attempts += 1
            held.why = _why(error)
        pause = _backoff(self.config["poll_seconds"], held.attempts)
        held.retry_at = now + pause
        log.error(
            "%s: not landed (%s), not the file's fault: it stays in landing, again in %.1f s",
            path.name, held.why, pause,
        )  # fmt: skip

    def _warehouse_answers(self) -> None:
        """Raise the connection's error when the warehouse does not answer: then no file is to
        blame."""
        with psycopg.connect(**self.warehouse.connect_kwargs("loader"), connect_timeout=10) as conn:
            conn.execute("select 1")

    def _set_aside(self, path: Path, error: Exception) -> None:
        from ingestion.file_source import forget_partial_load
        from ingestion.ledger import content_hash, move_aside
        from ingestion.sources.vitals_files import VITALS_FILES

        if not path.exists():
            return
        file_hash = content_hash(path)
        forget_partial_load(VITALS_FILES, self.warehouse, file_hash)
        reason = f"not landed by the vitals processor: {type(error).__name__}"
        log.error("%s: %s; set aside in the quarantine folder", path.name, reason)
        move_aside(path, settings.QUARANTINE_DIR / "vitals", file_hash, reason)
        self.set_aside += 1
        self.watch.file_set_aside(path.name)

    def _bounded(self, waiting: list[Path]) -> list[Path]:
        """The first waiting files that fit in max_bytes_per_cycle (always one at least)."""
        budget, batch = self.config["max_bytes_per_cycle"], []
        for path in waiting:
            size = path.stat().st_size
            if batch and size > budget:
                break
            batch.append(path)
            budget -= size
        return batch

    def waiting_files(self) -> list[Path]:
        from ingestion.sources import FILE_PATTERNS

        folder = settings.LANDING_DIR / "vitals"
        settled_before = time.time() - self.config["settle_seconds"]
        waiting = [
            path
            for path in sorted(folder.glob(FILE_PATTERNS["vitals"]))
            if (_mtime_seconds(path) or settled_before + 1) <= settled_before
        ]
        names = {path.name for path in waiting}
        for name in [name for name in self.watch.held if name not in names]:
            del self.watch.held[name]  # gone from landing (moved by someone)
        return waiting

    def unscored_files(self, within: str = "1000 years") -> list[LandedFile]:
        """Files landed (by this processor, before a crash or a failed cycle, or by an earlier
        loader) `within` that long ago, or put by as unscorable, and not scored yet, in landing
        order."""
        put_by = list(self.watch.unscorable)
        rows = self.conn.execute(
            """
            with candidates as (
                select * from audit.file_ledger
                where source = 'vitals' and status = 'loaded'
                    and recorded_at > now() - %s::interval
                union
                select * from audit.file_ledger
                where source = 'vitals' and status = 'loaded' and file_name = any(%s)
            )
            select file_hash, file_key, file_name, rows_loaded from candidates as ledger
            where not exists (
                select 1 from monitoring.processed_files as done
                where done.file_hash = ledger.file_hash
            )
            order by recorded_at, file_name
            """,
            (within, put_by),
        ).fetchall()
        self.conn.commit()
        for name in set(put_by) - {name for _, _, name, _ in rows}:
            del self.watch.unscorable[name]  # scored, or gone from the ledger, meanwhile
        return [
            LandedFile(file_hash, file_key, name, self.found_at.pop(name, None), loaded)
            for file_hash, file_key, name, loaded in rows
        ]

    # --- scoring --------------------------------------------------------------------------------

    def score_files(self, files: list[LandedFile]) -> int:
        """Score `files` in order. A failure of the warehouse or the disk fails the cycle (tried
        again, in order); a file whose own content breaks its scoring is put by and tried again
        with a backoff while the files after it are scored: one file never silences every
        patient behind it (`files_unscorable`, operational.py)."""
        scored, now = 0, time.time()
        for landed in files:
            put_by = self.watch.unscorable.get(landed.file_name)
            if put_by is not None and put_by.retry_at > now:
                self.found_at[landed.file_name] = landed.found_at  # kept for the next try
                continue
            try:
                scored += self.score_file(
                    landed if put_by is None else replace(landed, held_back=True)
                )
            except Exception as error:
                self.conn.rollback()
                self.partitions.forget()  # what the failed transaction made is gone with it
                self.state = self._restored()  # the failed file changed nothing in the warehouse
                if isinstance(error, (psycopg.Error, OSError)) and not _content_refused(error):
                    raise
                self._unscorable(landed, error)
                continue
            if self.watch.unscorable.pop(landed.file_name, None) is not None:
                log.warning("%s: scored after all", landed.file_name)
            self.notifier.wake()
        return scored

    def _unscorable(self, landed: LandedFile, error: Exception) -> None:
        """Put a file by whose scoring failed for its own content; logged with the error's type
        and trace (the code's lines), not its text, which may quote a reading."""
        now, why = time.time(), _why_in_code(error)
        put_by = self.watch.unscorable.get(landed.file_name)
        if put_by is None:
            put_by = self.watch.unscorable[landed.file_name] = operational.HeldFile(
                now, why, readings=landed.rows_loaded
            )
        else:
            put_by.attempts += 1
            put_by.why = why
        pause = _backoff(self.config["poll_seconds"], put_by.attempts)
        put_by.retry_at = now + pause
        self.found_at[landed.file_name] = landed.found_at  # kept for the next try
        log.error(
            "%s: not scored (%s), put by; later files go on, again in %.1f s\n%s",
            landed.file_name, why, pause, _trace(error),
        )  # fmt: skip

    def score_file(self, landed: LandedFile, sequence: int | None = None) -> int:
        """Score one landed file and record it with its checkpoint; return the new readings.
        With `sequence` (a replay), the file is scored again as that checkpoint, and the alerts it
        raises queue no notification (they are history, not news)."""
        conn, state = self.conn, self.state
        replaying = sequence is not None
        if replaying:
            store.forget_scoring(conn, sequence)
        else:
            sequence = state.sequence + 1
        readings = store.landed_readings(conn, landed.file_key if landed.rows_loaded else None)
        readings = readings.drop_duplicates("reading_key").reset_index(drop=True)
        known = store.known_reading_keys(conn, readings)
        new = readings[~readings["reading_key"].isin(known)].reset_index(drop=True)
        keys = store.patient_keys(conn, sorted(new["patient_id"].unique().tolist()))
        new["patient_key"] = new["patient_id"].map(keys)
        self.news2_settings.refresh(conn)
        inputs = news2_inputs.resolve(new, self.news2_settings)
        new = new.drop(columns=["patient_id", *news2_inputs.PAYLOAD.values()])
        raised: list[str] = []
        # the host's clock when the file was found (now, for one found before a restart)
        found_us = store.to_us(landed.found_at or datetime.now(UTC))
        history_before = None if replaying or not self.baseline else self.baseline.history_before_us
        if len(new):
            scored, changes = self._scored(new, inputs, sequence, history_before, landed.held_back)
            self.partitions.ensure(conn, new["measured_us"].to_numpy())
            store.write_readings(conn, scored)
            tumbling = self.config["windows"]["tumbling_seconds"]
            store.recompute_minutes(conn, touched_minutes(scored, tumbling), tumbling)
            raised, as_history = store.write_alert_changes(conn, sequence, changes, replaying)
            if not replaying:  # counted once, with the file's checkpoint
                store.count_artefacts(conn, NAME, int(scored["artefact_vitals"].map(len).sum()))
            for alert_key in [] if replaying else raised:
                notify.queue(conn, alert_key, "raised")
            if history_before is not None:
                readings_as_history = int((new["measured_us"] < history_before).sum())
                baseline.record(conn, readings_as_history, len(as_history))
            # a device clock ahead moves no one's window: the watermark (the anomaly windows are
            # pruned by it) goes no further than the host's clock when the file was found, plus
            # the clock_ahead limit
            ahead_limit_us = int(self.thresholds.limits["clock_ahead"] * 1_000_000)
            newest = min(int(new["measured_us"].max()), found_us + ahead_limit_us)
            state.watermark_us = max(state.watermark_us or newest, newest)
        clock_ahead = self._clock_ahead(new, found_us)
        store.record_checkpoint(
            conn, sequence, landed.file_hash, landed.file_name, len(readings), len(new),
            state.watermark_us, landed.found_at, clock_ahead, landed.held_back,
        )  # fmt: skip
        conn.commit()
        if not replaying:
            self.watch.clock_ahead(*clock_ahead)
        state.sequence = sequence
        if len(new):
            state.remember(scored[store.HISTORY_COLUMNS])  # artefacts null, as stored
            state.prune(self.config["anomaly"]["window_seconds"])
        log.info(
            "%s: %d readings, %d new, %d alerts raised (checkpoint %d)",
            landed.file_name, len(readings), len(new), len(raised), sequence,
        )  # fmt: skip
        return len(new)

    def _clock_ahead(self, new: pd.DataFrame, found_us: int) -> tuple[float | None, list[str]]:
        """How far the newest of `new` was ahead of the host's clock when its file was found,
        and the devices ahead beyond the threshold."""
        if not len(new):
            return None, []
        ahead = (new["measured_us"].to_numpy() - found_us) / 1_000_000
        limit = self.thresholds.limits["clock_ahead"]
        devices = sorted(set(new["device_id"].to_numpy()[ahead > limit].tolist()))
        return max(float(ahead.max()), 0.0), devices

    def _scored(
        self,
        new: pd.DataFrame,
        inputs: news2_inputs.Inputs,
        sequence: int,
        history_before: int | None = None,
        held_back: bool = False,
    ) -> tuple[pd.DataFrame, list]:
        """NEWS2, z-scores and anomaly flags of each new reading, and the alerts they move
        (`held_back`: of a file put by before, alert_rules.Reading.held_back)."""
        anomaly = self.config["anomaly"]
        # an artefact is no measurement: null from here on, named beside the reading
        classified = vital_validity.classify(
            {vital: new[vital].to_numpy() for vital in VITALS}, self.limits
        )
        new = new.assign(**classified.values)
        extremes = classified.extreme_names()
        artefacts = [
            vitals + payload
            for vitals, payload in zip(
                classified.artefact_names(), inputs.not_understood, strict=True
            )
        ]
        z = zscores(self.state.history, new, anomaly)
        scores = news2.score(
            {name: new[name].to_numpy() for name in news2.PARAMETERS},
            on_oxygen=inputs.on_oxygen,
            scale_2=inputs.spo2_scale == 2,
            alert=inputs.consciousness == "A",
        )
        parts = store.parts_json(scores.parts)
        moves = np.zeros(len(new), dtype=bool)
        settles = np.zeros(len(new), dtype=bool)
        changes = []
        keys = new["reading_key"].to_numpy()
        patients = new["patient_key"].to_numpy()
        devices = new["device_id"].to_numpy()
        measured = new["measured_us"].to_numpy()
        wards, rooms = new["ward"].to_numpy(), new["room"].to_numpy()
        for row in np.lexsort((new["record_position"].to_numpy(), measured)).tolist():
            patient = self.state.patients.setdefault(patients[row], PatientState())
            reading = Reading(
                keys[row],
                int(measured[row]),
                int(scores.level[row]),
                int(scores.total[row]),
                bool(scores.complete[row]),
                extremes[row],
                devices[row],
                history_before is not None and int(measured[row]) < history_before,
                held_back,
            )
            late = alert_rules.is_late(patient, reading)
            moves[row] = held_back or not late
            settles[row] = not late and not alert_rules.is_behind(patient, reading)
            for change in alert_rules.apply(patient, patients[row], reading, self.rules):
                context = {
                    "ward": wards[row],
                    "room": rooms[row],
                    "news2_parts": parts[row],
                    "news2_inputs": inputs.described(row),
                    "news2_not_validated": inputs.not_validated[row],
                }
                changes.append((patients[row], change, context))
        scored = new.assign(
            sequence=sequence,
            moves_alerts=moves,
            settles=settles,
            anomalous_vitals=anomalous_vitals(z, anomaly["z_threshold"]),
            artefact_vitals=artefacts,
            extreme_vitals=extremes,
            news2_score=scores.total,
            news2_level=store.level_names(scores.level),
            news2_complete=scores.complete,
            news2_parts=parts,
            consciousness=inputs.consciousness,
            on_oxygen=inputs.on_oxygen,
            spo2_scale=inputs.spo2_scale,
            news2_assumed=inputs.assumed(),
            news2_not_validated=inputs.not_validated,
        )
        return pd.concat([scored, z], axis=1), changes

    # --- escalation and health ------------------------------------------------------------------

    def _end_baseline(self) -> None:
        """Caught up: what comes now is news."""
        readings, alerts = baseline.finish(self.conn)
        self.conn.commit()
        log.warning(
            "baseline over: %d readings scored as history, %d alerts recorded without notifying",
            readings, alerts,
        )  # fmt: skip
        self.baseline = None

    def escalate_due(self) -> None:
        now = datetime.now(UTC)
        candidates = self.conn.execute(
            "select alert_key::text, recorded_at from monitoring.alerts"
            " where resolved_at is null and acknowledged_at is null and escalated_at is null"
            " and not raised_in_baseline"  # history, not news: nobody is paged for it
        ).fetchall()
        escalated = 0
        for alert_key, recorded_at in candidates:
            if not alert_rules.due_for_escalation(recorded_at, now, self.rules):
                continue
            # still open and unacknowledged now (someone may have acknowledged meanwhile)
            if self.conn.execute(
                "update monitoring.alerts set escalated_at = now() where alert_key = %s"
                " and resolved_at is null and acknowledged_at is null and escalated_at is null"
                " returning alert_key",
                (alert_key,),
            ).fetchone():
                notify.queue(self.conn, alert_key, "escalated")
                log.warning("alert %s escalated: not acknowledged in time", alert_key)
                escalated += 1
        self.conn.commit()
        if escalated:
            self.notifier.wake()

    def record_status(self) -> None:
        waiting = self.waiting_files()
        oldest = min((_mtime_seconds(path) or time.time() for path in waiting), default=None)
        self.conn.execute(
            """
            insert into monitoring.processor_status as status (processor, last_checkpoint_at,
                last_sequence, newest_reading_processed_at, files_waiting, oldest_waiting_seconds,
                readings_per_second, notifications_unsent, oldest_unsent_seconds,
                files_set_aside, heartbeat_at)
            select %(name)s,
                (select max(processed_at) from monitoring.processed_files),
                %(sequence)s, %(watermark)s, %(waiting)s, %(oldest)s,
                (select coalesce(sum(new_readings), 0) from monitoring.processed_files
                    where processed_at > now() - interval '1 minute') / 60.0,
                unsent.count, coalesce(extract(epoch from now() - unsent.oldest), 0),
                %(set_aside)s, now()
            from (
                select count(*) as count, min(created_at) as oldest
                from monitoring.notifications where sent_at is null
            ) as unsent
            on conflict (processor) do update set
                last_checkpoint_at = excluded.last_checkpoint_at,
                last_sequence = excluded.last_sequence,
                newest_reading_processed_at = excluded.newest_reading_processed_at,
                files_waiting = excluded.files_waiting,
                oldest_waiting_seconds = excluded.oldest_waiting_seconds,
                readings_per_second = excluded.readings_per_second,
                notifications_unsent = excluded.notifications_unsent,
                oldest_unsent_seconds = excluded.oldest_unsent_seconds,
                files_set_aside = status.files_set_aside + excluded.files_set_aside,
                heartbeat_at = excluded.heartbeat_at
            """,
            {
                "name": NAME,
                "sequence": self.state.sequence,
                "watermark": None
                if self.state.watermark_us is None
                else store.at(self.state.watermark_us),
                "waiting": len(waiting),
                "oldest": 0.0 if oldest is None else max(0.0, time.time() - oldest),
                "set_aside": self.set_aside,
            },
        )
        self.conn.commit()
        self.set_aside = 0

    def close(self) -> None:
        self.conn.close()


def _chain(error: BaseException | None):
    """The error and what it wraps (dlt keeps a source's error in `exception`), each once."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "exception", None) or error.__cause__ or error.__context__


def _the_file_s_own(error: BaseException) -> bool:
    """Whether landing failed for the file's own content (unreadable, unparsable), anywhere in
    the error's chain."""
    from ingestion.file_formats import FileUnreadable

    return any(isinstance(cause, (FileUnreadable, UnicodeDecodeError)) for cause in _chain(error))


def _why(error: BaseException) -> str:
    """The error's type, and the system's word for the first OS error in its chain (a full disk
    says "No space left on device") or the warehouse's SQLSTATE and the names of the table,
    column or constraint it names: never its text, which may quote what was being written."""
    errno = next(
        (cause.errno for cause in _chain(error) if isinstance(cause, OSError) and cause.errno), None
    )
    if errno is not None:
        return f"{type(error).__name__}: {os.strerror(errno)}"
    if isinstance(error, psycopg.Error) and error.sqlstate:
        diag = error.diag
        names = [diag.table_name, diag.column_name, diag.constraint_name]
        named = ", ".join(name for name in names if name)
        return f"{type(error).__name__}: SQLSTATE {error.sqlstate}" + (
            f" ({named})" if named else ""
        )
    return type(error).__name__


def _why_in_code(error: BaseException) -> str:
    """The error's type and the project's line it came through last (not a library's), never
    its text."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [
        frame for frame in frames
        if Path(frame.filename).is_relative_to(settings.PROJECT_ROOT)
        and not Path(frame.filename).is_relative_to(settings.PROJECT_ROOT / ".venv")
    ]  # fmt: skip
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return _why(error)
    where = Path(frame.filename)
    if where.is_relative_to(settings.PROJECT_ROOT):
        where = where.relative_to(settings.PROJECT_ROOT)
    return f"{_why(error)} at {where}:{frame.lineno}"


def _content_refused(error: BaseException) -> bool:
    """The warehouse refused what a file holds (a value out of a column's range, a constraint
    broken: SQLSTATE classes 22 and 23), not the warehouse failing: the file's own fault."""
    return isinstance(error, (psycopg.errors.DataError, psycopg.errors.IntegrityError))


def _trace(error: BaseException) -> str:
    """The code's lines an error came through: no message, which may quote a reading."""
    return "".join(traceback.format_tb(error.__traceback__))


def _backoff(poll_seconds: float, attempts: int) -> float:
    """The pause before the next try: doubling from the poll, at most MAX_ERROR_PAUSE_SECONDS."""
    return min(poll_seconds * 2 ** min(attempts, 16), MAX_ERROR_PAUSE_SECONDS)


def _mtime_seconds(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _mtime(path: Path) -> datetime | None:
    seconds = _mtime_seconds(path)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def serve(warehouse: Warehouse, once: bool = False) -> int:
    """Run the processor until SIGTERM or SIGINT (it finishes the cycle it is in), or, `once`,
    until what waits is taken; the number of readings it scored."""
    processor = Processor(warehouse, load_config())

    def stop(signum: int, frame: object) -> None:
        log.info("stopping after this cycle (signal %d)", signum)
        processor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("vitals processor: watching %s", settings.LANDING_DIR / "vitals")
    try:
        scored = processor.run(once=once)
    finally:
        processor.close()
    log.info("vitals processor stopped: %d readings scored", scored)
    return scored
