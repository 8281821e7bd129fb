"""How Cosmos' dbt tasks reach the warehouse: as `transformer`, through the Airflow connection
`warehouse_transformer`, with as many threads as `dbt_project/profiles.yml` gives dbt elsewhere
(`hcw dbt`, the benchmarks), so a build through Airflow runs as wide as one run by hand.
"""

from __future__ import annotations

from functools import cache

import yaml
from cosmos import ProfileConfig
from cosmos.profiles import PostgresUserPasswordProfileMapping

from common import settings

PROFILE_NAME = "healthcare_warehouse"
TARGET_NAME = "warehouse"


@cache
def profile_threads() -> int:
    """The threads of the project's own profile (Cosmos' profile mapping would give dbt one)."""
    profiles = yaml.safe_load((settings.DBT_PROJECT_DIR / "profiles.yml").read_text())
    return int(profiles[PROFILE_NAME]["outputs"][TARGET_NAME]["threads"])


DBT_PROFILE = ProfileConfig(
    profile_name=PROFILE_NAME,
    target_name=TARGET_NAME,
    profile_mapping=PostgresUserPasswordProfileMapping(
        conn_id="warehouse_transformer",
        profile_args={"schema": "build_blue", "threads": profile_threads()},
    ),
)
