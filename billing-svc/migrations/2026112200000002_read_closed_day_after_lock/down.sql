DROP FUNCTION last_closed_day_locked(BIGINT);
