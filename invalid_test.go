package nova_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novanats"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novaredis"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/saga"
)

// packagePrefix matches a package name and ": " where a message could
// repeat one: at its start or after ": ".
var packagePrefix = regexp.MustCompile(`(^|: )(nova|novamem|novapg|novasqlite|novamysql|novanats|novaredis|novamongo|aggregate|broker|cqrs|projection|saga): `)

// TestInvalidInputAcrossPackages checks that bad input given to any
// package is one *nova.InvalidError, matches nova.ErrInvalid, and says
// which package rejected it once, at the start of its message.
func TestInvalidInputAcrossPackages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem, err := novamem.New(novamem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	event := nova.EventData{ID: nova.NewEventID(), Type: "order.placed", Data: []byte(`{}`)}
	first := func(seq func(func(nova.Event, error) bool)) error {
		var err error
		seq(func(_ nova.Event, e error) bool { err = e; return false })
		return err
	}

	for _, tt := range []struct {
		name string
		pkg  string // the package the message starts with
		err  func() error
	}{
		// Bad stream names.
		{"empty stream", "nova", func() error { return nova.ValidateStream("") }},
		{"novamem append to a stream with a NUL", "novamem", func() error {
			_, err := mem.Append(ctx, "order\x001", nova.Any, event)
			return err
		}},
		{"novamem read of an empty stream", "novamem", func() error {
			return first(mem.ReadStream(ctx, "", nova.ReadStreamOptions{}))
		}},
		{"aggregate snapshot of a bad stream", "nova", func() error {
			return aggregate.Snapshot{Stream: "order\n1", Version: 1}.Validate()
		}},
		{"aggregate snapshot at version 0", "aggregate", func() error {
			return aggregate.Snapshot{Stream: "order-1"}.Validate()
		}},
		{"novamem snapshot at version 0", "aggregate", func() error {
			return mem.SaveSnapshot(ctx, aggregate.Snapshot{Stream: "order-1"})
		}},

		// Bad arguments given to constructors and helpers.
		{"saga coordinator without runs", "saga", func() error {
			_, err := saga.NewCoordinator(saga.Config{})
			return err
		}},
		{"saga worker with a negative poll interval", "saga", func() error {
			_, err := saga.NewWorker(nil, saga.WorkerConfig{PollInterval: -1})
			return err
		}},
		{"novaredis Config.Prefix", "novaredis", func() error {
			_, err := novaredis.Open(ctx, novaredis.Config{URL: "127.0.0.1:1", Prefix: "a\nb"})
			return err
		}},
		{"cqrs upsert of a value that is not JSON", "cqrs", func() error {
			return cqrs.UpsertProjection(ctx, novamem.NewQueryStore(), "k", make(chan int))
		}},
		{"projection with an empty name", "projection", func() error {
			_, err := projection.New("", nova.NewRegistry(nova.RegistryOptions{}))
			return err
		}},
		{"broker envelope without an ID", "broker", func() error {
			_, err := broker.NewEnvelope("", "orders.placed", "order.placed", struct{}{})
			return err
		}},

		// A bad Config field of each backend.
		{"novapg Config.Schema", "novapg", func() error {
			_, err := novapg.Open(ctx, novapg.Config{URL: "postgres://localhost/test", Schema: "pg_orders"})
			return err
		}},
		{"novapg URL", "novapg", func() error {
			_, err := novapg.ParseURL("mysql://localhost/test")
			return err
		}},
		{"novasqlite Config.Path", "novasqlite", func() error {
			_, err := novasqlite.Open(ctx, novasqlite.Config{Path: ":memory:"})
			return err
		}},
		{"novamysql Config.PageSize", "novamysql", func() error {
			_, err := novamysql.Open(ctx, novamysql.Config{DSN: "root@tcp(127.0.0.1:3306)/test", PageSize: -1})
			return err
		}},
		{"novanats Config.Replicas", "novanats", func() error {
			_, err := novanats.Open(ctx, novanats.Config{URL: "nats://127.0.0.1:4222", Replicas: 9})
			return err
		}},
	} {
		err := tt.err()
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		var ie *nova.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %q (%T) is not a *nova.InvalidError", tt.name, err, err)
			continue
		}
		if !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: %q does not match nova.ErrInvalid", tt.name, err)
		}
		if msg := err.Error(); msg != ie.Error() {
			t.Errorf("%s: %q wraps the *nova.InvalidError %q in more text", tt.name, msg, ie)
		}
		msg := ie.Error()
		if ie.Pkg != tt.pkg || !strings.HasPrefix(msg, tt.pkg+": ") {
			t.Errorf("%s: %q from package %q, want a message starting %q", tt.name, msg, ie.Pkg, tt.pkg+": ")
			continue
		}
		if rest := strings.TrimPrefix(msg, tt.pkg+": "); packagePrefix.MatchString(rest) {
			t.Errorf("%s: %q names a package more than once", tt.name, msg)
		}
		if strings.HasPrefix(tt.name, "nov") && strings.Contains(tt.name, "Config.") {
			if want := strings.Fields(tt.name)[1]; ie.Field != want {
				t.Errorf("%s: Field = %q, want %q", tt.name, ie.Field, want)
			}
		}
	}
}

// ExampleInvalidError shows how a caller finds what was wrong with its
// input.
func ExampleInvalidError() {
	_, err := novapg.Open(context.Background(), novapg.Config{URL: "postgres://localhost/app", PageSize: -1})
	var ie *nova.InvalidError
	if errors.As(err, &ie) {
		fmt.Println(ie.Pkg, ie.Field)
	}
	fmt.Println(err)
	// Output:
	// novapg Config.PageSize
	// novapg: Config.PageSize: negative size -1
}
