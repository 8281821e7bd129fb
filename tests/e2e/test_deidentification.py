"""The de-identified layer on the demo data, every identifier filled in, every source landed.

The module's warehouse lives through four stages, each a real dbt build on a throwaway
PostgreSQL:
  1. only the API sources have landed (FHIR Patients, with their MRNs, and trials): the patients
     they name get their keys;
  2. the file sources land (registry, encounters, claims, vitals): build, gate and publish;
  3. `dbt build --full-refresh` into the other build schema;
  4. a limited data set build of the deidentified models (deid_policy limited_data_set) into the
     other build schema, never published.
The tests then read what each stage left behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import psycopg
import pytest
import yaml

from cli.run import DEMO_WRITERS
from common import settings
from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from demo.research_db import ensure_database, fill
from orchestration import pipeline
from tests.dbt.lineage import Lineage
from warehouse import limited_data_set
from warehouse.phi_scan import IdentifierIndex, raw_identifiers, scan_relations

pytestmark = pytest.mark.e2e

DBT_PROJECT = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
IDENTIFIER_CLASSES = DBT_PROJECT["vars"]["hipaa_identifier_classes"]
DIRECT_CLASSES = {name for name, kind in IDENTIFIER_CLASSES.items() if kind == "direct"}
TREATMENTS = {"dropped", "generalised", "replaced", "kept", "titled", "listed", "formatted"}
AGREEMENT = "irb_2026_17"  # a data use agreement, for its limited data set

# The columns of each source that hold an identifier: each must be classified as one.
KNOWN_IDENTIFIERS = {
    "ehr.patients": [
        "patient_id", "first_name", "last_name", "birth_date", "death_date", "ssn",
        "street_address", "city", "zip_code", "phone", "email",
    ],
    "ehr.encounters": ["patient_id", "visit_date"],
    "claims.claims": [
        "claim_id", "patient_id", "service_date", "insurance_info__policy_number",
        "insurance_info__group_number",
    ],
    "vitals.readings": ["device_id", "patient_id", "timestamp", "location__room"],
    "research.clinical_trials": ["trial_id", "patient_id", "enrollment_date"],
    "fhir.resources": ["id", "resource"],
}  # fmt: skip

CROSSWALK_SNAPSHOT = """
select 'patient' as kind, patient_id as identifier, patient_key::text as key
from crosswalk.patient_crosswalk
union all
select 'anchor', patient_id, anchor_at::text from crosswalk.patient_anchors
union all
select identifier_type, identifier, surrogate_key::text from crosswalk.identifier_crosswalk
union all
select 'device', device_id, device_key::text from crosswalk.device_crosswalk
"""


@dataclass
class Stages:
    keys_after_api_sources: dict[tuple[str, str], str]
    keys_after_file_sources: dict[tuple[str, str], str]
    keys_after_full_refresh: dict[tuple[str, str], str]
    published_schema: str
    limited_data_set_schema: str
    limited_data_set_password: str  # its recipients' role's


def _query(tw, role: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**tw.warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement, params).fetchall()


def _crosswalk(tw) -> dict[tuple[str, str], str]:
    return {
        (kind, ident): key for kind, ident, key in _query(tw, "transformer", CROSSWALK_SNAPSHOT)
    }


def _dbt(tw, *args: str, build_schema: str, run_id: str, target: str = "dbt_target") -> None:
    result = tw.dbt(*args, build_schema=build_schema, run_id=run_id, target=target)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.fixture(scope="module")
def stages(test_warehouse) -> Stages:
    tw = test_warehouse
    ensure_database(tw.warehouse)
    fill(tw.warehouse, trials=40)
    server = DemoFhirServer(
        FhirStore(demo_resources(patients=20)),
        "healthcare-warehouse",
        os.environ["FHIR_CLIENT_SECRET"],
    )
    os.environ["FHIR_BASE_URL"] = server.start()
    try:
        pipeline.land_fhir_api("run_1")
    finally:
        server.stop()
    pipeline.land_research_db("run_1")
    _dbt(tw, "build", build_schema=pipeline.choose_build_schema(), run_id="run_1")
    after_api = _crosswalk(tw)

    for source, write in DEMO_WRITERS.items():
        write(tw.landing_dir / source)
        pipeline.land_files(source, "run_2", settle_seconds=0)
    pipeline.validate_landed_batches("run_2")
    published = pipeline.choose_build_schema()
    _dbt(tw, "build", build_schema=published, run_id="run_2")
    pipeline.quality_gate(published, "run_2")
    pipeline.publish(published, "run_2")
    after_files = _crosswalk(tw)

    other = pipeline.choose_build_schema()
    _dbt(tw, "build", "--full-refresh", build_schema=other, run_id="run_3")
    after_full_refresh = _crosswalk(tw)

    # a data use agreement's limited data set, in its schema (hcw limited-data-set create,
    # build), its compiled SQL in a target folder of its own: dbt_target keeps the Safe Harbor
    # build's
    password = limited_data_set.create(tw.warehouse, AGREEMENT)
    lds_schema = limited_data_set.schema_of(AGREEMENT)
    target = "dbt_target_limited_data_set"
    built = limited_data_set.build(tw.warehouse, AGREEMENT, "run_4", tw.var_dir / target)
    assert built.returncode == 0, built.stdout[-3000:]
    limited = ("--vars", "{deid_policy: limited_data_set}")
    _dbt(tw, "compile", *limited, build_schema=lds_schema, run_id="run_4", target=target)
    return Stages(after_api, after_files, after_full_refresh, published, lds_schema, password)


@pytest.fixture(scope="module")
def identifiers(test_warehouse, stages) -> IdentifierIndex:
    found = raw_identifiers(test_warehouse.warehouse)
    # every kind of identifier the issue names is in the demo data, so the scan has it to find
    for identifier_class in (
        "names", "medical_record_number", "social_security_number", "telephone_number",
        "email_address", "postal_address", "geographic_subdivision", "device_identifier",
        "health_plan_beneficiary_number", "other_unique_identifier", "dates",
    ):  # fmt: skip
        assert len(found.get(identifier_class, ())) >= 20, identifier_class
    return IdentifierIndex(found)


# --- the classification --------------------------------------------------------------------


def unclassified_columns(manifest: dict) -> list[str]:
    """Raw columns with no valid HIPAA classification or treatment."""
    problems = []
    for source in manifest["sources"].values():
        for name, column in source["columns"].items():
            meta = column.get("meta") or {}
            classes = meta.get("hipaa_identifier")
            classes = classes if isinstance(classes, list) else [classes]
            valid = all(c == "none" or c in IDENTIFIER_CLASSES for c in classes)
            if not valid or meta.get("deid_treatment") not in TREATMENTS:
                problems.append(f"{source['source_name']}.{source['name']}.{name}")
    return problems


@pytest.fixture(scope="module")
def manifest(test_warehouse, stages) -> dict:
    return json.loads((test_warehouse.var_dir / "dbt_target" / "manifest.json").read_text())


def test_every_raw_column_is_declared_and_classified(test_warehouse, manifest):
    assert unclassified_columns(manifest) == []
    declared = {
        (source["schema"], source["name"], column)
        for source in manifest["sources"].values()
        for column in source["columns"]
    }
    landed = _query(
        test_warehouse,
        "steward",
        "select table_schema, table_name, column_name from information_schema.columns"
        " where table_schema like 'raw\\_%%' and table_name not like '\\_dlt\\_%%'",
    )
    assert len(landed) > 60
    assert set(landed) - declared == set()


def test_a_column_without_classification_is_caught(manifest):
    broken = json.loads(json.dumps(manifest))
    source = broken["sources"]["source.healthcare_warehouse.ehr.patients"]
    source["columns"]["ssn"]["meta"] = {}
    source["columns"]["email"]["meta"]["hipaa_identifier"] = "emails"  # not a HIPAA class
    assert unclassified_columns(broken) == ["ehr.patients.ssn", "ehr.patients.email"]


def test_known_identifier_columns_are_classified_as_identifiers(manifest):
    for table, columns in KNOWN_IDENTIFIERS.items():
        source_name, table_name = table.split(".")
        source = manifest["sources"][f"source.healthcare_warehouse.{source_name}.{table_name}"]
        for column in columns:
            classes = source["columns"][column]["meta"]["hipaa_identifier"]
            assert classes not in ("none", None, []), f"{table}.{column} is classified as none"


def test_each_policys_lineage_is_read_from_its_own_compiled_sql(test_warehouse, stages):
    """The Safe Harbor target is not overwritten by the limited data set's build."""
    compiled = [
        Lineage(test_warehouse.var_dir / target).compiled_sql("deid_patients")
        for target in ("dbt_target", "dbt_target_limited_data_set")
    ]
    assert compiled[0] != compiled[1]


