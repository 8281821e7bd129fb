-- 0012 The backup's role: `backup` (made by bootstrap, with pg_read_all_data and BYPASSRLS) dumps
-- this database, which it may connect to; it writes nothing and grants nothing.
do $$
begin
    execute format('grant connect on database %I to backup', current_database());
end
$$;
