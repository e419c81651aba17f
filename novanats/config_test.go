package novanats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novanats"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	const url = "nats://127.0.0.1:1" // never dialled: validation comes first
	nc := &nats.Conn{}
	for _, tc := range []struct {
		name  string
		cfg   novanats.Config
		field string
	}{
		{"no server", novanats.Config{}, "URL"},
		{"conn and url", novanats.Config{Conn: nc, URL: url}, "URL"},
		{"bad url", novanats.Config{URL: "://x"}, "URL"},
		{"bad scheme", novanats.Config{URL: "http://x:1"}, "URL"},
		{"stream name with dot", novanats.Config{URL: url, StreamName: "a.b"}, "StreamName"},
		{"stream name with space", novanats.Config{URL: url, StreamName: "a b"}, "StreamName"},
		{"prefix wildcard", novanats.Config{URL: url, SubjectPrefix: "a.*"}, "SubjectPrefix"},
		{"prefix tail", novanats.Config{URL: url, SubjectPrefix: "a.>"}, "SubjectPrefix"},
		{"prefix empty token", novanats.Config{URL: url, SubjectPrefix: "a..b"}, "SubjectPrefix"},
		{"prefix space", novanats.Config{URL: url, SubjectPrefix: "a b"}, "SubjectPrefix"},
		{"prefix C1 control", novanats.Config{URL: url, SubjectPrefix: "a.\u0085b"}, "SubjectPrefix"},
		{"prefix no-break space", novanats.Config{URL: url, SubjectPrefix: "a.\u00a0b"}, "SubjectPrefix"},
		{"negative replicas", novanats.Config{URL: url, Replicas: -1}, "Replicas"},
		{"too many replicas", novanats.Config{URL: url, Replicas: 7}, "Replicas"},
		{"unknown storage", novanats.Config{URL: url, Storage: 9}, "Storage"},
		{"negative window", novanats.Config{URL: url, DuplicateWindow: -time.Second}, "DuplicateWindow"},
		{"negative fetch", novanats.Config{URL: url, FetchSize: -1}, "FetchSize"},
		{"huge fetch", novanats.Config{URL: url, FetchSize: 1 << 20}, "FetchSize"},
		{"negative timeout", novanats.Config{URL: url, Timeout: -1}, "Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := novanats.Open(context.Background(), tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("error %v does not match nova.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), "Config."+tc.field) {
				t.Errorf("error %q does not name Config.%s", err, tc.field)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := novanats.ParseURL("nats://h:4222?stream=EV&prefix=app.ev&replicas=3&storage=memory")
	if err != nil {
		t.Fatal(err)
	}
	want := novanats.Config{URL: "nats://h:4222", StreamName: "EV", SubjectPrefix: "app.ev", Replicas: 3, Storage: novanats.MemoryStorage}
	if cfg != want {
		t.Errorf("ParseURL = %+v, want %+v", cfg, want)
	}
	for _, bad := range []string{"", "postgres://h", "nats://h?replicas=x", "nats://h?storage=tape", "nats://h?stream=a.b", "nats://h?prefix=a.*"} {
		if _, err := novanats.ParseURL(bad); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ParseURL(%q): %v, want nova.ErrInvalid", bad, err)
		}
	}
}

func TestSubjectMapping(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a", "orders.>", "orders.*", "a.b.c", "with space", " lead", "日本語", "emoji-🚀", "$all", "Case", "case", strings.Repeat("é", 128)} {
		tok := novanats.EncodeStream(s)
		if strings.ContainsAny(tok, ".*> \t") || tok == "" {
			t.Errorf("stream %q maps to %q, not a plain subject token", s, tok)
		}
		if back, ok := novanats.DecodeStream(tok); !ok || back != s {
			t.Errorf("stream %q: token %q decodes to %q, %v", s, tok, back, ok)
		}
	}
	for _, bad := range []string{"", "!!", "a.b", "/w=="} {
		if _, ok := novanats.DecodeStream(bad); ok {
			t.Errorf("DecodeStream(%q) succeeded", bad)
		}
	}
}

func FuzzSubjectMapping(f *testing.F) {
	f.Add("order-1")
	f.Add("a.b.*.>")
	f.Fuzz(func(t *testing.T, s string) {
		if nova.ValidateStream(s) != nil {
			return
		}
		tok := novanats.EncodeStream(s)
		if strings.ContainsAny(tok, ".*> ") {
			t.Fatalf("%q maps to %q", s, tok)
		}
		if back, ok := novanats.DecodeStream(tok); !ok || back != s {
			t.Fatalf("%q: %q decodes to %q, %v", s, tok, back, ok)
		}
	})
}

func TestHeaderValue(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"order.placed", " lead", "trail ", `"quoted"`, "日本語", "a\tb", "x"} {
		h := novanats.HeaderValue(s)
		if strings.ContainsAny(h, "\r\n") || strings.TrimSpace(h) != h {
			t.Errorf("%q encodes to %q, which the wire would change", s, h)
		}
		if back, err := novanats.FromHeaderValue(h); err != nil || back != s {
			t.Errorf("%q: %q reads back as %q, %v", s, h, back, err)
		}
	}
}

// TestFormat: Open records the format in the stream, opens its own stream
// again, refuses a newer format and a stream that is not a Nova stream,
// and Migrate reports the format.
func TestFormat(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ctx := t.Context()
	cfg := scratchConfig(t, srv.url)
	v, err := novanats.Migrate(ctx, cfg)
	if err != nil || v != novanats.FormatVersion {
		t.Fatalf("Migrate = %d, %v; want %d", v, err, novanats.FormatVersion)
	}
	s, err := novanats.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if !s.AtomicBatches() {
		t.Error("a current server has no atomic batches")
	}
	s.Close()

	nc, err := nats.Connect(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, cfg.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	newer := st.CachedInfo().Config
	newer.Description = "nova event store (format 99)"
	if _, err := js.UpdateStream(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if _, err := novanats.Open(ctx, cfg); !errors.Is(err, novanats.ErrNewerFormat) {
		t.Errorf("Open of a newer format: %v, want ErrNewerFormat", err)
	}

	other := scratchConfig(t, srv.url)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: other.StreamName, Subjects: []string{other.SubjectPrefix + ".>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := novanats.Open(ctx, other); err == nil || !strings.Contains(err.Error(), "not a nova event store") {
		t.Errorf("Open of a foreign stream: %v, want a refusal", err)
	}
}
