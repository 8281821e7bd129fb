"""Write the ICD-10-CM seeds from the `simple-icd-10-cm` package's code set.

    hcw icd10cm-seeds

`seeds/icd10cm_codes.csv`: one row per category and subcategory code, its description, its
billable flag (only a leaf of the tabular list may be billed) and its block;
`seeds/icd10cm_blocks.csv`: each block with its chapter; `seeds/icd10cm_chapters.csv`: the 22
chapters. Run it again after upgrading the package, then set icd10cm_codes' content_sha256 in
seeds/_seeds.yml (dbt checksums a seed over 1 MiB by its path alone) and its code_set_version
(`code_set_version()`: landing's checks name it, ingestion/code_sets.py); tests/ingestion/
test_reference_seeds.py fails while the seeds, that checksum or that version are stale.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import io
import logging
import re

import simple_icd_10_cm as cm

from common import settings

log = logging.getLogger(__name__)

SEEDS = settings.PROJECT_ROOT / "seeds"


def tables() -> dict[str, list[dict[str, object]]]:
    """File name -> rows."""
    codes, blocks, chapters = [], [], []
    # A block of one category shares its code with it (B10): the code set lists it twice, once
    # as each, so the first time it is the block and the second the category.
    seen_blocks: set[str] = set()
    for code in cm.get_all_codes(with_dots=True):
        if cm.is_chapter(code):
            description = cm.get_description(code)
            chapters.append({"chapter_number": int(code), "chapter_description": description})
        elif cm.is_block(code) and code not in seen_blocks:
            seen_blocks.add(code)
            blocks.append(
                {
                    "block_code": code,
                    "block_description": cm.get_description(code),
                    "chapter_number": int(cm.get_ancestors(code)[-1]),
                }
            )
        else:
            # a category that is a block of its own is in that block; else the nearest block above
            ancestors = cm.get_ancestors(code)  # nearest first, the chapter last
            block = code if cm.is_block(code) else next(a for a in ancestors if cm.is_block(a))
            codes.append(
                {
                    "diagnosis_code": code,
                    "diagnosis_description": cm.get_description(code),
                    "is_billable": cm.is_leaf(code),
                    "block_code": block,
                }
            )
    return {
        "icd10cm_codes.csv": codes,
        "icd10cm_blocks.csv": blocks,
        "icd10cm_chapters.csv": chapters,
    }


def code_set_version() -> str:
    """The ICD-10-CM release the package ships (its tabular file names the date it took
    effect) and the package's own version."""
    package = f"simple-icd-10-cm {importlib.metadata.version('simple-icd-10-cm')}"
    data = importlib.resources.files("simple_icd_10_cm") / "data"
    tabular = " ".join(item.name for item in data.iterdir() if item.name.endswith(".xml"))
    effective = re.search(r"tabular-([A-Z][a-z]+)-(\d{1,2})-(\d{4})", tabular)
    if effective is None:
        return f"ICD-10-CM of {package}"
    month, day, year = effective.groups()
    return f"ICD-10-CM {month} {day}, {year} (CDC/NCHS, via {package})"


def render(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_seeds() -> dict[str, int]:
    """Write every seed file; file name -> rows written."""
    written = {}
    for name, rows in tables().items():
        (SEEDS / name).write_text(render(rows), encoding="utf-8")
        written[name] = len(rows)
    return written
