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
//	NOVA_TEST_MONGO_URI     mongodb://127.0.0.1:27017 (novamongo's tests run an
//	                        embedded FerretDB unless this is set)
//
// When a server cannot be reached the test is skipped with a message that
// says which server and which variable, so `go test ./...` passes on a
// laptop with none running. With NOVA_REQUIRE_SERVICES=1 (set by CI) the
// skip becomes a failure: a green CI run has exercised every backend.
package testenv

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
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

// Need returns the server's address when something listens there, and
// otherwise skips t (or fails it, under NOVA_REQUIRE_SERVICES) with a
// message naming the server, the address and the variable.
func Need(t testing.TB, s Server) string {
	t.Helper()
	addr := s.Address()
	hostport := HostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostport)
	if err == nil {
		conn.Close()
		return addr
	}
	msg := s.Name + " is not reachable at " + hostport + " (" + err.Error() + "); set " + s.Env + " to its address"
	if Required() {
		t.Fatalf("testenv: %s; NOVA_REQUIRE_SERVICES is set, so this fails instead of skipping", msg)
	}
	t.Skipf("testenv: skipping: %s", msg)
	return ""
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
