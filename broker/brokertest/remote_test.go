package brokertest_test

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// This file holds a small networked broker for the suite's own tests: a
// server keeping one broker.Memory per namespace, and a client,
// remoteBroker, speaking gob over TCP. The server is in the test process;
// the client may be in a child process, and its connection may go through
// a proxy the suite cuts. A connection that drops ends the server side of
// its subscriptions, so what a group member held goes to the next member,
// counted as a failed delivery; the client dials again and subscribes
// again by itself. It is just enough of a networked backend to run the
// suite's cross-process and outage cases.

// request is what a client sends.
type request struct {
	ID      uint64 // answered by the reply with this ID; 0: no reply wanted
	Op      string // publish, poll, dlq, polldlq, sub, unsub, ack
	NS      string
	Env     broker.Envelope
	Topic   string
	Pattern string
	Group   string // sub: "" for a subscription
	Reason  string
	Max     int
	Sub     uint64 // sub, unsub, ack: the client's subscription
	Del     uint64 // ack: the delivery
	Answer  string // ack: "" acknowledges, anything else is the handler's error
}

// message is what the server sends: a reply or a delivery.
type message struct {
	Reply bool
	ID    uint64
	Err   string
	Kind  int // of Err: errOther, errInvalid, errClosed
	Envs  []broker.Envelope
	DLs   []broker.DeadLetter
	Sub   uint64
	Del   uint64
	Env   broker.Envelope
}

const (
	errOther = iota
	errInvalid
	errClosed
)

// server serves one broker.Memory per namespace.
type server struct {
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	brokers map[string]*broker.Memory
	conns   map[net.Conn]struct{}
}

// startServer starts a server on a free port of 127.0.0.1, stopped when
// t ends.
func startServer(t testing.TB) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{ln: ln, brokers: map[string]*broker.Memory{}, conns: map[net.Conn]struct{}{}}
	srv.wg.Go(srv.accept)
	t.Cleanup(srv.close)
	return srv
}

func (srv *server) addr() string { return srv.ln.Addr().String() }

func (srv *server) close() {
	srv.ln.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
	srv.wg.Wait()
	for _, b := range srv.brokers {
		b.Close()
	}
}

func (srv *server) accept() {
	for {
		c, err := srv.ln.Accept()
		if err != nil {
			return
		}
		srv.mu.Lock()
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		srv.wg.Go(func() {
			serveConn(srv, c)
			srv.mu.Lock()
			delete(srv.conns, c)
			srv.mu.Unlock()
		})
	}
}

// memory returns the namespace's broker, created on first use.
func (srv *server) memory(ns string) (*broker.Memory, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if b := srv.brokers[ns]; b != nil {
		return b, nil
	}
	b, err := broker.NewMemory(broker.MemoryConfig{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	srv.brokers[ns] = b
	return b, nil
}

// sconn is the server's side of one connection.
type sconn struct {
	srv    *server
	c      net.Conn
	ctx    context.Context // ends with the connection
	cancel context.CancelFunc

	encMu sync.Mutex
	enc   *gob.Encoder

	mu      sync.Mutex
	subs    map[uint64]broker.Subscription
	acks    map[uint64]chan string
	nextDel uint64
}

func serveConn(srv *server, c net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	sc := &sconn{srv: srv, c: c, ctx: ctx, cancel: cancel, enc: gob.NewEncoder(c),
		subs: map[uint64]broker.Subscription{}, acks: map[uint64]chan string{}}
	defer func() {
		cancel()
		c.Close()
		sc.mu.Lock()
		subs := sc.subs
		sc.subs = nil
		sc.mu.Unlock()
		for _, sub := range subs {
			sub.Unsubscribe()
		}
	}()
	dec := gob.NewDecoder(c)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			return
		}
		if req.Op == "ack" {
			sc.mu.Lock()
			ch := sc.acks[req.Del]
			sc.mu.Unlock()
			if ch != nil {
				ch <- req.Answer
			}
			continue
		}
		// Requests are handled in order; none waits for the client.
		m := sc.handle(req)
		m.Reply, m.ID = true, req.ID
		if req.ID != 0 {
			if sc.send(m) != nil {
				return
			}
		}
	}
}

func (sc *sconn) send(m message) error {
	sc.encMu.Lock()
	defer sc.encMu.Unlock()
	return sc.enc.Encode(m)
}

