ALTER TABLE services DROP COLUMN title_search;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'rum') THEN
        CREATE INDEX services_search_rum_idx ON services USING rum (search rum_tsvector_ops) WHERE listed;
    END IF;
END
$$;
