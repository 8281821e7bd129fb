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
