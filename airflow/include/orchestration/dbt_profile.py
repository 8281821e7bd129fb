"""How Cosmos' dbt tasks reach the warehouse: as `transformer`, its password from the Airflow
connection `warehouse_transformer`, its location from the environment, with as many threads as
`dbt_project/profiles.yml` gives dbt elsewhere (`hcw dbt`, the benchmarks), so a build through
Airflow runs as wide as one run by hand.
"""

from __future__ import annotations

import os
from functools import cache

import yaml
from cosmos import ProfileConfig
from cosmos.profiles import PostgresUserPasswordProfileMapping

from common import settings
from warehouse.transport import SSLMODE_VARIABLE, SSLROOTCERT_VARIABLE

PROFILE_NAME = "healthcare_warehouse"
TARGET_NAME = "warehouse"


@cache
def profile_threads() -> int:
    """The threads of the project's own profile (Cosmos' profile mapping would give dbt one)."""
    profiles = yaml.safe_load((settings.DBT_PROJECT_DIR / "profiles.yml").read_text())
    return int(profiles[PROFILE_NAME]["outputs"][TARGET_NAME]["threads"])


def warehouse_location() -> dict[str, object]:
    """Where the warehouse is, from the environment Airflow's processes start with
    (orchestration.airflow_env), not from the stored connection, whose host an Airflow
    administrator could point elsewhere to be sent the transformer's password."""
    location = {
        "host": os.environ.get("WAREHOUSE_HOST"),
        "port": int(os.environ["WAREHOUSE_PORT"]) if os.environ.get("WAREHOUSE_PORT") else None,
        "dbname": os.environ.get("WAREHOUSE_DATABASE"),
        # TLS to a server on another machine (warehouse/transport.py)
        "sslmode": os.environ.get(SSLMODE_VARIABLE),
        "sslrootcert": os.environ.get(SSLROOTCERT_VARIABLE),
    }
    return {name: value for name, value in location.items() if value}


DBT_PROFILE = ProfileConfig(
    profile_name=PROFILE_NAME,
    target_name=TARGET_NAME,
    profile_mapping=PostgresUserPasswordProfileMapping(
        conn_id="warehouse_transformer",
        profile_args={"schema": "build_blue", "threads": profile_threads(), **warehouse_location()},
    ),
)
