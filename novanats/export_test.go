package novanats

import (
	"time"

	"github.com/nats-io/nats.go"
)

// Conn returns the store's connection, for tests that drop it.
func Conn(s *Store) *nats.Conn { return s.nc }

// EncodeStream and DecodeStream expose the subject mapping to tests.
var (
	EncodeStream = encodeStream
	DecodeStream = decodeStream
)

// HeaderValue and FromHeaderValue expose the header quoting to tests.
var (
	HeaderValue     = headerValue
	FromHeaderValue = fromHeaderValue
)

// SubjectPrefix returns the prefix of the store's subjects.
func SubjectPrefix(s *Store) string { return s.cfg.SubjectPrefix }

// ConsumerName exposes the broker's consumer naming to tests.
var ConsumerName = consumerName

// KVKey and KVName expose the key mapping to tests.
var (
	KVKey  = kvKey
	KVName = kvName
)

// SetCheckpointClock sets the clock of c's leases, for tests.
func SetCheckpointClock(c *Checkpoints, now func() time.Time) { c.now = now }
