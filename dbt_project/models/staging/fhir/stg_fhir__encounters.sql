with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Encounter'
),

renamed as (
    select
        id::text as fhir_encounter_id,
        server as fhir_server,
        {{ fhir_literal_reference('server', "resource -> 'subject' ->> 'reference'", 'Patient') }}
            as fhir_patient_reference,
        replace(
            resource -> 'participant' -> 0 -> 'individual' ->> 'reference', 'Practitioner/', ''
        ) as fhir_practitioner_id,
        resource ->> 'status' as encounter_status,
        resource -> 'class' ->> 'code' as encounter_class,
        -- how the stay ended, in NUBC's patient discharge status (UB-04 form locator 17, as claims
        -- carry it; US Core's preferred binding, us-core-discharge-disposition, under its current
        -- system or the one US Core 4 and R4's terminology list used) or HL7's discharge
        -- disposition codes (R4's example set): by system, never by position
        coalesce(
            {{ fhir_coding_code(
                "resource -> 'hospitalization' -> 'dischargeDisposition'",
                'https://www.nubc.org/CodeSystem/PatDischargeStatus'
            ) }},
            {{ fhir_coding_code(
                "resource -> 'hospitalization' -> 'dischargeDisposition'",
                'http://www.nubc.org/patient-discharge'
            ) }}
        ) as nubc_discharge_status,
        {{ fhir_coding_code(
            "resource -> 'hospitalization' -> 'dischargeDisposition'",
            'http://terminology.hl7.org/CodeSystem/discharge-disposition'
        ) }} as hl7_discharge_disposition,
        (resource -> 'period' ->> 'start')::timestamptz as started_at,
        (resource -> 'period' ->> 'end')::timestamptz as ended_at,
        last_updated as source_updated_at
    from resources
),

-- a logical id is unique only within its server: each reference qualified by it; the subject's in
-- any form that names its Patient by itself (relative, absolute, urn:uuid: macros/fhir_reference.sql)
referenced as (
    select
        renamed.*,
        {{ fhir_reference('fhir_server', 'Encounter', 'fhir_encounter_id') }}
            as fhir_encounter_reference,
        substring(fhir_patient_reference from '/Patient/([^/]+)$') as fhir_patient_id
    from renamed
)

select * from referenced
