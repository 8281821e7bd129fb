{#-
    Each patient's vitals per hour since their anchor: count, mean, minimum and maximum of each
    sign. Incremental: a build recomputes only the patient-hours that received new readings (rows
    fct_vital_signs wrote since, by their _built_at), from every reading of those hours.
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

with

readings as (
    select * from {{ ref('fct_vital_signs') }}
),

{% if is_incremental() %}
-- each import CTE is read once, so PostgreSQL inlines it and uses the fact's indexes
new_readings as (
    select * from {{ ref('fct_vital_signs') }}
    where _built_at > (select coalesce(max(_built_at), '-infinity') from {{ this }})
),

touched_hours as (
    select distinct patient_key, measured_hour_offset
    from new_readings
),

readings_of_touched_hours as (
    select readings.*
    from readings
    inner join touched_hours
        on readings.patient_key = touched_hours.patient_key
        and readings.measured_hour_offset = touched_hours.measured_hour_offset
),
{% else %}
readings_of_touched_hours as (
    select * from readings
),
{% endif %}

hourly as (
    select
        patient_key,
        measured_hour_offset,
        min(measured_year) as measured_year,
        count(*) as reading_count,
        round(avg(heart_rate_bpm)::numeric, 1) as heart_rate_bpm_mean,
        min(heart_rate_bpm) as heart_rate_bpm_min,
        max(heart_rate_bpm) as heart_rate_bpm_max,
        round(avg(systolic_mmhg)::numeric, 1) as systolic_mmhg_mean,
        min(systolic_mmhg) as systolic_mmhg_min,
        max(systolic_mmhg) as systolic_mmhg_max,
        round(avg(diastolic_mmhg)::numeric, 1) as diastolic_mmhg_mean,
        round(avg(temperature_c)::numeric, 2) as temperature_c_mean,
        max(temperature_c) as temperature_c_max,
        round(avg(oxygen_saturation_pct)::numeric, 1) as oxygen_saturation_pct_mean,
        min(oxygen_saturation_pct) as oxygen_saturation_pct_min,
        round(avg(respiratory_rate_per_min)::numeric, 1) as respiratory_rate_per_min_mean,
        max(respiratory_rate_per_min) as respiratory_rate_per_min_max,
        max(_landed_at) as _landed_at,
        max(_built_at) as _built_at
    from readings_of_touched_hours
    group by patient_key, measured_hour_offset
)

select * from hourly
