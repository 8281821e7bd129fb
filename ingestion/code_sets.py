"""The code sets landing checks codes against: the files in seeds/ that dbt also loads, each with
its version, so a record is checked against what the warehouse ships and the check says which
version it used.

- ICD-10-CM (`seeds/icd10cm_codes.csv`): every category and subcategory code with its billable
  flag (only a code with no code below it is a complete diagnosis); its version in
  `seeds/_seeds.yml` (`meta.code_set_version`), both written by `hcw icd10cm-seeds`
  (ingestion/reference/icd10cm_seed.py) from the CDC/NCHS files the simple-icd-10-cm package
  ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import yaml

from common import settings

SEEDS = settings.PROJECT_ROOT / "seeds"


@dataclass(frozen=True)
class CodeSet:
    name: str
    version: str
    codes: pa.Array  # every code of the set
    complete: pa.Array  # the codes that are complete on their own (ICD-10-CM: billable)


def seed_meta(seed: str) -> dict:
    """A seed's `config.meta` in seeds/_seeds.yml."""
    seeds = yaml.safe_load((SEEDS / "_seeds.yml").read_text())["seeds"]
    [entry] = [entry for entry in seeds if entry["name"] == seed]
    return entry.get("config", {}).get("meta", {})


@cache
def icd10cm() -> CodeSet:
    table = pa_csv.read_csv(
        SEEDS / "icd10cm_codes.csv",
        convert_options=pa_csv.ConvertOptions(
            include_columns=["diagnosis_code", "is_billable"],
            column_types={"diagnosis_code": pa.string(), "is_billable": pa.string()},
        ),
    )
    codes = table.column("diagnosis_code").combine_chunks()
    billable = pc.equal(table.column("is_billable").combine_chunks(), "True")
    return CodeSet(
        name="icd10cm",
        version=seed_meta("icd10cm_codes")["code_set_version"],
        codes=codes,
        complete=pc.filter(codes, billable),
    )


# check (validation.py) -> the code set it reads
CHECKS = {"icd10cm": icd10cm, "icd10cm_complete": icd10cm}
