"""A task instance's XCom pushes made on a thread of their own, so that whoever pushes does not wait.

The watcher's producer (orchestration.dbt_watcher) pushes each dbt node's end to XCom from dbt's
threads, one at a time under Cosmos' lock: each push is a round trip to Airflow's execution API
(20-45 ms under `airflow dags test`), and dbt's threads waited on it. Here a push only queues;
one thread makes the pushes in the order they were asked for, and `finish` (at the end of the
producer's dbt run, before its task ends) waits for the last one and raises the first that
failed. A pull first waits for every push queued before it, so a read-modify-write (Cosmos'
startup events) reads what was pushed. A push of the value its key already has is not made
again: Cosmos pushes a node's status, and its model's tests' status, at each of dbt's events that
carries it (a node's result, then its end), about half of a build's pushes.

A push may also set one field of a dict (`merge`): the watcher folds a node's four keys into one
report (orchestration.node_reports). The dict is pushed once per change, its fields as they are
when its turn comes: changes made while it waits are pushed together.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()
_NEVER_PUSHED = object()
_MERGED = object()  # in the queue: push the merged dict as it is then


class _Run:
    """The pushes asked for until a `finish`: their queue and thread, what was pushed and merged,
    the first that failed. A run's thread reads only its own run."""

    def __init__(self, calling_airflow: threading.Lock) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.calling_airflow = calling_airflow
        self.lock = threading.Lock()  # what was pushed and merged
        self.last_value: dict[tuple[int, str], Any] = {}
        self.merged: dict[tuple[int, str], dict[str, Any]] = {}
        self.merged_waiting: set[tuple[int, str]] = set()
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._push_each, name="xcom-pushes", daemon=True)
        self.thread.start()

    def _push_each(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                task_instance, key, value = item
                if value is _MERGED:
                    with self.lock:
                        self.merged_waiting.discard((id(task_instance), key))
                        value = dict(self.merged[(id(task_instance), key)])
                if self.failed is None:
                    with self.calling_airflow:
                        task_instance.xcom_push(key=key, value=value)
            except Exception as error:  # noqa: BLE001 (finish() raises it in the task)
                self.failed = error
            finally:
                self.queue.task_done()


class PushesInOrder:
    """XCom pushes queued by any thread, made one at a time, in order, on one thread."""

    def __init__(self) -> None:
        self._starting = threading.Lock()
        # the task instance's own calls to Airflow, pushes and pulls alike, one at a time
        self.calling_airflow = threading.Lock()
        self._run: _Run | None = None

    def _current(self) -> _Run:
        """The run a push joins (called holding `_starting`: a push is queued in the run it
        joined, before `finish` can end that run)."""
        if self._run is None:
            self._run = _Run(self.calling_airflow)
        return self._run

    def push(self, task_instance: Any, key: str, value: Any) -> None:
        with self._starting:
            run = self._current()
            with run.lock:
                pushed = run.last_value.get((id(task_instance), key), _NEVER_PUSHED)
                if pushed is not _NEVER_PUSHED and pushed == value:
                    return
                run.last_value[(id(task_instance), key)] = value
                run.queue.put((task_instance, key, value))

    def merge(self, task_instance: Any, key: str, field: str, value: Any) -> None:
        """Set `field` of the dict pushed under `key` (a dict of this run's merges only)."""
        with self._starting:
            run = self._current()
            with run.lock:
                merged = run.merged.setdefault((id(task_instance), key), {})
                if field in merged and merged[field] == value:
                    return
                merged[field] = value
                if (id(task_instance), key) not in run.merged_waiting:
                    run.merged_waiting.add((id(task_instance), key))
                    run.queue.put((task_instance, key, _MERGED))

    def wait(self) -> None:
        """Until every push queued so far is made (or has failed)."""
        with self._starting:
            run = self._run
        if run is not None:
            run.queue.join()

    def finish(self) -> None:
        """Wait for every push of this run; raise the first that failed. Pushing again starts a
        new run (what a push asked for meanwhile is in the new one)."""
        with self._starting:
            run, self._run = self._run, None
        if run is None:
            return
        run.queue.put(_STOP)
        run.thread.join()
        if run.failed is not None:
            raise run.failed


Fold = Callable[[str, Any], "tuple[str, str, Any] | None"]


class PushingInTheBackground:
    """A task instance whose XCom pushes go to `pushes` (those of `unread_keys` nowhere; those
    `fold` turns into a field of a dict, merged) and whose pulls see them; the rest is the task
    instance's own."""

    def __init__(
        self,
        task_instance: Any,
        pushes: PushesInOrder,
        unread_keys: frozenset[str] = frozenset(),
        fold: Fold | None = None,
    ) -> None:
        self._task_instance = task_instance
        self._pushes = pushes
        self._unread_keys = unread_keys
        self._fold = fold

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task_instance, name)

    def xcom_push(self, key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError("a push in the background takes a key and a value only")
        if key in self._unread_keys:
            return
        folded = self._fold(key, value) if self._fold is not None else None
        if folded is None:
            self._pushes.push(self._task_instance, key, value)
        else:
            self._pushes.merge(self._task_instance, *folded)

    def xcom_pull(self, *args: Any, **kwargs: Any) -> Any:
        self._pushes.wait()
        with self._pushes.calling_airflow:
            return self._task_instance.xcom_pull(*args, **kwargs)
