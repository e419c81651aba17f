package testenv

import (
	"io"
	"net"
	"strings"
	"testing"
)

func TestHostPort(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "127.0.0.1:5432"},
		{"postgres://u:p@db/x", "db:5432"},
		{"root@tcp(127.0.0.1:3306)/test", "127.0.0.1:3306"},
		{"root:pw@tcp(db:3307)/test?parseTime=true", "db:3307"},
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"nats://127.0.0.1:4222", "127.0.0.1:4222"},
		{"nats://a:4223,b:4224", "a:4223"},
		{"nats://localhost", "localhost:4222"},
		{"amqp://guest:guest@127.0.0.1:5672/", "127.0.0.1:5672"},
		{"amqp://guest:guest@rabbit/vhost", "rabbit:5672"},
		{"amqps://u:p@rabbit/", "rabbit:5671"},
	}
	for _, tt := range tests {
		if got := HostPort(tt.in); got != tt.want {
			t.Errorf("HostPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAddressFromEnv(t *testing.T) {
	s := Server{"X", "NOVA_TEST_X_ADDR", "127.0.0.1:1"}
	if got := s.Address(); got != s.Default {
		t.Errorf("unset: Address() = %q, want the default", got)
	}
	t.Setenv("NOVA_TEST_X_ADDR", "10.1.2.3:99")
	if got := s.Address(); got != "10.1.2.3:99" {
		t.Errorf("set: Address() = %q", got)
	}
}

func TestNeedReturnsAReachableAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOVA_TEST_Y_ADDR", ln.Addr().String())
	s := Server{"Y", "NOVA_TEST_Y_ADDR", "127.0.0.1:1"}
	if got := Need(t, s); got != ln.Addr().String() {
		t.Errorf("Need = %q, want %q", got, ln.Addr().String())
	}
}

func TestNeedSkipsOrFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	t.Setenv("NOVA_TEST_Z_ADDR", closed)
	s := Server{"Z", "NOVA_TEST_Z_ADDR", ""}

	for _, required := range []string{"", "1"} {
		t.Setenv("NOVA_REQUIRE_SERVICES", required)
		ft := &fakeTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			Need(ft, s)
		}()
		if required == "" && (!ft.skipped || ft.failed) {
			t.Errorf("unrequired: skipped=%v failed=%v, want a skip", ft.skipped, ft.failed)
		}
		if required == "1" && (!ft.failed || ft.skipped) {
			t.Errorf("required: skipped=%v failed=%v, want a failure", ft.skipped, ft.failed)
		}
	}
}

// fakeTB records Skip and Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	name            string
	skipped, failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Name() string {
	if f.name != "" {
		return f.name
	}
	return f.TB.Name()
}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	panic("skip")
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}

func TestServerScale(t *testing.T) {
	t.Setenv("NOVA_TEST_SCALE", "")
	if got := ServerScale(); got != 0.1 {
		t.Errorf("unset: ServerScale() = %v, want 0.1", got)
	}
	t.Setenv("NOVA_TEST_SCALE", "3")
	if got := ServerScale(); got != 1 {
		t.Errorf("set: ServerScale() = %v, want 1 (the variable alone decides)", got)
	}
}

// After the tests, Main's runner prints one line per server whose absence
// skipped tests, with how many tests, the address and the variable; a
// server that was reached, or tests that skipped for other reasons, print
// nothing.
func TestMainReportsSkips(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	t.Setenv("NOVA_TEST_W_ADDR", closed)
	t.Setenv("NOVA_REQUIRE_SERVICES", "")
	s := Server{"W", "NOVA_TEST_W_ADDR", ""}
	skips.report(io.Discard, "") // what other tests recorded
	var out strings.Builder
	m := runner(func() int {
		for _, name := range []string{"TestA", "TestB", "TestB", "TestC/sub"} {
			func() {
				defer func() { _ = recover() }()
				Need(&fakeTB{TB: t, name: name}, s)
			}()
		}
		return 3
	})
	if code := mainRunner(m, &out, "novaw").Run(); code != 3 {
		t.Errorf("Run = %d, want the tests' own code 3", code)
	}
	want := "novaw: skipped 3 tests: W is not reachable at " + closed
	if got := out.String(); !strings.HasPrefix(got, want) || !strings.Contains(got, "set NOVA_TEST_W_ADDR") || strings.Count(got, "\n") != 1 {
		t.Errorf("report %q, want one line starting %q and naming the variable", got, want)
	}
}

type runner func() int

func (r runner) Run() int { return r() }
