DROP INDEX services_title_trgm_idx;
DROP INDEX IF EXISTS services_search_rum_idx;
DROP EXTENSION IF EXISTS rum;
DROP INDEX services_location_idx;
DROP EXTENSION IF EXISTS earthdistance;
DROP EXTENSION IF EXISTS cube;

DROP INDEX services_newest_idx, services_price_idx, services_rating_idx, services_category_idx,
    services_category_price_idx, services_category_rating_idx, services_city_idx,
    services_city_price_idx, services_city_rating_idx, services_search_idx;
CREATE INDEX services_newest_idx ON services (id DESC) WHERE status = 'active';
CREATE INDEX services_price_idx ON services (price_cents, id) WHERE status = 'active';
CREATE INDEX services_rating_idx ON services ((COALESCE(rating_avg, -1)) DESC, id DESC) WHERE status = 'active';
CREATE INDEX services_category_idx ON services (category, id DESC) WHERE status = 'active';
CREATE INDEX services_category_price_idx ON services (category, price_cents, id) WHERE status = 'active';
CREATE INDEX services_category_rating_idx ON services (category, (COALESCE(rating_avg, -1)) DESC, id DESC) WHERE status = 'active';
CREATE INDEX services_city_idx ON services (lower(city), id DESC) WHERE status = 'active';
CREATE INDEX services_city_price_idx ON services (lower(city), price_cents, id) WHERE status = 'active';
CREATE INDEX services_city_rating_idx ON services (lower(city), (COALESCE(rating_avg, -1)) DESC, id DESC) WHERE status = 'active';
CREATE INDEX services_search_idx ON services USING gin (search) WHERE status = 'active';

ALTER TABLE services DROP COLUMN listed, DROP COLUMN location_lat, DROP COLUMN location_lng;
