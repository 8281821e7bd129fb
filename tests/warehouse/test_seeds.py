"""The seeds as `dbt seed` loads them (dbt_project/macros/load_csv_rows.sql renders each row's
placeholders once per seed, not once per cell): every table holds its CSV file, row for row, each
value in its column's declared type."""

from __future__ import annotations

import csv
from collections import Counter

import psycopg
import yaml

from ingestion.reference.icd10cm_seed import SEEDS

AS_DECLARED = {
    "text": str,
    "integer": int,
    "float8": float,
    "boolean": lambda value: {"True": True, "False": False}[value],
}


def _declared_types() -> dict[str, dict[str, str]]:
    seeds = yaml.safe_load((SEEDS / "_seeds.yml").read_text())["seeds"]
    return {seed["name"]: seed["config"]["column_types"] for seed in seeds}


def test_every_seed_table_holds_its_csv_file_row_for_row(test_warehouse):
    declared = _declared_types()
    assert set(declared) == {path.stem for path in SEEDS.glob("*.csv")}
    warehouse = test_warehouse.warehouse
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        for name, types in declared.items():
            with (SEEDS / f"{name}.csv").open(encoding="utf-8", newline="") as file:
                reader = csv.DictReader(file)
                columns = reader.fieldnames
                expected = Counter(
                    tuple(
                        None if row[column] == "" else AS_DECLARED[types[column]](row[column])
                        for column in columns
                    )
                    for row in reader
                )
            listed = ", ".join(f'"{column}"' for column in columns)
            loaded = Counter(conn.execute(f"select {listed} from reference.{name}").fetchall())
            assert loaded == expected, f"reference.{name} differs from seeds/{name}.csv"
            assert sum(loaded.values()) > 0
