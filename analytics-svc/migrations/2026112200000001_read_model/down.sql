DROP TABLE accounts;
DROP TABLE payments;
DROP TABLE day_closes;
DROP TABLE transactions;
DROP TABLE tasks;
