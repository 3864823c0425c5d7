-- Applying an entry takes the close lock shared and then reads the last
-- closed day. In one plain statement, Postgres takes the statement's snapshot
-- before the lock is granted: an entry waiting on a running close would then
-- read the days closed *before* that close, and land in the day just closed.
-- A VOLATILE function runs its queries with fresh snapshots, so this one
-- reads the closed days after the lock is held, still in one round trip.
CREATE FUNCTION last_closed_day_locked(lock_key BIGINT) RETURNS DATE
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(lock_key);
    RETURN (SELECT max(day) FROM day_closes);
END
$$;
