package novanats

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
)

// smallRead is the most events a read fetches one direct get at a time;
// longer reads use an ordered consumer, which streams them.
const smallRead = 16

// ReadStream implements [nova.Store.ReadStream].
//
// JetStream indexes a subject by sequence, not by version, so a read that
// starts past version 1 first finds its start by searching the stream
// sequence back from the stream's last event, one direct get per step (see
// seqOf: one step for a stream written alone, at most about twice log2 of
// the log's length). Backwards reads go a page (FetchSize events) at a time:
// each page is found that way, read forwards and returned reversed, so a
// backwards read holds one page in memory.
func (s *Store) ReadStream(ctx context.Context, stream string, opts nova.ReadStreamOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := s.readable(nova.ValidateStream(stream), opts.Validate()); err != nil {
			yield(nova.Event{}, err)
			return
		}
		ctx, cancel := s.opCtx(ctx)
		defer cancel()
		subj := subject(s.cfg.SubjectPrefix, stream)
		if opts.Direction == nova.Backwards {
			s.readBackwards(ctx, subj, opts, yield)
			return
		}
		from := max(opts.From, 1)
		for e, err := range s.readStream(ctx, subj, from, opts.Limit) {
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// readStream yields the events of subj from version from on, at most limit
// of them (0: no limit), up to the stream's last event when the read
// starts.
func (s *Store) readStream(ctx context.Context, subj string, from uint64, limit int) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		cur, err := s.wholeTip(ctx, subj)
		if err != nil {
			yield(nova.Event{}, err)
			return
		}
		if cur.version < from {
			return
		}
		count := cur.version - from + 1
		if limit > 0 && uint64(limit) < count {
			count = uint64(limit)
		}
		start, err := s.seqOf(ctx, subj, from, cur)
		if err != nil {
			yield(nova.Event{}, err)
			return
		}
		for e, err := range s.scan(ctx, subj, start, count) {
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// wholeTip returns the last message of subj once it ends a batch: a read
// of the tip while a batch is being stored may land inside it, and the
// batch's last message follows at once.
func (s *Store) wholeTip(ctx context.Context, subj string) (tip, error) {
	for {
		cur, err := s.tip(ctx, subj)
		if err != nil || !cur.mid {
			return cur, err
		}
		select {
		case <-ctx.Done():
			return tip{}, s.ctxErr(ctx)
		case <-time.After(time.Millisecond):
		}
	}
}

// readBackwards yields a stream's events newest first, a page at a time.
func (s *Store) readBackwards(ctx context.Context, subj string, opts nova.ReadStreamOptions, yield func(nova.Event, error) bool) {
	bound, err := s.wholeTip(ctx, subj)
	if err != nil {
		yield(nova.Event{}, err)
		return
	}
	hi := bound.version
	if opts.From > 0 && opts.From < hi {
		hi = opts.From
	}
	left := hi
	if opts.Limit > 0 && uint64(opts.Limit) < left {
		left = uint64(opts.Limit)
	}
	page := make([]nova.Event, 0, min(left, uint64(s.cfg.FetchSize)))
	for left > 0 {
		n := min(left, uint64(s.cfg.FetchSize))
		lo := hi - n + 1
		start, err := s.seqOf(ctx, subj, lo, bound)
		if err != nil {
			yield(nova.Event{}, err)
			return
		}
		page = page[:0]
		for e, err := range s.scan(ctx, subj, start, n) {
			if err != nil {
				yield(nova.Event{}, err)
				return
			}
			page = append(page, e)
		}
		if uint64(len(page)) != n {
			yield(nova.Event{}, fmt.Errorf("novanats: read %d events of %s from version %d, want %d", len(page), subj, lo, n))
			return
		}
		for i := len(page) - 1; i >= 0; i-- {
			if !yield(page[i], nil) {
				return
			}
		}
		bound = tip{seq: page[0].Position.Commit, version: lo}
		hi, left = lo-1, left-n
	}
}

// seqOf returns the stream sequence of version v of subj, whose message
// bound has a version of at least v. Versions grow with sequences, and a
// version lies at least as many sequences before bound as it is versions
// behind it, so the search gallops back from bound by that distance,
// doubling it until it passes v, then bisects; each step reads the first
// message of subj at or after a sequence (a direct get). For a stream
// written alone, or for versions near the tip, the first step lands on v.
func (s *Store) seqOf(ctx context.Context, subj string, v uint64, bound tip) (uint64, error) {
	if v == bound.version {
		return bound.seq, nil
	}
	if v <= 1 {
		return 1, nil // reads start at the first message of subj at or after it
	}
	// next reads the first message of subj at or after seq, and its version.
	next := func(seq uint64) (uint64, uint64, error) {
		m, err := again(ctx, func() (*jetstream.RawStreamMsg, error) {
			return s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		})
		if err != nil {
			return 0, 0, s.wrap(ctx, fmt.Sprintf("find version %d of %s", v, subj), err)
		}
		mv, err := versionOf(m.Sequence, m.Header)
		return m.Sequence, mv, err
	}
	// Invariant: v's sequence is in [lo, hi].
	lo, hi := uint64(1), bound.seq-1
	for d := bound.version - v; d <= hi; d *= 2 {
		seq, mv, err := next(hi + 1 - d)
		if err != nil {
			return 0, err
		}
		if mv == v {
			return seq, nil
		}
		if mv < v {
			lo = seq + 1
			break
		}
		hi -= d // nothing of subj between hi+1-d and seq, whose version is past v
	}
	for lo <= hi {
		seq, mv, err := next(lo + (hi-lo)/2)
		if err != nil {
			return 0, err
		}
		switch {
		case mv == v:
			return seq, nil
		case mv > v:
			hi = lo + (hi-lo)/2 - 1
		default:
			lo = seq + 1
		}
	}
	return 0, fmt.Errorf("novanats: version %d of %s not found", v, subj)
}

// scan yields count events of subj starting at the first at or after
// stream sequence start.
func (s *Store) scan(ctx context.Context, subj string, start, count uint64) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if count <= smallRead {
			seq := start
			for range count {
				m, err := again(ctx, func() (*jetstream.RawStreamMsg, error) {
					return s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
				})
				if err != nil {
					yield(nova.Event{}, s.wrap(ctx, "read "+subj, err))
					return
				}
				e, err := decodeEvent(s.cfg.SubjectPrefix, m.Subject, m.Sequence, m.Header, m.Data, m.Time)
				if !yield(e, err) || err != nil {
					return
				}
				seq = m.Sequence + 1
			}
			return
		}
		n := uint64(0)
		for e, err := range s.consume(ctx, []string{subj}, start, count) {
			if !yield(e.Event, err) || err != nil {
				return
			}
			if n++; n == count {
				return
			}
		}
	}
}

// entry is an event as a consumer delivers it, with whether more of its
// batch follows.
type entry struct {
	nova.Event
	mid bool
}

// consume yields the events of the given subjects from stream sequence
// start on, endlessly, through an ordered consumer: the server pushes
// them in sequence order, and the client recreates the consumer after a
// gap or a lost connection, from the last sequence it delivered. It ends
// with an error when ctx ends.
//
// want, when positive, is how many events the caller will take at most:
// the consumer then asks for no more than that at a time.
func (s *Store) consume(ctx context.Context, subjects []string, start uint64, want uint64) iter.Seq2[entry, error] {
	return func(yield func(entry, error) bool) {
		cfg := jetstream.OrderedConsumerConfig{
			FilterSubjects:    subjects,
			DeliverPolicy:     jetstream.DeliverAllPolicy,
			InactiveThreshold: consumerIdle,
		}
		if start > 1 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
		}
		cons, err := s.js.OrderedConsumer(ctx, s.cfg.StreamName, cfg)
		if err != nil {
			yield(entry{}, s.wrap(ctx, "create consumer", err))
			return
		}
		batch := uint64(s.cfg.FetchSize)
		if want > 0 && want < batch {
			batch = want
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(int(batch)))
		if err != nil {
			yield(entry{}, s.wrap(ctx, "consume", err))
			return
		}
		defer func() {
			it.Stop()
			s.deleteConsumer(ctx, cons.CachedInfo())
		}()
		for {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				yield(entry{}, s.wrap(ctx, "consume", err))
				return
			}
			md, err := m.Metadata()
			if err != nil {
				yield(entry{}, s.wrap(ctx, "consume", err))
				return
			}
			e, err := decodeEvent(s.cfg.SubjectPrefix, m.Subject(), md.Sequence.Stream, m.Headers(), m.Data(), md.Timestamp)
			if !yield(entry{e, midBatch(m.Headers())}, err) || err != nil {
				return
			}
		}
	}
}

