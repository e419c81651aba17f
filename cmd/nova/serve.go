package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/console"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/projection"
	"github.com/nova-go/nova/telemetry"
)

// defaultAddr is where nova serve listens: loopback only.
const defaultAddr = "127.0.0.1:8080"

// tokenEnv names the environment variable --token defaults to.
const tokenEnv = "NOVA_TOKEN"

func serveCommand() *command {
	var addr, token string
	var readOnly bool
	return &command{
		name:     "serve",
		summary:  "serve a web console over the store: streams, the live log, sagas and their operator actions, projections",
		usage:    "[--store PATH|URL] [--addr HOST:PORT] [--token T] [--read-only]",
		jsonHelp: "log requests' failures and the console's events as JSON lines on stderr",
		flags: func(fs *flag.FlagSet, e *env) {
			fs.StringVar(&addr, "addr", defaultAddr, "address to listen on; any but a loopback one needs --token")
			fs.StringVar(&token, "token", "", "require this token of every request (default $"+tokenEnv+"); required off loopback")
			fs.BoolVar(&readOnly, "read-only", false, "hide and refuse the operator actions and rebuilds")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("serve takes no arguments, got %q", args)
			}
			if token == "" {
				token = os.Getenv(tokenEnv)
			}
			return runServe(ctx, e, serveOptions{addr: addr, token: token, readOnly: readOnly, metrics: metricsHandler()})
		},
	}
}

type serveOptions struct {
	addr     string
	token    string
	readOnly bool
	// ready, when set, is called with the listening address once the
	// console serves (tests).
	ready func(addr string)
	// metrics, when set, is served at /metrics.
	metrics http.Handler
}

// checkServeAddr refuses an address off loopback without a token.
func checkServeAddr(addr, token string) error {
	need, err := console.RequireToken(addr)
	if err != nil {
		return usagef("--addr %q: want HOST:PORT, such as %s: %v", addr, defaultAddr, err)
	}
	if need && token == "" {
		return usagef("--addr %s is not a loopback address: anyone who can reach it could read the store and act on its runs; "+
			"give a token with --token or $%s (then open the console with ?token=... once, or send Authorization: Bearer ...), "+
			"or listen on %s", addr, tokenEnv, defaultAddr)
	}
	return nil
}

func runServe(ctx context.Context, e *env, o serveOptions) error {
	if err := checkServeAddr(o.addr, o.token); err != nil {
		return err
	}
	b, err := parseStore(e.store)
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, e.store)
	if err != nil {
		return err
	}
	defer store.Close()
	var svc *services.Services
	if s, err := services.For(store); err == nil {
		svc = &s
	} else if !errors.Is(err, services.ErrEventsOnly) {
		return err
	}

	if o.metrics != nil && svc != nil && svc.Runs != nil {
		// The outbox's depth, counted when /metrics is scraped.
		if unregister, err := telemetry.ObserveOutbox("serve", svc.Runs.Outbox(), 0); err == nil {
			defer unregister()
		}
	}

	var handler slog.Handler = slog.NewTextHandler(e.stderr, nil)
	if e.json {
		handler = slog.NewJSONHandler(e.stderr, nil)
	}
	spec := e.store
	c, err := console.New(console.Config{
		Store: store, Services: svc, Backend: b.name, StoreLabel: redact(spec),
		HideFunc: func(s string) string { return hideSecrets(s, spec) },
		Token:    o.token, ReadOnly: o.readOnly, Rebuilds: consoleRebuilds(store, svc),
		Metrics: o.metrics, Logger: slog.New(handler),
	})
	if err != nil {
		return err
	}
	defer c.Close()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(handler, slog.LevelWarn)}
	// Shutdown does not end live streams: the console's Close does.
	srv.RegisterOnShutdown(func() { c.Close() })
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(e.stdout, "nova console on %s (%s store %s", url, b.name, redact(spec))
	if o.readOnly {
		fmt.Fprint(e.stdout, ", read-only")
	}
	if o.token != "" {
		fmt.Fprint(e.stdout, ", token required: open "+url+"?token=... once")
	}
	fmt.Fprintln(e.stdout, "); Ctrl-C stops it")
	if o.ready != nil {
		o.ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		// What is still open after the grace period is cut: a request
		// that would not end, or, far more often, a socket a browser
		// opened ahead of need and never sent a request on, which
		// net/http only counts as idle after 5 s.
		err = srv.Close()
	}
	<-errc // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// consoleRebuilds are the projections the console can rebuild: those this
// tool knows the handlers of (the demo's), on stores whose checkpoints
// can rebuild a SQL read model.
func consoleRebuilds(store nova.Store, svc *services.Services) map[string]console.RebuildFunc {
	if svc == nil || svc.NeedQueryStore() != nil {
		return nil
	}
	if _, ok := svc.Checkpoints.(projection.Rebuilder); !ok {
		return nil
	}
	out := map[string]console.RebuildFunc{}
	for name, build := range projections {
		out[name] = func(ctx context.Context, progress func(done, total int)) error {
			cfg, _, err := build(ctx, store, svc)
			if err != nil {
				return err
			}
			if l, ok := svc.Checkpoints.(projection.Leaser); ok {
				cfg.Leaser = l // one rebuild at a time across processes
			}
			r, err := projection.NewRunner(cfg)
			if err != nil {
				return err
			}
			return r.Rebuild(ctx, progress)
		}
	}
	return out
}
