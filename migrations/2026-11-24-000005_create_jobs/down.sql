DROP TABLE reviews;
DROP TABLE job_events;
DROP TABLE jobs;
DROP TABLE thread_participants;
DROP TABLE threads;
DROP TYPE job_status;
DROP EXTENSION IF EXISTS btree_gist;
