{#-
    Every FHIR resource pulled and every resource contained in one, by its reference across
    servers, with its identifiers: what a reference may resolve to (int_fhir_references_resolved).
    A contained resource's reference is its container's followed by `#id`
    (macros/fhir_reference.sql, fhir_pulled_and_contained).
-#}

with

resources as (
    select * from {{ fhir_pulled_and_contained() }} as resources
),

renamed as (
    select
        fhir_server,
        resource_type,
        fhir_resource_id,
        fhir_resource_reference,
        container_reference,
        case
            when jsonb_typeof(resource -> 'identifier') = 'array' then resource -> 'identifier'
            else '[]'::jsonb
        end as identifiers,
        last_updated as source_updated_at
    from resources
)

select * from renamed
