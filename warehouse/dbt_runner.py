"""Run dbt against the warehouse, with the connection filled in from warehouse.

python -m warehouse.dbt_runner build --select fct_encounters
"""

from __future__ import annotations

import os
import sys

from common import settings
from warehouse.connection import dbt_environment, from_environment


def main() -> None:
    env = {**os.environ, **dbt_environment(from_environment())}
    dbt = str(settings.VENV_BIN / "dbt") if (settings.VENV_BIN / "dbt").exists() else "dbt"
    os.chdir(settings.DBT_PROJECT_DIR)
    os.execvpe(dbt, [dbt, *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
