-- No mart that counts patients shows a count from 1 to 10 (CMS cell-size suppression).
{% set counted = {
    'mart_claims_by_provider': ['claim_count', 'patient_count'],
    'mart_chronic_conditions': ['patient_count', 'encounter_count'],
    'mart_regulatory_summary': ['encounter_count', 'patient_count'],
} %}
{% for mart, columns in counted.items() %}
    {% for column in columns %}
select '{{ mart }}' as mart, '{{ column }}' as count_column, {{ column }} as shown
from {{ ref(mart) }}
where {{ column }} between 1 and {{ var('min_cell_size', 11) - 1 }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {% if not loop.last %}union all{% endif %}
{% endfor %}
