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