func (sc *sconn) handle(req request) (m message) {
	fail := func(err error) message {
		m := message{Err: err.Error()}
		switch {
		case errors.Is(err, nova.ErrInvalid):
			m.Kind = errInvalid
		case errors.Is(err, nova.ErrClosed):
			m.Kind = errClosed
		}
		return m
	}
	b, err := sc.srv.memory(req.NS)
	if err != nil {
		return fail(err)
	}
	switch req.Op {
	case "publish":
		err = b.Publish(sc.ctx, req.Env)
	case "poll":
		m.Envs, err = b.Poll(sc.ctx, req.Topic, req.Max)
	case "dlq":
		err = b.PublishDLQ(sc.ctx, req.Topic, req.Env, req.Reason)
	case "polldlq":
		m.DLs, err = b.PollDLQ(sc.ctx, req.Topic, req.Max)
	case "sub":
		var sub broker.Subscription
		h := sc.forward(req.Sub)
		if req.Group == "" {
			sub, err = b.Subscribe(sc.ctx, req.Pattern, h)
		} else {
			sub, err = b.SubscribeGroup(sc.ctx, req.Group, req.Pattern, h)
		}
		if err == nil {
			sc.mu.Lock()
			sc.subs[req.Sub] = sub
			sc.mu.Unlock()
		}
	case "unsub":
		sc.mu.Lock()
		sub := sc.subs[req.Sub]
		delete(sc.subs, req.Sub)
		sc.mu.Unlock()
		if sub != nil {
			sub.Unsubscribe() // its handler returns at once: its ctx ends
		}
	default:
		err = fmt.Errorf("remote: unknown operation %q", req.Op)
	}
	if err != nil {
		return fail(err)
	}
	return m
}

// forward returns the server-side handler of the client's subscription
// sub: it sends each delivery to the client and waits for its answer.
func (sc *sconn) forward(sub uint64) broker.Handler {
	return func(hctx context.Context, e broker.Envelope) error {
		ch := make(chan string, 1)
		sc.mu.Lock()
		sc.nextDel++
		del := sc.nextDel
		sc.acks[del] = ch
		sc.mu.Unlock()
		defer func() {
			sc.mu.Lock()
			delete(sc.acks, del)
			sc.mu.Unlock()
		}()
		if err := sc.send(message{Sub: sub, Del: del, Env: e}); err != nil {
			return fmt.Errorf("remote: connection lost: %w", err)
		}
		select {
		case answer := <-ch:
			if answer != "" {
				return errors.New(answer)
			}
			return nil
		case <-hctx.Done():
			return fmt.Errorf("remote: subscription ended: %w", hctx.Err())
		}
	}
}

// remoteBroker is the client: a broker.Broker and broker.GroupSubscriber
// on a server's namespace.
type remoteBroker struct {
	addr, ns string
	stop     chan struct{} // closed by Close
	redial   chan struct{} // capacity 1: the connection broke
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conn   *cconn // nil while disconnected
	subs   map[uint64]*rsub
	nextID uint64
}

var (
	_ broker.GroupSubscriber = (*remoteBroker)(nil)
	_ broker.Guarantor       = (*remoteBroker)(nil)
)

// cconn is the client's side of one connection.
type cconn struct {
	c     net.Conn
	done  chan struct{} // closed when it broke
	encMu sync.Mutex
	enc   *gob.Encoder

	mu    sync.Mutex
	calls map[uint64]chan message
}

// rsub is a client's subscription or group member.
type rsub struct {
	r              *remoteBroker
	id             uint64
	group, pattern string
	h              broker.Handler
	ctx            context.Context
	cancel         context.CancelFunc
	ch             chan delivery
	done           chan struct{}
}

type delivery struct {
	cc  *cconn
	msg message
}

// dialRemote returns a client of the server at addr (which it reaches
// lazily), closed when t ends.
func dialRemote(t testing.TB, addr, ns string) *remoteBroker {
	r := &remoteBroker{addr: addr, ns: ns, stop: make(chan struct{}), redial: make(chan struct{}, 1), subs: map[uint64]*rsub{}}
	r.wg.Go(r.reconnect)
	t.Cleanup(func() { r.Close() })
	return r
}

func (r *remoteBroker) Guarantees() broker.Guarantees {
	return broker.Guarantees{Dedup: true, ServerAttempts: true}
}

