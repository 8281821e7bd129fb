with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Encounter'
),

renamed as (
    select
        id::text as fhir_encounter_id,
        server as fhir_server,
        replace(resource -> 'subject' ->> 'reference', 'Patient/', '') as fhir_patient_id,
        replace(
            resource -> 'participant' -> 0 -> 'individual' ->> 'reference', 'Practitioner/', ''
        ) as fhir_practitioner_id,
        resource ->> 'status' as encounter_status,
        resource -> 'class' ->> 'code' as encounter_class,
        (resource -> 'period' ->> 'start')::timestamptz as started_at,
        (resource -> 'period' ->> 'end')::timestamptz as ended_at,
        last_updated as source_updated_at
    from resources
),

-- a logical id is unique only within its server: each reference qualified by it
referenced as (
    select
        renamed.*,
        {{ fhir_reference('fhir_server', 'Encounter', 'fhir_encounter_id') }}
            as fhir_encounter_reference,
        {{ fhir_reference('fhir_server', 'Patient', 'fhir_patient_id') }} as fhir_patient_reference
    from renamed
)

select * from referenced
