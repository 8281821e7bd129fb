{#-
    Whether a FHIR Observation is in the vital-signs category (US Core vital signs): under the
    observation-category code system, or its pre-R4 address.
-#}
{% macro fhir_vital_signs_category(resource) -%}
    (
        {{ resource }} -> 'category' @> '[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]'
        or {{ resource }} -> 'category' @> '[{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs"}]}]'
    )
{%- endmacro %}
