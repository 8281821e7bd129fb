{#-
    Each patient's anchor: the moment of the first event the warehouse saw for them, fixed when
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
    select
        patient_id,
        min(first_event_at) as anchor_at
    from first_events
    group by patient_id
),

new_anchors as (
    select
        first_seen.patient_id,
        first_seen.anchor_at,
        now() as anchored_at
    from first_seen
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as known
        where known.patient_id = first_seen.patient_id
    )
    {% endif %}
)

select * from new_anchors
