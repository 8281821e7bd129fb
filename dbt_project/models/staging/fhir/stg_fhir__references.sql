{#-
    One row per reference a FHIR resource makes, in the elements the warehouse follows: as sent
    (Reference.reference, or only Reference.identifier, a logical reference), with the types the
    element allows (FHIR R4: Encounter.subject Patient or Group; Observation.subject also Device
    or Location; Encounter.participant.individual Practitioner, PractitionerRole or
    RelatedPerson; Procedure.performer.actor those, Organization, Patient or Device).
    int_fhir_references_resolved says what each resolves to.
-#}

with

resources as (
    select * from {{ source_or_empty('fhir', 'resources') }}
),

followed (resource_type, element, element_path, allowed_types) as (
    values
        ('Encounter', 'subject', '$.subject', 'Patient,Group'),
        ('Encounter', 'participant.individual', '$.participant[*].individual',
            'Practitioner,PractitionerRole,RelatedPerson'),
        ('Encounter', 'location.location', '$.location[*].location', 'Location'),
        ('Encounter', 'serviceProvider', '$.serviceProvider', 'Organization'),
        ('Observation', 'subject', '$.subject', 'Patient,Group,Device,Location'),
        ('Observation', 'encounter', '$.encounter', 'Encounter'),
        ('Condition', 'subject', '$.subject', 'Patient,Group'),
        ('Condition', 'encounter', '$.encounter', 'Encounter'),
        ('Procedure', 'subject', '$.subject', 'Patient,Group'),
        ('Procedure', 'encounter', '$.encounter', 'Encounter'),
        ('Procedure', 'performer.actor', '$.performer[*].actor',
            'Practitioner,PractitionerRole,Organization,Patient,RelatedPerson,Device'),
        ('Location', 'managingOrganization', '$.managingOrganization', 'Organization')
),

-- one pass over the resources: each joins the elements its type has
references_made as (
    select
        resources.server as fhir_server,
        resources.resource_type,
        resources.server || '/' || resources.resource_type || '/' || resources.id
            as fhir_resource_reference,
        followed.element,
        made.position as element_position,
        followed.allowed_types,
        made.reference ->> 'reference' as reference,
        made.reference ->> 'type' as declared_type,
        made.reference -> 'identifier' ->> 'system' as identifier_system,
        made.reference -> 'identifier' ->> 'value' as identifier_value
    from resources
    inner join followed
        on resources.resource_type = followed.resource_type
    cross join lateral jsonb_path_query(resources.resource, followed.element_path::jsonpath)
        with ordinality as made (reference, position)
    where jsonb_typeof(made.reference) = 'object'
        and (made.reference ? 'reference' or made.reference ? 'identifier')
)

select * from references_made
