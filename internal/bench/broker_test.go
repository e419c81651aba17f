package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novarabbitmq"
	"github.com/nova-go/nova/novasqlite"
)

// brokerCase is a broker backend on the machine's server, and a way to
// tell that a namespace is gone from it.
type brokerCase struct {
	name   string
	server testenv.Server
	open   func(url string) (bench.BrokerBackend, error)
	gone   func(t *testing.T, url, ns string)
}

var brokerCases = []brokerCase{
	{
		name:   "nats",
		server: testenv.NATS,
		open: func(url string) (bench.BrokerBackend, error) {
			return bench.NATSBroker(url, novanats.BrokerConfig{Namespace: "benchtest"})
		},
		gone: func(t *testing.T, url, ns string) {
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Stream(t.Context(), "NOVA_BROKER_"+ns); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("stream of namespace %s: %v, want it deleted", ns, err)
			}
		},
	},
	{
		name:   "rabbitmq",
		server: testenv.RabbitMQ,
		open: func(url string) (bench.BrokerBackend, error) {
			return bench.RabbitMQ(url, novarabbitmq.Config{Namespace: "benchtest"})
		},
		gone: func(t *testing.T, url, ns string) {
			conn, err := amqp.Dial(url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			check := func(what string, f func(ch *amqp.Channel) error) {
				ch, err := conn.Channel()
				if err != nil {
					t.Fatal(err)
				}
				defer ch.Close()
				var ae *amqp.Error
				if err := f(ch); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
					t.Errorf("%s: %v, want it deleted", what, err)
				}
			}
			for _, x := range []string{".topics", ".poll", ".dlx"} {
				check("exchange "+ns+x, func(ch *amqp.Channel) error {
					return ch.ExchangeDeclarePassive(ns+x, "topic", true, false, false, false, nil)
				})
			}
			for _, q := range []string{".poll.bench.envelopes", ".dlq.bench.envelopes", ".group.bench", ".poll.saga.bench.a.started", ".poll.saga.bench.saga.completed"} {
				check("queue "+ns+q, func(ch *amqp.Channel) error {
					_, err := ch.QueueDeclarePassive(ns+q, true, false, false, false, nil)
					return err
				})
			}
		},
	},
}

// recordNamespaces makes be record the namespace of every broker it
// opens.
func recordNamespaces(be *bench.BrokerBackend) func() []string {
	var mu sync.Mutex
	var seen []string
	open := be.NovaFunc
	be.NovaFunc = func(ctx context.Context, ns string) (broker.Broker, error) {
		mu.Lock()
		seen = append(seen, ns)
		mu.Unlock()
		return open(ctx, ns)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// Every broker scenario runs, small, on each server: both sides report a
// rate (the relay only Nova's), every run's check passed (each envelope
// published is held by the server, each one waiting for the group seen
// once, the outbox emptied), the JSON has the store scenarios' shape, and
// every namespace is gone afterwards.
func TestBrokerScenarios(t *testing.T) {
	t.Parallel()
	for _, bc := range brokerCases {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			url := testenv.Need(t, bc.server)
			be, err := bc.open(url)
			if err != nil {
				t.Fatal(err)
			}
			namespaces := recordNamespaces(&be)
			res, err := bench.RunBroker(t.Context(), be, bench.Options{Runs: 1, Warmup: -1, Scale: 0.01})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range res {
				names = append(names, r.Scenario)
				if r.Backend != bc.name || r.Unit != "envelopes" || r.Runs != 1 || !(r.NovaPerSec > 0) {
					t.Errorf("result %+v: want backend %s, unit envelopes, 1 run and a positive rate", r, bc.name)
				}
				if hasRaw := r.Scenario != "relay"; (r.RawPerSec > 0) != hasRaw || (r.Ratio > 0) != hasRaw {
					t.Errorf("result %+v: raw side present %v, want %v", r, r.RawPerSec > 0, hasRaw)
				}
			}
			if want := bench.BrokerScenarioNames(); !slices.Equal(names, want) {
				t.Fatalf("scenarios %v, want %v", names, want)
			}
			var buf bytes.Buffer
			if err := bench.WriteJSON(&buf, res); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&buf)
			for sc.Scan() {
				var obj map[string]any
				if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
					t.Fatal(err)
				}
				want := []string{"backend", "nova_per_sec", "ratio", "raw_per_sec", "runs", "scenario", "unit"}
				if obj["scenario"] == "relay" {
					want = []string{"backend", "nova_per_sec", "outbox", "runs", "scenario", "unit"}
					if obj["outbox"] != "sqlite" {
						t.Errorf("%s: want outbox sqlite", sc.Text())
					}
				}
				keys := make([]string, 0, len(obj))
				for k := range obj {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, want) {
					t.Errorf("%s: keys %v, want %v", sc.Text(), keys, want)
				}
			}
			// Two sides of three scenarios, and the relay's one.
			nss := namespaces()
			if len(nss) != 7 {
				t.Errorf("opened %d namespaces %v, want 7", len(nss), nss)
			}
			for _, ns := range nss {
				if !strings.HasPrefix(ns, "benchtest-") {
					t.Errorf("namespace %q does not start with the prefix", ns)
				}
				bc.gone(t, url, ns)
			}
		})
	}
}

