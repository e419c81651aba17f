package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novanats"
)

// NATS returns the backend of package novanats, measured beside a
// hand-written baseline on nats.go's jetstream package, for a benchmark on
// the server at url (nats://host:port, or a nova store URL with query
// parameters, see [novanats.ParseURL]).
//
// Every run, Nova's and the baseline's alike, gets a scratch JetStream
// stream of its own (NOVA_BENCH_ and random hex, capturing
// novabench.<hex>.>), created with the settings novanats gives its stream
// (cfg's storage and replicas) and deleted after the run, so the benchmark
// never touches the stream cfg names. cfg sets the store's tuning as for
// [novanats.Open]; its URL, Conn, StreamName and SubjectPrefix are
// ignored.
//
// The baseline does what a careful engineer writes by hand for the same
// guarantees: one subject per stream, each 1 KB message with the same
// headers (Nats-Msg-Id, type, version, metadata, a batch's last version)
// and the same
// Nats-Expected-Last-Subject-Sequence check, the subject's last sequence
// kept in memory from its own previous append (it is the stream's only
// writer); several events as one atomic batch, as the store sends them.
// It reads with the same consumer kind, an ordered consumer, and decodes
// every message into a [nova.Event].
func NATS(url string, cfg novanats.Config) (Backend, error) {
	if url == "" {
		return Backend{}, nova.Invalidf("bench", "empty NATS URL")
	}
	if u, err := novanats.ParseURL(url); err == nil {
		cfg.Storage, cfg.Replicas, url = u.Storage, u.Replicas, u.URL
	} else {
		return Backend{}, fmt.Errorf("bench: %w", err)
	}
	scratch := func() novanats.Config {
		var b [6]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		c := cfg
		c.Conn, c.URL = nil, url
		c.StreamName, c.SubjectPrefix = "NOVA_BENCH_"+h, "novabench."+h
		return c
	}
	return Backend{
		Name: "nats",
		NovaFunc: func(ctx context.Context) (nova.Store, func() error, error) {
			c := scratch()
			s, err := novanats.Open(ctx, c)
			if err != nil {
				return nil, nil, errors.Join(fmt.Errorf("bench: %w", err), dropNATSStream(url, c.StreamName))
			}
			return s, func() error { return errors.Join(s.Close(), dropNATSStream(url, c.StreamName)) }, nil
		},
		RawFunc: func(ctx context.Context) (Raw, func() error, error) {
			c := scratch()
			r, err := newNATSRaw(ctx, c)
			if err != nil {
				return nil, nil, errors.Join(err, dropNATSStream(url, c.StreamName))
			}
			return r, func() error { return errors.Join(r.Close(), dropNATSStream(url, c.StreamName)) }, nil
		},
	}, nil
}

// dropNATSStream deletes a scratch stream on its own connection.
func dropNATSStream(url, name string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("bench: connect to delete stream %s: %w", name, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("bench: delete stream %s: %w", name, err)
	}
	return nil
}

// natsRaw is the NATS baseline on a connection of its own.
type natsRaw struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	name   string
	prefix string

	mu   sync.Mutex
	last map[string]uint64 // subject → last sequence this baseline stored
}

func newNATSRaw(ctx context.Context, cfg novanats.Config) (*natsRaw, error) {
	// The stream and its settings are the store's own.
	if _, err := novanats.Migrate(ctx, cfg); err != nil {
		return nil, fmt.Errorf("bench: create stream: %w", err)
	}
	nc, err := nats.Connect(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &natsRaw{nc: nc, js: js, name: cfg.StreamName, prefix: cfg.SubjectPrefix, last: make(map[string]uint64)}, nil
}

func (r *natsRaw) Close() error {
	r.nc.Close()
	return nil
}

func (r *natsRaw) subject(stream string) string {
	return r.prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(stream))
}

