{#-
    Incremental: each build adds the files landed since its own last build, so publishing (a view
    swap) never copies or rebuilds it, and re-states the encounters whose published age changed
    (a patient with a later event at 90 or over carries '90+' on every row: deid_encounters) or
    whose published text changed (a value listed or unlisted: macros/free_text.sql). Columns
    starting with an underscore are internal: the publish step leaves them out of analysts' views
    (a landing time would hint at a visit date).
-#}
{{
    config(
        materialized='incremental',
        unique_key='encounter_key',
        on_schema_change='append_new_columns',
    )
}}

with

encounters as (
    select * from {{ ref('deid_encounters') }}
    {% if is_incremental() %}
    where _landed_at > (select coalesce(max(_landed_at), '-infinity') from {{ this }})
        or encounter_key in (
            select stored.encounter_key
            from {{ this }} as stored
            inner join {{ ref('deid_encounters') }} as fresh
                on stored.encounter_key = fresh.encounter_key
            where (
                stored.age_at_visit, stored.diagnosis_description, stored.department_name,
                stored.physician_id, stored.treatment_code
            ) is distinct from (
                fresh.age_at_visit, fresh.diagnosis_description, fresh.department_name,
                fresh.physician_id, fresh.treatment_code
            )
        )
    {% endif %}
),

final as (
    select
        encounter_key,
        patient_key,
        visit_day_offset,
        age_at_visit,
        visit_date,
        diagnosis_code,
        diagnosis_description,
        treatment_code,
        physician_id,
        department_name,
        _landed_at
    from encounters
)

select * from final
