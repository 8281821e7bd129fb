{#-
    A FHIR resource's reference across servers: its absolute URL, the server's key (its base URL,
    normalised: ingestion/sources/fhir_api.server_key) then `/type/id`, as FHIR R4 writes a
    literal reference ([base]/[type]/[id]: http://hl7.org/fhir/R4/references.html#literal). A
    logical id is unique only within its server; two facilities' servers may both hold
    Patient/pat-1, and they are two patients until patient matching says otherwise.
-#}
{% macro fhir_reference(server, resource_type, id) -%}
    ({{ server }} || '/{{ resource_type }}/' || {{ id }})
{%- endmacro %}


{#-
    Pre-hook of the locked crosswalk models that hold FHIR references (identifier_crosswalk,
    patient_crosswalk, patient_anchors): a warehouse built before FHIR servers were keyed holds
    bare logical ids there (`enc-1`, `FHIR:pat-1`). They are the first configured server's, whose
    pull named the resources of then its own and recorded so (audit.fhir_unkeyed_owner,
    ingestion/api_landing.py); each becomes that server's reference, keeping its surrogate key and
    anchor, so every published key stays what it was. A FHIR id never holds a `/` (R4 id:
    [A-Za-z0-9\-\.]{1,64}, http://hl7.org/fhir/R4/datatypes.html#id), so a bare one is told apart.
    Unowned bare ids stop the build: pull the first configured server first (docs/runbook.md).
-#}
{% macro key_unkeyed_fhir_identifiers() -%}
    {%- if this.name == 'identifier_crosswalk' -%}
        {%- set unkeyed -%}
            identifier_type in ('fhir_encounter', 'fhir_observation')
            and strpos(identifier, '/') = 0
        {%- endset -%}
        {%- set keyed -%}
            identifier = owner.server
                || case identifier_type
                    when 'fhir_encounter' then '/Encounter/'
                    else '/Observation/'
                end
                || identifier
        {%- endset -%}
    {%- else -%}
        {%- set unkeyed -%}
            patient_id like 'FHIR:%' and strpos(patient_id, '/') = 0
        {%- endset -%}
        {%- set keyed -%}
            patient_id = 'FHIR:' || owner.server || '/Patient/' || substr(patient_id, 6)
        {%- endset -%}
    {%- endif -%}
    do $$
    begin
        if to_regclass('{{ this }}') is null then  -- its first build
            return;
        end if;
        if not exists (select 1 from {{ this }} where {{ unkeyed }}) then
            return;
        end if;
        if not exists (select 1 from audit.fhir_unkeyed_owner) then
            raise exception '% holds FHIR identifiers from before FHIR servers were keyed, and no'
                ' server has named them its own: pull the first configured FHIR server first'
                ' (docs/runbook.md, "FHIR servers")', '{{ this }}';
        end if;
        update {{ this }}
        set {{ keyed }}
        from audit.fhir_unkeyed_owner as owner
        where {{ unkeyed }};
    end
    $$
{%- endmacro %}


{#-
    The reference across servers (server key/type/id, as fhir_reference writes it) that a FHIR
    Reference.reference string names by itself, or null when it names none by itself (contained,
    conditional, unrecognised; int_fhir_references_resolved resolves every form). The forms
    (FHIR R4 3.3.3.5 Literal references, http://hl7.org/fhir/R4/references.html):
    - relative `Patient/123` (a `/_history/<version>` suffix ignored): on the referring
      resource's server;
    - absolute `https://host/base/Patient/123`: on the server whose key is that base,
      normalised as ingestion/sources/fhir_api.server_key does (scheme and host lower-cased, a
      default port dropped); a server configured with a key of its own (FHIR_SERVER_KEY) is not
      found by its address (a named simplification: docs/landing.md);
    - `urn:uuid:<uuid>` within a Bundle (R4 2.36.4.1): the resource of `expected_type` on the
      referring resource's server whose logical id is the UUID, as Synthea and other exporters
      write a resource's fullUrl `urn:uuid:<id>`. Without an expected type, null.
    With `expected_type`, a reference to a resource of another type is none (a subject that is a
    Group is no Patient): null.
-#}
{% macro fhir_literal_reference(server, reference, expected_type=none) -%}
    {%- if expected_type -%}
    (
        select literal
        from (
            select {{ fhir_any_literal_reference(server, reference, expected_type) }} as literal
        ) as read
        where literal ~ '/{{ expected_type }}/[A-Za-z0-9.-]{1,64}$'
    )
    {%- else -%}
    {{ fhir_any_literal_reference(server, reference) }}
    {%- endif -%}
{%- endmacro %}


{#- fhir_literal_reference's reading, whatever the type named. -#}
{% macro fhir_any_literal_reference(server, reference, uuid_type=none) -%}
    (case
        when {{ reference }} ~ '{{ fhir_reference_pattern("relative") }}'
            then {{ server }} || '/' || regexp_replace({{ reference }}, '/_history/.*$', '')
        {%- if uuid_type %}
        when {{ reference }} ~ '{{ fhir_reference_pattern("urn_uuid") }}'
            then {{ server }} || '/{{ uuid_type }}/' || substr({{ reference }}, 10)
        {%- endif %}
        when {{ reference }} ~ '{{ fhir_reference_pattern("absolute") }}'
            then (
                select
                    lower(parts[1]) || '://'
                    || case
                        when (lower(parts[1]) = 'http' and parts[2] ~ ':80$')
                            or (lower(parts[1]) = 'https' and parts[2] ~ ':443$')
                            then regexp_replace(lower(parts[2]), ':[0-9]+$', '')
                        else lower(parts[2])
                    end
                    || coalesce(parts[3], '') || '/' || parts[4] || '/' || parts[5]
                from (
                    select regexp_match(
                        {{ reference }}, '{{ fhir_reference_pattern("absolute") }}'
                    ) as parts
                ) as parsed
            )
    end)
{%- endmacro %}


{#-
    The pattern of each form of a FHIR reference string. An id is [A-Za-z0-9-.]{1,64} (R4
    datatypes, id); a type starts upper-case.
-#}
{% macro fhir_reference_pattern(form) -%}
    {%- set id = '[A-Za-z0-9.-]{1,64}' -%}
    {%- set patterns = {
        'relative': '^[A-Z][A-Za-z]+/' ~ id ~ '(/_history/' ~ id ~ ')?$',
        'absolute': '^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#@]+)(/[^?#]*)?/([A-Z][A-Za-z]+)/('
            ~ id ~ ')(/_history/' ~ id ~ ')?$',
        'urn_uuid': '^urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$',
        'conditional': '^([A-Z][A-Za-z]+)[?]identifier=([^&]+)$',
        'contained': '^#' ~ id ~ '$',
    } -%}
    {{- patterns[form] -}}
{%- endmacro %}


{#-
    Every FHIR resource pulled (of `resource_type`, or of every type), and every resource
    contained in one: a contained resource has no reference of its own on the server; its
    container refers to it as `#id` (R4 2.21.0.17, contained resources), and its reference across
    servers here is its container's followed by `#id`.
    Columns: fhir_server, resource_type, fhir_resource_id, fhir_resource_reference,
    container_reference (null for a resource pulled), resource, last_updated.
    Contained resources are read in the types whose references are followed
    (stg_fhir__references) but Observation: an Observation's contained resource is not found (a
    named simplification: Observations are most of the rows, and a vital sign contains none).
-#}
{% macro fhir_pulled_and_contained(resource_type=none) -%}
    (
        select
            server as fhir_server,
            resource_type,
            id::text as fhir_resource_id,
            server || '/' || resource_type || '/' || id as fhir_resource_reference,
            null::text as container_reference,
            resource,
            last_updated
        from {{ source_or_empty('fhir', 'resources') }}
        {%- if resource_type %}
        where resource_type = '{{ resource_type }}'
        {%- endif %}

        union all

        select
            containers.server,
            contained.resource ->> 'resourceType',
            contained.resource ->> 'id',
            containers.server || '/' || containers.resource_type || '/' || containers.id
                || '#' || (contained.resource ->> 'id'),
            containers.server || '/' || containers.resource_type || '/' || containers.id,
            contained.resource,
            containers.last_updated
        from (select * from {{ source_or_empty('fhir', 'resources') }}) as containers
        cross join lateral jsonb_array_elements(
            case
                when jsonb_typeof(containers.resource -> 'contained') = 'array'
                    then containers.resource -> 'contained'
                else '[]'::jsonb
            end
        ) as contained (resource)
        where containers.resource_type in ('Encounter', 'Condition', 'Procedure', 'Location')
            and contained.resource ->> 'id' is not null
        {%- if resource_type %}
            and contained.resource ->> 'resourceType' = '{{ resource_type }}'
        {%- endif %}
    )
{%- endmacro %}
