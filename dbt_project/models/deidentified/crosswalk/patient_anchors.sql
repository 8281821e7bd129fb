{#-
    Each patient's anchor: the moment of the first event the warehouse saw for them (for a
    patient first seen in the registry, a random number of days before its landing), fixed when
    first seen. The de-identified layer publishes dates as a year plus whole days (or hours) since
    the anchor, so intervals survive while dates do not. An anchor never moves: an event that
    arrives later but happened earlier gets a negative offset, and offsets already published stay
    true. Holds dates (PHI), so it lives in the locked crosswalk schema and is never rebuilt.
-#}
{{
    config(
        indexes=[
            {'columns': ['patient_id'], 'unique': True},
        ],
    )
}}

with

first_events as (
    select * from {{ ref('int_patient_events_unioned') }}
),

first_seen as (
    select distinct on (patient_id)
        patient_id,
        first_event_at,
        source_name
    from first_events
    order by patient_id, first_event_at
),

new_anchors as (
    select
        first_seen.patient_id,
        case
            -- A registration's event is the moment its file landed: the same for everyone in
            -- the file, and knowable. A random whole number of days before it, drawn once, makes
            -- the anchor the patient's own, so knowing the landing gives no one's dates away.
            when first_seen.source_name = 'ehr_patients'
                then first_seen.first_event_at - floor(random() * 365) * interval '1 day'
            else first_seen.first_event_at
        end as anchor_at,
        now() as anchored_at
    from first_seen
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as known
        where known.patient_id = first_seen.patient_id
    )
    {% endif %}
),

hour_anchored as (
    select
        patient_id,
        anchor_at,
        anchored_at,
        anchor_at - random() * interval '1 day' as hour_anchor_at
    from new_anchors
)

select * from hour_anchored
