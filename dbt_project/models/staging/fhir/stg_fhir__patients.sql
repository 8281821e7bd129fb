with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Patient'
),

renamed as (
    select
        id::text as fhir_patient_id,
        server as fhir_server,
        {{ fhir_reference('server', 'Patient', 'id::text') }} as fhir_patient_reference,
        {{ normalise_patient_id(
            fhir_element_value('resource', 'identifier', 'system', 'urn:healthcare-warehouse:mrn')
        ) }} as mrn,
        {{ fhir_element_value('resource', 'identifier', 'system', 'http://hl7.org/fhir/sid/us-ssn') }} as ssn,
        resource -> 'name' -> 0 ->> 'family' as family_name,
        resource -> 'name' -> 0 -> 'given' ->> 0 as given_name,
        resource ->> 'gender' as sex,
        -- FHIR allows a partial birthDate (a year, a month): only a full date is a date here
        case
            when resource ->> 'birthDate' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                then (resource ->> 'birthDate')::date
        end as birth_date,
        left(resource ->> 'deceasedDateTime', 10)::date as death_date,
        {{ fhir_element_value('resource', 'telecom', 'system', 'phone') }} as phone,
        {{ fhir_element_value('resource', 'telecom', 'system', 'email') }} as email,
        resource -> 'address' -> 0 -> 'line' ->> 0 as street_address,
        resource -> 'address' -> 0 ->> 'city' as city,
        resource -> 'address' -> 0 ->> 'state' as state,
        left(resource -> 'address' -> 0 ->> 'postalCode', 5) as zip_code,
        last_updated as source_updated_at
    from resources
)

select * from renamed