// consumerIdle is how long the server keeps a consumer nobody pulls from:
// a backstop, since every read deletes its consumer when it ends.
const consumerIdle = time.Minute

// deleteConsumer removes a read's consumer from the server, so that reads
// do not pile consumers up until the idle threshold removes them.
func (s *Store) deleteConsumer(ctx context.Context, info *jetstream.ConsumerInfo) {
	if info == nil || s.closed() || s.nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.cfg.StreamName, info.Name) // the idle threshold removes it otherwise
}

// ReadAll implements [nova.Store.ReadAll]. It reads the stream sequence
// range after opts.From up to the last sequence when the read starts,
// through an ordered consumer.
func (s *Store) ReadAll(ctx context.Context, opts nova.ReadAllOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := s.readable(opts.Validate()); err != nil {
			yield(nova.Event{}, err)
			return
		}
		ctx, cancel := s.opCtx(ctx)
		defer cancel()
		last, err := s.lastSeq(ctx)
		if err != nil {
			yield(nova.Event{}, err)
			return
		}
		if opts.From.Commit >= last {
			return
		}
		n, want := 0, last-opts.From.Commit
		if opts.Limit > 0 && uint64(opts.Limit) < want {
			want = uint64(opts.Limit)
		}
		for e, err := range s.consume(ctx, []string{s.cfg.SubjectPrefix + ".>"}, opts.From.Commit+1, want) {
			if !yield(e.Event, err) || err != nil {
				return
			}
			// The last sequence may have been read while a batch was
			// being stored: end only where a batch ends.
			if n++; n == opts.Limit || e.Position.Commit >= last && !e.mid {
				return
			}
		}
	}
}

