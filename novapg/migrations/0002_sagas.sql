-- Durable saga runs and the outbox of their lifecycle events.
--
-- saga_runs is a projection of each run's stream, written in the same
-- transaction as the stream's append. Workers claim due runs with
-- FOR UPDATE SKIP LOCKED and hold them by lease.

CREATE TABLE {{schema}}.saga_runs (
	saga        text COLLATE "C" NOT NULL,
	run_id      text COLLATE "C" NOT NULL,
	status      text NOT NULL,
	version     bigint NOT NULL,
	step        text NOT NULL DEFAULT '',
	attempt     integer NOT NULL DEFAULT 0,
	error       text NOT NULL DEFAULT '',
	due_at      timestamptz,
	deadline_at timestamptz,
	lease_owner text NOT NULL DEFAULT '',
	lease_until timestamptz,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	PRIMARY KEY (saga, run_id)
);

CREATE INDEX saga_runs_due ON {{schema}}.saga_runs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX saga_runs_status ON {{schema}}.saga_runs (status, saga, run_id);

-- The outbox keeps each envelope field by field, so that it comes back
-- exactly as written: the payload's bytes, headers as a JSON object (NULL
-- for none, apart from an empty object), stamped_at the envelope's
-- timestamp (NULL for none). Seq orders it; concurrent transactions may
-- commit their messages out of Seq order.
CREATE TABLE {{schema}}.outbox (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id         text NOT NULL,
	topic      text NOT NULL,
	event_type text NOT NULL,
	payload    bytea NOT NULL,
	key        text NOT NULL DEFAULT '',
	headers    jsonb,
	attempts   integer NOT NULL DEFAULT 0,
	stamped_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
