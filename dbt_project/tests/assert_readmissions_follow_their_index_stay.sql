-- A readmission is within 1 to 30 days, and the patient has a later stay at exactly that offset.
with

stays as (
    select * from {{ ref('mart_readmissions_30d') }}
)

select index_stay.encounter_key
from stays as index_stay
where index_stay.is_readmitted_within_30_days
    and (
        index_stay.days_to_readmission not between 1 and 30
        or not exists (
            select 1
            from stays as later
            where later.patient_key = index_stay.patient_key
                and later.visit_day_offset
                    = index_stay.visit_day_offset + index_stay.days_to_readmission
        )
    )
