{#-
    Practitioners: every one pulled, and every one contained in another resource (an Encounter's
    attending the EHR has no directory entry for, referenced there as `#id`), by its reference
    across servers (macros/fhir_reference.sql).
-#}

with

resources as (
    select * from {{ fhir_pulled_and_contained('Practitioner') }} as practitioners
),

renamed as (
    select
        fhir_resource_id as fhir_practitioner_id,
        fhir_server,
        fhir_resource_reference as fhir_practitioner_reference,
        container_reference,
        {{ fhir_element_value('resource', 'identifier', 'system', 'http://hl7.org/fhir/sid/us-npi') }} as npi,
        resource -> 'name' -> 0 ->> 'family' as family_name,
        resource -> 'name' -> 0 -> 'given' ->> 0 as given_name,
        last_updated as source_updated_at
    from resources
)

select * from renamed
