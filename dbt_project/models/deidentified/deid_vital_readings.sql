{#-
    Device readings without their patient or device: surrogate patient and device keys, the
    reading as whole hours from the patient's hour anchor (no calendar year: deid_encounters says
    why), the ward but not the room, and the device's status, hospital and ward only when listed
    (macros/free_text.sql: a post-hook withholds them from rows written before, as does
    fct_vital_signs's from its own). The
    reading key is random (gen_random_uuid(), 45 CFR 164.514(c): derived from nothing), assigned
    when the reading is first written and kept when it is merged again. A reading that arrives
    twice is merged on _reading_ref, a hash of the patient's and device's keys and the offset in
    seconds: never published, as it would give the reading's time to the second to anyone who
    hashes the 3,600 seconds of its published hour (tests/privacy/test_adversary.py). Never
    rebuilt, not even by --full-refresh, so that a published key stays the reading's.

    A reading is published once its patient has a key and an anchor (from the registry, an
    encounter, a claim, a trial or FHIR: readings register no one). Incremental: each build takes
    the readings landed since its own last build, and the earlier readings of the patients
    anchored since, which waited in staging for them (a build schema keeps its own). _built_at,
    when a row was written, is the watermark of the models downstream.
-#}
{{
    config(
        materialized='incremental',
        unique_key='_reading_ref',
        incremental_strategy='merge',
        merge_exclude_columns=['reading_key'],
        full_refresh=false,
        on_schema_change='append_new_columns',
        post_hook=[
            "{{ withhold_unlisted(this, {'device_status': 'device_status',"
            " 'hospital_name': 'hospital', 'ward_name': 'ward'}) }}",
        ],
        indexes=[
            {'columns': ['reading_key'], 'unique': True},
            {'columns': ['_reading_ref'], 'unique': True},
            {'columns': ['_landed_at']},
            {'columns': ['_built_at']},
        ],
    )
}}

-- depends_on: {{ ref('patient_anchors') }}

with

{% if is_incremental() %}
last_build as (
    select
        coalesce(max(_landed_at), '-infinity') as landed_at,
        coalesce(max(_built_at), '-infinity') as built_at
    from {{ this }}
),

-- Each import of the staged readings is read once, so PostgreSQL inlines it and uses its indexes.
readings_landed_since as (
    select * from {{ ref('stg_vitals__readings') }}
    where landed_at > (select landed_at from last_build)
),

newly_anchored_patients as (
    select * from {{ ref('patient_anchors') }}
    where anchored_at > (select built_at from last_build)
),

readings_that_waited as (
    select readings.*
    from {{ ref('stg_vitals__readings') }} as readings
    inner join newly_anchored_patients
        on readings.patient_id = newly_anchored_patients.patient_id
    where readings.landed_at <= (select landed_at from last_build)
),

readings as (
    select * from readings_landed_since
    union all
    select * from readings_that_waited
),
{% else %}
readings as (
    select * from {{ ref('stg_vitals__readings') }}
),
{% endif %}

patients as (
    select * from {{ ref('int_patients_keyed') }}
    where anchor_at is not null
),

devices as (
    select * from {{ ref('device_crosswalk') }}
),

deidentified as (
    select
        gen_random_uuid()::text as reading_key,
        patients.patient_key,
        devices.device_key,
        {{ hours_since_anchor('readings.measured_at', 'patients.hour_anchor_at') }}
            as measured_hour_offset,
        {{ limited_data_set_only('readings.measured_at', 'timestamptz') }} as measured_at,
        readings.heart_rate_bpm,
        readings.systolic_mmhg,
        readings.diastolic_mmhg,
        readings.temperature_c,
        readings.oxygen_saturation_pct,
        readings.respiratory_rate_per_min,
        {{ listed_value('readings.device_status', 'device_status') }} as device_status,
        {{ listed_value('readings.hospital_name', 'hospital') }} as hospital_name,
        {{ listed_value('readings.ward_name', 'ward') }} as ward_name,
        md5(
            patients.patient_key::text || '/' || devices.device_key::text || '/'
            || extract(epoch from readings.measured_at - patients.anchor_at)::text
        ) as _reading_ref,
        readings.landed_at as _landed_at,
        now() as _built_at
    from readings
    inner join patients
        on readings.patient_id = patients.patient_id
    inner join devices
        on readings.device_id = devices.device_id
)

select * from deidentified
