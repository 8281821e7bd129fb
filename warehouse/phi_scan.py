"""Look for raw identifiers where they must not be: in what analysts can select.

    hcw phi-scan            # the published views, as `analyst`
    hcw phi-scan var/reports var/gx/uncommitted/data_docs var/logs
                                                      # every text file under these folders

The steward's view of the raw schemas gives every identifier value the hospital sent (names,
MRNs, SSNs, phones, emails, street addresses, five-digit ZIPs, device ids, FHIR ids, policy and
claim numbers) and every date tied to a patient. The scan then reads every value of every column
the given role can select and reports any that equals or contains one of them. It compares
alphanumeric tokens, case-insensitively, so "PAT_10001" is found in "pat-10001 (readmitted)" but
not inside "a1b2pat10001". A finding names the relation, the column and the identifier class,
never the value.

A family or given name alone is not looked for: many are ordinary words ("Long", "Graves") that
diagnosis descriptions legitimately contain. Full names are.

Dates count only in relations tied to patients (those with a `patient_key` column): a calendar
(`dim_date`) or a count by quarter holds dates that are no patient's.

A number column is not compared with identifiers of a few digits only (five-digit ZIPs): an hour
offset of -21345 or a count of 21345 equals some patient's ZIP by chance, not by descent; nor is
a decimal number in a text (a sort key of 1796078714.28123 in Data Docs), nor a field of a Python
date-time's repr in a text (the microseconds of Airflow's `run_after=DateTime(2026, 12, 5, 0, 55,
34, 84000, ...)`, the time a run was queued). Longer numbers (SSNs, phone numbers) are still
looked for there, and ZIPs everywhere else.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

TOKEN = re.compile(r"[0-9a-z]+")
# The numeric fields of a Python date-time's repr: `DateTime(2026, 12, 5, 0, 55, 34, 84000, ...`
# (pendulum's, as Airflow logs it) or `datetime.datetime(2026, 12, 5, 0, 55, 34, 84000`
DATE_TIME_REPR = re.compile(r"\b(?:DateTime|datetime)\((?:\d+, ){2,6}\d+")

# (identifier class, raw table, SQL expression giving the identifier as text[, which rows])
# Practitioners are clinicians, not patients: their names and ids are not looked for.
IDENTIFIER_COLUMNS = [
    ("medical_record_number", "raw_ehr.patients", "patient_id"),
    ("names", "raw_ehr.patients", "first_name || ' ' || last_name"),
    ("social_security_number", "raw_ehr.patients", "ssn"),
    ("postal_address", "raw_ehr.patients", "street_address"),
    ("geographic_subdivision", "raw_ehr.patients", "left(zip_code, 5)"),
    ("telephone_number", "raw_ehr.patients", "phone"),
    ("email_address", "raw_ehr.patients", "email"),
    ("dates", "raw_ehr.patients", "birth_date"),
    ("dates", "raw_ehr.patients", "death_date"),
    ("medical_record_number", "raw_ehr.encounters", "patient_id"),
    ("dates", "raw_ehr.encounters", "visit_date"),
    ("medical_record_number", "raw_claims.claims", "patient_id"),
    ("account_number", "raw_claims.claims", "claim_id"),
    ("health_plan_beneficiary_number", "raw_claims.claims", "insurance_info__policy_number"),
    ("health_plan_beneficiary_number", "raw_claims.claims", "insurance_info__group_number"),
    ("dates", "raw_claims.claims", "service_date::text"),
    ("medical_record_number", "raw_vitals.readings", "patient_id"),
    ("device_identifier", "raw_vitals.readings", "device_id"),
    ("dates", "raw_vitals.readings", "(\"timestamp\" at time zone 'UTC')::date::text"),
    ("medical_record_number", "raw_research.clinical_trials", "patient_id"),
    ("other_unique_identifier", "raw_research.clinical_trials", "trial_id"),
    ("dates", "raw_research.clinical_trials", "enrollment_date::text"),
    ("other_unique_identifier", "raw_fhir.resources", "id", "resource_type <> 'Practitioner'"),
    ("names", "raw_fhir.resources", "(resource->'name'->0->'given'->>0) || ' ' || (resource->'name'->0->>'family')", "resource_type = 'Patient'"),
    ("medical_record_number", "raw_fhir.resources", "jsonb_path_query_first(resource, '$.identifier[*] ? (@.system == \"urn:healthcare-warehouse:mrn\").value') #>> '{}'", "resource_type = 'Patient'"),
    ("social_security_number", "raw_fhir.resources", "jsonb_path_query_first(resource, '$.identifier[*] ? (@.system == \"http://hl7.org/fhir/sid/us-ssn\").value') #>> '{}'", "resource_type = 'Patient'"),
    ("telephone_number", "raw_fhir.resources", "jsonb_path_query_first(resource, '$.telecom[*] ? (@.system == \"phone\").value') #>> '{}'", "resource_type = 'Patient'"),
    ("email_address", "raw_fhir.resources", "jsonb_path_query_first(resource, '$.telecom[*] ? (@.system == \"email\").value') #>> '{}'", "resource_type = 'Patient'"),
    ("postal_address", "raw_fhir.resources", "resource->'address'->0->'line'->>0", "resource_type = 'Patient'"),
    ("geographic_subdivision", "raw_fhir.resources", "left(resource->'address'->0->>'postalCode', 5)", "resource_type = 'Patient'"),
    ("dates", "raw_fhir.resources", "resource->>'birthDate'", "resource_type = 'Patient'"),
    ("dates", "raw_fhir.resources", "left(resource->'period'->>'start', 10)", "resource_type <> 'Practitioner'"),
    ("dates", "raw_fhir.resources", "left(resource->>'effectiveDateTime', 10)", "resource_type <> 'Practitioner'"),
]  # fmt: skip

DATE_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")

# Quarantined records never reached their raw table (or left it): their identifiers are looked
# for too, each record read as a row of its raw table (source, and the record as that row's
# columns: a FHIR entry keeps its resource whole).
FHIR_ENTRY_AS_ROW = (
    "jsonb_build_object('resource', record->'resource',"
    " 'id', record->'resource'->>'id', 'resource_type', record->'resource'->>'resourceType')"
)
QUARANTINED_FROM = {
    "raw_ehr.patients": ("ehr_patients", "record"),
    "raw_ehr.encounters": ("ehr", "record"),
    "raw_claims.claims": ("claims", "record"),
    "raw_vitals.readings": ("vitals", "record"),
    "raw_research.clinical_trials": ("research", "record"),
    "raw_fhir.resources": ("fhir", FHIR_ENTRY_AS_ROW),
}
JSON_TYPES = ("json", "jsonb")
TEXT_TYPES = ("character varying", "text")
NUMBER_TYPES = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
UNCOMPARED_TYPES = ("uuid", "boolean")
# An identifier of at most this many digits and nothing else is not looked for in number columns.
CHANCE_DIGITS = 6
TEXT_FILES = (".html", ".htm", ".json", ".log", ".txt", ".csv", ".md", ".xml", ".svg")


def tokens(text: str) -> tuple[str, ...]:
    return tuple(TOKEN.findall(text.lower()))


class IdentifierIndex:
    """Every identifier value as a token sequence, found by its first token."""

    def __init__(self, identifiers: dict[str, set[str]]) -> None:
        self.by_first_token: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        self.count = 0
        for identifier_class, values in identifiers.items():
            for value in values:
                value_tokens = tokens(value)
                if value_tokens:
                    self.by_first_token[value_tokens[0]].append((value_tokens, identifier_class))
                    self.count += 1

    def classes_in(self, text: str, number: bool = False) -> set[str]:
        """The classes of the identifiers `text` equals or contains; of a `number`, only those
        too long to be equalled by chance, and in a text, a short number only where it is not
        part of a decimal number (the fraction of 1796078714.28123 is no ZIP)."""
        found = set()
        spans = [(match.group(), match.span()) for match in TOKEN.finditer(text.lower())]
        text_tokens = tuple(token for token, _ in spans)
        date_times = [match.span() for match in DATE_TIME_REPR.finditer(text)]
        for start, token in enumerate(text_tokens):
            for identifier, identifier_class in self.by_first_token.get(token, ()):
                if _short_number(identifier) and (
                    number
                    or _in_a_decimal(text, *spans[start][1])
                    or _within(spans[start][1], date_times)
                ):
                    continue
                if text_tokens[start : start + len(identifier)] == identifier:
                    found.add(identifier_class)
        return found


def _in_a_decimal(text: str, start: int, end: int) -> bool:
    """The digits at text[start:end] are the whole or the fraction part of a decimal number."""
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    return (len(before) == 2 and before[1] == "." and before[0].isdigit()) or (
        len(after) == 2 and after[0] == "." and after[1].isdigit()
    )


def _within(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(start <= span[0] and span[1] <= end for start, end in spans)


def _short_number(identifier: tuple[str, ...]) -> bool:
    return len(identifier) == 1 and identifier[0].isdigit() and len(identifier[0]) <= CHANCE_DIGITS


@dataclass(frozen=True)
class Finding:
    relation: str
    column: str
    identifier_class: str
    values: int

    def __str__(self) -> str:
        return (
            f"{self.relation}.{self.column}: {self.values} value(s) hold a raw "
            f"{self.identifier_class} identifier"
        )


def _quarantined_rows(conn: psycopg.Connection, table: str) -> sql.Composable:
    """The quarantined records of `table`'s source as rows of its columns; a value that does not
    read as its column's type (a date that is no date: the reason it was quarantined) is null."""
    schema, name = table.split(".")
    source, record = QUARANTINED_FROM[table]
    columns = conn.execute(
        "select column_name, data_type, udt_name from information_schema.columns"
        " where table_schema = %s and table_name = %s",
        (schema, name),
    ).fetchall()
    selected = []
    for column, data_type, udt_name in columns:
        text = sql.SQL("(r.record->>{})").format(sql.Literal(column))
        if data_type in JSON_TYPES:
            value = sql.SQL("(r.record->{})").format(sql.Literal(column))
        elif data_type in TEXT_TYPES:
            value = text
        else:
            value = sql.SQL(
                "case when pg_input_is_valid({t}, {u}) then cast({t} as {c}) end"
            ).format(t=text, u=sql.Literal(udt_name), c=sql.Identifier(udt_name))
        selected.append(sql.SQL("{} as {}").format(value, sql.Identifier(column)))
    return sql.SQL(
        "(select {} from (select {} as record from quarantine.rejected_records"
        " where source = {}) as r) as held"
    ).format(sql.SQL(", ").join(selected), sql.SQL(record), sql.Literal(source))


