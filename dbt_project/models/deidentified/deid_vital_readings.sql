{#-
    Device readings without their patient or device: surrogate patient and device keys, the
    reading's year and whole hours from the patient's anchor, the ward but not the room. The
    reading key is a hash of those surrogates and the offset in seconds: unique per reading, and
    derived from nothing but codes and offsets the layer already publishes. Incremental: each
    build adds the readings landed since its own last build (a build schema keeps its own).
-#}
{{
    config(
        materialized='incremental',
        unique_key='reading_key',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['reading_key'], 'unique': True},
            {'columns': ['_landed_at']},
        ],
    )
}}

with

readings as (
    select * from {{ ref('stg_vitals__readings') }}
    {% if is_incremental() %}
    where landed_at > (select coalesce(max(_landed_at), '-infinity') from {{ this }})
    {% endif %}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

devices as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type = 'device'
),

deidentified as (
    select
        md5(
            patients.patient_key::text || '/' || devices.surrogate_key::text || '/'
            || extract(epoch from readings.measured_at - patients.anchor_at)::text
        ) as reading_key,
        patients.patient_key,
        devices.surrogate_key as device_key,
        extract(year from readings.measured_at at time zone 'UTC')::integer as measured_year,
        {{ hours_since_anchor('readings.measured_at', 'patients.anchor_at') }}
            as measured_hour_offset,
        {{ limited_data_set_only('readings.measured_at', 'timestamptz') }} as measured_at,
        readings.heart_rate_bpm,
        readings.systolic_mmhg,
        readings.diastolic_mmhg,
        readings.temperature_c,
        readings.oxygen_saturation_pct,
        readings.respiratory_rate_per_min,
        readings.device_status,
        readings.hospital_name,
        readings.ward_name,
        readings.landed_at as _landed_at
    from readings
    inner join patients
        on readings.patient_id = patients.patient_id
    inner join devices
        on readings.device_id = devices.identifier
)

select * from deidentified
