with

source as (
    select * from {{ source_or_empty('ehr', 'encounters') }}
),

file_ledger as (
    select * from {{ source('landing', 'file_ledger') }}
),

renamed as (
    select
        source._file_key::text || '-' || source._record_position::text as encounter_id,
        {{ normalise_patient_id('source.patient_id') }} as patient_id,
        cast(source.visit_date as date) as visit_date,
        upper(trim(source.diagnosis_code))::text as diagnosis_code,
        source.diagnosis_description::text as diagnosis_description,
        source.treatment_code::text as treatment_code,
        source.physician_id::text as physician_id,
        source.department::text as department_name,
        source._file_key as source_file_key,
        source._record_position as source_record_position,
        file_ledger.recorded_at as landed_at
    from source
    inner join file_ledger
        on source._file_key = file_ledger.file_key
)

select * from renamed
