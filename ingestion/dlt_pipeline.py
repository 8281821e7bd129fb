"""The one way loaders get a dlt pipeline: into the warehouse as `loader`, state under
`var/dlt`, settings from `ingestion/.dlt/config.toml`; made once per process, so a long-lived
loader stays warm.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import settings
from warehouse.connection import Warehouse

DLT_PROJECT_DIR = Path(__file__).parent  # where .dlt/config.toml lives

_pipelines: dict[tuple[str, str, str], Any] = {}


def pipeline(name: str, dataset: str, warehouse: Warehouse):
    os.environ.setdefault("DLT_DATA_DIR", str(settings.DLT_DATA_DIR))
    os.environ.setdefault("DLT_PROJECT_DIR", str(DLT_PROJECT_DIR))
    import dlt

    credentials = warehouse.url("loader")
    pipelines_dir = str(settings.DLT_DATA_DIR / "pipelines")
    key = (name, credentials, pipelines_dir)
    if key not in _pipelines:
        _pipelines[key] = dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=pipelines_dir,
            destination=dlt.destinations.postgres(credentials=credentials),
            dataset_name=dataset,
        )
    return _pipelines[key]
