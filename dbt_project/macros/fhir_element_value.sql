{#-
    The `value` of the first element of a FHIR array (identifier, telecom) whose `key` equals
    `match`: fhir_element_value('resource', 'identifier', 'system', 'http://hl7.org/fhir/sid/us-npi').
-#}
{% macro fhir_element_value(resource, array, key, match) -%}
    (
        select element ->> 'value'
        from jsonb_array_elements({{ resource }} -> '{{ array }}') as element
        where element ->> '{{ key }}' = '{{ match }}'
        limit 1
    )
{%- endmacro %}


{#-
    The code of the first coding of a FHIR CodeableConcept in `system` (by its position among
    the codings, never the first coding whatever its system); null when none has a code.
-#}
{% macro fhir_coding_code(codeable_concept, system) -%}
    (
        select coding ->> 'code'
        from jsonb_array_elements(
            case
                when jsonb_typeof({{ codeable_concept }} -> 'coding') = 'array'
                    then {{ codeable_concept }} -> 'coding'
                else '[]'::jsonb
            end
        ) with ordinality as codings (coding, position)
        where coding ->> 'system' = '{{ system }}' and coding ->> 'code' is not null
        order by position
        limit 1
    )
{%- endmacro %}
