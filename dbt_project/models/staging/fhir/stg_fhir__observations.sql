{#-
    FHIR vital signs as US Core profiles them (http://hl7.org/fhir/us/core/vital-signs.html), one
    row per value measured: an Observation's own valueQuantity, and each of its components' (a
    blood pressure panel, 85354-9, measures systolic 8480-6 and diastolic 8462-4 as components
    and has no value of its own).

    - What was measured is read by code system and code across every coding, never by position:
      the first LOINC coding the vital-signs list knows (seed loinc_vital_signs), else the first
      LOINC coding; a vital sign with no LOINC coding keeps a null code (a warning in the quality
      report, never dropped here). US Core's pulse oximetry carries 59408-5 (by pulse oximetry)
      and 2708-6 (arterial oxygen saturation, any method): the specific one is taken, so one
      measurement has one code whichever server sent it.
    - Only category vital-signs (observation-category; also under its pre-R4 system
      http://hl7.org/fhir/observation-category): an oxygen saturation from a blood gas
      (category laboratory) is no vital sign. An Observation with a vital sign's LOINC code and
      no category at all is listed by a warning (tests/fhir_vital_signs_without_their_category).
    - `component_number`: null for an Observation's own value, 1, 2, ... for its components' in
      their order: with the Observation, the key of a value.
    - Status (FHIR R4 ObservationStatus, http://hl7.org/fhir/R4/valueset-observation-status.html):
      an observation `entered-in-error` ("should not have existed") or `cancelled` (never made)
      holds no measurement and does not count; the others keep their status beside the value.
    - When: effectiveDateTime, effectiveInstant, or the start of effectivePeriod.
-#}

with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Observation'
),

vital_sign_codes as (
    select * from {{ ref('loinc_vital_signs') }}
),

vital_signs as (
    select * from resources
    where {{ fhir_vital_signs_category('resource') }}
        and coalesce(resource ->> 'status', '') not in ('entered-in-error', 'cancelled')
),

-- each value measured: the observation's own, and each component's
measured as (
    select
        id,
        server,
        resource,
        last_updated,
        resource -> 'code' as measured_code,
        resource -> 'valueQuantity' as quantity,
        null::jsonb as panel_code,
        null::bigint as component_number
    from vital_signs
    where jsonb_typeof(resource -> 'valueQuantity') = 'object'

    union all

    select
        vital_signs.id,
        vital_signs.server,
        vital_signs.resource,
        vital_signs.last_updated,
        component -> 'code',
        component -> 'valueQuantity',
        vital_signs.resource -> 'code',
        components.component_number
    from vital_signs
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(vital_signs.resource -> 'component') = 'array'
            then vital_signs.resource -> 'component' else '[]'::jsonb end
    ) with ordinality as components (component, component_number)
    where jsonb_typeof(component -> 'valueQuantity') = 'object'
),

-- the LOINC coding of what was measured (and of its panel), across every coding
coded as (
    select
        measured.*,
        measured_loinc.code as loinc_code,
        measured_loinc.display as loinc_display,
        panel_loinc.code as panel_loinc_code
    from measured
    left join lateral (
        select coding ->> 'code' as code, coding ->> 'display' as display
        from jsonb_array_elements(
            case when jsonb_typeof(measured.measured_code -> 'coding') = 'array'
                then measured.measured_code -> 'coding' else '[]'::jsonb end
        ) with ordinality as codings (coding, position)
        where coding ->> 'system' = 'http://loinc.org' and coding ->> 'code' is not null
        order by
            (coding ->> 'code') in (select loinc_code from vital_sign_codes) desc,
            (coding ->> 'code') = '2708-6',  -- US Core pulse oximetry: 59408-5 is the specific one
            position
        limit 1
    ) as measured_loinc on true
    left join lateral (
        select coding ->> 'code' as code
        from jsonb_array_elements(
            case when jsonb_typeof(measured.panel_code -> 'coding') = 'array'
                then measured.panel_code -> 'coding' else '[]'::jsonb end
        ) with ordinality as codings (coding, position)
        where coding ->> 'system' = 'http://loinc.org' and coding ->> 'code' is not null
        order by position
        limit 1
    ) as panel_loinc on true
),

renamed as (
    select
        id::text as fhir_observation_id,
        server as fhir_server,
        {{ fhir_literal_reference('server', "resource -> 'subject' ->> 'reference'", 'Patient') }}
            as fhir_patient_reference,
        {{ fhir_literal_reference('server', "resource -> 'encounter' ->> 'reference'", 'Encounter') }}
            as fhir_encounter_reference,
        loinc_code,
        loinc_display,
        panel_loinc_code,
        component_number,
        (quantity ->> 'value')::numeric as value_as_sent,
        quantity ->> 'code' as ucum_unit_as_sent,
        resource ->> 'status' as observation_status,
        {{ fhir_instant(
            "coalesce(resource ->> 'effectiveDateTime', resource ->> 'effectiveInstant',"
            ~ " resource -> 'effectivePeriod' ->> 'start')"
        ) }} as observed_at,
        last_updated as source_updated_at
    from coded
),

-- temperatures to Celsius whatever unit the server used; other vitals keep theirs
normalised as (
    select
        renamed.*,
        case
            when ucum_unit_as_sent = '[degF]' then round((value_as_sent - 32) * 5 / 9, 2)
            else value_as_sent
        end as value,
        case when ucum_unit_as_sent = '[degF]' then 'Cel' else ucum_unit_as_sent end as ucum_unit
    from renamed
),

-- a logical id is unique only within its server: each reference qualified by it; the subject and
-- encounter in any form that names them by themselves (macros/fhir_reference.sql)
referenced as (
    select
        normalised.*,
        {{ fhir_reference('fhir_server', 'Observation', 'fhir_observation_id') }}
            as fhir_observation_reference,
        substring(fhir_patient_reference from '/Patient/([^/]+)$') as fhir_patient_id,
        substring(fhir_encounter_reference from '/Encounter/([^/]+)$') as fhir_encounter_id
    from normalised
)

select * from referenced
