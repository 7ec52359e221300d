DROP INDEX services_location_lat_idx;
CREATE INDEX services_location_idx ON services USING gist (ll_to_earth(location_lat, location_lng))
    WHERE listed AND location_lat IS NOT NULL;
DROP INDEX services_point_idx;
