"""The landing watch: notice a new file in a landing folder without waiting for its DAG's schedule.

`LandingWatchSensor` looks once; when nothing is new it defers to `NewFilesTrigger`, which polls the
landing folders in Airflow's triggerer (no worker slot held while it waits) and fires when a file
nobody announced yet has settled (unchanged for `settle_seconds`), or with nothing once the watch
has lasted `watch_seconds` (the sensor then skips, and the continuous DAG's next watch begins; a
trigger that fails fails the task, and its email goes out). The sensor remembers what it
announced, so the next watch does not announce it again while it waits for its DAG, and the
landing_watch DAG emits the `landing_<source>` asset that starts that DAG.

Producers write a file under another name (`.tmp`, or a leading dot) and rename it when it is
complete; a source's DAG on its schedule also lands only the files that have settled by the same
rule (ingestion/settled_files.py, docs/landing.md).

Airflow's own file triggers watch one known file name and delete it before firing: landing
folders receive many files with new names, which must stay until they are landed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from common.whole_files import write_whole
from ingestion.settled_files import settled_entries
from ingestion.sources import BATCH_FILE_SOURCE_NAMES, FILE_PATTERNS

# A file: (source, name, size, modification time in ns)
Signature = tuple[str, str, int, int]


def settled_files(
    landing_dir: Path, sources: Iterable[str], settle_seconds: float
) -> set[Signature]:
    """Every file of `sources` in their landing folders that has not changed for a while (the
    rule of a scheduled landing: ingestion/settled_files.py)."""
    return {
        (source, path.name, status.st_size, status.st_mtime_ns)
        for source in sources
        for path, status in settled_entries(
            landing_dir / source, FILE_PATTERNS[source], settle_seconds
        )
    }


def by_source(files: Iterable[Signature]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source, name, _, _ in sorted(files):
        grouped.setdefault(source, []).append(name)
    return grouped


class AnnouncedFiles:
    """The files the watch announced, in a JSON file: forgotten once they leave the landing folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> set[Signature]:
        if not self.path.exists():
            return set()
        return {tuple(entry) for entry in json.loads(self.path.read_text())}

    def save(self, announced: set[Signature]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(self.path, json.dumps(sorted(announced)))


class NewFilesTrigger(BaseTrigger):
    """Fires with the settled files of `sources` that are not in `announced`."""

    def __init__(
        self,
        landing_dir: str,
        sources: list[str],
        announced: list[list],
        poll_seconds: float,
        settle_seconds: float,
        watch_seconds: float,
    ) -> None:
        super().__init__()
        self.landing_dir = landing_dir
        self.sources = sources
        self.announced = announced
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.watch_seconds = watch_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "landing_dir": self.landing_dir,
                "sources": self.sources,
                "announced": self.announced,
                "poll_seconds": self.poll_seconds,
                "settle_seconds": self.settle_seconds,
                "watch_seconds": self.watch_seconds,
            },
        )

    async def run(self):
        announced = {tuple(entry) for entry in self.announced}
        until = time.monotonic() + self.watch_seconds
        while True:
            files = await asyncio.to_thread(
                settled_files, Path(self.landing_dir), self.sources, self.settle_seconds
            )
            if new := files - announced:
                yield TriggerEvent({"new": sorted(new)})
                return
            if time.monotonic() >= until:
                yield TriggerEvent({"new": []})
                return
            await asyncio.sleep(self.poll_seconds)


class LandingWatchSensor(BaseSensorOperator):
    """Waits (deferred) up to `watch_seconds` for new files in the landing folders; returns them
    by source, or skips when none came."""

    def __init__(
        self,
        *,
        landing_dir: Path,
        state_file: Path,
        poll_seconds: float,
        settle_seconds: float,
        watch_seconds: float,
        **kwargs: Any,
    ) -> None:
        # a trigger that has not answered 5 minutes after its watch ended has failed
        super().__init__(poke_interval=poll_seconds, timeout=watch_seconds + 300, **kwargs)
        self.landing_dir = str(landing_dir)
        self.state_file = str(state_file)
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.watch_seconds = watch_seconds

    def _current(self) -> tuple[set[Signature], set[Signature]]:
        """(files settled in the landing folders now, those of them announced before)."""
        files = settled_files(Path(self.landing_dir), BATCH_FILE_SOURCE_NAMES, self.settle_seconds)
        return files, AnnouncedFiles(Path(self.state_file)).load() & files

    def execute(self, context: Any) -> dict[str, list[str]]:
        files, announced = self._current()
        if new := files - announced:
            return self._announce(new, announced)
        self.defer(
            trigger=NewFilesTrigger(
                self.landing_dir,
                list(BATCH_FILE_SOURCE_NAMES),
                sorted(announced),
                self.poll_seconds,
                self.settle_seconds,
                self.watch_seconds,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, list[str]]:
        if not event["new"]:
            raise AirflowSkipException(f"no new file in {self.watch_seconds:.0f} s of watching")
        _, announced = self._current()
        return self._announce({tuple(entry) for entry in event["new"]}, announced)

    def _announce(self, new: set[Signature], announced: set[Signature]) -> dict[str, list[str]]:
        AnnouncedFiles(Path(self.state_file)).save(announced | new)
        arrivals = by_source(new)
        self.log.info("new files: %s", {source: len(names) for source, names in arrivals.items()})
        return arrivals