def raw_identifiers(
    warehouse: Warehouse, role: str = "steward", quarantined: bool = True
) -> dict[str, set[str]]:
    """Every identifier value in the raw schemas and (unless not `quarantined`: the gate's
    `transformer` may not read quarantine, whose records no build reads either) in quarantine, by
    class, read as `role`."""
    identifiers: dict[str, set[str]] = defaultdict(set)
    with psycopg.connect(**warehouse.connect_kwargs(role)) as conn:
        for identifier_class, table, expression, *rows_wanted in IDENTIFIER_COLUMNS:
            if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is None:
                continue
            relations = [sql.Identifier(*table.split("."))]
            if quarantined:
                relations.append(_quarantined_rows(conn, table))
            for relation in relations:
                rows = conn.execute(
                    sql.SQL("select distinct ({}) from {} where ({}) <> '' and ({})").format(
                        sql.SQL(expression),
                        relation,
                        sql.SQL(expression),
                        sql.SQL(rows_wanted[0] if rows_wanted else "true"),
                    )
                ).fetchall()
                identifiers[identifier_class].update(str(value) for (value,) in rows if value)
    return dict(identifiers)


def _relations(conn: psycopg.Connection, schema: str) -> dict[str, list[tuple[str, str]]]:
    rows = conn.execute(
        """
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = %s order by table_name, ordinal_position
        """,
        (schema,),
    ).fetchall()
    relations: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for table, column, data_type in rows:
        relations[table].append((column, data_type))
    return relations


