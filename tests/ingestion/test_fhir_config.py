"""The FHIR servers to pull, from configuration (ingestion/fhir_servers.py): each with its own key,
token URL, client id and secret's name in `.env`; a mistake names the file, the server's position
and the rule, never a secret."""

from __future__ import annotations

import pytest

from ingestion.fhir_servers import CONFIG, ServerConfigError, configured_servers

TWO_SERVERS = """
servers:
  - base_url: ${NORTH_FHIR_URL}
    client_id: warehouse-north
    client_secret: NORTH_FHIR_SECRET
  - base_url: https://fhir.south.example.org/R4/
    token_url: https://auth.south.example.org/token
    client_id: ${SOUTH_CLIENT_ID:-warehouse}
    client_secret: SOUTH_FHIR_SECRET
  - base_url: ${UNSET_FHIR_URL:-}
    client_id: nobody
    client_secret: NOBODY_SECRET
"""


def _servers(tmp_path, text: str, **environ: str):
    path = tmp_path / "fhir_servers.yml"
    path.write_text(text)
    return configured_servers(path, environ)


def test_each_configured_server_has_its_key_token_url_client_and_secret_name(tmp_path):
    north, south = _servers(
        tmp_path,
        TWO_SERVERS,
        NORTH_FHIR_URL="HTTP://Fhir.North.example.org:80/r4",
        NORTH_FHIR_SECRET="north-secret",
    )
    assert north.key == "http://fhir.north.example.org/r4"
    assert north.token_url is None and north.client_id == "warehouse-north"
    assert north.client_secret({"NORTH_FHIR_SECRET": "north-secret"}) == "north-secret"
    assert south.key == "https://fhir.south.example.org/R4"
    assert south.token_url == "https://auth.south.example.org/token"
    assert south.client_id == "warehouse"  # its default: SOUTH_CLIENT_ID is not set
    assert south.client_secret_variable == "SOUTH_FHIR_SECRET"


def test_the_shipped_configuration_is_the_environments_one_server(tmp_path):
    assert configured_servers(CONFIG, {}) == []  # no FHIR_BASE_URL: nothing to pull
    [server] = configured_servers(
        CONFIG, {"FHIR_BASE_URL": "https://fhir.example.org/r4/", "FHIR_CLIENT_SECRET": "s"}
    )
    assert server.key == "https://fhir.example.org/r4"
    assert server.client_id == "healthcare-warehouse"
    assert server.client_secret_variable == "FHIR_CLIENT_SECRET"
    [demo] = configured_servers(
        CONFIG, {"FHIR_BASE_URL": "http://127.0.0.1:41234", "FHIR_SERVER_KEY": "demo"}
    )
    assert demo.key == "demo"


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("- {base_url: 'fhir.example.org', client_id: c, client_secret: S}", "base_url"),
        (
            "- {base_url: 'https://a.example.org', client_id: c, client_secret: 's3cr3t!'}",
            "not ${...} nor a secret",
        ),
        ("- {base_url: 'https://a.example.org', client_secret: S}", "client_id is missing"),
        (
            "- {base_url: 'https://a.example.org', client_id: c, client_secret: S, password: x}",
            "an entry has only",
        ),
        (
            (
                "- {base_url: 'https://a.example.org/r4', client_id: c, client_secret: S}\n"
                "  - {base_url: 'HTTPS://A.example.org:443/r4/', client_id: d, client_secret: T}"
            ),
            "server 2: the same server as server 1 (https://a.example.org/r4)",
        ),
    ],
)
def test_a_mistake_names_the_file_the_server_and_the_rule_never_the_secret(tmp_path, entry, rule):
    with pytest.raises(ServerConfigError) as refused:
        _servers(tmp_path, f"servers:\n  {entry}\n")
    assert str(refused.value).startswith("fhir_servers.yml: server ")
    assert rule in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


def test_a_missing_secret_names_its_server_never_a_value(tmp_path):
    [north, _] = _servers(tmp_path, TWO_SERVERS, NORTH_FHIR_URL="https://north.example.org")
    with pytest.raises(ServerConfigError, match="server 1 of its configuration") as refused:
        north.client_secret({})
    # nor the variable's name: were a secret written in its place, it would show
    assert "NORTH_FHIR_SECRET" not in str(refused.value)


def test_a_secret_given_as_a_variable_is_refused_and_never_shown(tmp_path):
    secret = "AlphanumericSecret24chars"  # as env_file generates them, a valid name too
    with pytest.raises(ServerConfigError, match=r"not \$\{\.\.\.\} nor a secret") as refused:
        _servers(
            tmp_path,
            "servers:\n  - {base_url: 'https://a.example.org', client_id: c,"
            " client_secret: '${FHIR_CLIENT_SECRET}'}\n",
            FHIR_CLIENT_SECRET=secret,
        )
    assert secret not in str(refused.value)


def test_one_server_under_a_key_and_again_at_its_address_is_refused(tmp_path):
    with pytest.raises(ServerConfigError, match="server 2: the same server as server 1 \\(demo\\)"):
        _servers(
            tmp_path,
            "servers:\n"
            "  - {base_url: 'http://127.0.0.1:8090', key: demo, client_id: c, client_secret: S}\n"
            "  - {base_url: 'http://127.0.0.1:8090/', client_id: c, client_secret: S}\n",
        )


def test_servers_that_are_no_list_are_refused_naming_the_file(tmp_path):
    with pytest.raises(ServerConfigError, match="fhir_servers.yml: `servers` is a list"):
        _servers(tmp_path, "servers: {base_url: 'https://a.example.org'}\n")
    with pytest.raises(ServerConfigError, match="fhir_servers.yml: `servers` is a list"):
        _servers(tmp_path, "- {base_url: 'https://a.example.org'}\n")


def test_only_the_files_first_server_owns_what_was_pulled_before_keys(tmp_path):
    # its first entry left empty: the second is not the first server
    [south] = _servers(tmp_path, TWO_SERVERS.replace("${NORTH_FHIR_URL}", "${UNSET:-}"))
    assert south.position == 2
