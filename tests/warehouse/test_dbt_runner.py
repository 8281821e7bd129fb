"""dbt run in this process (warehouse.dbt_runner.invoke_dbt, the build plan's short commands): it
gives what the command line would (its exit code, its messages, its listing) and leaves the
process as it found it (environment, working folder, console)."""

from __future__ import annotations

import json
import os

import pytest

from warehouse.build_plan import PlanFailed, plan_build
from warehouse.dbt_runner import invoke_dbt, without_stack_inspection_per_adapter


def _env(test_warehouse, **overrides: str) -> dict[str, str]:
    return {**test_warehouse.dbt_env("build_blue", "runner", target="dbt_runner"), **overrides}


def test_a_listing_in_process_leaves_the_environment_folder_and_console_as_they_were(
    test_warehouse, capfd
):
    environment, folder = dict(os.environ), os.getcwd()
    listed = invoke_dbt(
        ["ls", "--resource-type", "model", "--output", "json", "--output-keys", "name"],
        _env(test_warehouse),
    )
    assert listed.returncode == 0, listed.stdout
    names = {json.loads(line)["name"] for line in listed.result}
    assert {"stg_vitals__readings", "deid_patients", "fct_encounters"} <= names
    assert dict(os.environ) == environment and os.getcwd() == folder
    assert "DBT_BUILD_SCHEMA" not in os.environ
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""
    # dbt's log file is written, as a command's would be
    assert "Running with dbt=" in (test_warehouse.var_dir / "dbt_logs" / "dbt.log").read_text()


def test_an_error_is_exit_code_2_with_dbt_s_message(test_warehouse):
    broken = invoke_dbt(["ls", "--vars", "{unclosed"], _env(test_warehouse))
    assert broken.returncode == 2
    assert "is not valid YAML" in broken.stdout, broken.stdout


def test_a_plan_dbt_cannot_make_fails_naming_why_and_no_password(test_warehouse):
    wrong = "not-the-transformer-password"
    env = _env(test_warehouse, WAREHOUSE_TRANSFORMER_PASSWORD=wrong)
    with pytest.raises(PlanFailed) as failed:
        plan_build(test_warehouse.warehouse, "build_blue", "runner", env)
    message = str(failed.value)
    assert "freshness" in message
    assert "password authentication failed" in message
    assert wrong not in message
    assert test_warehouse.warehouse.password("transformer") not in message


def _flag_source() -> str:
    """The source dbt gives a behaviour flag that this module asks for."""
    from dbt_common.behavior_flags import Behavior

    flags = Behavior([{"name": "a_flag", "default": False, "description": "a flag"}], {})
    return flags.a_flag._behavior_change_event.flag_source


def test_a_behaviour_flag_names_the_module_asking_for_it_as_dbt_s_stack_inspection_does(
    monkeypatch,
):
    from dbt_common.behavior_flags import BehaviorFlagRendered

    without_stack_inspection_per_adapter()
    read_from_the_frames = _flag_source()
    assert read_from_the_frames == __name__
    monkeypatch.setattr(
        BehaviorFlagRendered,
        "_default_source",
        BehaviorFlagRendered.__dict__["inspecting_the_stack"],
    )
    assert _flag_source() == read_from_the_frames
