-- Projection checkpoints and the leases that keep one instance of a
-- projection running across processes.

CREATE TABLE {{schema}}.checkpoints (
	name        text COLLATE "C" PRIMARY KEY,
	commit_pos  bigint NOT NULL DEFAULT 0,
	prepare_pos bigint NOT NULL DEFAULT 0,
	lease_owner text NOT NULL DEFAULT '',
	lease_until timestamptz,
	updated_at  timestamptz NOT NULL DEFAULT statement_timestamp()
);
