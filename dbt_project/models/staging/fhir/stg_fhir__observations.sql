with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Observation'
),

renamed as (
    select
        id::text as fhir_observation_id,
        server as fhir_server,
        replace(resource -> 'subject' ->> 'reference', 'Patient/', '') as fhir_patient_id,
        replace(resource -> 'encounter' ->> 'reference', 'Encounter/', '') as fhir_encounter_id,
        resource -> 'code' -> 'coding' -> 0 ->> 'code' as loinc_code,
        resource -> 'code' -> 'coding' -> 0 ->> 'display' as loinc_display,
        (resource -> 'valueQuantity' ->> 'value')::numeric as value_as_sent,
        resource -> 'valueQuantity' ->> 'code' as ucum_unit_as_sent,
        resource ->> 'status' as observation_status,
        (resource ->> 'effectiveDateTime')::timestamptz as observed_at,
        last_updated as source_updated_at
    from resources
),

-- temperatures to Celsius whatever unit the server used; other vitals keep theirs
normalised as (
    select
        renamed.*,
        case
            when ucum_unit_as_sent = '[degF]' then round((value_as_sent - 32) * 5 / 9, 2)
            else value_as_sent
        end as value,
        case when ucum_unit_as_sent = '[degF]' then 'Cel' else ucum_unit_as_sent end as ucum_unit
    from renamed
),

-- a logical id is unique only within its server: each reference qualified by it
referenced as (
    select
        normalised.*,
        {{ fhir_reference('fhir_server', 'Observation', 'fhir_observation_id') }}
            as fhir_observation_reference,
        {{ fhir_reference('fhir_server', 'Patient', 'fhir_patient_id') }} as fhir_patient_reference,
        {{ fhir_reference('fhir_server', 'Encounter', 'fhir_encounter_id') }}
            as fhir_encounter_reference
    from normalised
)

select * from referenced
