{#-
    Incremental: each build adds the loads it has not seen yet, so publishing (a view swap) never
    copies or rebuilds it.
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
    where load_id > (select coalesce(max(load_id), '') from {{ this }})
    {% endif %}
),

final as (
    select
        encounter_key,
        patient_key,
        visit_year,
        diagnosis_code,
        diagnosis_description,
        treatment_code,
        physician_id,
        department_name,
        load_id
    from encounters
)

select * from final