// connect returns the connection, dialling one (and subscribing again)
// when there is none.
func (r *remoteBroker) connect(ctx context.Context) (*cconn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("remote: %w", nova.ErrClosed)
	}
	if r.conn != nil {
		return r.conn, nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	cc := &cconn{c: c, done: make(chan struct{}), enc: gob.NewEncoder(c), calls: map[uint64]chan message{}}
	r.conn = cc
	r.wg.Go(func() { r.read(cc) })
	for _, s := range r.subs {
		_ = cc.send(request{Op: "sub", NS: r.ns, Sub: s.id, Group: s.group, Pattern: s.pattern})
	}
	return cc, nil
}

func (cc *cconn) send(req request) error {
	cc.encMu.Lock()
	defer cc.encMu.Unlock()
	return cc.enc.Encode(req)
}

// read dispatches what the server sends on cc until cc breaks.
func (r *remoteBroker) read(cc *cconn) {
	dec := gob.NewDecoder(cc.c)
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			break
		}
		if m.Reply {
			cc.mu.Lock()
			ch := cc.calls[m.ID]
			cc.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		r.mu.Lock()
		s := r.subs[m.Sub]
		r.mu.Unlock()
		if s == nil {
			// A subscription the client no longer has, restored by a
			// connection as it ended.
			_ = cc.send(request{Op: "unsub", NS: r.ns, Sub: m.Sub})
			continue
		}
		select {
		case s.ch <- delivery{cc, m}:
		default: // not answered: the server redelivers
		}
	}
	cc.c.Close()
	close(cc.done)
	r.mu.Lock()
	if r.conn == cc {
		r.conn = nil
	}
	r.mu.Unlock()
	select {
	case r.redial <- struct{}{}:
	default:
	}
}

// reconnect dials again after the connection broke, while there are
// subscriptions to restore.
func (r *remoteBroker) reconnect() {
	for {
		select {
		case <-r.stop:
			return
		case <-r.redial:
		}
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r.mu.Lock()
			idle := len(r.subs) == 0
			r.mu.Unlock()
			if idle {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := r.connect(ctx)
			cancel()
			if err == nil || errors.Is(err, nova.ErrClosed) {
				break
			}
		}
	}
}

// call sends req and waits for its reply.
func (r *remoteBroker) call(ctx context.Context, req request) (message, error) {
	cc, err := r.connect(ctx)
	if err != nil {
		return message{}, err
	}
	return r.callOn(ctx, cc, req)
}

// callOn sends req on cc and waits for its reply.
func (r *remoteBroker) callOn(ctx context.Context, cc *cconn, req request) (message, error) {
	ch := make(chan message, 1)
	r.mu.Lock()
	r.nextID++
	req.ID = r.nextID
	r.mu.Unlock()
	req.NS = r.ns
	cc.mu.Lock()
	cc.calls[req.ID] = ch
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.calls, req.ID)
		cc.mu.Unlock()
	}()
	if err := cc.send(req); err != nil {
		cc.c.Close()
		return message{}, fmt.Errorf("remote: %s: connection lost: %w", req.Op, err)
	}
	select {
	case m := <-ch:
		switch {
		case m.Err == "":
			return m, nil
		case m.Kind == errInvalid:
			return m, fmt.Errorf("remote: %s: %w", m.Err, nova.ErrInvalid)
		case m.Kind == errClosed:
			return m, fmt.Errorf("remote: %s: %w", m.Err, nova.ErrClosed)
		}
		return m, errors.New("remote: " + m.Err)
	case <-cc.done:
		return message{}, fmt.Errorf("remote: %s: connection lost", req.Op)
	case <-ctx.Done():
		return message{}, fmt.Errorf("remote: %s: %w", req.Op, ctx.Err())
	}
}

// ready checks what every call checks after its input: ctx and Close.
func (r *remoteBroker) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("remote: %w", nova.ErrClosed)
	}
	return nil
}

func (r *remoteBroker) Publish(ctx context.Context, e broker.Envelope) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := r.ready(ctx); err != nil {
		return err
	}
	_, err := r.call(ctx, request{Op: "publish", Env: e})
	return err
}