@pytest.mark.parametrize("target", ["dbt_target", "dbt_target_limited_data_set"])
def test_no_deidentified_column_comes_from_a_direct_identifier(test_warehouse, stages, target):
    lineage = Lineage(test_warehouse.var_dir / target)
    deidentified = [name for name in lineage.models if name.startswith("deid_")]
    assert len(deidentified) >= 8
    for model in deidentified:
        for column in lineage.output_columns(model):
            for origin in lineage.origins(model, column):
                where = f"{model}.{column} <- {origin.relation}.{origin.column}"
                assert origin.hipaa_identifier is not None, f"{where} is not classified"
                classes = origin.hipaa_identifier
                classes = set(classes if isinstance(classes, list) else [classes])
                assert not classes & DIRECT_CLASSES, f"{where} is a direct identifier"


def test_the_lineage_check_sees_identifiers_where_they_are(test_warehouse, stages):
    lineage = Lineage(test_warehouse.var_dir / "dbt_target")
    origins = lineage.origins("int_patients_keyed", "zip_code")
    assert {o.hipaa_identifier for o in origins} == {"geographic_subdivision"}
    origins = lineage.origins("stg_ehr__patients", "ssn")
    assert [(o.relation.split(".")[-1], o.column) for o in origins] == [("patients", "ssn")]
    assert origins[0].hipaa_identifier == "social_security_number"


