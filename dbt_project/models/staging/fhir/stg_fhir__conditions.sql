{#-
    FHIR Conditions as US Core profiles them (US Core Condition Encounter Diagnosis and Problems
    and Health Concerns, http://hl7.org/fhir/us/core/StructureDefinition-us-core-condition-encounter-diagnosis.html):
    one row per Condition, its diagnosis by code system across every coding, never by position.

    - `icd10cm_code`: the first ICD-10-CM coding (http://hl7.org/fhir/sid/icd-10-cm), upper-cased;
      `snomed_code`: the first SNOMED CT one. US Core allows either; a Condition coded in SNOMED CT
      only has no ICD-10-CM code here (no SNOMED-to-ICD map is shipped: a named simplification).
    - Status: a Condition whose verificationStatus is `entered-in-error` ("should not have
      existed") or `refuted` (ruled out) is no diagnosis and is left out
      (http://hl7.org/fhir/R4/valueset-condition-ver-status.html); `clinical_status` (active,
      resolved, ...) is kept.
    - `category`: encounter-diagnosis or problem-list-item (or health-concern), the first coding's.
-#}

with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Condition'
),

statuses as (
    select
        resources.*,
        {{ fhir_coding_code(
            "resource -> 'verificationStatus'",
            'http://terminology.hl7.org/CodeSystem/condition-ver-status'
        ) }} as verification_code,
        {{ fhir_coding_code(
            "resource -> 'clinicalStatus'",
            'http://terminology.hl7.org/CodeSystem/condition-clinical'
        ) }} as clinical_code
    from resources
),

diagnoses as (
    select * from statuses
    where coalesce(verification_code, '') not in ('entered-in-error', 'refuted')
),

renamed as (
    select
        id::text as fhir_condition_id,
        server as fhir_server,
        {{ fhir_literal_reference('server', "resource -> 'subject' ->> 'reference'", 'Patient') }}
            as fhir_patient_reference,
        {{ fhir_literal_reference('server', "resource -> 'encounter' ->> 'reference'", 'Encounter') }}
            as fhir_encounter_reference,
        upper({{ fhir_coding_code("resource -> 'code'", 'http://hl7.org/fhir/sid/icd-10-cm') }})
            as icd10cm_code,
        {{ fhir_coding_code("resource -> 'code'", 'http://snomed.info/sct') }} as snomed_code,
        clinical_code as clinical_status,
        verification_code as verification_status,
        resource -> 'category' -> 0 -> 'coding' -> 0 ->> 'code' as category,
        {{ fhir_instant(
            "coalesce(resource ->> 'onsetDateTime', resource -> 'onsetPeriod' ->> 'start')"
        ) }} as onset_at,
        {{ fhir_instant("resource ->> 'recordedDate'") }} as recorded_at,
        last_updated as source_updated_at
    from diagnoses
),

referenced as (
    select
        renamed.*,
        {{ fhir_reference('fhir_server', 'Condition', 'fhir_condition_id') }}
            as fhir_condition_reference
    from renamed
)

select * from referenced
