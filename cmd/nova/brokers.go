package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novakafka"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novarabbitmq"
)

const brokerHelp = "the broker: nats://host:4222 (JetStream), amqp://user:pass@host:5672/vhost (RabbitMQ) or kafka://host:9092[,host:9092…]; ?namespace=NAME keeps its topics apart from other namespaces' (default: the adapter's)"

// openBroker connects to the broker spec names. Its scheme picks the
// adapter; the rest is the adapter's own URL.
func openBroker(ctx context.Context, spec string) (broker.Broker, error) {
	open, err := brokerOpener(spec)
	if err != nil {
		return nil, err
	}
	b, err := open(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact(spec), err)
	}
	return b, nil
}

// brokerOpener returns the function that opens spec, or a usage error
// when its scheme is not one of a broker.
func brokerOpener(spec string) (func(ctx context.Context, spec string) (broker.Broker, error), error) {
	scheme, err := brokerScheme(spec)
	if err != nil {
		return nil, err
	}
	return brokerSchemes[scheme], nil
}

// brokerScheme returns the scheme of a --broker URL in lower case, or a
// usage error when it is not one of [brokerSchemes].
func brokerScheme(spec string) (string, error) {
	scheme, _, ok := strings.Cut(spec, "://")
	if !ok {
		return "", usagef("--broker %q: want a URL, nats://, amqp://, amqps:// or kafka://", redact(spec))
	}
	if _, ok := brokerSchemes[strings.ToLower(scheme)]; !ok {
		return "", usagef("--broker %q: unknown scheme %q: want nats, tls, amqp, amqps or kafka", redact(spec), scheme)
	}
	return strings.ToLower(scheme), nil
}

// brokerSchemes maps a --broker URL's scheme to the adapter that opens it.
var brokerSchemes = map[string]func(ctx context.Context, spec string) (broker.Broker, error){
	"amqp":  openRabbitMQ,
	"amqps": openRabbitMQ,
	"nats":  openJetStream,
	"tls":   openJetStream,
	"kafka": openKafka,
}

// novaParams takes Nova's own query parameters (namespace) off a broker
// URL, leaving the URL its client reads. An unknown parameter is left for
// the client, which refuses what it does not know.
func novaParams(spec string) (rest string, namespace string, err error) {
	u, err := url.Parse(spec)
	if err != nil {
		return "", "", usagef("--broker %q: %v", redact(spec), errors.Unwrap(err))
	}
	q := u.Query()
	namespace = q.Get("namespace")
	if q.Has("namespace") && namespace == "" {
		return "", "", usagef("--broker %q: empty namespace", redact(spec))
	}
	q.Del("namespace")
	u.RawQuery = q.Encode()
	return u.String(), namespace, nil
}

func openJetStream(ctx context.Context, spec string) (broker.Broker, error) {
	rest, ns, err := novaParams(spec)
	if err != nil {
		return nil, err
	}
	return novanats.NewBroker(ctx, novanats.BrokerConfig{URL: rest, Namespace: ns})
}

// openKafka opens kafka://host:port[,host:port…][?namespace=NAME]: the
// bootstrap brokers are the URL's host, split at commas.
func openKafka(ctx context.Context, spec string) (broker.Broker, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, usagef("--broker %q: %v", redact(spec), errors.Unwrap(err))
	}
	q := u.Query()
	ns := q.Get("namespace")
	q.Del("namespace")
	switch {
	case u.Host == "":
		return nil, usagef("--broker %q: no broker address (want kafka://host:port)", redact(spec))
	case u.User != nil || (u.Path != "" && u.Path != "/") || len(q) > 0 || u.Fragment != "":
		return nil, usagef("--broker %q: want kafka://host:port[,host:port…][?namespace=NAME], nothing else", redact(spec))
	}
	return novakafka.New(ctx, novakafka.Config{Seeds: strings.Split(u.Host, ","), Namespace: ns})
}

func openRabbitMQ(ctx context.Context, spec string) (broker.Broker, error) {
	rest, ns, err := novaParams(spec)
	if err != nil {
		return nil, err
	}
	return novarabbitmq.New(ctx, novarabbitmq.Config{URL: rest, Namespace: ns})
}

// tailPattern reads a tail pattern, taking RabbitMQ's and Kafka users'
// "#" for Nova's ">" as the last token.
func tailPattern(p string) (string, error) {
	if p == "#" {
		p = ">"
	} else if rest, ok := strings.CutSuffix(p, ".#"); ok {
		p = rest + ".>"
	}
	if err := broker.ValidatePattern(p); err != nil {
		return "", usagef("%v", err)
	}
	return p, nil
}

// envelopeLine is the --json form of a message tail prints.
type envelopeLine struct {
	broker.Envelope
	Received time.Time `json:"received"`
}

func tailCommand() *command {
	var count int
	var group string
	return &command{
		name:           "tail",
		summary:        "print a broker's messages as they arrive",
		usage:          "PATTERN --broker URL [--json] [--count N] [--group G]",
		jsonHelp:       "print one JSON object per message: the envelope, and when it was received",
		broker:         brokerHelp,
		brokerRequired: true,
		noStore:        true,
		flags: func(fs *flag.FlagSet, _ *env) {
			fs.IntVar(&count, "count", 0, "exit after N messages (0: run until interrupted)")
			fs.StringVar(&group, "group", "", "join this durable consumer group instead of taking a copy of every message: the group keeps what arrives while no member runs, and its members share the messages")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("want one pattern, such as 'saga.>' (got %d arguments)", len(args))
			}
			if count < 0 {
				return usagef("--count %d: want 0 or more", count)
			}
			pattern, err := tailPattern(args[0])
			if err != nil {
				return err
			}
			b, err := openBroker(ctx, e.broker)
			if err != nil {
				return err
			}
			defer b.Close()
			return tail(ctx, e, b, pattern, group, count)
		},
	}
}