# --- what analysts see ---------------------------------------------------------------------


def test_analyst_sees_no_identifier_value_and_no_full_date(
    test_warehouse, stages, identifiers, manifest
):
    published = _query(
        test_warehouse,
        "analyst",
        "select distinct table_name from information_schema.columns"
        " where table_schema = 'analytics'",
    )
    # every mart and every de-identified table is published (a versioned one's latest version
    # also as <name>_v<N>), so every one is scanned
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    expected = {
        m["name"] for m in models if m["name"].startswith(("dim_", "fct_", "mart_", "deid_"))
    }
    expected |= {f"{m['name']}_v{m['version']}" for m in models if m.get("version") is not None}
    assert len(expected) >= 25
    assert expected == {name for (name,) in published}
    findings = scan_relations(test_warehouse.warehouse, "analyst", "analytics", identifiers)
    assert findings == [], "\n".join(map(str, findings))


def test_the_scan_finds_identifiers_where_they_are(test_warehouse, stages, identifiers):
    findings = scan_relations(test_warehouse.warehouse, "transformer", "staging", identifiers)
    found = {(f.relation, f.column, f.identifier_class) for f in findings}
    assert ("staging.stg_ehr__patients", "ssn", "social_security_number") in found
    assert ("staging.stg_vitals__readings", "device_id", "device_identifier") in found
    # a limited data set's dates are found when dates are not allowed
    findings = scan_relations(
        test_warehouse.warehouse, "transformer", stages.limited_data_set_schema, identifiers
    )
    found = {(f.relation.split(".")[1], f.column, f.identifier_class) for f in findings}
    assert ("deid_encounters", "visit_date", "dates (a full date column)") in found
    assert ("deid_encounters", "visit_date", "dates") in found


def test_a_limited_data_set_keeps_dates_and_zip_codes_but_no_direct_identifier(
    test_warehouse, stages, identifiers
):
    findings = scan_relations(
        test_warehouse.warehouse,
        "transformer",
        stages.limited_data_set_schema,
        identifiers,
        dates_allowed=True,
    )
    deidentified = [f for f in findings if f.relation.split(".")[1].startswith("deid_")]
    classes = {f.identifier_class for f in deidentified}
    assert classes == {"dates", "geographic_subdivision"}, "\n".join(map(str, deidentified))
    filled = _query(
        test_warehouse,
        "transformer",
        f"select count(visit_date), count(*) from {stages.limited_data_set_schema}.deid_encounters",
    )[0]
    assert filled[0] == filled[1] > 0


