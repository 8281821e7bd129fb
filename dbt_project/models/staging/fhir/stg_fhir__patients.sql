with

resources as (
    select * from {{ source('fhir', 'resources') }}
    where resource_type = 'Patient'
),

renamed as (
    select
        id::text as fhir_patient_id,
        (
            select identifier ->> 'value'
            from jsonb_array_elements(resource -> 'identifier') as identifier
            where identifier ->> 'system' = 'urn:healthcare-warehouse:mrn'
            limit 1
        ) as mrn,
        (
            select identifier ->> 'value'
            from jsonb_array_elements(resource -> 'identifier') as identifier
            where identifier ->> 'system' = 'http://hl7.org/fhir/sid/us-ssn'
            limit 1
        ) as ssn,
        resource -> 'name' -> 0 ->> 'family' as family_name,
        resource -> 'name' -> 0 -> 'given' ->> 0 as given_name,
        resource ->> 'gender' as gender,
        (resource ->> 'birthDate')::date as birth_date,
        (
            select telecom ->> 'value'
            from jsonb_array_elements(resource -> 'telecom') as telecom
            where telecom ->> 'system' = 'phone'
            limit 1
        ) as phone,
        (
            select telecom ->> 'value'
            from jsonb_array_elements(resource -> 'telecom') as telecom
            where telecom ->> 'system' = 'email'
            limit 1
        ) as email,
        resource -> 'address' -> 0 -> 'line' ->> 0 as street_address,
        resource -> 'address' -> 0 ->> 'city' as city,
        resource -> 'address' -> 0 ->> 'state' as state,
        resource -> 'address' -> 0 ->> 'postalCode' as postal_code,
        last_updated as source_updated_at
    from resources
)

select * from renamed
