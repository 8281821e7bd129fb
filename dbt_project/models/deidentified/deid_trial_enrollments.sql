{#-
    Trial participations without their patient: surrogate keys, the enrolment as whole days from
    the patient's anchor (no calendar year: deid_encounters says why), adverse events counted
    (their free-text JSON is not carried).
-#}

with

trials as (
    select * from {{ ref('stg_research__clinical_trials') }}
),

patients as (
    select * from {{ ref('int_patients_keyed') }}
),

keys as (
    select * from {{ ref('identifier_crosswalk') }}
    where identifier_type = 'trial_participation'
),

deidentified as (
    select
        keys.surrogate_key as trial_enrollment_key,
        patients.patient_key,
        {{ days_since_anchor('trials.enrollment_date', 'patients.anchor_at') }}
            as enrollment_day_offset,
        {{ limited_data_set_only('trials.enrollment_date', 'date') }} as enrollment_date,
        {{ listed_value('trials.treatment_arm', 'trial_arm') }} as treatment_arm,
        trials.primary_endpoint_value,
        trials.adverse_event_count,
        {{ listed_value('trials.completion_status', 'trial_completion_status') }}
            as completion_status
    from trials
    inner join patients
        on trials.patient_id = patients.patient_id
    inner join keys
        on trials.trial_participation_id = keys.identifier
)

select * from deidentified
