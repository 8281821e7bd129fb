{#-
    Device readings, renamed and cast, temperatures in Celsius, each reading once; a value no
    device could have measured (seeds/vital_sign_limits.csv) is null, an extreme one is kept. The
    one staging model that is a table, built incrementally: devices send a micro-batch every few
    seconds and a view would re-read every reading ever sent on each build. Each build takes the
    files landed since its last one; a reading re-sent (same device, same instant) is kept as
    first landed.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['device_id', 'measured_at'], 'unique': True},
            {'columns': ['landed_at']},
            {'columns': ['patient_id']},
        ],
    )
}}

{#- The files landed since this table's last build, listed before the query is planned: with
    their keys written out, PostgreSQL finds their rows through the raw table's index on _file_key
    (a list it learns only while running makes it read every reading). -#}
{%- set new_file_keys = [] -%}
{%- if execute and is_incremental() -%}
    {%- set new_files = run_query(
        "select file_key from " ~ source('landing', 'file_ledger')
        ~ " where source = 'vitals' and status = 'loaded' and validation_state = 'validated'"
        ~ " and file_key is not null"
        ~ " and recorded_at > (select coalesce(max(landed_at), '-infinity') from " ~ this ~ ")"
    ) -%}
    {%- set new_file_keys = new_files.columns[0].values() -%}
{%- endif %}

{#- Of two pressures both within the device range, the systolic is the peak; one missing, or a
    sentinel (an artefact by its own range), takes nothing from the other. -#}
{%- set systolic = 'source.measurements__blood_pressure__systolic' -%}
{%- set diastolic = 'source.measurements__blood_pressure__diastolic' -%}
{%- set blood_pressure_ordered = (
    'coalesce(' ~ systolic ~ ' > ' ~ diastolic ~ ', true)'
    ~ ' or not (' ~ within_device_range(systolic, 'systolic_mmhg') ~ ')'
    ~ ' or not (' ~ within_device_range(diastolic, 'diastolic_mmhg') ~ ')'
) %}

with

file_ledger as (
    {{ validated_files() }}
),

source as (
    select * from {{ source_or_empty('vitals', 'readings') }}
    {% if is_incremental() %}
    where _file_key in ({{ new_file_keys | join(', ') if new_file_keys else 'null' }})
    {% endif %}
),

renamed as (
    select
        source.device_id::text as device_id,
        {{ normalise_patient_id('source.patient_id') }} as patient_id,
        source."timestamp" as measured_at,
        -- a value no device could have measured (an artefact) is null; an extreme one is kept
        -- (macros/vital_sign_limits.sql); a diastolic at or above the systolic: both artefacts
        {{ measured_vital('source.measurements__heart_rate', 'heart_rate_bpm') }} as heart_rate_bpm,
        {{ measured_vital(
            'source.measurements__blood_pressure__systolic', 'systolic_mmhg',
            also_valid_when=blood_pressure_ordered,
        ) }} as systolic_mmhg,
        {{ measured_vital(
            'source.measurements__blood_pressure__diastolic', 'diastolic_mmhg',
            also_valid_when=blood_pressure_ordered,
        ) }} as diastolic_mmhg,
        -- devices send Fahrenheit; the warehouse keeps Celsius, as FHIR Observations do
        {{ measured_vital(
            'round(((source.measurements__temperature - 32) * 5 / 9)::numeric, 2)', 'temperature_c',
        ) }} as temperature_c,
        {{ measured_vital('source.measurements__oxygen_saturation', 'oxygen_saturation_pct') }}
            as oxygen_saturation_pct,
        {{ measured_vital('source.measurements__respiratory_rate', 'respiratory_rate_per_min') }}
            as respiratory_rate_per_min,
        source.device_status::text as device_status,
        source.location__hospital::text as hospital_name,
        source.location__ward::text as ward_name,
        source.location__room::text as room_number,
        source._file_key as source_file_key,
        source._record_position as source_record_position,
        file_ledger.recorded_at as landed_at
    from source
    inner join file_ledger
        on source._file_key = file_ledger.file_key
),

-- A device re-sending a reading (same device, same instant) is the same reading: the first
-- copy landed is kept, in this batch and against the readings kept before.
ranked as (
    select
        renamed.*,
        row_number() over (
            partition by device_id, measured_at
            order by landed_at, source_file_key, source_record_position
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
    source_record_position,
    landed_at
from ranked
where copy_rank = 1
{% if is_incremental() %}
    and not exists (
        select 1 from {{ this }} as kept
        where kept.device_id = ranked.device_id
            and kept.measured_at = ranked.measured_at
    )
{% endif %}
