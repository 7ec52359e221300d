-- Relevance by tier: listings whose title matches the words, then listings that match
-- only with their description, newest first within each tier (ids are UUID v7).
--
-- Both tiers are keyset-ordered by id, so a page of a common word walks the id index
-- and stops after a page of matches, and a rare word's few matches come from a GIN
-- bitmap (src/service/search.rs decides which, without trusting the planner's guess).
-- The title needs its own tsvector for that: `search` weighs title and description
-- together, and no index can say "the title alone matches" from it.
--
-- This replaces the RUM ranking (`search <=> query`): RUM scored every match before it
-- returned the first, and its two scores per word made a keyset page read a whole tie
-- group. Its index goes; the extension, if the catalog migration could create it, is
-- left in place (dropping it may need rights this role does not have).
ALTER TABLE services ADD COLUMN title_search tsvector NOT NULL
    GENERATED ALWAYS AS (to_tsvector('english', title)) STORED;
CREATE INDEX services_title_search_idx ON services USING gin (title_search) WHERE listed;
DROP INDEX IF EXISTS services_search_rum_idx;
