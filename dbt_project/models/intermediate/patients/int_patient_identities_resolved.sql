{#-
    Identity resolution: every way a source refers to a patient, and the patient it is.

    The hospital's MRN is the enterprise patient identifier. The rules, applied in this order and
    nothing else (docs/deidentification.md explains them):
      1. mrn: the registry, encounters, claims and trial participations send the MRN as
         patient_id; trimmed and upper-cased (staging), it is the patient.
      2. fhir_mrn_identifier: a FHIR Patient is the patient whose MRN its identifier with system
         urn:healthcare-warehouse:mrn carries.
      3. fhir_logical_id: a FHIR Patient with no MRN identifier is a patient of its own,
         'FHIR:' || its reference (its server's key, /Patient/, its logical id: two servers'
         Patients of one id are two patients), until the server sends its MRN.
    No rule looks at names, birth dates or addresses, so no two people are merged by a guess.
    Device readings register no one: a monitor is attached to a patient the hospital has already
    registered, so a reading waits in staging until its patient is known (deid_vital_readings).
-#}

with

registry as (
    select * from {{ ref('stg_ehr__patients') }}
),

encounters as (
    select * from {{ ref('stg_ehr__encounters') }}
),

claims as (
    select * from {{ ref('stg_claims__claims') }}
),

trials as (
    select * from {{ ref('stg_research__clinical_trials') }}
),

fhir_patients as (
    select * from {{ ref('stg_fhir__patients') }}
),

sent_as_mrn as (
    select distinct 'ehr_patients' as source_name, patient_id as source_patient_reference
    from registry
    union
    select distinct 'ehr', patient_id from encounters
    union
    select distinct 'claims', patient_id from claims
    union
    select distinct 'research', patient_id from trials
),

resolved_by_mrn as (
    select
        source_name,
        source_patient_reference,
        source_patient_reference as patient_id,
        'mrn' as resolution_rule
    from sent_as_mrn
    where source_patient_reference is not null
),

resolved_from_fhir as (
    select
        'fhir' as source_name,
        fhir_patient_reference as source_patient_reference,
        coalesce(mrn, 'FHIR:' || fhir_patient_reference) as patient_id,
        case
            when mrn is not null then 'fhir_mrn_identifier'
            else 'fhir_logical_id'
        end as resolution_rule
    from fhir_patients
),

resolved as (
    select * from resolved_by_mrn
    union all
    select * from resolved_from_fhir
)

select * from resolved