// Append publishes the events after the subject's last sequence: one
// message with the expected-sequence check, or an atomic batch whose
// first message carries it.
func (r *natsRaw) Append(ctx context.Context, stream string, version uint64, events []nova.EventData) error {
	subj := r.subject(stream)
	r.mu.Lock()
	last := r.last[subj]
	r.mu.Unlock()
	batch := ""
	if len(events) > 1 {
		batch = nuid.Next()
	}
	for i, e := range events {
		m := nats.NewMsg(subj)
		m.Header.Set("Nats-Msg-Id", e.ID)
		m.Header.Set("Nova-Type", e.Type)
		m.Header.Set("Nova-Version", strconv.FormatUint(version+1+uint64(i), 10))
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return fmt.Errorf("bench: encode metadata: %w", err)
		}
		m.Header.Set("Nova-Meta", string(b))
		m.Data = e.Data
		if i == 0 {
			m.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(last, 10))
		}
		if batch == "" {
			ack, err := r.js.PublishMsg(ctx, m)
			if err != nil {
				return fmt.Errorf("bench: publish: %w", err)
			}
			last = ack.Sequence
			break
		}
		m.Header.Set("Nats-Batch-Id", batch)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < len(events)-1 {
			m.Header.Set("Nova-Batch-Last", strconv.FormatUint(version+uint64(len(events)), 10))
			if err := r.nc.PublishMsg(m); err != nil {
				return fmt.Errorf("bench: publish: %w", err)
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		resp, err := r.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return fmt.Errorf("bench: commit batch: %w", err)
		}
		var ack struct {
			Seq   uint64 `json:"seq"`
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return fmt.Errorf("bench: commit batch: %w", err)
		}
		if ack.Error != nil {
			return fmt.Errorf("bench: commit batch: %s", ack.Error.Description)
		}
		last = ack.Seq
	}
	r.mu.Lock()
	r.last[subj] = last
	r.mu.Unlock()
	return nil
}

// ReadStream reads the stream's subject with an ordered consumer up to its
// last message, decoding every message.
func (r *natsRaw) ReadStream(ctx context.Context, stream string) (int, error) {
	subj := r.subject(stream)
	s, err := r.js.Stream(ctx, r.name)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	lm, err := s.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return r.read(ctx, subj, lm.Sequence)
}

// ReadAll reads the whole stream with an ordered consumer up to its last
// message, decoding every message.
func (r *natsRaw) ReadAll(ctx context.Context) (int, error) {
	s, err := r.js.Stream(ctx, r.name)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 {
		return 0, nil
	}
	return r.read(ctx, r.prefix+".>", last)
}

func (r *natsRaw) read(ctx context.Context, filter string, last uint64) (int, error) {
	cons, err := r.js.OrderedConsumer(ctx, r.name, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(novanats.DefaultFetchSize))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	defer func() {
		it.Stop()
		if info := cons.CachedInfo(); info != nil {
			_ = r.js.DeleteConsumer(context.WithoutCancel(ctx), r.name, info.Name)
		}
	}()
	n := 0
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return n, fmt.Errorf("bench: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return n, fmt.Errorf("bench: %w", err)
		}
		e, err := r.decode(m.Subject(), md.Sequence.Stream, m.Headers(), m.Data(), md.Timestamp)
		if err != nil {
			return n, err
		}
		_ = e
		n++
		if md.Sequence.Stream >= last {
			return n, nil
		}
	}
}

// decode turns a message into the event it records.
func (r *natsRaw) decode(subj string, seq uint64, h nats.Header, data []byte, at time.Time) (nova.Event, error) {
	id, err := base64.RawURLEncoding.DecodeString(subj[len(r.prefix)+1:])
	if err != nil {
		return nova.Event{}, fmt.Errorf("bench: subject %s: %w", subj, err)
	}
	v, err := strconv.ParseUint(h.Get("Nova-Version"), 10, 64)
	if err != nil {
		return nova.Event{}, fmt.Errorf("bench: version: %w", err)
	}
	e := nova.Event{
		ID: h.Get("Nats-Msg-Id"), Stream: string(id), Type: h.Get("Nova-Type"), Version: v,
		Position: nova.Position{Commit: seq}, Data: data, RecordedAt: at.UTC(),
	}
	if md := h.Get("Nova-Meta"); md != "" {
		if err := json.Unmarshal([]byte(md), &e.Metadata); err != nil {
			return nova.Event{}, fmt.Errorf("bench: metadata: %w", err)
		}
	}
	return e, nil
}
