package novarabbitmq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova"
)

// publisher is the broker's confirm-mode channel on one connection. Every
// message goes out with the mandatory flag; the server returns one that
// no queue took (basic.return) before it confirms it, and the reader
// goroutine records those returns for the publishes waiting on them.
type publisher struct {
	ch      *amqp.Channel
	returns chan amqp.Return   // unbuffered: the library's reader waits until returnLoop has taken each
	barrier chan chan struct{} // returnLoop closes what it receives once done with every earlier return
	done    chan struct{}      // closed when returnLoop ends, after the channel closed

	mu    sync.Mutex
	watch map[string]int // return key → publishes waiting
	hits  map[string]int // return key → returns seen for them
}

// outgoing is one message to send, and after send whether the server
// returned it.
type outgoing struct {
	exchange, key string
	msg           amqp.Publishing
	what          string // for errors: "envelope "x" on a.b"
	returned      bool
}

func returnKey(exchange, routingKey, messageID string) string {
	return exchange + "\x00" + routingKey + "\x00" + messageID
}

// publisher returns the open confirm channel, opening one on the current
// connection when there is none.
func (b *Broker) publisher() (*publisher, error) {
	b.mu.Lock()
	p := b.pub
	b.mu.Unlock()
	if p != nil && !p.ch.IsClosed() {
		return p, nil
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.mu.Lock()
	p = b.pub
	b.mu.Unlock()
	if p != nil && !p.ch.IsClosed() {
		return p, nil
	}
	conn, err := b.connection()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, wrap("open the publishing channel", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, wrap("put the publishing channel in confirm mode", err)
	}
	p = &publisher{
		ch:      ch,
		returns: make(chan amqp.Return),
		barrier: make(chan chan struct{}),
		done:    make(chan struct{}),
		watch:   make(map[string]int),
		hits:    make(map[string]int),
	}
	ch.NotifyReturn(p.returns)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		ch.Close()
		return nil, nova.ErrClosed
	}
	b.wg.Go(p.returnLoop)
	b.pub = p
	return p, nil
}

// returnLoop records the returns of watched publishes until the channel
// closes.
func (p *publisher) returnLoop() {
	defer close(p.done)
	for {
		select {
		case r, ok := <-p.returns:
			if !ok {
				return
			}
			k := returnKey(r.Exchange, r.RoutingKey, r.MessageId)
			p.mu.Lock()
			if p.watch[k] > 0 {
				p.hits[k]++
			}
			p.mu.Unlock()
		case reply := <-p.barrier:
			close(reply)
		}
	}
}

// sync waits until returnLoop has recorded every return the library
// received before sync was called. The server sends a message's return
// before its confirmation, and the library hands it to returnLoop before
// it handles the confirmation, so after a confirmation sync makes that
// message's return visible.
func (p *publisher) sync(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case p.barrier <- reply:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send publishes items on the confirm channel, waits for the server to
// confirm all of them, and marks those it returned as unroutable. It
// returns the first failure: a publish that could not be written, a
// nack, a confirmation lost with the connection, a return, or ctx ending
// first (then the outcome of what was sent is unknown).
func (b *Broker) send(ctx context.Context, items []outgoing) error {
	p, err := b.publisher()
	if err != nil {
		return err
	}
	keys := make([]string, len(items))
	p.mu.Lock()
	for i, it := range items {
		keys[i] = returnKey(it.exchange, it.key, it.msg.MessageId)
		p.watch[keys[i]]++
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		for _, k := range keys {
			if p.watch[k]--; p.watch[k] <= 0 {
				delete(p.watch, k)
				delete(p.hits, k)
			}
		}
		p.mu.Unlock()
	}()

	confirms := make([]*amqp.DeferredConfirmation, 0, len(items))
	for _, it := range items {
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, it.exchange, it.key, true, false, it.msg)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = wrap("send "+it.what, err)
			}
			if len(confirms) > 0 {
				return fmt.Errorf("%w (the %d messages before it were sent)", err, len(confirms))
			}
			return err
		}
		confirms = append(confirms, dc)
	}
	var first error
	for i, dc := range confirms {
		select {
		case <-dc.Done():
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server to confirm %s: %w (it may have been published)", items[i].what, ctx.Err())
		}
		if !dc.Acked() && first == nil {
			if p.ch.IsClosed() {
				first = nova.Transient(fmt.Errorf("the connection dropped before the server confirmed %s: %w (it may have been published)", items[i].what, errNotConnected))
			} else {
				first = nova.Transient(fmt.Errorf("the server refused %s (basic.nack)", items[i].what))
			}
		}
	}
	if err := p.sync(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	for i, k := range keys {
		if p.hits[k] > 0 {
			p.hits[k]--
			items[i].returned = true
			if first == nil {
				first = nova.Transient(fmt.Errorf("no queue took %s (basic.return): its queue was deleted; it is declared again on the next try", items[i].what))
			}
		}
	}
	p.mu.Unlock()
	return first
}

// utf8Valid reports whether s is valid UTF-8 without NUL bytes.
func utf8Valid(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// sanitizeReason turns a handler's error message into a valid reason:
// valid UTF-8, no NUL, at most 4096 bytes.
func sanitizeReason(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\\0")
	if s == "" {
		s = "handler failed"
	}
	return truncate(s, 4096)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
