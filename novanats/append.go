package novanats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/retry"
	"github.com/nova-go/nova/internal/validate"
)

// JetStream error codes the append path branches on.
const (
	errWrongLastSeq         = 10071 // Nats-Expected-Last-Subject-Sequence did not match
	errWrongLastSeqConstant = 10164 // the same, on replicated streams
	errWrongLastMsgID       = 10070 // Nats-Expected-Last-Msg-Id did not match
	errBatchDuplicate       = 10201 // an atomic batch carries a stored Nats-Msg-Id
)

// hdrExpLastID is the header the duplicate probe cannot satisfy, and
// probeLastID its value: not a UUID, so never the ID of the last message.
const (
	hdrExpLastID = "Nats-Expected-Last-Msg-Id"
	probeLastID  = "nova-duplicate-probe"
)

// pubAck is the server's answer to a publish into a stream.
type pubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Error     *apiError `json:"error,omitempty"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("novanats: server: %s (code %d, error code %d)", e.Description, e.Code, e.ErrCode)
}

// tip is the last message of an event stream's subject: its stream
// sequence and version, both 0 when the stream has no events.
type tip struct {
	seq, version uint64
	mid          bool // the message is part of a batch whose rest follows
}

// Append implements [nova.Store.Append].
//
// The version check is the server's: each append carries the subject's last
// sequence as Nats-Expected-Last-Subject-Sequence, read just before, so
// the server stores it only if nothing was appended to the stream in
// between; the new events' versions follow the last one's. When the
// server refuses, Append reads the tip again and, for Any and
// StreamExists, tries again (a stream never shrinks, so one that existed
// still does); for NoStream and exact versions the new tip decides.
func (s *Store) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	evs, err := validate.Append(stream, events)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if s.closed() {
		return nova.AppendResult{}, fmt.Errorf("novanats: %w", nova.ErrClosed)
	}
	if len(evs) > 1 && !s.atomic {
		return nova.AppendResult{}, ErrAtomicBatchUnsupported
	}
	subj := subject(s.cfg.SubjectPrefix, stream)
	if err := s.checkSizes(subj, evs); err != nil {
		return nova.AppendResult{}, err
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	unlock, err := s.tips.lock(ctx, subj)
	if err != nil {
		return nova.AppendResult{}, s.ctxErr(ctx)
	}
	res, cur, err := s.appendTurn(ctx, subj, expected, evs)
	unlock()
	if errors.Is(err, errResolve) {
		return s.resolve(ctx, stream, subj, expected, evs, cur)
	}
	return res, err
}

// maxHeaderLen is the most header bytes JetStream stores with a message.
const maxHeaderLen = 65535

// checkSizes refuses, before anything is sent, an event whose message
// the server would refuse for its size: data and headers above the
// server's max_payload (from the INFO it sent when the connection was
// made; 1 MiB by default), or headers above what JetStream stores. The
// headers are sized as the largest the append may send: the widest
// version and sequence numbers, and a batch's headers when there are
// several events.
func (s *Store) checkSizes(subj string, evs []nova.EventData) error {
	limit := s.nc.MaxPayload()
	for i, d := range evs {
		m, err := encodeMsg(subj, d, math.MaxUint64)
		if err != nil {
			return err
		}
		wide := strconv.FormatUint(math.MaxUint64, 10)
		m.Header[hdrExpSubj] = []string{wide}
		if len(evs) > 1 {
			m.Header[hdrBatchID] = []string{nuid.Next()}
			m.Header[hdrBatchLast] = []string{wide}
			m.Header[hdrBatchSeq] = []string{strconv.Itoa(len(evs))}
			m.Header[hdrBatchCommit] = []string{"1"}
		}
		size := m.Size() - len(m.Subject)
		if hdr := size - len(m.Data); hdr > maxHeaderLen {
			return nova.Invalidf("novanats", "event %d: its headers (type and metadata) take %d bytes, more than the %d JetStream stores with a message", i, hdr, maxHeaderLen)
		}
		if limit > 0 && int64(size) > limit {
			return nova.Invalidf("novanats",
				"event %d of %d bytes (data and headers) is larger than the NATS server's max_payload of %d bytes (%s): raise max_payload in the server's configuration (at most 64 MB; Nova's own limit is %d bytes)",
				i, size, limit, sizeText(limit), nova.MaxEventLen)
		}
	}
	return nil
}

// sizeText writes n bytes in KiB or MiB when it is a whole number of them.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// errResolve tells Append that the append is a conflict or a retry.
var errResolve = errors.New("novanats: resolve")

// appendTurn appends while this process's other appends to subj wait. It
// returns errResolve, with the tip it saw, when the expected version does
// not hold or the server knows an event's ID.
func (s *Store) appendTurn(ctx context.Context, subj string, expected nova.ExpectedVersion, evs []nova.EventData) (nova.AppendResult, tip, error) {
	cur, known := s.tips.get(subj)
	guess := known // cur was remembered, not read just now
	for {
		if !known {
			var err error
			if cur, err = s.wholeTip(ctx, subj); err != nil {
				return nova.AppendResult{}, cur, err
			}
			known, guess = true, false
		}
		if !expected.Check(cur.version) {
			if v, exact := expected.Version(); guess && !(exact && cur.version > v) {
				// The remembered tip may be stale: check a fresh one.
				// Versions only grow, so a remembered version already
				// past an exact expectation settles it without a read.
				known = false
				continue
			}
			return nova.AppendResult{}, cur, errResolve
		}
		ack, err := s.publish(ctx, subj, cur, evs)
		var ae *apiError
		switch {
		case err == nil && ack.Duplicate:
			// Only a single event gets this answer: its ID is stored.
			s.tips.forget(subj)
			return nova.AppendResult{}, cur, errResolve
		case err == nil:
			n := uint64(len(evs))
			s.tips.put(subj, tip{seq: ack.Seq, version: cur.version + n})
			return nova.AppendResult{
				FirstVersion: cur.version + 1,
				LastVersion:  cur.version + n,
				Position:     nova.Position{Commit: ack.Seq},
			}, cur, nil
		case errors.As(err, &ae) && (ae.ErrCode == errWrongLastSeq || ae.ErrCode == errWrongLastSeqConstant):
			known = false // someone appended in between: read the tip again
		case errors.As(err, &ae) && ae.ErrCode == errBatchDuplicate:
			s.tips.forget(subj)
			return nova.AppendResult{}, cur, errResolve
		default:
			s.tips.forget(subj)
			return nova.AppendResult{}, cur, err
		}
	}
}

// tip returns the last message of subj.
func (s *Store) tip(ctx context.Context, subj string) (tip, error) {
	m, err := again(ctx, func() (*jetstream.RawStreamMsg, error) { return s.stream.GetLastMsgForSubject(ctx, subj) })
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return tip{}, nil
	}
	if err != nil {
		return tip{}, s.wrap(ctx, "read the last message of "+subj, err)
	}
	v, err := versionOf(m.Sequence, m.Header)
	if err != nil {
		return tip{}, err
	}
	return tip{seq: m.Sequence, version: v, mid: midBatch(m.Header)}, nil
}

// publish stores evs after cur: one message, or an atomic batch whose first
// message carries the version check and whose last commits it.
func (s *Store) publish(ctx context.Context, subj string, cur tip, evs []nova.EventData) (pubAck, error) {
	expect := strconv.FormatUint(cur.seq, 10)
	if len(evs) == 1 {
		m, err := encodeMsg(subj, evs[0], cur.version+1)
		if err != nil {
			return pubAck{}, err
		}
		m.Header[hdrExpSubj] = []string{expect}
		return s.request(ctx, m)
	}
	id := nuid.Next()
	last := strconv.FormatUint(cur.version+uint64(len(evs)), 10)
	for i, d := range evs {
		m, err := encodeMsg(subj, d, cur.version+1+uint64(i))
		if err != nil {
			return pubAck{}, err
		}
		m.Header[hdrBatchID] = []string{id}
		if i < len(evs)-1 {
			m.Header[hdrBatchLast] = []string{last}
		}
		m.Header[hdrBatchSeq] = []string{strconv.Itoa(i + 1)}
		if i == 0 {
			m.Header[hdrExpSubj] = []string{expect}
		}
		if i == len(evs)-1 {
			m.Header[hdrBatchCommit] = []string{"1"}
			return s.request(ctx, m)
		}
		// The server answers only the commit; a message it refuses
		// leaves the batch incomplete, which the commit reports.
		if err := s.nc.PublishMsg(m); err != nil {
			return pubAck{}, s.wrap(ctx, "publish batch", err)
		}
	}
	panic("unreachable")
}

// request publishes m and waits for the server's acknowledgement.
func (s *Store) request(ctx context.Context, m *nats.Msg) (pubAck, error) {
	rctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	resp, err := s.nc.RequestMsgWithContext(rctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return pubAck{}, fmt.Errorf("novanats: no stream captures %s: %w", m.Subject, err)
		}
		return pubAck{}, s.wrap(ctx, "publish", err)
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return pubAck{}, fmt.Errorf("novanats: bad publish acknowledgement %q: %w", resp.Data, err)
	}
	if ack.Error != nil {
		return ack, ack.Error
	}
	return ack, nil
}

// resolve decides an append whose expected version does not hold, or some
// of whose IDs the server reports as stored: an idempotent retry, a
// reused ID, or a concurrency error.
func (s *Store) resolve(ctx context.Context, stream, subj string, expected nova.ExpectedVersion, evs []nova.EventData, cur tip) (nova.AppendResult, error) {
	found, err := s.lookup(ctx, subj, expected, evs, cur)
	if err != nil {
		return nova.AppendResult{}, err
	}
	if len(found) == 0 {
		if expected.Check(cur.version) {
			return nova.AppendResult{}, fmt.Errorf("novanats: the server reported an event of the append to %q as stored but it cannot be found", stream)
		}
		return nova.AppendResult{}, &nova.ConcurrencyError{Stream: stream, Expected: expected, Actual: cur.version}
	}
	return retry.Check(stream, expected, evs, found)
}

// lookup finds which of evs are stored. Inside the duplicate window the
// server knows every stored ID, and a probe asks it (see probe). Past the
// window only the place an exact expected version implies can be checked:
// the versions after it in this stream are read and matched by ID.
func (s *Store) lookup(ctx context.Context, subj string, expected nova.ExpectedVersion, evs []nova.EventData, cur tip) (map[string]nova.Event, error) {
	found := make(map[string]nova.Event)
	for _, d := range evs {
		seq, ok, err := s.probe(ctx, subj, d.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		e, err := s.eventAt(ctx, seq)
		if err != nil {
			return nil, err
		}
		found[d.ID] = e
	}
	v, exact := expected.Version()
	if !exact || len(found) == len(evs) || cur.version <= v {
		return found, nil
	}
	want := make(map[string]bool, len(evs))
	for _, d := range evs {
		want[d.ID] = true
	}
	n := min(uint64(len(evs)), cur.version-v)
	start, err := s.seqOf(ctx, subj, v+1, cur)
	if err != nil {
		return nil, err
	}
	for e, err := range s.scan(ctx, subj, start, n) {
		if err != nil {
			return nil, err
		}
		if want[e.ID] {
			found[e.ID] = e
		}
	}
	return found, nil
}

// probe asks the server whether an event ID is in its duplicate window,
// and at which sequence. It publishes an empty message with that ID and a
// check that cannot pass, Nats-Expected-Last-Msg-Id naming something that
// is not an event ID: the server answers a known ID as a duplicate, with
// the stored message's sequence, before it makes that check (on 2.9 as on
// 2.15; the subject-sequence check comes earlier on 2.15, so it cannot
// serve), and refuses any other message on the check. Nothing is ever
// stored.
func (s *Store) probe(ctx context.Context, subj, id string) (uint64, bool, error) {
	m := &nats.Msg{Subject: subj, Header: nats.Header{
		hdrMsgID:     []string{id},
		hdrExpLastID: []string{probeLastID},
	}}
	ack, err := s.request(ctx, m)
	var ae *apiError
	switch {
	case err == nil && ack.Duplicate:
		return ack.Seq, true, nil
	case err == nil:
		return 0, false, fmt.Errorf("novanats: a duplicate probe for %s was stored at %d", id, ack.Seq)
	case errors.As(err, &ae) && ae.ErrCode == errWrongLastMsgID:
		return 0, false, nil
	}
	return 0, false, err
}

// eventAt reads the event stored at stream sequence seq.
func (s *Store) eventAt(ctx context.Context, seq uint64) (nova.Event, error) {
	m, err := again(ctx, func() (*jetstream.RawStreamMsg, error) { return s.stream.GetMsg(ctx, seq) })
	if err != nil {
		return nova.Event{}, s.wrap(ctx, "read message "+strconv.FormatUint(seq, 10), err)
	}
	return decodeEvent(s.cfg.SubjectPrefix, m.Subject, m.Sequence, m.Header, m.Data, m.Time)
}

// wrap prefixes err, or returns why ctx ended when it did.
func (s *Store) wrap(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return s.ctxErr(ctx)
	}
	if s.closed() {
		return fmt.Errorf("novanats: %w", nova.ErrClosed)
	}
	return markTransient(fmt.Errorf("novanats: %s: %w", what, err))
}