def scan_relations(
    warehouse: Warehouse,
    role: str,
    schema: str,
    index: IdentifierIndex,
    dates_allowed: bool = False,
    only: dict[str, list[str]] | None = None,
) -> list[Finding]:
    """Every distinct value of every column `role` can select in `schema`, against `index` (a
    finding counts the distinct values that hold the identifier class). Unless
    `dates_allowed` (a limited data set), a patient's date, or a filled date or timestamp column
    in a relation tied to patients, is a finding too.

    `only`: those relations, those columns of each (what a build schema publishes); of one built
    incrementally (it has `_built_at`), the rows its newest build wrote."""
    findings: list[Finding] = []
    with psycopg.connect(**warehouse.connect_kwargs(role)) as conn:
        for table, every_column in _relations(conn, schema).items():
            if only is not None and table not in only:
                continue
            columns = [c for c in every_column if only is None or c[0] in only[table]]
            names = [column for column, _ in columns]
            tied_to_patients = "patient_key" in names
            # a uuid or a flag holds none: its values are never compared
            scanned = [(c, t) for c, t in columns if t not in UNCOMPARED_TYPES]
            counts: Counter[tuple[str, str]] = Counter()
            relation = sql.Identifier(schema, table)
            rows = sql.SQL("true")
            if only is not None and "_built_at" in (column for column, _ in every_column):
                rows = sql.SQL("_built_at = (select max(_built_at) from {})").format(relation)
            # each column's distinct values, in one query: (its position, the value as text)
            query = sql.SQL(" union all ").join(
                sql.SQL(
                    "select {}, {}::text from {} where {} and {} is not null group by 2"
                ).format(
                    sql.Literal(position),
                    sql.Identifier(column),
                    relation,
                    rows,
                    sql.Identifier(column),
                )
                for position, (column, _) in enumerate(scanned)
            )
            if scanned:
                with conn.cursor(name=f"scan_{table}") as cursor:
                    cursor.itersize = 10_000
                    for position, value in cursor.execute(query):
                        column, data_type = scanned[position]
                        for identifier_class in index.classes_in(value, data_type in NUMBER_TYPES):
                            if identifier_class != "dates" or tied_to_patients:
                                counts[column, identifier_class] += 1
            for (column, identifier_class), values in sorted(counts.items()):
                findings.append(Finding(f"{schema}.{table}", column, identifier_class, values))
            if tied_to_patients and not dates_allowed:
                findings.extend(_filled_date_columns(conn, schema, table, columns))
    return findings


