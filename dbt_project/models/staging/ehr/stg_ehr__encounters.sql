with

source as (
    select * from {{ source_or_empty('ehr', 'encounters') }}
),

file_ledger as (
    {{ validated_files() }}
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
),

-- Extracts carry no encounter id: a row sent again, equal in every field, in a later extract is
-- the same encounter re-sent (within one file landing already quarantines a repeat). The first
-- copy landed is kept, so its encounter_id never changes.
ranked as (
    select
        renamed.*,
        row_number() over (
            partition by
                patient_id, visit_date, diagnosis_code, diagnosis_description, treatment_code,
                physician_id, department_name
            order by landed_at, source_file_key, source_record_position
        ) as copy_rank
    from renamed
)

select
    encounter_id,
    patient_id,
    visit_date,
    diagnosis_code,
    diagnosis_description,
    treatment_code,
    physician_id,
    department_name,
    source_file_key,
    source_record_position,
    landed_at
from ranked
where copy_rank = 1
