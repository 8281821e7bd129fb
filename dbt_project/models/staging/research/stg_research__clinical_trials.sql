with

source as (
    select * from {{ source_or_empty('research', 'clinical_trials') }}
),

renamed as (
    select
        trial_id::text as trial_participation_id,
        {{ normalise_patient_id('patient_id') }} as patient_id,
        enrollment_date::date as enrollment_date,
        treatment_arm::text as treatment_arm,
        primary_endpoint_value::numeric(10, 3) as primary_endpoint_value,
        secondary_endpoints::jsonb as secondary_endpoints,
        adverse_events::jsonb as adverse_events,
        jsonb_array_length(coalesce(adverse_events::jsonb, '[]'::jsonb)) as adverse_event_count,
        completion_status::text as completion_status,
        updated_at as source_updated_at
    from source
)

select * from renamed
