{#-
    FHIR Procedures as US Core profiles them (http://hl7.org/fhir/us/core/StructureDefinition-us-core-procedure.html):
    one row per Procedure, its code by system across every coding.

    - `cpt_code`: the first CPT coding (http://www.ama-assn.org/go/cpt), `hcpcs_code` the first
      HCPCS Level II one (https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets),
      `snomed_code` the first SNOMED CT one, `icd10pcs_code` the first ICD-10-PCS one
      (http://www.cms.gov/Medicare/Coding/ICD10): US Core's procedure codes.
    - Status (http://hl7.org/fhir/R4/valueset-event-status.html): `entered-in-error` and
      `not-done` (never performed) are left out; the others keep their status.
    - When: performedDateTime, or performedPeriod's start and end.
-#}

with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Procedure'
),

performed as (
    select * from resources
    where coalesce(resource ->> 'status', '') not in ('entered-in-error', 'not-done')
),

renamed as (
    select
        id::text as fhir_procedure_id,
        server as fhir_server,
        {{ fhir_literal_reference('server', "resource -> 'subject' ->> 'reference'", 'Patient') }}
            as fhir_patient_reference,
        {{ fhir_literal_reference('server', "resource -> 'encounter' ->> 'reference'", 'Encounter') }}
            as fhir_encounter_reference,
        {{ fhir_coding_code("resource -> 'code'", 'http://www.ama-assn.org/go/cpt') }} as cpt_code,
        {{ fhir_coding_code("resource -> 'code'", 'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets') }}
            as hcpcs_code,
        {{ fhir_coding_code("resource -> 'code'", 'http://www.cms.gov/Medicare/Coding/ICD10') }}
            as icd10pcs_code,
        {{ fhir_coding_code("resource -> 'code'", 'http://snomed.info/sct') }} as snomed_code,
        resource ->> 'status' as procedure_status,
        {{ fhir_instant(
            "coalesce(resource ->> 'performedDateTime', resource -> 'performedPeriod' ->> 'start')"
        ) }} as performed_at,
        {{ fhir_instant("resource -> 'performedPeriod' ->> 'end'") }} as performed_until,
        last_updated as source_updated_at
    from performed
),

referenced as (
    select
        renamed.*,
        {{ fhir_reference('fhir_server', 'Procedure', 'fhir_procedure_id') }}
            as fhir_procedure_reference
    from renamed
)

select * from referenced
