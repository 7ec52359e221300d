DROP TABLE clients;
DROP TABLE workers;
DROP TABLE users;
DROP TYPE user_status;
DROP TYPE user_role;
