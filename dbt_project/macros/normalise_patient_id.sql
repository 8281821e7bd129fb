{#-
    The hospital's patient identifier (its MRN) as every source should have sent it: trimmed and
    upper case. Identity resolution compares identifiers in this form only.
-#}
{% macro normalise_patient_id(column) -%}
    nullif(upper(trim({{ column }}::text)), '')
{%- endmacro %}
