with

source as (
    select * from {{ source_or_empty('vitals', 'readings') }}
),

renamed as (
    select
        device_id::text as device_id,
        {{ normalise_patient_id('patient_id') }} as patient_id,
        "timestamp" as measured_at,
        measurements__heart_rate as heart_rate_bpm,
        measurements__blood_pressure__systolic as systolic_mmhg,
        measurements__blood_pressure__diastolic as diastolic_mmhg,
        -- devices send Fahrenheit; the warehouse keeps Celsius, as FHIR Observations do
        round(((measurements__temperature - 32) * 5 / 9)::numeric, 2) as temperature_c,
        measurements__oxygen_saturation as oxygen_saturation_pct,
        measurements__respiratory_rate as respiratory_rate_per_min,
        device_status::text as device_status,
        location__hospital::text as hospital_name,
        location__ward::text as ward_name,
        location__room::text as room_number,
        _file_key as source_file_key,
        _record_position as source_record_position
    from source
),

-- A device re-sending a reading (same device, same instant) is the same reading.
ranked as (
    select
        renamed.*,
        row_number() over (
            partition by device_id, measured_at
            order by source_file_key, source_record_position
        ) as copy_rank
    from renamed
)

select
    device_id,
    patient_id,
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
    room_number,
    source_file_key,
    source_record_position
from ranked
where copy_rank = 1
