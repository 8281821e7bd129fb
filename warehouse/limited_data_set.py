"""Limited data sets live apart from what analysts read (45 CFR 164.514(e)): each data use
agreement has a schema of its own, `lds_<agreement>`, and a login role of the same name, the only
one (with `transformer`, which builds it) that may read it. `hcw limited-data-set create` makes
both and prints the role's password once, for the agreement's recipients; `hcw limited-data-set
build` builds the de-identified models and the marts into the schema under the
`limited_data_set` policy. dbt refuses that policy in any other schema
(dbt_project/macros/generate_schema_name.sql), and publishing only ever exposes a build schema
to `analyst` (warehouse/publish.py): a limited data set never reaches the general analyst role.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from common import settings
from warehouse.connection import Warehouse, dbt_environment
from warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)

PREFIX = "lds_"
AGREEMENT = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# what a limited data set holds: the de-identified layer and the marts on it (the PHI zone and the
# locked crosswalk it reads are shared, built by the warehouse build)
SELECTION = ["--select", "path:models/deidentified", "path:models/marts"]
EXCLUDED = ["--exclude", "path:models/deidentified/crosswalk"]


class AgreementNameInvalid(ValueError):
    """An agreement is named by lower-case letters, digits and underscores, from a letter."""


def schema_of(agreement: str) -> str:
    """The schema and the role of an agreement's limited data set."""
    if not AGREEMENT.match(agreement):
        raise AgreementNameInvalid(
            f"{agreement!r}: name an agreement with lower-case letters, digits and underscores,"
            " starting with a letter (at most 41)"
        )
    return PREFIX + agreement


def create(warehouse: Warehouse, agreement: str) -> str:
    """The agreement's schema and its recipients' login role; the role's new password (shown
    once: give it to the recipients named in the agreement). Run again, it sets a new one."""
    name = schema_of(agreement)
    password = secrets.token_urlsafe(24)
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True) as conn:
        role = sql.Identifier(name)
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(
            sql.SQL(verb + " role {} login password {}").format(role, sql.Literal(password))
        )
        conn.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(warehouse.database), role
            )
        )
        conn.execute(
            sql.SQL("create schema if not exists {} authorization transformer").format(role)
        )
        conn.execute(sql.SQL("revoke all on schema {} from public").format(role))
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(role, role))
        conn.execute(
            sql.SQL(
                "alter default privileges for role transformer in schema {} grant select on tables to {}"
            ).format(role, role)
        )
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(role, role))
    log.info("limited data set %s: schema and role %s ready", agreement, name)
    return password


def build(
    warehouse: Warehouse, agreement: str, run_id: str, target_path: Path | None = None
) -> subprocess.CompletedProcess:
    """`dbt build` of the de-identified models and the marts into the agreement's schema, under
    the `limited_data_set` policy (its compiled SQL in `target_path`, else
    var/dbt_lds/<schema>); dbt's completed process."""
    name = schema_of(agreement)
    env = {
        **os.environ,
        **dbt_environment(warehouse),
        "DBT_BUILD_SCHEMA": name,
        "PIPELINE_RUN_ID": run_id,
        "DBT_TARGET_PATH": str(target_path or settings.VAR_DIR / "dbt_lds" / name),
    }
    return run_dbt(
        [
            "build",
            *SELECTION,
            *EXCLUDED,
            "--indirect-selection",
            "cautious",
            "--vars",
            "{deid_policy: limited_data_set}",
        ],
        env,
    )
