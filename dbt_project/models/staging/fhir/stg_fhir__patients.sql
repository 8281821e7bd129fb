with

resources as (
    select * from {{ source('fhir', 'resources') }}
    where resource_type = 'Patient'
),

renamed as (
    select
        id::text as fhir_patient_id,
        {{ fhir_element_value('resource', 'identifier', 'system', 'urn:healthcare-warehouse:mrn') }} as mrn,
        {{ fhir_element_value('resource', 'identifier', 'system', 'http://hl7.org/fhir/sid/us-ssn') }} as ssn,
        resource -> 'name' -> 0 ->> 'family' as family_name,
        resource -> 'name' -> 0 -> 'given' ->> 0 as given_name,
        resource ->> 'gender' as gender,
        (resource ->> 'birthDate')::date as birth_date,
        {{ fhir_element_value('resource', 'telecom', 'system', 'phone') }} as phone,
        {{ fhir_element_value('resource', 'telecom', 'system', 'email') }} as email,
        resource -> 'address' -> 0 -> 'line' ->> 0 as street_address,
        resource -> 'address' -> 0 ->> 'city' as city,
        resource -> 'address' -> 0 ->> 'state' as state,
        resource -> 'address' -> 0 ->> 'postalCode' as postal_code,
        last_updated as source_updated_at
    from resources
)

select * from renamed
