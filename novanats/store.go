package novanats

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
)

// FormatVersion is the version of the layout this package writes (subject
// mapping, headers, stream settings). It is recorded in the JetStream
// stream's description; Open refuses a stream of a newer format.
const FormatVersion = 1

// ErrAtomicBatchUnsupported is returned for an append of more than one
// event when the server cannot store a batch atomically (nats-server
// before 2.12, or a stream without atomic publish). It matches
// nova.ErrNotImplemented. Appends of one event work on every server.
var ErrAtomicBatchUnsupported = fmt.Errorf("novanats: this server cannot append several events atomically (needs nats-server 2.12 or later with atomic publish): %w", nova.ErrNotImplemented)

// ErrNewerFormat is returned by Open for a stream written by a newer
// version of this package.
var ErrNewerFormat = errors.New("novanats: the stream has a newer format than this version of novanats understands")

// ErrFormatOutdated is matched by the error Open with [Config.SkipMigrate]
// returns when the JetStream stream is missing or has an older format.
// Nothing is created or changed.
var ErrFormatOutdated = errors.New("novanats: the stream needs migrating")

// Store is an event store on a NATS JetStream stream. Create it with
// [Open]; it is safe for concurrent use.
type Store struct {
	cfg    Config
	nc     *nats.Conn
	owned  bool // the store opened nc and closes it
	js     jetstream.JetStream
	stream jetstream.Stream
	atomic bool // multi-event appends are atomic batches
	tips   tips // remembered stream tips, per-stream turns

	// done ends every read and subscription when the store closes.
	done      context.Context
	closeDone context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

var _ nova.Store = (*Store)(nil)

var descRE = regexp.MustCompile(`^nova event store \(format (\d+)\)`)

func description(v int) string { return "nova event store (format " + strconv.Itoa(v) + ")" }

// formatOf returns the format recorded in a stream's description, 0 when
// the stream is not a Nova stream.
func formatOf(desc string) int {
	m := descRE.FindStringSubmatch(desc)
	if m == nil {
		return 0
	}
	v, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return v
}

// Open connects (or takes cfg.Conn), creates the JetStream stream if it is
// missing and brings an existing one up to date (see [Migrate]), and
// returns the store. With cfg.SkipMigrate it only opens an existing
// stream, and fails with an error matching [ErrFormatOutdated] when the
// stream is missing or of an older format. Bad configuration fails with an error matching
// nova.ErrInvalid before any connection is made.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, nc: cfg.Conn}
	if s.nc == nil {
		opts := []nats.Option{nats.Name("nova"), nats.MaxReconnects(-1)}
		if l := cfg.Logger; l != nil {
			opts = append(opts,
				nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { l.Warn("novanats: disconnected", "err", err) }),
				nats.ReconnectHandler(func(c *nats.Conn) { l.Info("novanats: reconnected", "url", c.ConnectedUrl()) }),
			)
		}
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, fmt.Errorf("novanats: connect to %s: %w", redactURL(cfg.URL), err)
		}
		s.nc, s.owned = nc, true
	}
	js, err := jetstream.New(s.nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err != nil {
		s.closeConn()
		return nil, fmt.Errorf("novanats: %w", err)
	}
	s.js = js
	if err := s.migrate(ctx); err != nil {
		s.closeConn()
		return nil, err
	}
	s.done, s.closeDone = context.WithCancel(context.Background())
	return s, nil
}

