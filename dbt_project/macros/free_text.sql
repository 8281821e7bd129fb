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
    Matches nothing once done; its cost is one scan of the table.
-#}
{% macro withhold_unlisted(relation, vocabularies) -%}
    update {{ relation }}
    set
        {%- for column, vocabulary in vocabularies.items() %}
        {{ column }} = {{ listed_value(column, vocabulary) }}{{ "," if not loop.last }}
        {%- endfor %}
    where
        {%- for column, vocabulary in vocabularies.items() %}
        ({{ column }} is not null and {{ listed_value(column, vocabulary) }} is null)
        {%- if not loop.last %} or{% endif %}
        {%- endfor %}
{%- endmacro %}
