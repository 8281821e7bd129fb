"""The assets the DAGs hand work to each other by.

- `ARRIVALS[source]`: a new file waits in the source's landing folder (the landing watch emits it;
  the source's DAG is scheduled on it, besides its cron). Not for vitals: the vitals processor
  watches its folder itself.
- `RAW[source]`: new rows landed in the source's raw tables (its DAG emits it; the warehouse build
  is scheduled on any of them).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAny

from ingestion.sources import API_SOURCE_NAMES, BATCH_FILE_SOURCE_NAMES, FILE_SOURCE_NAMES

ARRIVALS = {
    source: Asset(f"landing_{source}", group="landing") for source in BATCH_FILE_SOURCE_NAMES
}
RAW = {
    source: Asset(f"raw_{source}", group="raw")
    for source in (*FILE_SOURCE_NAMES, *API_SOURCE_NAMES)
}


def any_of(assets: list[Asset]) -> Asset | AssetAny:
    return assets[0] if len(assets) == 1 else AssetAny(*assets)


def any_raw_data() -> AssetAny:
    """The warehouse build's schedule: new rows in any raw source."""
    return AssetAny(*RAW.values())
