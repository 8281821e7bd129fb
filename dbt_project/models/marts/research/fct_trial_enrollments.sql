{#- One row per trial participation, de-identified. -#}

with

enrollments as (
    select * from {{ ref('deid_trial_enrollments') }}
),

final as (
    select
        trial_enrollment_key,
        patient_key,
        enrollment_day_offset,
        enrollment_date,
        treatment_arm,
        primary_endpoint_value,
        adverse_event_count,
        completion_status,
        completion_status in ('completed') as has_completed
    from enrollments
)

select * from final
