-- Catalog reads at marketplace speed.
--
-- 1. `listed`: whether a listing is publicly visible (its own status is active, its
--    worker is not suspended and the worker's KYC is approved), kept on the row by every
--    change that affects it (src/service/listed.rs), so public reads use one table.
-- 2. An optional location, searched through cube + earthdistance with a GiST index.
-- 3. Relevance from a RUM index when the extension can be created here; without it the
--    migration still succeeds and the service ranks with ts_rank (and says so at start).

ALTER TABLE services
    ADD COLUMN listed       boolean          NOT NULL DEFAULT false,
    ADD COLUMN location_lat double precision CHECK (location_lat BETWEEN -90 AND 90),
    ADD COLUMN location_lng double precision CHECK (location_lng BETWEEN -180 AND 180),
    ADD CONSTRAINT services_location_pair CHECK ((location_lat IS NULL) = (location_lng IS NULL));

UPDATE services s SET listed = true
FROM workers w JOIN users u ON u.id = w.user_id
WHERE w.user_id = s.worker_id AND s.status = 'active' AND u.status = 'active' AND w.kyc_status = 'approved';

-- The public indexes covered active listings; they now cover listed ones, which is what
-- every public read asks for.
DROP INDEX services_newest_idx, services_price_idx, services_rating_idx, services_category_idx,
    services_category_price_idx, services_category_rating_idx, services_city_idx,
    services_city_price_idx, services_city_rating_idx, services_search_idx;
CREATE INDEX services_newest_idx ON services (id DESC) WHERE listed;
CREATE INDEX services_price_idx ON services (price_cents, id) WHERE listed;
CREATE INDEX services_rating_idx ON services ((COALESCE(rating_avg, -1)) DESC, id DESC) WHERE listed;
CREATE INDEX services_category_idx ON services (category, id DESC) WHERE listed;
CREATE INDEX services_category_price_idx ON services (category, price_cents, id) WHERE listed;
CREATE INDEX services_category_rating_idx ON services (category, (COALESCE(rating_avg, -1)) DESC, id DESC) WHERE listed;
CREATE INDEX services_city_idx ON services (lower(city), id DESC) WHERE listed;
CREATE INDEX services_city_price_idx ON services (lower(city), price_cents, id) WHERE listed;
CREATE INDEX services_city_rating_idx ON services (lower(city), (COALESCE(rating_avg, -1)) DESC, id DESC) WHERE listed;
CREATE INDEX services_search_idx ON services USING gin (search) WHERE listed;

-- The typo fallback: titles similar to what was typed when the words match nothing
-- (pg_trgm's word similarity, `<%`), from a trigram index.
CREATE INDEX services_title_trgm_idx ON services USING gin (title gin_trgm_ops) WHERE listed;

-- "Near me": ll_to_earth places a point on a 3-D cube; a radius is an earth_box
-- containment (the GiST index answers it, reading only the box) refined by
-- earth_distance, and nearest-first is the index's KNN order on `<->`: the straight-line
-- distance in that cube grows with the great-circle distance, so both orders agree.
-- Both are contrib extensions shipped with PostgreSQL (earthdistance needs cube).
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;
CREATE INDEX services_location_idx ON services USING gist (ll_to_earth(location_lat, location_lng))
    WHERE listed AND location_lat IS NOT NULL;

-- RUM keeps positions in the index, so `search <=> query` (distance = 1 / rank, title
-- weight A above description weight B) comes out in order: the first page of a common
-- word reads about a page of rows instead of ranking every match. Not every PostgreSQL
-- has it (managed providers differ): then this is skipped with a warning.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'rum') THEN
        RAISE WARNING 'extension "rum" is not available: search ranks without its index';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS rum;
    EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_file THEN
        RAISE WARNING 'extension "rum" cannot be created here (%): search ranks without its index', SQLERRM;
        RETURN;
    END;
    CREATE INDEX services_search_rum_idx ON services USING rum (search rum_tsvector_ops) WHERE listed;
END
$$;