func (r *remoteBroker) Poll(ctx context.Context, topic string, max int) ([]broker.Envelope, error) {
	if err := checkPoll(topic, max); err != nil {
		return nil, err
	}
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	m, err := r.call(ctx, request{Op: "poll", Topic: topic, Max: max})
	if m.Envs == nil && err == nil {
		m.Envs = []broker.Envelope{}
	}
	return m.Envs, err
}

func (r *remoteBroker) PublishDLQ(ctx context.Context, topic string, e broker.Envelope, reason string) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if reason == "" || !utf8.ValidString(reason) || strings.IndexByte(reason, 0) >= 0 {
		return nova.Invalidf("remote", "dead letter %q: reason %q: want non-empty UTF-8 without NUL", e.ID, reason)
	}
	if err := r.ready(ctx); err != nil {
		return err
	}
	_, err := r.call(ctx, request{Op: "dlq", Topic: topic, Env: e, Reason: reason})
	return err
}

func (r *remoteBroker) PollDLQ(ctx context.Context, topic string, max int) ([]broker.DeadLetter, error) {
	if err := checkPoll(topic, max); err != nil {
		return nil, err
	}
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	m, err := r.call(ctx, request{Op: "polldlq", Topic: topic, Max: max})
	if m.DLs == nil && err == nil {
		m.DLs = []broker.DeadLetter{}
	}
	return m.DLs, err
}

func checkPoll(topic string, max int) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return err
	}
	if max < 1 {
		return nova.Invalidf("remote", "poll of %q: max is %d: want at least 1", topic, max)
	}
	return nil
}

func (r *remoteBroker) Subscribe(ctx context.Context, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := broker.ValidatePattern(pattern); err != nil {
		return nil, err
	}
	return r.subscribe(ctx, "", pattern, h)
}

func (r *remoteBroker) SubscribeGroup(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := broker.ValidateGroup(group); err != nil {
		return nil, err
	}
	if err := broker.ValidatePattern(pattern); err != nil {
		return nil, err
	}
	return r.subscribe(ctx, group, pattern, h)
}

func (r *remoteBroker) subscribe(ctx context.Context, group, pattern string, h broker.Handler) (broker.Subscription, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	// Connect first: the subscriptions a new connection restores are
	// the ones registered before it.
	cc, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &rsub{r: r, group: group, pattern: pattern, h: h, ctx: sctx, cancel: cancel,
		ch: make(chan delivery, 16), done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("remote: %w", nova.ErrClosed)
	}
	r.nextID++
	s.id = r.nextID
	r.subs[s.id] = s // before the server may deliver
	r.wg.Go(s.run)
	r.mu.Unlock()
	if _, err := r.callOn(ctx, cc, request{Op: "sub", Sub: s.id, Group: group, Pattern: pattern}); err != nil {
		s.Unsubscribe()
		return nil, err
	}
	return s, nil
}

func (s *rsub) run() {
	defer close(s.done)
	defer func() {
		s.r.mu.Lock()
		delete(s.r.subs, s.id)
		cc := s.r.conn
		s.r.mu.Unlock()
		if cc != nil {
			_ = cc.send(request{Op: "unsub", NS: s.r.ns, Sub: s.id})
		}
	}()
	for {
		select {
		case <-s.ctx.Done():
			return
		case d := <-s.ch:
			err := s.handle(d.msg.Env)
			if s.ctx.Err() != nil {
				return // unanswered: the unsubscription hands it on
			}
			answer := ""
			if err != nil {
				answer = err.Error()
				if answer == "" {
					answer = "handler failed"
				}
			}
			_ = d.cc.send(request{Op: "ack", Sub: s.id, Del: d.msg.Del, Answer: answer})
		}
	}
}

// handle runs the handler, turning a panic into a rejection.
func (s *rsub) handle(e broker.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("remote: handler panicked: %v", p)
		}
	}()
	return s.h(s.ctx, e)
}

func (s *rsub) Done() <-chan struct{} { return s.done }

func (s *rsub) Unsubscribe() error {
	s.cancel()
	<-s.done
	return nil
}

func (r *remoteBroker) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
		for _, s := range r.subs {
			s.cancel()
		}
	}
	r.mu.Unlock()
	// The subscriptions end first, so that they can tell the server.
	r.mu.Lock()
	subs := make([]*rsub, 0, len(r.subs))
	for _, s := range r.subs {
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		<-s.done
	}
	r.mu.Lock()
	if r.conn != nil {
		r.conn.c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
