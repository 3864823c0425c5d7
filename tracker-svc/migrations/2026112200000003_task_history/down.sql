DROP TABLE task_history;
DROP FUNCTION task_history_is_append_only();
