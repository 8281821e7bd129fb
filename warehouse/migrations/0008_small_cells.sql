-- 0008 The small-cell rule, in one place for everything that publishes counts: the marts dbt
-- builds (macros/reporting.sql calls it) and what Python renders, the weekly email and the quality
-- report (common/small_cells.py). CMS's cell-size policy: no count of 1 to 10 (patients,
-- encounters, claims, records) is shown, nor a figure it could be derived from
-- (docs/analyst_guide.md, "Small cells"). The smallest count shown is a parameter: dbt's var
-- min_cell_size (dbt_project.yml), which both callers read.
create schema disclosure;
revoke all on schema disclosure from public;
grant usage on schema disclosure to transformer, steward, analyst;

-- A count too small to show: 1 to min_cell - 1 (0 is shown: it is no one).
create function disclosure.is_small(count bigint, min_cell integer)
returns boolean
language sql immutable parallel safe
return count between 1 and min_cell - 1;

-- Whether the hidden cells of a group whose total is known give themselves away: their sum is the
-- total less the cells shown, so one hidden cell alone is known; and as a hidden cell is never 0
-- (0 is shown), each of k hidden cells adding up to s is at most s - (k - 1): at most min_cell - 1,
-- a small count, unless s is min_cell + k - 1 or more.
create function disclosure.gives_away(counts bigint[], hidden boolean[], min_cell integer)
returns boolean
language sql immutable parallel safe
return (
    select count(*) filter (where cells.is_hidden) = 1
        or (
            count(*) filter (where cells.is_hidden) > 1
            and sum(cells.cell) filter (where cells.is_hidden)
                < min_cell + count(*) filter (where cells.is_hidden) - 1
        )
    from unnest(counts, hidden) as cells (cell, is_hidden)
);

-- The cell to hide beside hidden ones: the smallest neither hidden nor 0 (a 0 hidden would be
-- known: no hidden cell is 0), the first of equals; null when there is none.
create function disclosure.complement(counts bigint[], hidden boolean[])
returns integer
language sql immutable parallel safe
return (
    select cells.place
    from unnest(counts, hidden) with ordinality as cells (cell, is_hidden, place)
    where not coalesce(cells.is_hidden, false) and cells.cell > 0
    order by cells.cell, cells.place
    limit 1
);

-- Which cells of a group to hide. `counts` are the cells of one group; `hidden` those hidden
-- already (by another group they belong to; null: none); `total_known`: whether the group's sum is
-- shown or can be derived (the quarters of a total, the loaded and quarantined rows of a received
-- count). Hidden: each small cell (primary suppression); then, when the total is known and the
-- hidden cells give themselves away, its smallest cell neither hidden nor 0 as well
-- (complementary suppression: that cell is min_cell or more, so the hidden ones then number two
-- or more and add up to more than min_cell + their number - 1). When no such cell is left the
-- total must not be shown either: common/small_cells.py hides it.
create function disclosure.hidden_cells(
    counts bigint[], hidden boolean[], total_known boolean, min_cell integer
)
returns boolean[]
language plpgsql immutable parallel safe
as $$
declare
    decided boolean[] := array[]::boolean[];
    complement integer;
begin
    for place in 1 .. coalesce(array_length(counts, 1), 0) loop
        decided := decided || (
            coalesce(hidden[place], false) or disclosure.is_small(counts[place], min_cell)
        );
    end loop;
    if total_known and disclosure.gives_away(counts, decided, min_cell) then
        complement := disclosure.complement(counts, decided);
        if complement is not null then
            decided[complement] := true;
        end if;
    end if;
    return decided;
end;
$$;

-- Whether a rate may not be shown: its numerator, its denominator or their difference (the
-- complement: the stays not readmitted) is small, so the rate beside either count would give it.
create function disclosure.rate_hidden(numerator bigint, denominator bigint, min_cell integer)
returns boolean
language sql immutable parallel safe
return disclosure.is_small(numerator, min_cell)
    or disclosure.is_small(denominator, min_cell)
    or disclosure.is_small(denominator - numerator, min_cell);

revoke all on all functions in schema disclosure from public;
grant execute on all functions in schema disclosure to transformer, steward, analyst;