// OpenURL opens the store a nova store URL names, as the nova command's
// --store nats://… does: see [ParseURL] for the URL's form.
func OpenURL(ctx context.Context, raw string) (*Store, error) {
	cfg, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

// Migrate creates or updates the store's JetStream stream, and creates
// its snapshot and checkpoint buckets when missing, without keeping the
// store open, and returns the format version the stream is at. It is
// what `nova migrate` runs. cfg.SkipMigrate is ignored.
func Migrate(ctx context.Context, cfg Config) (int, error) {
	cfg.SkipMigrate = false
	s, err := Open(ctx, cfg)
	if err != nil {
		return 0, err
	}
	err = s.migrateBuckets(ctx)
	return FormatVersion, errors.Join(err, s.Close())
}

// serverAtLeast reports whether the connected server's version is at
// least major.minor.
func serverAtLeast(nc *nats.Conn, major, minor int) bool {
	v := strings.TrimPrefix(nc.ConnectedServerVersion(), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// subjectPrefix returns the subject prefix of a store: the one cfg gives,
// else that of the subjects an existing stream captures, else one derived
// from the stream's name.
func subjectPrefix(cfg Config, existing *jetstream.StreamConfig) string {
	if cfg.SubjectPrefix != "" {
		return cfg.SubjectPrefix
	}
	if existing != nil && len(existing.Subjects) == 1 {
		if p, ok := strings.CutSuffix(existing.Subjects[0], ".>"); ok && validPrefix(p) {
			return p
		}
	}
	return "nova." + cfg.StreamName
}

// migrate creates the stream or checks and updates it, and settles the
// store's subject prefix.
func (s *Store) migrate(ctx context.Context) error {
	cfg := s.cfg
	atomicCapable := serverAtLeast(s.nc, 2, 12)
	st, err := s.js.Stream(ctx, cfg.StreamName)
	var existing *jetstream.StreamConfig
	if err == nil {
		existing = &st.CachedInfo().Config
	}
	cfg.SubjectPrefix = subjectPrefix(cfg, existing)
	s.cfg.SubjectPrefix = cfg.SubjectPrefix
	want := jetstream.StreamConfig{
		Name:        cfg.StreamName,
		Description: description(FormatVersion),
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		Storage:     cfg.Storage.jetstream(),
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		// Versions are message counts per subject: nothing may be removed.
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: atomicCapable,
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && cfg.SkipMigrate:
		return fmt.Errorf("%w: the server has no stream %s: check its name, or create the store with Migrate (nova migrate)",
			ErrFormatOutdated, cfg.StreamName)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = s.js.CreateStream(ctx, want)
		if err != nil {
			return fmt.Errorf("novanats: create stream %s: %w", cfg.StreamName, err)
		}
	case err != nil:
		return fmt.Errorf("novanats: look up stream %s: %w", cfg.StreamName, err)
	default:
		have := st.CachedInfo().Config
		v := formatOf(have.Description)
		switch {
		case v == 0:
			return fmt.Errorf("novanats: stream %s exists and is not a nova event store (description %q)", cfg.StreamName, have.Description)
		case v > FormatVersion:
			return fmt.Errorf("%w: stream %s has format %d, this package writes %d", ErrNewerFormat, cfg.StreamName, v, FormatVersion)
		}
		if len(have.Subjects) != 1 || have.Subjects[0] != want.Subjects[0] {
			return fmt.Errorf("novanats: stream %s captures %q, want %q", cfg.StreamName, have.Subjects, want.Subjects)
		}
		if v < FormatVersion && cfg.SkipMigrate {
			return fmt.Errorf("%w: stream %s has format %d, this package needs %d: run Migrate (nova migrate)",
				ErrFormatOutdated, cfg.StreamName, v, FormatVersion)
		}
		// With SkipMigrate the stream's other settings are used as they are.
		if !cfg.SkipMigrate && (v < FormatVersion || have.AllowAtomicPublish != want.AllowAtomicPublish || !have.AllowDirect || have.Duplicates != want.Duplicates) {
			up := have
			up.Description = want.Description
			up.AllowAtomicPublish = want.AllowAtomicPublish
			up.AllowDirect = true
			up.Duplicates = want.Duplicates
			up.DenyDelete, up.DenyPurge = true, true
			if st, err = s.js.UpdateStream(ctx, up); err != nil {
				return fmt.Errorf("novanats: update stream %s: %w", cfg.StreamName, err)
			}
		}
	}
	s.stream = st
	s.atomic = atomicCapable && st.CachedInfo().Config.AllowAtomicPublish
	return nil
}

// AtomicBatches reports whether appends of several events are atomic
// batches on this server. When false, such appends fail with
// [ErrAtomicBatchUnsupported].
func (s *Store) AtomicBatches() bool { return s.atomic }

// Close ends running reads and subscriptions (they yield nova.ErrClosed)
// and closes the connection if the store opened it. Later calls fail with
// nova.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeDone()
		s.closeConn()
	})
	return s.closeErr
}

func (s *Store) closeConn() {
	if s.owned {
		s.nc.Close()
	}
}

// closed reports whether Close has been called.
func (s *Store) closed() bool { return s.done.Err() != nil }

// opCtx returns a context that ends with ctx, with Close, or after the
// request timeout when ctx has no earlier deadline.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.done, func() { cancel(nova.ErrClosed) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// ctxErr returns why ctx ended: nova.ErrClosed after Close, else ctx.Err().
func (s *Store) ctxErr(ctx context.Context) error {
	if c := context.Cause(ctx); errors.Is(c, nova.ErrClosed) {
		return fmt.Errorf("novanats: %w", nova.ErrClosed)
	}
	return ctx.Err()
}
