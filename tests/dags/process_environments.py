"""What every process `make up` started held in its environment, as /proc/<pid>/environ shows
it (Airflow's processes keep theirs readable: SPT_NOENV, orchestration.airflow_env), watched
from before the services start until the module ends: the services, each task's process (titled
`airflow worker -- <task instance id>`) and what a task ran (dbt, pg_dump)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import psutil

TASK_INSTANCE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Seen:
    """One process: each environment it was seen with (one before and one after an exec), and
    each title."""

    environs: list[dict[str, str]] = field(default_factory=list)
    titles: set[str] = field(default_factory=set)

    def task_instance_ids(self) -> set[str]:
        return {found for title in self.titles for found in TASK_INSTANCE_ID.findall(title)}

    def holds(self, secrets: dict[str, str]) -> set[str]:
        """The names of `secrets` whose value is anywhere in one of its environments."""
        text = "\n".join(
            "\0".join(f"{name}={value}" for name, value in environ.items())
            for environ in self.environs
        )
        return {name for name, value in secrets.items() if value in text}


class ProcessEnvironments(threading.Thread):
    """Polls every `interval` seconds: each process whose environment carries `marker`."""

    def __init__(self, marker: str, value: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.marker, self.value, self.interval = marker, value, interval
        # by (pid, start time): a pid used again is another process
        self.seen: dict[tuple[int, float], Seen] = {}
        self._others: set[tuple[int, float]] = set()  # without the marker: not read again
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[tuple[int, float], Seen]:
        """What was seen so far: (pid, start time) -> the process."""
        with self._lock:
            return dict(self.seen)

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            for process in psutil.process_iter():
                try:
                    key = (process.pid, process.create_time())
                    if key in self._others:
                        continue
                    environ = process.environ()
                    title = " ".join(process.cmdline())
                except psutil.Error:
                    continue
                if environ.get(self.marker) != self.value:
                    # a process forked from one with the marker has it until it execs
                    if key not in self.seen:
                        self._others.add(key)
                    continue
                with self._lock:
                    seen = self.seen.setdefault(key, Seen())
                    if environ not in seen.environs:
                        seen.environs.append(environ)
                    seen.titles.add(title)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)
