// Package testenv finds the servers that tests of server backends run
// against, and decides what a test does when one is not there.
//
// Each server's address comes from an environment variable with a local
// default:
//
//	NOVA_TEST_POSTGRES_DSN  postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	NOVA_TEST_MYSQL_DSN     root@tcp(127.0.0.1:3306)/test
//	NOVA_TEST_REDIS_ADDR    127.0.0.1:6379
//	NOVA_TEST_NATS_URL      nats://127.0.0.1:4222
//	NOVA_TEST_MONGO_URI     mongodb://127.0.0.1:27017 (any server of the
//	                        MongoDB API; CI runs FerretDB there)
//	NOVA_TEST_AMQP_URL      amqp://guest:guest@127.0.0.1:5672/ (RabbitMQ)
//
// Tests that need a server of their own, to configure it or to cut its
// connections, start it as a child process from a [Program] found the same
// way:
//
//	NOVA_TEST_NATS_SERVER   the path of nats-server 2.12 or later
//	                        (default: nats-server on PATH)
//
// Nothing is linked into a test binary: a server a test needs runs as a
// process, so the module's users never resolve a server's dependencies.
//
// When a server cannot be reached, or a program is missing or too old, the
// test is skipped with a message that says which and which variable, so
// `go test ./...` passes on a laptop with none running. With NOVA_REQUIRE_SERVICES=1 (set by CI) the
// skip becomes a failure: a green CI run has exercised every backend.
//
// go test prints a passing package's output only with -v (or when the
// package is tested alone in its directory), so `go test ./...` shows
// "ok" for a package whose server tests all skipped. Two things make the
// skips visible: a package's TestMain runs its tests through [Main],
// which prints one line per missing server after them ("novapg: skipped 12
// tests: PostgreSQL is not reachable at ...; set NOVA_TEST_POSTGRES_DSN
// ..."), shown with -v and whenever the package fails; and
//
//	go run ./internal/testenv/cmd/servers
//
// tells, in a second and before any test runs, which servers are
// reachable and which programs found, and so which tests will skip.
package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server names one kind of server tests may need.
type Server struct {
	// Name is how messages call it, for example "PostgreSQL".
	Name string
	// Env is the variable that overrides the address.
	Env string
	// Default is the address used when Env is unset.
	Default string
}

// The servers the backends' tests use.
var (
	Postgres = Server{"PostgreSQL", "NOVA_TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"}
	MySQL    = Server{"MySQL/MariaDB", "NOVA_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test"}
	Redis    = Server{"Redis", "NOVA_TEST_REDIS_ADDR", "127.0.0.1:6379"}
	NATS     = Server{"NATS", "NOVA_TEST_NATS_URL", "nats://127.0.0.1:4222"}
	Mongo    = Server{"MongoDB", "NOVA_TEST_MONGO_URI", "mongodb://127.0.0.1:27017"}
	RabbitMQ = Server{"RabbitMQ", "NOVA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"}
)

// Address returns the server's address: the variable's value, or the
// default.
func (s Server) Address() string {
	if v := os.Getenv(s.Env); v != "" {
		return v
	}
	return s.Default
}

// Required reports whether NOVA_REQUIRE_SERVICES asks for every server.
func Required() bool {
	v := os.Getenv("NOVA_REQUIRE_SERVICES")
	return v != "" && v != "0" && v != "false"
}

// Servers lists every server the tests may need, in the order tools
// report them.
var Servers = []Server{Postgres, MySQL, Redis, NATS, Mongo, RabbitMQ}

// Reachable reports, within 2 seconds, whether something accepts TCP
// connections at the server's address: nil, or an error saying what
// failed ("PostgreSQL is not reachable at 127.0.0.1:5432 (...)").
func (s Server) Reachable() error {
	hostport := HostPort(s.Address())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostport)
	if err != nil {
		return fmt.Errorf("%s is not reachable at %s (%w)", s.Name, hostport, err)
	}
	conn.Close()
	return nil
}

