#!/usr/bin/env bash
# EXPLAIN ANALYZE of the thread list (the SQL of src/messaging/services.rs::list) for a
# worker with THREADS threads (default 10 000), one per client, MESSAGES each (default
# 10, the client's last few unread), in a scratch database. Prints the plans of the
# first page and of a page deep in the list (keyset cursor), then drops the database.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${DB:-marketplace_explain_threads}
THREADS=${THREADS:-10000}
MESSAGES=${MESSAGES:-10}
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
q() { psql -q -h 127.0.0.1 -U postgres "$@"; }
q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
trap 'q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
cargo run --quiet -- migrate >/dev/null

q -d "$DB" <<SQL
-- Time-ordered (v7-like) ids, as the service makes them.
CREATE FUNCTION pg_temp.v7(at timestamptz) RETURNS uuid LANGUAGE sql AS \$\$
  SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid
\$\$;
INSERT INTO users (id, email, password_hash, full_name, role)
  VALUES ('00000000-0000-7000-8000-000000000001', 'busy@example.com', 'x', 'Busy Worker', 'worker');
INSERT INTO workers (user_id) VALUES ('00000000-0000-7000-8000-000000000001');
INSERT INTO users (id, email, password_hash, full_name, role)
  SELECT pg_temp.v7(now()), 'c' || n || '@example.com', 'x', 'Client ' || n, 'client' FROM generate_series(1, $THREADS) n;
INSERT INTO clients (user_id) SELECT id FROM users WHERE role = 'client';
INSERT INTO threads (id, client_id, worker_id, created_at)
  SELECT pg_temp.v7(now() - interval '30 days'), id, '00000000-0000-7000-8000-000000000001', now() - interval '30 days'
  FROM users WHERE role = 'client';
INSERT INTO thread_participants (thread_id, user_id, last_activity_at)
  SELECT id, client_id, created_at FROM threads UNION ALL SELECT id, worker_id, created_at FROM threads;
-- Messages spread over the last 30 days, alternating senders.
INSERT INTO messages (id, thread_id, sender_id, body, created_at)
  SELECT pg_temp.v7(at), t.id, CASE WHEN m % 2 = 0 THEN t.client_id ELSE t.worker_id END, 'message ' || m, at
  FROM threads t, generate_series(1, $MESSAGES) m,
       LATERAL (SELECT now() - (random() * interval '30 days') AS at) r;
UPDATE thread_participants p SET last_activity_at = l.at
  FROM (SELECT thread_id, max(created_at) AS at FROM messages GROUP BY thread_id) l WHERE l.thread_id = p.thread_id;
-- The worker has read all but the last three messages of each thread.
UPDATE thread_participants p SET last_read_message_id = (
  SELECT id FROM messages m WHERE m.thread_id = p.thread_id ORDER BY id DESC OFFSET 3 LIMIT 1)
  WHERE p.user_id = '00000000-0000-7000-8000-000000000001';
VACUUM ANALYZE;
SQL

LIST="SELECT t.id, t.job_id, t.client_id, t.worker_id, t.created_at, p.last_activity_at AS activity_at,
 m.id AS m_id, m.sender_id AS m_sender_id, m.body AS m_body, m.client_msg_id AS m_client_msg_id, m.created_at AS m_created_at,
 (SELECT count(*) FROM messages u WHERE u.thread_id = p.thread_id AND u.sender_id <> p.user_id
    AND u.id > COALESCE(p.last_read_message_id, '00000000-0000-0000-0000-000000000000')) AS unread_count
 FROM thread_participants p JOIN threads t ON t.id = p.thread_id
 LEFT JOIN LATERAL (SELECT id, sender_id, body, client_msg_id, created_at FROM messages
    WHERE thread_id = p.thread_id ORDER BY id DESC LIMIT 1) m ON true
 WHERE p.user_id = '00000000-0000-7000-8000-000000000001'"
ORDER="ORDER BY p.last_activity_at DESC, p.thread_id DESC LIMIT 21"
IFS='|' read -r at id < <(q -d "$DB" -Atc "SELECT last_activity_at, thread_id FROM thread_participants
  WHERE user_id = '00000000-0000-7000-8000-000000000001' ORDER BY last_activity_at DESC, thread_id DESC OFFSET $((THREADS / 2)) LIMIT 1")
echo "== first page ($THREADS threads, $((THREADS * MESSAGES)) messages)"
q -d "$DB" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $LIST $ORDER"
echo "== a page half-way down (keyset cursor)"
q -d "$DB" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $LIST AND (p.last_activity_at, p.thread_id) < ('$at', '$id') $ORDER"
