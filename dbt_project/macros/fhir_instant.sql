{#-
    A FHIR dateTime as an instant when it names one: a date and a time with its zone (FHIR R4
    dateTime: "if hours and minutes are specified, a time zone SHALL be populated"). A partial
    date (2024, 2024-03, 2024-03-10) names no moment: null, never a cast that fails the build.
-#}
{% macro fhir_instant(expression) -%}
    case
        when {{ expression }}
            ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$'
        then ({{ expression }})::timestamptz
    end
{%- endmacro %}
