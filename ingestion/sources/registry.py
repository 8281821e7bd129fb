"""Every file source by the name of its landing folder."""

from __future__ import annotations

from ingestion.file_source import FileSource
from ingestion.sources import FILE_SOURCE_NAMES
from ingestion.sources.claims_files import CLAIMS_FILES
from ingestion.sources.ehr_files import EHR_FILES, EHR_PATIENT_FILES
from ingestion.sources.vitals_files import VITALS_FILES

FILE_SOURCES: dict[str, FileSource] = {
    source.name: source for source in (EHR_PATIENT_FILES, EHR_FILES, CLAIMS_FILES, VITALS_FILES)
}
assert tuple(FILE_SOURCES) == FILE_SOURCE_NAMES