// shortRawBroker loses the last message of every batch and reports an
// ID that was never published for the first message it consumes.
type shortRawBroker struct{ bench.RawBroker }

func (r shortRawBroker) PublishBatch(ctx context.Context, topic string, ms []bench.RawMessage) error {
	return r.RawBroker.PublishBatch(ctx, topic, ms[:len(ms)-1])
}

func (r shortRawBroker) Group(ctx context.Context, group, topic string) (bench.RawConsumer, error) {
	c, err := r.RawBroker.Group(ctx, group, topic)
	return &wrongIDConsumer{RawConsumer: c}, err
}

type wrongIDConsumer struct {
	bench.RawConsumer
	n int
}

func (c *wrongIDConsumer) Next(ctx context.Context) (string, error) {
	id, err := c.RawConsumer.Next(ctx)
	if c.n++; c.n == 1 {
		id = "not-published"
	}
	return id, err
}

// A side that does not do all its work fails the run, instead of
// reporting a flattering rate.
func TestBrokerRunFailsOnWorkNotDone(t *testing.T) {
	t.Parallel()
	url := testenv.Need(t, testenv.NATS)
	be, err := bench.NATSBroker(url, novanats.BrokerConfig{Namespace: "benchtest"})
	if err != nil {
		t.Fatal(err)
	}
	raw := be.RawFunc
	be.RawFunc = func(ctx context.Context, ns string) (bench.RawBroker, error) {
		r, err := raw(ctx, ns)
		if err != nil {
			return nil, err
		}
		return shortRawBroker{r}, nil
	}
	for scenario, want := range map[string]string{
		"broker-publish-batch": "the server holds 198 envelopes, want 200",
		"broker-consume":       `1 envelopes seen twice or never published (such as "not-published")`,
	} {
		_, err := bench.RunBroker(t.Context(), be, bench.Options{Scenarios: []string{scenario}, Runs: 1, Warmup: -1, Scale: 0.01})
		if err == nil || !strings.Contains(err.Error(), "raw: "+want) {
			t.Errorf("%s: err = %v, want the raw side's %q", scenario, err, want)
		}
	}
}

