with

source as (
    select * from {{ source('ehr', 'encounters') }}
),

renamed as (
    select
        _file_hash || '-' || _record_position::text as encounter_id,
        patient_id::text as patient_id,
        cast(visit_date as date) as visit_date,
        upper(trim(diagnosis_code))::text as diagnosis_code,
        diagnosis_description::text as diagnosis_description,
        treatment_code::text as treatment_code,
        physician_id::text as physician_id,
        department::text as department_name,
        _file_hash::text as source_file_hash,
        _record_position as source_record_position,
        _dlt_load_id::text as load_id
    from source
)

select * from renamed
