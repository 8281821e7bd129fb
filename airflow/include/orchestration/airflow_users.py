"""Named people in Airflow: each person of a users file gets an account of their own, with the
role their duty needs (Airflow's FAB auth manager; its roles are Airflow's documented ones):

  administrator   Admin   everything, users and connections included
  data_engineer   User    see every DAG and run, trigger, clear, mark: the lowest role that may
  viewer          Viewer  see DAGs, runs and logs; trigger and clear nothing

    hcw users add airflow/users.yml     # each new person's password printed once, never stored

The file (airflow/users.example.yml shows its shape) lists `users:`, each with `username`,
`first_name`, `last_name`, `email` and `role`. A person already in Airflow is left as they are (an
administrator changes a role or resets a password in the UI, Security > List Users); nobody
shares an account, and there is no default one. Run in Airflow's environment
(orchestration.airflow_env), as `python -m orchestration.airflow_users add FILE`.
"""

from __future__ import annotations

import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROLES = {"administrator": "Admin", "data_engineer": "User", "viewer": "Viewer"}
FIELDS = ("username", "first_name", "last_name", "email", "role")
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class UsersFileError(ValueError):
    pass


@dataclass(frozen=True)
class Person:
    username: str
    first_name: str
    last_name: str
    email: str
    role: str  # the file's name for it (ROLES)


def read_users(path: Path) -> list[Person]:
    """The file's people, checked: an error names the file, the entry's position and the rule,
    never a value."""
    content = yaml.safe_load(path.read_text()) if path.exists() else None
    if not isinstance(content, dict) or not isinstance(content.get("users"), list):
        raise UsersFileError(f"{path}: a mapping with a list `users:`")
    people, seen = [], set()
    for position, entry in enumerate(content["users"], start=1):
        where = f"{path}: user #{position}"
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise UsersFileError(f"{where}: exactly the fields {', '.join(FIELDS)}")
        if not all(isinstance(entry[field], str) and entry[field].strip() for field in FIELDS):
            raise UsersFileError(f"{where}: every field is non-empty text")
        if not _USERNAME.match(entry["username"]):
            raise UsersFileError(
                f"{where}: username is lower case letters, digits, '.', '_' or '-', 2-64 long"
            )
        if not _EMAIL.match(entry["email"]):
            raise UsersFileError(f"{where}: email is not an address")
        if entry["role"] not in ROLES:
            raise UsersFileError(f"{where}: role is one of {', '.join(ROLES)}")
        if entry["username"] in seen:
            raise UsersFileError(f"{where}: username listed twice")
        seen.add(entry["username"])
        people.append(Person(**{field: entry[field].strip() for field in FIELDS}))
    return people


def add_users(people: list[Person]) -> list[tuple[Person, str | None]]:
    """Create each person not in Airflow yet; each with the password generated for them, or None
    when they were there already."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    added = []
    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        security.sync_roles()  # Airflow's roles and their permissions, as the api-server makes them
        for person in people:
            if security.find_user(username=person.username):
                added.append((person, None))
                continue
            password = secrets.token_urlsafe(18)
            role = security.find_role(ROLES[person.role])
            user = security.add_user(
                person.username, person.first_name, person.last_name, person.email, role, password
            )
            if not user:
                raise RuntimeError(f"Airflow did not create user #{people.index(person) + 1}")
            added.append((person, password))
    return added


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "add":
        raise SystemExit("usage: python -m orchestration.airflow_users add FILE")
    try:
        people = read_users(Path(argv[1]))
    except UsersFileError as error:
        raise SystemExit(str(error)) from None
    added = add_users(people)
    for person, password in added:
        role = f"{person.role} ({ROLES[person.role]})"
        if password is None:
            print(f"{person.username}: in Airflow already, left as is")
        else:
            print(f"{person.username}: created, {role}, password {password}")
    if any(password for _, password in added):
        print("Each password above is shown this once and stored nowhere (its hash is Airflow's).")


if __name__ == "__main__":
    main(sys.argv[1:])
