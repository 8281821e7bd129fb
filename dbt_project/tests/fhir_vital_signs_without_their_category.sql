-- FHIR Observations coded as a vital sign (a LOINC code of seed loinc_vital_signs in any coding)
-- with no observation-category at all (none, or only text): stg_fhir__observations leaves them
-- out, as it leaves out one of another category (a blood gas's oxygen saturation is a laboratory
-- result). A warning, each listed by server and id, so a feed that omits the category is seen,
-- not silently lost.
{{ config(severity='warn') }}

with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
    where resource_type = 'Observation'
),

vital_sign_codes as (
    select * from {{ ref('loinc_vital_signs') }}
),

coded_as_vital_signs as (
    select resources.server, resources.id, resources.resource
    from resources
    where exists (
        select 1
        from jsonb_array_elements(
            case when jsonb_typeof(resources.resource -> 'code' -> 'coding') = 'array'
                then resources.resource -> 'code' -> 'coding' else '[]'::jsonb end
        ) as coding
        inner join vital_sign_codes
            on coding ->> 'code' = vital_sign_codes.loinc_code
        where coding ->> 'system' = 'http://loinc.org'
    )
)

select server, id
from coded_as_vital_signs
where not jsonb_path_exists(
    resource,
    '$.category[*].coding[*] ? (@.system == "http://terminology.hl7.org/CodeSystem/observation-category" || @.system == "http://hl7.org/fhir/observation-category")'
)
