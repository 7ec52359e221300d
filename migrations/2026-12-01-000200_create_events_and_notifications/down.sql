DROP TABLE notifications;
DROP TABLE events;
