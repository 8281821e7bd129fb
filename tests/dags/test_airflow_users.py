"""The users file (orchestration/airflow_users.py): read and checked before anyone is created;
a wrong entry is named by its file, its position and the rule, never by a value. The accounts it
makes, and what each role may do in the UI: tests/dags/test_airflow_services.py."""

from __future__ import annotations

import pytest
import yaml

from common import settings
from orchestration.airflow_users import ROLES, UsersFileError, read_users

EXAMPLE = settings.PROJECT_ROOT / "airflow" / "users.example.yml"
GOOD = {
    "username": "rosa.nurse-lead",
    "first_name": "Rosa",
    "last_name": "Lead",
    "email": "rosa@hospital.example",
    "role": "viewer",
}


def test_the_example_file_names_one_person_of_each_role():
    people = read_users(EXAMPLE)
    assert sorted(person.role for person in people) == sorted(ROLES)
    assert ROLES == {"administrator": "Admin", "data_engineer": "User", "viewer": "Viewer"}


@pytest.mark.parametrize(
    ("second", "rule"),
    [
        ({**GOOD, "role": "superuser"}, "role is one of administrator, data_engineer, viewer"),
        ({**GOOD, "email": "rosa.at.hospital"}, "email is not an address"),
        ({**GOOD, "username": "Rosa Lead"}, "username is lower case letters"),
        ({k: v for k, v in GOOD.items() if k != "email"}, "exactly the fields"),
        ({**GOOD, "last_name": " "}, "every field is non-empty text"),
        (GOOD, "username listed twice"),
    ],
)
def test_a_wrong_entry_is_named_by_file_position_and_rule_never_by_value(tmp_path, second, rule):
    path = tmp_path / "users.yml"
    path.write_text(yaml.safe_dump({"users": [GOOD, second]}))
    with pytest.raises(UsersFileError, match=rule) as refused:
        read_users(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: user #2: ")
    for value in second.values():
        if value.strip() and len(value) > 3:
            assert value not in message.removeprefix(f"{path}: user #2: "), value


def test_a_file_without_a_list_of_users_is_refused(tmp_path):
    path = tmp_path / "users.yml"
    path.write_text("- just a list\n")
    with pytest.raises(UsersFileError, match="a mapping with a list `users:`"):
        read_users(path)
