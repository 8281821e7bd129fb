"""The FHIR R4 servers to pull, from configuration (ingestion/fhir_servers.yml, or the file
FHIR_SERVERS_FILE names): each with its base URL, token URL, client id, the name of its client
secret's variable in `.env`, and its key (fhir_api.server_key of its base URL unless given).

A mistake names the file, the server's position and the rule, never a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from common import settings
from ingestion.sources.fhir_api import server_key

CONFIG = Path(__file__).with_name("fhir_servers.yml")
FIELDS = {"base_url", "token_url", "client_id", "client_secret", "key"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ServerConfigError(ValueError):
    """A FHIR server's configuration breaks a rule."""


@dataclass(frozen=True)
class FhirServer:
    key: str
    base_url: str
    client_id: str
    client_secret_variable: str
    token_url: str | None = None
    position: int = (
        1  # in the configuration: the first owns what was pulled before servers were keyed
    )

    def client_secret(self, environ: Mapping[str, str] | None = None) -> str:
        """The client secret, from `environ` when given, else where settings.secret finds it
        (`.env`, or Airflow's variables in a task)."""
        secret = (
            environ.get(self.client_secret_variable)
            if environ is not None
            else settings.secret(self.client_secret_variable)
        )
        if not secret:
            # the variable is not named: were a secret written in its place, it would be shown
            raise ServerConfigError(
                f"FHIR server {self.key} (server {self.position} of its configuration): the"
                " variable its client_secret names is not set (.env; in Airflow, its variable)"
            )
        return secret


def _expanded(text: object, environ: Mapping[str, str]) -> str:
    return _VARIABLE.sub(
        lambda found: environ.get(found.group(1)) or (found.group(2) or ""), str(text or "")
    ).strip()


def client_secret_variables(path: Path | None = None) -> list[str]:
    """The names of the client secrets' variables of every entry of the configuration, those
    with an empty base URL too: secrets, whatever they are called."""
    path = path or Path(os.environ.get("FHIR_SERVERS_FILE") or CONFIG)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []  # configured_servers says what is wrong, when the servers are pulled
    entries = document.get("servers") if isinstance(document, dict) else None
    return [
        str(entry["client_secret"])
        for entry in entries or []
        if isinstance(entry, dict) and _NAME.match(str(entry.get("client_secret") or ""))
    ]


def configured_servers(
    path: Path | None = None, environ: Mapping[str, str] = os.environ
) -> list[FhirServer]:
    """The servers of the configuration, in its order, those with an empty base URL left out."""
    path = path or Path(environ.get("FHIR_SERVERS_FILE") or CONFIG)
    document = yaml.safe_load(path.read_text()) or {}
    entries = document.get("servers") if isinstance(document, dict) else "not a mapping"
    if not isinstance(entries, list | None):
        raise ServerConfigError(f"{path.name}: `servers` is a list of servers, at the top")
    servers: list[FhirServer] = []
    for position, entry in enumerate(entries or [], start=1):
        where = f"{path.name}: server {position}"
        if not isinstance(entry, dict) or set(entry) - FIELDS:
            raise ServerConfigError(f"{where}: an entry has only {', '.join(sorted(FIELDS))}")
        secret_name = str(entry.get("client_secret") or "")
        # never expanded: `${...}` here would put the secret itself where its name goes
        if not _NAME.match(secret_name):
            raise ServerConfigError(
                f"{where}: client_secret is the name of a variable in .env (as FHIR_CLIENT_SECRET),"
                " not ${...} nor a secret"
            )
        values = {name: _expanded(entry.get(name), environ) for name in FIELDS - {"client_secret"}}
        if not values["base_url"]:
            continue
        try:
            address = server_key(values["base_url"])
        except ValueError as error:
            raise ServerConfigError(f"{where}: base_url: {error}") from error
        key = values["key"] or address
        if not values["client_id"]:
            raise ServerConfigError(f"{where}: client_id is missing")
        # the same server twice: by its key, or by its address under another key
        same = next(
            (each for each in servers if {key, address} & {each.key, server_key(each.base_url)}),
            None,
        )
        if same is not None:
            raise ServerConfigError(
                f"{where}: the same server as server {same.position} ({same.key})"
            )
        servers.append(
            FhirServer(
                key=key,
                base_url=values["base_url"],
                client_id=values["client_id"],
                client_secret_variable=secret_name,
                token_url=values["token_url"] or None,
                position=position,
            )
        )
    return servers
