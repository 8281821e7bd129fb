"""settings.load_env: `.env`'s variables in the environment, the file parsed again only when it
changed (every `require` calls it)."""

from __future__ import annotations

import os

import pytest

from common import settings


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    monkeypatch.setattr(settings, "ENV_FILE", path)
    monkeypatch.setattr(settings, "_env_file_read", None)
    for name in ("SETTINGS_TEST_A", "SETTINGS_TEST_B"):
        monkeypatch.delenv(name, raising=False)
    yield path
    for name in ("SETTINGS_TEST_A", "SETTINGS_TEST_B"):
        os.environ.pop(name, None)


def test_a_variable_already_set_wins_and_one_unset_comes_back(env_file, monkeypatch):
    env_file.write_text("SETTINGS_TEST_A=from-file\nSETTINGS_TEST_B=file-b\n")
    monkeypatch.setenv("SETTINGS_TEST_A", "exported")
    settings.load_env()
    assert os.environ["SETTINGS_TEST_A"] == "exported"
    assert settings.require("SETTINGS_TEST_B") == "file-b"
    del os.environ["SETTINGS_TEST_B"]
    assert settings.require("SETTINGS_TEST_B") == "file-b"  # from what was read, not parsed again


def test_a_changed_file_is_read_again_however_it_changed(env_file):
    env_file.write_text("SETTINGS_TEST_A=first\n")
    settings.load_env()
    assert os.environ["SETTINGS_TEST_A"] == "first"
    for rewritten in ("SETTINGS_TEST_A=other\n", "SETTINGS_TEST_A=again\n"):  # the same size
        mtime = env_file.stat().st_mtime_ns
        env_file.write_text(rewritten)
        os.utime(env_file, ns=(mtime, mtime))  # its modification time kept, as `cp -p` keeps it
        del os.environ["SETTINGS_TEST_A"]
        settings.load_env()
        assert os.environ["SETTINGS_TEST_A"] == rewritten.split("=")[1].strip()


def test_no_file_no_variables_but_no_telemetry(env_file, monkeypatch):
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    settings.load_env()
    assert "SETTINGS_TEST_A" not in os.environ
    assert os.environ["DO_NOT_TRACK"] == "1"
