{#-
    What each FHIR reference resolves to, in every form R4 and bulk exports write
    (http://hl7.org/fhir/R4/references.html; macros/fhir_reference.sql):

    - relative `Patient/123`, absolute `https://host/base/Patient/123`: that resource, on the
      referring resource's server or on the server the base URL is the key of;
    - `urn:uuid:<uuid>`: the resource on the referring resource's server whose logical id is the
      UUID (exporters such as Synthea write a resource's fullUrl `urn:uuid:<id>`);
    - contained `#id`: the resource of that id contained in the referring resource;
    - conditional `Practitioner?identifier=system|value`, as bulk exports write references to
      practitioners and organizations, and a logical reference (Reference.identifier only): the
      one resource of that type on the referring resource's server with that identifier, as a
      FHIR server's conditional search would find it (`system|value`, `|value` for an identifier
      without a system, `value` for any system; R4 search, token parameters). Of the URL's
      percent-escapes, those of `|`, `:` and `/` are read (a named simplification).

    `outcome`: resolved, not_found (no such resource pulled), other_server (an absolute URL to a
    server not pulled), ambiguous (a conditional reference matching more than one: R4 makes that
    an error), wrong_type (a resource of a type the element does not allow), unrecognised (no
    form above). Nothing is dropped: every reference has a row, and each build records the counts
    by outcome in audit.fhir_reference_counts for the quality report (macros/fhir_reference_counts.sql).
-#}

{{ config(post_hook="{{ record_fhir_reference_counts() }}") }}

with

references_made as (
    select * from {{ ref('stg_fhir__references') }}
),

resources as (
    select * from {{ ref('stg_fhir__resources') }}
),

-- what a conditional search can find: resources on the server, never contained ones
identifiers as (
    select
        resources.fhir_server,
        resources.resource_type,
        resources.fhir_resource_reference,
        identifier ->> 'system' as identifier_system,
        identifier ->> 'value' as identifier_value
    from resources
    cross join lateral jsonb_array_elements(resources.identifiers) as identifier
    where resources.container_reference is null
),

servers as (
    select distinct fhir_server from resources
),

classified as (
    select
        references_made.*,
        case
            when references_made.reference is null then 'identifier'
            when references_made.reference ~ '{{ fhir_reference_pattern("contained") }}'
                then 'contained'
            when references_made.reference ~ '{{ fhir_reference_pattern("relative") }}'
                then 'relative'
            when references_made.reference ~ '{{ fhir_reference_pattern("urn_uuid") }}'
                then 'urn_uuid'
            when references_made.reference ~ '{{ fhir_reference_pattern("conditional") }}'
                then 'conditional'
            when references_made.reference ~ '{{ fhir_reference_pattern("absolute") }}'
                then 'absolute'
            else 'unrecognised'
        end as reference_form,
        {{ fhir_literal_reference('references_made.fhir_server', 'references_made.reference') }}
            as literal_reference,
        regexp_match(
            references_made.reference, '{{ fhir_reference_pattern("conditional") }}'
        ) as conditional_parts
    from references_made
),

-- a conditional or logical reference's search: type, system (null: any), value
searched as (
    select
        classified.*,
        coalesce(
            conditional_parts[1],
            classified.declared_type,
            -- a logical reference without a type: the element's, when it allows one only
            case when strpos(classified.allowed_types, ',') = 0 then classified.allowed_types end
        ) as search_type,
        case
            when classified.reference_form = 'identifier'
                then coalesce(classified.identifier_system, '')
            when strpos(search_token, '|') > 0 then split_part(search_token, '|', 1)
        end as search_system,
        case
            when classified.reference_form = 'identifier' then classified.identifier_value
            when strpos(search_token, '|') > 0
                then substr(search_token, strpos(search_token, '|') + 1)
            else search_token
        end as search_value
    from classified
    cross join lateral (
        select replace(replace(replace(replace(replace(replace(
            classified.conditional_parts[2],
            '%7C', '|'), '%7c', '|'), '%3A', ':'), '%3a', ':'), '%2F', '/'), '%2f', '/')
            as search_token
    ) as decoded
),

candidates as (
    select searched.fhir_resource_reference, searched.element, searched.element_position,
        resources.resource_type as target_type, resources.fhir_resource_reference as target
    from searched
    inner join resources
        on searched.reference_form in ('relative', 'absolute')
        and resources.fhir_resource_reference = searched.literal_reference

    union all

    select searched.fhir_resource_reference, searched.element, searched.element_position,
        resources.resource_type, resources.fhir_resource_reference
    from searched
    inner join resources
        on searched.reference_form = 'urn_uuid'
        and resources.fhir_server = searched.fhir_server
        and resources.container_reference is null
        and lower(resources.fhir_resource_id) = lower(substr(searched.reference, 10))

    union all

    select searched.fhir_resource_reference, searched.element, searched.element_position,
        resources.resource_type, resources.fhir_resource_reference
    from searched
    inner join resources
        on searched.reference_form = 'contained'
        and resources.fhir_resource_reference
            = searched.fhir_resource_reference || searched.reference

    union all

    select distinct searched.fhir_resource_reference, searched.element, searched.element_position,
        identifiers.resource_type, identifiers.fhir_resource_reference
    from searched
    inner join identifiers
        on searched.reference_form in ('conditional', 'identifier')
        and identifiers.fhir_server = searched.fhir_server
        and identifiers.resource_type = searched.search_type
        and identifiers.identifier_value = searched.search_value
        and (
            searched.search_system is null
            or coalesce(identifiers.identifier_system, '') = searched.search_system
        )
),

found as (
    select
        fhir_resource_reference,
        element,
        element_position,
        count(*) as targets,
        min(target_type) as target_type,
        min(target) as target
    from candidates
    group by fhir_resource_reference, element, element_position
),

resolved as (
    select
        searched.fhir_server,
        searched.resource_type,
        searched.fhir_resource_reference,
        searched.element,
        searched.element_position,
        searched.reference,
        searched.reference_form,
        searched.allowed_types,
        case when found.targets = 1 then found.target_type end as target_type,
        case
            when found.targets = 1
                and found.target_type = any(string_to_array(searched.allowed_types, ','))
                then found.target
        end as target_reference,
        case
            when searched.reference_form = 'unrecognised' then 'unrecognised'
            when found.targets > 1 then 'ambiguous'
            when found.targets = 1
                and not found.target_type = any(string_to_array(searched.allowed_types, ','))
                then 'wrong_type'
            when found.targets = 1 then 'resolved'
            when searched.reference_form = 'absolute'
                and regexp_replace(
                    searched.literal_reference, '/[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}$', ''
                ) not in (select fhir_server from servers)
                then 'other_server'
            else 'not_found'
        end as outcome
    from searched
    left join found
        on searched.fhir_resource_reference = found.fhir_resource_reference
        and searched.element = found.element
        and searched.element_position = found.element_position
)

select * from resolved
