"""`make up`'s supervisord configuration, as supervisord itself reads it: one group of five
programs, each command and log path whole even where a folder's name has a space."""

from __future__ import annotations

import shlex

import pytest
from supervisor.options import ServerOptions

from common import settings
from orchestration import airflow_services


def _read(config_text: str, folder) -> ServerOptions:
    config = folder / "supervisord.conf"
    config.write_text(config_text)
    options = ServerOptions()
    options.realize(args=["-c", str(config)])
    return options


def test_supervisord_reads_every_service_whole_from_a_folder_with_a_space(monkeypatch, tmp_path):
    var = tmp_path / "var with space"
    (var / "logs" / "airflow").mkdir(parents=True)
    (var / "supervisor").mkdir()
    monkeypatch.setattr(settings, "VAR_DIR", var)
    processor_variables = {
        "HEALTHCARE_ENV_FILE": str(var / "secrets" / "vitals-processor.env"),
        settings.SECRETS_FROM_AIRFLOW: "",
    }
    text = airflow_services._supervisor_config(processor_variables)
    options = _read(text, var / "supervisor")
    [group] = options.process_group_configs
    programs = {program.name: program for program in group.process_configs}
    commands = airflow_services._commands()
    assert set(programs) == set(commands) == {
        "api-server", "scheduler", "dag-processor", "triggerer", "vitals-processor",
        "wal-archiver",
    }  # fmt: skip
    for name, program in programs.items():
        assert shlex.split(program.command) == commands[name]
        assert program.stdout_logfile == str(var / "logs" / "airflow" / f"{name}.log")
        assert program.autorestart and program.stopasgroup and program.killasgroup
        # the vitals processor is told where its own secrets file is; nobody else anything
        expected = processor_variables if name == "vitals-processor" else {}
        assert program.environment == expected, name
    assert options.pidfile == str(var / "supervisor" / "supervisord.pid")
    assert options.umask == 0o077
    # no secret in the file: the services take their environment from supervisord's process
    assert "PASSWORD" not in text


def test_a_percent_sign_in_a_path_is_refused_not_mangled(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "VAR_DIR", tmp_path / "100%")
    with pytest.raises(SystemExit, match="cannot take a path with '%'"):
        airflow_services._supervisor_config({})
