{#-
    Each patient's first and last dated event in each source, as moments in UTC (a date counts
    from its midnight in UTC). The earliest of them anchors the patient's offsets in the
    de-identified layer (crosswalk patient_anchors); the latest gives their age at their last
    event, which decides whether they are 90 or over on every row (int_patients_keyed). The registry carries no event: its event is when the
    warehouse received the registration. Device readings are not events here: they arrive every
    few seconds and anchor no one (a monitored patient is registered).
-#}

with

identities as (
    select * from {{ ref('int_patient_identities_resolved') }}
),

registry as (
    select * from {{ ref('stg_ehr__patients') }}
),

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

claims as (
    select * from {{ ref('stg_claims__claims') }}
),

trials as (
    select * from {{ ref('stg_research__clinical_trials') }}
),

fhir_encounters as (
    select * from {{ ref('stg_fhir__encounters') }}
),

fhir_observations as (
    select * from {{ ref('stg_fhir__observations') }}
),

fhir_patients as (
    select source_patient_reference as fhir_patient_reference, patient_id
    from identities
    where source_name = 'fhir'
),

events as (
    select patient_id, min(landed_at) as event_at, null::timestamptz as last_event_at,
        'ehr_patients' as source_name
    from registry
    group by patient_id
    union all
    select patient_id, min(visit_date)::timestamp at time zone 'UTC',
        max(visit_date)::timestamp at time zone 'UTC', 'ehr'
    from encounters
    group by patient_id
    union all
    select patient_id, min(service_date)::timestamp at time zone 'UTC',
        max(service_date)::timestamp at time zone 'UTC', 'claims'
    from claims
    group by patient_id
    union all
    select patient_id, min(enrollment_date)::timestamp at time zone 'UTC',
        max(enrollment_date)::timestamp at time zone 'UTC', 'research'
    from trials
    group by patient_id
    union all
    select
        fhir_patients.patient_id,
        min(fhir_encounters.started_at),
        max(fhir_encounters.started_at),
        'fhir_encounters'
    from fhir_encounters
    inner join fhir_patients
        on fhir_encounters.fhir_patient_reference = fhir_patients.fhir_patient_reference
    group by fhir_patients.patient_id
    union all
    select
        fhir_patients.patient_id,
        min(fhir_observations.observed_at),
        max(fhir_observations.observed_at),
        'fhir_observations'
    from fhir_observations
    inner join fhir_patients
        on fhir_observations.fhir_patient_reference = fhir_patients.fhir_patient_reference
    group by fhir_patients.patient_id
)

select
    patient_id,
    source_name,
    event_at as first_event_at,
    last_event_at
from events
where patient_id is not null
    and event_at is not null