// tail prints each message on pattern until ctx ends or count messages
// were printed. Messages are acknowledged once printed.
func tail(ctx context.Context, e *env, b broker.Broker, pattern, group string, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	seen := 0
	show := func(_ context.Context, env broker.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		if count > 0 && seen >= count {
			return errors.New("tail: done") // left for the next reader
		}
		seen++
		if e.json {
			line, err := json.Marshal(envelopeLine{Envelope: env, Received: time.Now().UTC()})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n", line)
		} else {
			fmt.Fprintf(e.stdout, "%s  %s  %s  %s  key=%s attempts=%d  %s\n",
				env.Timestamp.UTC().Format(time.RFC3339Nano), env.Topic, env.ID, env.EventType, env.Key, env.Attempts, clip(string(env.Payload), 200))
		}
		if count > 0 && seen == count {
			cancel()
		}
		return nil
	}
	var (
		sub broker.Subscription
		err error
	)
	if group != "" {
		gs, ok := b.(broker.GroupSubscriber)
		if !ok {
			return usagef("--group: this broker has no consumer groups")
		}
		sub, err = gs.SubscribeGroup(ctx, group, pattern, show)
	} else {
		sub, err = b.Subscribe(ctx, pattern, show)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "nova tail: following %s on %s (Ctrl-C to stop)\n", pattern, redact(e.broker))
	<-sub.Done()
	return sub.Unsubscribe()
}

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func dlqCommand() *command {
	var max int
	var drain, replay bool
	return &command{
		name:           "dlq",
		summary:        "list, drain or replay a topic's dead letters",
		usage:          "TOPIC --broker URL [--json] [--max N] [--drain | --replay]",
		jsonHelp:       "print one JSON object per dead letter: envelope, topic, reason, at",
		broker:         brokerHelp,
		brokerRequired: true,
		noStore:        true,
		flags: func(fs *flag.FlagSet, _ *env) {
			fs.IntVar(&max, "max", 100, "the most dead letters to read")
			fs.BoolVar(&drain, "drain", false, "remove the dead letters listed (default: they are put back)")
			fs.BoolVar(&replay, "replay", false, "publish the dead letters listed to their topic again, attempts reset, and remove them")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			switch {
			case len(args) != 1:
				return usagef("want one topic (got %d arguments)", len(args))
			case max < 1:
				return usagef("--max %d: want 1 or more", max)
			case drain && replay:
				return usagef("--drain and --replay: choose one")
			}
			if err := broker.ValidateTopic(args[0]); err != nil {
				return usagef("%v", err)
			}
			b, err := openBroker(ctx, e.broker)
			if err != nil {
				return err
			}
			defer b.Close()
			return dlq(ctx, e, b, args[0], max, drain, replay)
		},
	}
}

// dlq reads up to max dead letters of topic, prints them, and puts them
// back, drops them or publishes them again. Reading a dead letter takes
// it off the queue, so listing puts each back as it was (with its reason)
// before it returns; one that cannot be put back is printed to stderr in
// full, so nothing is lost silently.
func dlq(ctx context.Context, e *env, b broker.Broker, topic string, max int, drain, replay bool) error {
	dls, err := b.PollDLQ(ctx, topic, max)
	if err != nil {
		return err
	}
	for _, d := range dls {
		if e.json {
			line, err := json.Marshal(d)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n", line)
			continue
		}
		fmt.Fprintf(e.stdout, "%s  %s  %s  attempts=%d  reason: %s\n",
			d.At.UTC().Format(time.RFC3339), d.Envelope.Topic, d.Envelope.ID, d.Envelope.Attempts, d.Reason)
	}
	// A context that Ctrl-C does not cancel: what was read must go back
	// or on.
	ctx = context.WithoutCancel(ctx)
	var failed []error
	for _, d := range dls {
		switch {
		case drain:
		case replay:
			env := d.Envelope
			env.Attempts = 0
			if err := b.Publish(ctx, env); err != nil {
				failed = append(failed, keep(e, d, err))
			}
		default:
			if err := b.PublishDLQ(ctx, d.Topic, d.Envelope, d.Reason); err != nil {
				failed = append(failed, keep(e, d, err))
			}
		}
	}
	what := "listed"
	switch {
	case drain:
		what = "removed"
	case replay:
		what = "published again"
	}
	fmt.Fprintf(e.stderr, "nova dlq: %s %s of %s\n", what, plural(len(dls)-len(failed), "dead letter", ""), topic)
	return errors.Join(failed...)
}

// keep prints a dead letter that could not be put back or published,
// whole, so that it can be recovered by hand.
func keep(e *env, d broker.DeadLetter, err error) error {
	line, _ := json.Marshal(d)
	fmt.Fprintf(e.stderr, "nova dlq: could not put back or publish, kept here: %s\n", line)
	return fmt.Errorf("dead letter %s: %w", d.Envelope.ID, err)
}
