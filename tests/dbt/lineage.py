"""Trace each column of a dbt model back to the classified columns it is computed from.

Reads dbt's manifest and the models' compiled SQL, and follows them with sqlglot's column lineage
through every model whose columns carry no HIPAA classification (staging, intermediate) until it
reaches one that does: a raw source column, or a model column classified in its yml (the FHIR
staging models, which extract elements from JSON; the crosswalk). Seeds are reference data and
hold no patient. Join and filter conditions do not count: only what a column's value is computed
from; a value computed from no column at all (a random key, a null) has no origin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

SELF = "__this"


@dataclass(frozen=True)
class Origin:
    relation: str  # database.schema.table
    column: str
    hipaa_identifier: str | list[str] | None  # None: not classified


def _fqn(node: dict) -> str:
    name = node.get("alias") or node.get("identifier") or node["name"]
    return f"{node['database']}.{node['schema']}.{name}".lower()


def _classification(column: dict) -> str | list[str] | None:
    return (column.get("meta") or {}).get("hipaa_identifier")


class Lineage:
    def __init__(self, target_dir: Path) -> None:
        self.target_dir = target_dir
        self.manifest = json.loads((target_dir / "manifest.json").read_text())
        # by relation: each version of a versioned model is its own (deid_fhir_observations_v2
        # reads version 3's table)
        self.models = {
            node.get("alias") or node["name"]: node
            for node in self.manifest["nodes"].values()
            if node["resource_type"] == "model"
        }
        seeds = [n for n in self.manifest["nodes"].values() if n["resource_type"] == "seed"]
        boundaries = [
            *self.manifest["sources"].values(),
            *(m for m in self.models.values() if self._is_classified(m)),
            *seeds,
        ]
        self.classified = {
            _fqn(node): {name.lower(): _classification(c) for name, c in node["columns"].items()}
            for node in boundaries
        }
        for seed in seeds:
            self.classified[_fqn(seed)] = dict.fromkeys(self.classified[_fqn(seed)], "none")
        self.schema: dict = {}
        for node in [*self.models.values(), *boundaries]:
            database, schema, table = _fqn(node).split(".")
            columns = {name.lower(): "text" for name in node["columns"]}
            self.schema.setdefault(database, {}).setdefault(schema, {})[table] = columns
            # an incremental model reads its own table ({{ this }}), as that table, not itself
            self.schema[database][schema][table + SELF] = columns
        self._traced: dict[str, dict[str, Node]] = {}
        # parsed once: each model's trace expands (copies of) them
        self.expandable = {
            _fqn(model): sqlglot.parse_one(self.compiled_sql(model["name"]), dialect="postgres")
            for model in self.models.values()
            if not self._is_classified(model)
        }

    @staticmethod
    def _is_classified(node: dict) -> bool:
        return any(_classification(column) for column in node["columns"].values())

    def compiled_sql(self, model: str) -> str:
        node = self.models[model]
        path = self.target_dir / "compiled" / node["package_name"] / node["original_file_path"]
        own_table = '"{}"."{}"."{}"'.format(*_fqn(node).split("."))
        return path.read_text().replace(own_table, own_table[:-1] + SELF + '"')

    def output_columns(self, model: str) -> list[str]:
        return list(self.models[model]["columns"])

    def _lineage_of(self, model: str) -> dict[str, Node]:
        """Every output column of `model` traced at once (sqlglot parses and qualifies the
        model and what it expands into once, not once a column), kept for the next column."""
        if model not in self._traced:
            sources = {
                name: sql for name, sql in self.expandable.items() if not name.endswith(model)
            }
            self._traced[model] = lineage(
                None, self.compiled_sql(model), self.schema, sources=sources, dialect="postgres"
            )
        return self._traced[model]

    def origins(self, model: str, column: str) -> list[Origin]:
        name = normalize_identifiers(column, dialect="postgres").name
        root = self._lineage_of(model)[name]
        found = []
        for node in root.walk():
            if node.downstream or not isinstance(node.expression, exp.Table):
                continue
            table = node.expression
            relation = ".".join(part for part in (table.catalog, table.db, table.name)).lower()
            name = node.name.rsplit(".", 1)[1].strip('"').lower()
            found.append(Origin(relation, name, self.classified.get(relation, {}).get(name)))
        return found
