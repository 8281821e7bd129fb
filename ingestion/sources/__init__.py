"""One module per source: each knows its files or API and nothing else.

The names and file patterns here are what the landing watch (airflow/include/orchestration/arrivals.py)
needs without importing the sources themselves (ingestion/sources/registry.py holds them).
"""

from __future__ import annotations

# Each file source by the name of its landing folder, with the files it lands from there
FILE_PATTERNS = {
    "ehr_patients": "patients_*.csv",
    "ehr": "ehr_*.csv",
    "claims": "claims_*.json",
    "vitals": "vitals_*.ndjson",
}
FILE_SOURCE_NAMES = tuple(FILE_PATTERNS)
# The vitals processor (monitoring/) watches its own folder and lands each micro-batch as
# it arrives; the landing watch starts the DAGs of the others.
STREAMED_SOURCE_NAMES = ("vitals",)
BATCH_FILE_SOURCE_NAMES = tuple(s for s in FILE_SOURCE_NAMES if s not in STREAMED_SOURCE_NAMES)
API_SOURCE_NAMES = ("fhir", "research")
