{#- One row per patient: what they are, never who (no LDS-only column, whatever the policy). -#}

with

patients as (
    select * from {{ ref('deid_patients') }}
),

final as (
    select
        patient_key,
        sex,
        age_at_first_event,
        is_deceased,
        death_day_offset,
        state,
        zip3
    from patients
)

select * from final