func TestRunBrokerRejectsBadInput(t *testing.T) {
	t.Parallel()
	good, err := bench.NATSBroker("nats://127.0.0.1:1", novanats.BrokerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	noRaw := good
	noRaw.RawFunc = nil
	badPrefix := good
	badPrefix.Prefix = "a.b"
	longPrefix := good
	longPrefix.Prefix = strings.Repeat("p", bench.MaxBrokerPrefixLen+1)
	for _, tt := range []struct {
		name    string
		backend bench.BrokerBackend
		opts    bench.Options
		msg     string
	}{
		{"store scenario", good, bench.Options{Scenarios: []string{"append-1"}}, `unknown scenario "append-1", want one of broker-publish, broker-publish-batch, broker-consume, relay`},
		{"scenario twice", good, bench.Options{Scenarios: []string{"relay", "relay"}}, "named twice"},
		{"no RawFunc", noRaw, bench.Options{}, "RawFunc"},
		{"bad prefix", badPrefix, bench.Options{}, "Prefix"},
		{"long prefix", longPrefix, bench.Options{}, "Prefix"},
	} {
		res, err := bench.RunBroker(t.Context(), tt.backend, tt.opts)
		if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), tt.msg) || len(res) != 0 {
			t.Errorf("%s: %d results, err = %v, want one matching nova.ErrInvalid with %q", tt.name, len(res), err, tt.msg)
		}
	}
	for _, f := range []func() error{
		func() error { _, err := bench.NATSBroker("", novanats.BrokerConfig{}); return err },
		func() error { _, err := bench.RabbitMQ("", novarabbitmq.Config{}); return err },
	} {
		if err := f(); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("empty URL: %v, want nova.ErrInvalid", err)
		}
	}
}

// The broker scenarios as Go benchmarks, on the machine's servers:
//
//	go test -run '^$' -bench 'Broker/nats' -count 6 ./internal/bench/ | tee nats.txt
//	benchstat -col /target nats.txt
func BenchmarkBroker(b *testing.B) {
	for _, bc := range brokerCases {
		b.Run(bc.name, func(b *testing.B) {
			be, err := bc.open(testenv.Need(b, bc.server))
			if err != nil {
				b.Fatal(err)
			}
			for _, name := range bench.BrokerScenarioNames() {
				b.Run(name, func(b *testing.B) { bench.BenchmarkBroker(b, be, name) })
			}
		})
	}
}

// The relay scenario counts an outbox larger than one read of Pending
// (at most 1,000 envelopes).
func TestRelayBeyondOnePage(t *testing.T) {
	t.Parallel()
	be, err := brokerCases[0].open(testenv.Need(t, testenv.NATS))
	if err != nil {
		t.Fatal(err)
	}
	be.Outbox = novasqlite.Config{Synchronous: novasqlite.SyncNormal}
	res, err := bench.RunBroker(t.Context(), be, bench.Options{Scenarios: []string{"relay"}, Runs: 1, Warmup: -1, Scale: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !(res[0].NovaPerSec > 0) {
		t.Fatalf("results %+v", res)
	}
}

// The relay scenario drains an outbox on a server store too: a fresh one
// per run (the check after the run finds it empty and the broker holding
// every envelope), named in the result, to both brokers.
func TestRelayOnServerOutbox(t *testing.T) {
	t.Parallel()
	for _, oc := range []struct {
		name string
		open func(t *testing.T) (bench.Backend, error)
	}{
		{"postgres", func(t *testing.T) (bench.Backend, error) {
			return bench.Postgres(testenv.Need(t, testenv.Postgres), novapg.Config{})
		}},
		{"mysql", func(t *testing.T) (bench.Backend, error) {
			return bench.MySQL(testenv.Need(t, testenv.MySQL), novamysql.Config{})
		}},
	} {
		for _, bc := range brokerCases {
			t.Run(oc.name+"/"+bc.name, func(t *testing.T) {
				t.Parallel()
				be, err := bc.open(testenv.Need(t, bc.server))
				if err != nil {
					t.Fatal(err)
				}
				if be.OutboxStore, err = oc.open(t); err != nil {
					t.Fatal(err)
				}
				defer be.OutboxStore.Close()
				res, err := bench.RunBroker(t.Context(), be, bench.Options{Scenarios: []string{"relay"}, Runs: 1, Warmup: -1, Scale: 0.2})
				if err != nil {
					t.Fatal(err)
				}
				if len(res) != 1 || res[0].Outbox != oc.name || res[0].Backend != bc.name || !(res[0].NovaPerSec > 0) || res[0].RawPerSec != 0 {
					t.Fatalf("results %+v, want one relay result from a %s outbox", res, oc.name)
				}
			})
		}
	}
}