// lastSeq returns the stream's last sequence.
func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	info, err := again(ctx, func() (*jetstream.StreamInfo, error) { return s.stream.Info(ctx) })
	if err != nil {
		return 0, s.wrap(ctx, "read stream info", err)
	}
	return info.State.LastSeq, nil
}

// Subscribe implements [nova.Store.Subscribe]: one ordered consumer from
// just after opts.From reads the log and then waits for new messages,
// which the server pushes as they are stored. JetStream assigns stream
// sequences in the order it stores messages, and an atomic batch becomes
// visible all at once, so the consumer's order is the log's order, with
// no gaps.
func (s *Store) Subscribe(ctx context.Context, opts nova.SubscribeOptions) iter.Seq2[nova.Event, error] {
	return func(yield func(nova.Event, error) bool) {
		if err := s.readable(); err != nil {
			yield(nova.Event{}, err)
			return
		}
		ctx, cancel := s.opCtx(ctx)
		defer cancel()
		last := opts.From.Commit
		for e, err := range s.consume(ctx, []string{s.cfg.SubjectPrefix + ".>"}, opts.From.Commit+1, 0) {
			if err == nil && e.Position.Commit <= last {
				continue // never twice
			}
			if !yield(e.Event, err) || err != nil {
				return
			}
			last = e.Position.Commit
		}
	}
}

// Streams implements [nova.Store.Streams]. JetStream reports the message
// count of every subject of the stream; as nothing is ever deleted, a
// subject's count is its stream's version. The server sends the subjects
// in pages, unordered, so the listing holds every stream's name and
// version in memory (not its events) to sort them.
func (s *Store) Streams(ctx context.Context, opts nova.StreamsOptions) iter.Seq2[nova.StreamInfo, error] {
	return func(yield func(nova.StreamInfo, error) bool) {
		if err := s.readable(opts.Validate()); err != nil {
			yield(nova.StreamInfo{}, err)
			return
		}
		ctx, cancel := s.opCtx(ctx)
		defer cancel()
		info, err := again(ctx, func() (*jetstream.StreamInfo, error) {
			return s.stream.Info(ctx, jetstream.WithSubjectFilter(s.cfg.SubjectPrefix+".>"))
		})
		if err != nil {
			yield(nova.StreamInfo{}, s.wrap(ctx, "list subjects", err))
			return
		}
		list := make([]nova.StreamInfo, 0, len(info.State.Subjects))
		for subj, n := range info.State.Subjects {
			name, ok := streamOf(s.cfg.SubjectPrefix, subj)
			if !ok {
				yield(nova.StreamInfo{}, fmt.Errorf("novanats: subject %q does not encode a stream ID", subj))
				return
			}
			if name > opts.After {
				list = append(list, nova.StreamInfo{Stream: name, Version: n})
			}
		}
		slices.SortFunc(list, func(a, b nova.StreamInfo) int { return strings.Compare(a.Stream, b.Stream) })
		if opts.Limit > 0 && len(list) > opts.Limit {
			list = list[:opts.Limit]
		}
		for _, in := range list {
			if !yield(in, nil) {
				return
			}
		}
	}
}

// readable checks a read's inputs (the errors of their validation, in
// order) and that the store is open.
func (s *Store) readable(inputs ...error) error {
	for _, err := range inputs {
		if err != nil {
			return fmt.Errorf("novanats: %w", err)
		}
	}
	if s.closed() {
		return fmt.Errorf("novanats: %w", nova.ErrClosed)
	}
	return nil
}
