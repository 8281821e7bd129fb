-- 0025 Institutional claims (ingestion/rules/claims.yml): a facility's claim carries its type of
-- bill, admission and discharge dates and discharge status. Landing adds a configured column to
-- the raw table the first time it lands a file; a warehouse whose claims landed before has them
-- added here (null: those claims are professional ones), so that a build before the next claims
-- file finds them (staging.stg_claims__claims reads them). dlt compares with the table itself and
-- adds none twice.
do $$
begin
    if to_regclass('raw_claims.claims') is not null then
        alter table raw_claims.claims add column if not exists type_of_bill text;
        alter table raw_claims.claims add column if not exists admission_date date;
        alter table raw_claims.claims add column if not exists discharge_date date;
        alter table raw_claims.claims add column if not exists discharge_status text;
    end if;
end
$$;