def _filled_date_columns(
    conn: psycopg.Connection, schema: str, table: str, columns: Iterable[tuple[str, str]]
) -> list[Finding]:
    dated = [column for column, data_type in columns if data_type in DATE_TYPES]
    if not dated:
        return []
    counts = conn.execute(
        sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(sql.SQL("count({})").format(sql.Identifier(c)) for c in dated),
            sql.Identifier(schema, table),
        )
    ).fetchone()
    return [
        Finding(f"{schema}.{table}", column, "dates (a full date column)", filled)
        for column, filled in zip(dated, counts, strict=True)
        if filled
    ]


def known_non_identifiers(warehouse: Warehouse, also: Iterable[str] = ()) -> list[str]:
    """Strings that hold a date but no patient's, though the date may equal a visit date: the name
    of every file the ledger recorded (`ehr_2024-03-15_001.csv`, its extract's date), and `also`
    (for Airflow's logs, the DAGs' start date as its scheduling lines print it,
    `2024-01-01 00:00:00+00:00`: orchestration.dag_settings.NON_IDENTIFIERS)."""
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        names = [row[0] for row in conn.execute("select distinct file_name from audit.file_ledger")]
    return [*names, *also]


def scan_files(
    folders: Iterable[Path], index: IdentifierIndex, non_identifiers: Iterable[str] = ()
) -> list[Finding]:
    """Every text file under `folders` (reports, Data Docs, logs), line by line, against `index`,
    the `non_identifiers` a line mentions (known_non_identifiers) left out. A finding names the
    file and the class, never the value."""
    names = sorted(set(non_identifiers), key=len, reverse=True)
    landed = re.compile("|".join(map(re.escape, names))) if names else None
    findings: list[Finding] = []
    for folder in folders:
        if not folder.exists():
            raise FileNotFoundError(f"nothing to scan at {folder}")
        paths = [folder] if folder.is_file() else sorted(folder.rglob("*"))
        for path in paths:
            if not path.is_file() or path.suffix not in TEXT_FILES:
                continue
            counts: Counter[str] = Counter()
            with path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if landed is not None:
                        line = landed.sub(" ", line)
                    for identifier_class in index.classes_in(line):
                        counts[identifier_class] += 1
            for identifier_class, lines in sorted(counts.items()):
                findings.append(Finding(str(path), "text", identifier_class, lines))
    return findings
