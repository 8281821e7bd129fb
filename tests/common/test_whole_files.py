"""A file another stage reads appears whole or not at all (common/whole_files.py)."""

from __future__ import annotations

import fnmatch

import pytest

from common.whole_files import temporary_name, write_whole, written_whole
from ingestion.sources import FILE_PATTERNS


def test_the_file_appears_only_once_written_whole(tmp_path):
    path = tmp_path / "ehr_2024-09-01_001.csv"
    with written_whole(path) as handle:
        handle.write("patient_id,visit_date\n")
        assert not path.exists()  # a landing run now sees nothing, not a header alone
        # nor does any source's pattern take the name it is written under
        assert not any(
            fnmatch.fnmatch(temporary_name(path).name, pattern)
            for pattern in FILE_PATTERNS.values()
        )
        handle.write("PAT_1,2024-09-01\n")
    assert path.read_text() == "patient_id,visit_date\nPAT_1,2024-09-01\n"
    assert list(tmp_path.iterdir()) == [path]


def test_a_writer_that_fails_leaves_nothing(tmp_path):
    path = tmp_path / "claims_2024-09-01_001.json"
    with pytest.raises(RuntimeError), written_whole(path) as handle:
        handle.write("[{")
        raise RuntimeError("the producer died")
    assert list(tmp_path.iterdir()) == []
    assert write_whole(path, b"[]").read_bytes() == b"[]"
