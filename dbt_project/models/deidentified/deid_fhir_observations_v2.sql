{#-
    Version 2, kept for its deprecation window (docs/published_versions.md): one row per
    Observation, its own value only (a panel's component values are in version 3, and it has no
    panel_loinc_code). What counts is version 3's (stg_fhir__observations): LOINC read across
    codings, entered-in-error left out.
-#}

with

observations as (
    select * from {{ ref('deid_fhir_observations', v=3) }}
    where component_number is null
),

final as (
    select
        fhir_observation_key,
        fhir_encounter_key,
        patient_key,
        loinc_code,
        loinc_display,
        value,
        ucum_unit,
        observation_status,
        observed_hour_offset,
        observed_at
    from observations
)

select * from final
