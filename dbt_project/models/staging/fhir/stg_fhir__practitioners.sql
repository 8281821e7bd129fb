with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Practitioner'
),

renamed as (
    select
        id::text as fhir_practitioner_id,
        server as fhir_server,
        {{ fhir_reference('server', 'Practitioner', 'id::text') }} as fhir_practitioner_reference,
        {{ fhir_element_value('resource', 'identifier', 'system', 'http://hl7.org/fhir/sid/us-npi') }} as npi,
        resource -> 'name' -> 0 ->> 'family' as family_name,
        resource -> 'name' -> 0 -> 'given' ->> 0 as given_name,
        last_updated as source_updated_at
    from resources
)

select * from renamed
