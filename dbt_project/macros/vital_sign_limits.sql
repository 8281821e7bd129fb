{#-
    A vital's value when a device could have measured it, else null: below `artefact_below` or
    above `artefact_above` in seeds/vital_sign_limits.csv (negative, beyond any device's range, a
    sentinel) it is no measurement. The vitals processor reads the same file
    (monitoring/vital_validity.py); an extreme value (a heart rate of 0) is a measurement and kept.
    `also_valid_when` adds a condition (of two pressures, the systolic above the diastolic).
-#}
{% macro within_device_range(expression, vital) -%}
    {{ expression }} between
        (select limits.artefact_below from {{ ref('vital_sign_limits') }} as limits
            where limits.vital = '{{ vital }}')
        and (select limits.artefact_above from {{ ref('vital_sign_limits') }} as limits
            where limits.vital = '{{ vital }}')
{%- endmacro %}

{% macro measured_vital(expression, vital, also_valid_when=none) -%}
    case
        when {{ within_device_range(expression, vital) }}
            {%- if also_valid_when is not none %}
            and ({{ also_valid_when }})
            {%- endif %}
        then {{ expression }}
    end
{%- endmacro %}
