-- The event log, the streams' last versions and the snapshots.
--
-- events.xid is the writing transaction's ID: readers return only events
-- of transactions older than every transaction still running
-- (pg_snapshot_xmin), in (xid, seq) order, so the log they see never gains
-- an event below a position already read.

CREATE TABLE {{schema}}.streams (
	stream  text COLLATE "C" PRIMARY KEY,
	version bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE {{schema}}.events (
	seq            bigint GENERATED ALWAYS AS IDENTITY,
	xid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
	stream         text COLLATE "C" NOT NULL,
	version        bigint NOT NULL CHECK (version > 0),
	id             uuid NOT NULL,
	type           text NOT NULL,
	data           bytea NOT NULL,
	metadata       jsonb,
	correlation_id text,
	causation_id   text,
	recorded_at    timestamptz NOT NULL DEFAULT statement_timestamp(),
	CONSTRAINT events_position PRIMARY KEY (xid, seq),
	CONSTRAINT events_stream_version UNIQUE (stream, version),
	CONSTRAINT events_id UNIQUE (id)
);

CREATE TABLE {{schema}}.snapshots (
	stream      text COLLATE "C" PRIMARY KEY,
	version     bigint NOT NULL CHECK (version > 0),
	schema      integer NOT NULL,
	data        bytea NOT NULL,
	recorded_at timestamptz NOT NULL
);