// Need returns the server's address when something listens there, and
// otherwise skips t (or fails it, under NOVA_REQUIRE_SERVICES) with a
// message naming the server, the address and the variable. A skip is
// recorded for [Main]'s report.
func Need(t testing.TB, s Server) string {
	t.Helper()
	err := s.Reachable()
	if err == nil {
		return s.Address()
	}
	msg := err.Error() + "; set " + s.Env + " to its address"
	if Required() {
		t.Fatalf("testenv: %s; NOVA_REQUIRE_SERVICES is set, so this fails instead of skipping", msg)
	}
	skips.record(s.Name, err.Error(), "set "+s.Env+" to its address, or start it", t.Name())
	t.Skipf("testenv: skipping: %s", msg)
	return ""
}

// skips are the tests Need skipped, by server, for Main's report.
var skips skipLog

type skipLog struct {
	mu      sync.Mutex
	servers []string                   // names, in the order first skipped
	why     map[string]string          // by server name: the last reason
	fix     map[string]string          // by server name: what to do about it
	tests   map[string]map[string]bool // by server name: the tests skipped
}

func (l *skipLog) record(server, why, fix, test string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tests == nil {
		l.why, l.fix, l.tests = make(map[string]string), make(map[string]string), make(map[string]map[string]bool)
	}
	if l.tests[server] == nil {
		l.servers = append(l.servers, server)
		l.tests[server] = make(map[string]bool)
	}
	l.why[server], l.fix[server] = why, fix
	l.tests[server][test] = true
}

// report writes one line per server or program that skipped tests, and
// forgets them.
func (l *skipLog) report(w io.Writer, pkg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range l.servers {
		n := len(l.tests[name])
		noun := "tests"
		if n == 1 {
			noun = "test"
		}
		fmt.Fprintf(w, "%s: skipped %d %s: %s; %s\n", pkg, n, noun, l.why[name], l.fix[name])
	}
	l.servers, l.why, l.fix, l.tests = nil, nil, nil, nil
}

// Runner runs a package's tests and returns the exit code: *testing.M,
// and what goleak.VerifyTestMain takes.
type Runner interface{ Run() int }

// Main returns m with a report after its tests: one line on standard
// output per server whose absence made [Need] skip tests, or program
// whose absence made [NeedProgram] skip them, naming the package, how
// many tests, what is missing and the variable to set. A
// package's TestMain passes it on:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.Main(m)) }
//
// go test shows the lines with -v, and for a package that fails.
func Main(m Runner) Runner {
	return mainRunner(m, os.Stdout, packageName())
}

func mainRunner(m Runner, w io.Writer, pkg string) Runner {
	return runFunc(func() int {
		code := m.Run()
		skips.report(w, pkg)
		return code
	})
}

type runFunc func() int

func (f runFunc) Run() int { return f() }

// packageName guesses the package under test from the test binary's
// name (novapg.test).
func packageName() string {
	name := filepath.Base(os.Args[0])
	name = strings.TrimSuffix(name, ".exe")
	return strings.TrimSuffix(name, ".test")
}

// HostPort extracts host:port from a URL (scheme://user@host:port/...), a
// go-sql-driver DSN (user@tcp(host:port)/db) or a bare host:port.
func HostPort(addr string) string {
	if i := strings.Index(addr, "tcp("); i >= 0 {
		rest := addr[i+len("tcp("):]
		if j := strings.IndexByte(rest, ')'); j >= 0 {
			return rest[:j]
		}
	}
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			host := u.Host
			if i := strings.IndexByte(host, ','); i >= 0 { // nats://a:4222,b:4222
				host = host[:i]
			}
			if _, _, err := net.SplitHostPort(host); err != nil {
				return host + ":" + defaultPort(u.Scheme)
			}
			return host
		}
	}
	return addr
}

func defaultPort(scheme string) string {
	switch scheme {
	case "postgres", "postgresql":
		return "5432"
	case "mysql":
		return "3306"
	case "redis":
		return "6379"
	case "nats":
		return "4222"
	case "mongodb":
		return "27017"
	case "amqp":
		return "5672"
	case "amqps":
		return "5671"
	}
	return "0"
}

// ServerScale is the factor server backends pass to novatest.WithScale.
// Every append there is a network round trip, so by default they run a
// tenth of the suite's specified sizes; once NOVA_TEST_SCALE is set it alone
// decides, as on the embedded backends (NOVA_TEST_SCALE=1: the specified
// sizes).
func ServerScale() float64 {
	if os.Getenv("NOVA_TEST_SCALE") != "" {
		return 1
	}
	return 0.1
}
