-- Location reads without SQL-language functions (src/service/search.rs, `POINT`).
--
-- earthdistance's `ll_to_earth`, `earth_box` and friends are SQL functions PostgreSQL
-- does not inline (a domain result; a CASE under STRICT), so every query parsed and
-- planned their bodies again and ran a small plan for each row it read. The location
-- index now indexes `ll_to_earth`'s body written out (plain C functions of `cube` and
-- the maths library: the same values), so searches can name the indexed expression
-- itself, per row too.
CREATE INDEX services_point_idx ON services USING gist ((
    cube(cube(cube(6378168::float8 * cos(radians(location_lat)) * cos(radians(location_lng))),
        6378168::float8 * cos(radians(location_lat)) * sin(radians(location_lng))),
        6378168::float8 * sin(radians(location_lat)))
)) WHERE listed AND location_lat IS NOT NULL;
DROP INDEX services_location_idx;

-- `q` with `near`: PostgreSQL keeps no statistics for cube containment and guessed the
-- radius's box at 100 rows (8 700 at 10 km in Lisbon for 100k listings), so it read the
-- whole box and filtered the words. A latitude band (the radius as degrees, a superset
-- of the circle) on a plain column has statistics and a btree to AND with the words'
-- GIN bitmap.
CREATE INDEX services_location_lat_idx ON services (location_lat)
    WHERE listed AND location_lat IS NOT NULL;
