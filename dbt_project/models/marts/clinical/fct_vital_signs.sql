{#-
    One row per device reading, de-identified. Incremental: merged on the reading's key, each build
    adding the rows deid_vital_readings wrote since its own last build (their _built_at), so
    publishing (a view swap) never copies or rebuilds it and a reading that arrives twice is one row.
-#}
{{
    config(
        materialized='incremental',
        unique_key='reading_key',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        post_hook=[
            "{{ withhold_unlisted(this, {'device_status': 'device_status',"
            " 'hospital_name': 'hospital', 'ward_name': 'ward'}) }}",
        ],
        indexes=[
            {'columns': ['reading_key'], 'unique': True},
            {'columns': ['_built_at']},
            {'columns': ['patient_key', 'measured_hour_offset']},
        ],
    )
}}

with

readings as (
    select * from {{ ref('deid_vital_readings') }}
    {% if is_incremental() %}
    where _built_at > (select coalesce(max(_built_at), '-infinity') from {{ this }})
    {% endif %}
),

final as (
    select
        reading_key,
        patient_key,
        device_key,
        measured_hour_offset,
        measured_at,
        heart_rate_bpm,
        systolic_mmhg,
        diastolic_mmhg,
        temperature_c,
        oxygen_saturation_pct,
        respiratory_rate_per_min,
        device_status,
        hospital_name,
        ward_name,
        _landed_at,
        _built_at
    from readings
)

select * from final