def test_a_limited_data_set_is_refused_anywhere_but_its_own_schema(test_warehouse, stages):
    """dbt refuses the limited_data_set policy in a build schema; publish refuses to expose any
    schema but a build schema to analyst."""
    refused = test_warehouse.dbt(
        "build", "--select", "deid_patients", "--vars", "{deid_policy: limited_data_set}",
        build_schema=stages.published_schema, run_id="run_lds_refused",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "a limited data set builds into a schema of its own" in refused.stdout
    with pytest.raises(ValueError, match="is not a build schema"):
        pipeline.publish(stages.limited_data_set_schema, "run_4")


def test_only_the_agreements_recipients_read_its_limited_data_set(test_warehouse, stages):
    schema = stages.limited_data_set_schema
    warehouse = test_warehouse.warehouse
    with psycopg.connect(
        host=warehouse.host,
        port=warehouse.port,
        dbname=warehouse.database,
        user=schema,
        password=stages.limited_data_set_password,
    ) as conn:
        dated, visits = conn.execute(
            f"select count(visit_date), count(*) from {schema}.fct_encounters"
        ).fetchone()
        assert dated == visits > 0  # dates kept: a limited data set
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from analytics.fct_encounters")
    for role in ("analyst", "steward"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _query(test_warehouse, role, f"select count(*) from {schema}.fct_encounters")


def test_safe_harbor_publishes_ages_over_89_as_one_category(test_warehouse, stages):
    ages = _query(
        test_warehouse,
        "analyst",
        "select age_at_first_event from analytics.deid_patients"
        " where age_at_first_event = '90+' or age_at_first_event::int > 89",
    )
    assert ages and all(age == "90+" for (age,) in ages)
    # no year of any kind on a patient's row (docs/deidentification.md, "Dates")
    years = _query(
        test_warehouse,
        "analyst",
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'analytics' and column_name like '%%\\_year'"
        " and table_name in (select table_name from information_schema.columns"
        " where table_schema = 'analytics' and column_name = 'patient_key')",
    )
    assert years == []
    restricted = _query(
        test_warehouse, "analyst", "select count(*) from analytics.deid_patients where zip3 = '000'"
    )[0][0]
    assert restricted >= 10  # the demo puts one patient in twenty in a restricted ZIP3 area


# --- the crosswalk -------------------------------------------------------------------------


def test_keys_survive_a_full_refresh(stages):
    assert stages.keys_after_full_refresh == stages.keys_after_file_sources


def test_a_patient_keeps_the_key_the_first_source_gave_them(test_warehouse, stages):
    patients_first_seen_in_fhir = {
        ident: key
        for (kind, ident), key in stages.keys_after_api_sources.items()
        if kind == "patient"
    }
    assert len(patients_first_seen_in_fhir) >= 20
    for (kind, ident), key in stages.keys_after_api_sources.items():
        assert stages.keys_after_file_sources[kind, ident] == key
    # the EHR's encounters of those patients, landed later, carry the keys FHIR's gave them
    encounter_keys = {
        key
        for (key,) in _query(
            test_warehouse,
            "analyst",
            "select distinct patient_key::text from analytics.fct_encounters",
        )
    }
    assert len(encounter_keys & set(patients_first_seen_in_fhir.values())) >= 5


def test_every_source_resolves_to_one_key_per_patient(test_warehouse, stages):
    per_patient = _query(
        test_warehouse,
        "transformer",
        """
        select identities.patient_id, count(distinct keyed.patient_key)
        from intermediate.int_patient_identities_resolved as identities
        inner join intermediate.int_patients_keyed as keyed
            on identities.patient_id = keyed.patient_id
        group by identities.patient_id
        """,
    )
    assert per_patient and all(keys == 1 for _, keys in per_patient)
    sources = _query(
        test_warehouse,
        "transformer",
        "select count(distinct source_name) from intermediate.int_patient_identities_resolved"
        " where patient_id = (select patient_id from intermediate.int_patient_identities_resolved"
        " where source_name = 'fhir' limit 1)",
    )[0][0]
    assert sources >= 3


def test_only_transformer_reads_the_crosswalk(test_warehouse, stages):
    for role in ("analyst", "steward", "loader"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _query(test_warehouse, role, "select 1 from crosswalk.patient_crosswalk limit 1")
