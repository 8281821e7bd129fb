{#-
    Each patient's vitals per hour since their anchor: count, mean, minimum and maximum of each
    sign. Incremental, at the cost of the new readings alone: a build aggregates the rows
    fct_vital_signs wrote since its last one (by their _built_at) per patient-hour and combines
    them with the hour as stored, which keeps each mean's sum and count (internal columns) for
    that. A table without a watermark (built before it had one) is recomputed whole.
-#}
{{
    config(
        materialized='incremental',
        unique_key=['patient_key', 'measured_hour_offset'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['patient_key', 'measured_hour_offset'], 'unique': True},
            {'columns': ['_built_at']},
        ],
    )
}}

{%- set means = {
    'heart_rate_bpm': 1,
    'systolic_mmhg': 1,
    'diastolic_mmhg': 1,
    'temperature_c': 2,
    'oxygen_saturation_pct': 1,
    'respiratory_rate_per_min': 1,
} -%}
{%- set minimums = ['heart_rate_bpm', 'systolic_mmhg', 'oxygen_saturation_pct'] -%}
{%- set maximums = ['heart_rate_bpm', 'systolic_mmhg', 'temperature_c', 'respiratory_rate_per_min'] %}

with

{% if is_incremental() %}
last_build as (
    select max(_built_at) as built_at from {{ this }}
),

new_readings as (
    select * from {{ ref('fct_vital_signs') }}
    where _built_at > (select coalesce(built_at, '-infinity') from last_build)
),
{% else %}
new_readings as (
    select * from {{ ref('fct_vital_signs') }}
),
{% endif %}

new_hours as (
    select
        patient_key,
        measured_hour_offset,
        count(*) as reading_count,
        {%- for sign in means %}
        count({{ sign }}) as _{{ sign }}_count,
        sum({{ sign }}) as _{{ sign }}_sum,
        {%- endfor %}
        {%- for sign in minimums %}
        min({{ sign }}) as {{ sign }}_min,
        {%- endfor %}
        {%- for sign in maximums %}
        max({{ sign }}) as {{ sign }}_max,
        {%- endfor %}
        max(_landed_at) as _landed_at,
        max(_built_at) as _built_at
    from new_readings
    group by patient_key, measured_hour_offset
),

{% if is_incremental() %}
-- the touched hours as stored (none when the table has no watermark: then new_hours is whole)
stored_hours as (
    select * from {{ this }}
    where (select built_at from last_build) is not null
),

hours as (
    select
        new_hours.patient_key,
        new_hours.measured_hour_offset,
        new_hours.reading_count + coalesce(stored_hours.reading_count, 0) as reading_count,
        {%- for sign in means %}
        new_hours._{{ sign }}_count + coalesce(stored_hours._{{ sign }}_count, 0)
            as _{{ sign }}_count,
        coalesce(new_hours._{{ sign }}_sum, 0) + coalesce(stored_hours._{{ sign }}_sum, 0)
            as _{{ sign }}_sum,
        {%- endfor %}
        {%- for sign in minimums %}
        least(new_hours.{{ sign }}_min, stored_hours.{{ sign }}_min) as {{ sign }}_min,
        {%- endfor %}
        {%- for sign in maximums %}
        greatest(new_hours.{{ sign }}_max, stored_hours.{{ sign }}_max) as {{ sign }}_max,
        {%- endfor %}
        greatest(new_hours._landed_at, stored_hours._landed_at) as _landed_at,
        greatest(new_hours._built_at, stored_hours._built_at) as _built_at
    from new_hours
    left join stored_hours
        on new_hours.patient_key = stored_hours.patient_key
        and new_hours.measured_hour_offset = stored_hours.measured_hour_offset
),
{% else %}
hours as (
    select * from new_hours
),
{% endif %}

final as (
    select
        *,
        {%- for sign, decimals in means.items() %}
        round((_{{ sign }}_sum / nullif(_{{ sign }}_count, 0))::numeric, {{ decimals }})
            as {{ sign }}_mean{{ ',' if not loop.last }}
        {%- endfor %}
    from hours
)

select * from final
