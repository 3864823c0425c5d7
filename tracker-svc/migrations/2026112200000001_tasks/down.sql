DROP TABLE tasks;
DROP SEQUENCE task_number;
DROP TABLE accounts;
