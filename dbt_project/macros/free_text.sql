{#-
    Text a source writes freely never leaves the PHI zone as it was sent: a clinician can type a
    patient's name or record number into any text field (docs/deidentification.md, "Free text").
    A published text column is one of:
      - a code set's title for a code (ICD-10-CM, LOINC, procedure sections): joined from a seed;
      - a value of a published vocabulary (`listed_value`): departments, wards, FHIR statuses...;
      - an identifier of the hospital's own of the configured shape (`formatted_identifier`):
        a physician, a formulary code, a billing organisation, a FHIR practitioner.
    Anything else a source sends there is published as null; the staging column's
    `in_published_vocabulary` or `has_published_format` test (severity warn) counts it, so a steward
    sees a value withheld and, when it is no patient's, lists it.
-#}

{#- `expression` when seed published_vocabularies lists it under `vocabulary`, else null. -#}
{% macro listed_value(expression, vocabulary) -%}
    case
        when {{ expression }} in (
            select value from {{ ref('published_vocabularies') }}
            where vocabulary = '{{ vocabulary }}'
        ) then {{ expression }}
    end
{%- endmacro %}


{#- `expression` when it has the shape var published_identifier_formats gives `identifier`. -#}
{% macro formatted_identifier(expression, identifier) -%}
    case when {{ expression }} ~ '{{ published_format(identifier) }}' then {{ expression }} end
{%- endmacro %}


{% macro published_format(identifier) -%}
    {%- set formats = var('published_identifier_formats') -%}
    {%- if identifier not in formats -%}
        {{ exceptions.raise_compiler_error(
            "var published_identifier_formats has no format for '" ~ identifier ~ "'"
        ) }}
    {%- endif -%}
    {{- formats[identifier] -}}
{%- endmacro %}


{#- Generic test (warn): values of a source column its published column would withhold. -#}
{% test in_published_vocabulary(model, column_name, vocabulary) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
    and {{ column_name }} not in (
        select value from {{ ref('published_vocabularies') }}
        where vocabulary = '{{ vocabulary }}'
    )
{% endtest %}


{% test has_published_format(model, column_name, identifier) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} !~ '{{ published_format(identifier) }}'
{% endtest %}


{#-
    Post-hook of an incremental table: withhold from the rows already written any value not (or
    no longer) listed (`vocabularies`: column -> vocabulary). Each such table runs it on its own
    rows, so no row is marked built again (the hourly roll-up would count its reading twice).
    Rows written by this build went through `listed_value` already, so the earlier rows are scanned
    only when seed published_vocabularies was loaded with other content (its table's comment, the
    seed's checksum) since the table last withheld (audit.withheld_vocabularies, migration 0009):
    a scan of every reading on every build was more than half of a vitals build's time
    (benchmarks/incremental.py, 1% more of a million readings: 2.73 s of model time, now 1.27 s).
-#}
{% macro withhold_unlisted(relation, vocabularies) -%}
    {%- set table = relation.schema ~ '.' ~ relation.identifier -%}
    {%- set listed = ref('published_vocabularies') -%}
    {%- set withheld = false -%}
    {%- if execute -%}  {#- an `if` opens no scope in Jinja: `withheld` is set for what follows -#}
        {%- set found = run_query(
            "select obj_description('" ~ listed ~ "'::regclass, 'pg_class'),"
            ~ " (select vocabularies_loaded from audit.withheld_vocabularies"
            ~ " where relation = '" ~ table ~ "')"
        ).rows[0] -%}
        {%- set withheld = found[0] is not none and found[0] == found[1] -%}
    {%- endif -%}
    {%- if withheld -%}
    select 1  -- {{ table }} withheld its rows against this list already
    {%- else -%}
    update {{ relation }}
    set
        {%- for column, vocabulary in vocabularies.items() %}
        {{ column }} = {{ listed_value(column, vocabulary) }}{{ "," if not loop.last }}
        {%- endfor %}
    where
        {%- for column, vocabulary in vocabularies.items() %}
        ({{ column }} is not null and {{ listed_value(column, vocabulary) }} is null)
        {%- if not loop.last %} or{% endif %}
        {%- endfor %};
    insert into audit.withheld_vocabularies (relation, vocabularies_loaded)
    select '{{ table }}', obj_description('{{ listed }}'::regclass, 'pg_class')
    where obj_description('{{ listed }}'::regclass, 'pg_class') is not null
    on conflict (relation) do update
        set vocabularies_loaded = excluded.vocabularies_loaded, withheld_at = now()
    {%- endif -%}
{%- endmacro %}
