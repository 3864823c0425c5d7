DROP TABLE emails;
DROP TABLE payouts;
DROP TABLE day_closes;
DROP TABLE entries;
DROP FUNCTION entries_are_immutable();
DROP TABLE tasks;
DROP FUNCTION tasks_prices_are_fixed();
DROP TABLE accounts;
