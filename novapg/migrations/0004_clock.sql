-- The log's order key becomes (label, seq). A label is drawn from the
-- clock sequence inside the statement that updates, and so locks, the
-- stream's row: one stream's labels follow its versions. Readers read
-- below a horizon taken from the clock and from the shared advisory locks
-- that appends hold while they run (see the package documentation).
--
-- Events already stored keep their place: their transaction IDs become
-- their labels, and the clock starts past the largest, so every event
-- appended from now on sorts after them and stored checkpoints stay valid.
-- The table locks wait for appends still running to end.

LOCK TABLE {{schema}}.streams, {{schema}}.events IN EXCLUSIVE MODE;

ALTER TABLE {{schema}}.events ALTER COLUMN xid DROP DEFAULT;
ALTER TABLE {{schema}}.events ALTER COLUMN xid TYPE bigint USING xid::text::bigint;
ALTER TABLE {{schema}}.events RENAME COLUMN xid TO label;

ALTER TABLE {{schema}}.streams ADD COLUMN last_label bigint NOT NULL DEFAULT 0;

-- CACHE 1: every session draws from, and sees, the same last value.
CREATE SEQUENCE {{schema}}.clock AS bigint MINVALUE 1 CACHE 1 NO CYCLE;
SELECT setval('{{schema}}.clock', greatest((SELECT max(label) FROM {{schema}}.events), 1));
