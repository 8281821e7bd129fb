"""The one way loaders get a dlt pipeline: into the warehouse as `loader`, state under
`var/dlt`, settings from `ingestion/.dlt/config.toml`; made once per process, so a long-lived
loader stays warm. A completed load's package (its files are the rows loaded: PHI) is deleted
once the load is reconciled (`forget_loaded_packages`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from common import settings
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

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


def forget_loaded_packages(pipeline) -> int:
    """Delete the packages dlt keeps of its completed loads (an aborted one among them): their
    job files are the rows loaded, PHI, which the warehouse holds once the load is reconciled (dlt
    keeps them for ever otherwise). Call it after reconciling. A package still pending is not
    touched (aborting it is dlt's, at the loader's next run). How many were deleted."""
    completed = list(pipeline.list_completed_load_packages())
    for load_id in completed:
        shutil.rmtree(pipeline.get_load_package_info(load_id).package_path)
    if completed:
        log.info("%s: deleted %d reconciled load packages", pipeline.pipeline_name, len(completed))
    return len(completed)
