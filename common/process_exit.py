"""A command's process ends without the interpreter's last garbage collections.

At exit, Python collects every object the process still holds; after Airflow, dbt or pydantic
have run, that is seconds of CPU for memory the operating system frees anyway: 2.6 s from a
`dags test`'s last output to its process's exit (0.08 s frozen), 0.5 s of a `hcw processor
--once`'s 1.1 s. Frozen objects are left out of those collections. Exit handlers still run
(logging's flush among them) and every file is closed as before.
"""

from __future__ import annotations

import gc


def exit_without_collecting() -> None:
    """Called last by a command's entry point, on its way out (also when it raises)."""
    gc.disable()
    gc.freeze()
