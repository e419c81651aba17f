package pgfault_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/projection"
)

// cluster is a private PostgreSQL server in a temporary directory, for a
// test that stops and starts it: the shared server is never restarted.
type cluster struct {
	t    *testing.T
	bin  string // the directory of initdb, pg_ctl and postgres
	dir  string // the temporary directory: data, socket, log
	port int
	as   []string // the command prefix that runs as the server's user
}

// skipOrFail skips t with msg, or fails it under NOVA_REQUIRE_SERVICES.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if testenv.Required() {
		t.Fatalf("pgfault: %s; NOVA_REQUIRE_SERVICES is set, so this fails instead of skipping", msg)
	}
	t.Skipf("pgfault: skipping: %s", msg)
}

// newCluster initdbs a cluster and starts it on a free port. initdb and
// the server refuse to run as root: as root, they run as the postgres
// user (runuser), in a directory it owns.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			bins = []string{p}
		}
	}
	if len(bins) == 0 {
		skipOrFail(t, "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql or on PATH, needed for a private cluster to restart")
	}
	c := &cluster{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "nova-pgfault-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		c.ctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			skipOrFail(t, "running as root and there is no postgres user to run initdb as")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			skipOrFail(t, "running as root and runuser is missing: cannot run initdb as postgres")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as = []string{runuser, "-u", "postgres", "--"}
	}
	out, err := c.run(filepath.Join(c.bin, "initdb"), "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	if err != nil {
		skipOrFail(t, fmt.Sprintf("initdb failed: %v: %s", err, out))
	}
	for attempt := 0; ; attempt++ {
		c.port = freePort(t)
		if err := c.start(); err == nil {
			break
		} else if attempt == 2 {
			t.Fatalf("start a private PostgreSQL: %v", err)
		}
	}
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// url is the cluster's connection string, with extra query parameters.
func (c *cluster) url(params string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&%s", c.port, params)
}

// run runs a command as the server's user.
func (c *cluster) run(name string, args ...string) (string, error) {
	argv := append(append([]string(nil), c.as...), name)
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *cluster) ctl(args ...string) (string, error) {
	return c.run(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", c.data(), "-w", "-t", "60"}, args...)...)
}

// start starts the server and waits until it accepts connections.
func (c *cluster) start() error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c full_page_writes=off -c max_connections=100",
		c.port, c.dir)
	out, err := c.ctl("-l", filepath.Join(c.dir, "log"), "-o", opts, "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

// restart stops the server in mode (immediate: a crash; fast: a clean
// shutdown), waits down for the outage, and starts it again.
func (c *cluster) restart(mode string, down time.Duration) {
	c.t.Helper()
	if out, err := c.ctl("stop", "-m", mode); err != nil {
		c.t.Errorf("pg_ctl stop -m %s: %v: %s", mode, err, out)
		return
	}
	time.Sleep(down)
	if err := c.start(); err != nil {
		c.t.Error(err)
	}
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRestartedServer does the work of TestTerminatedConnections on a
// private cluster and restarts the server in the middle of it: once by a
// crash, at once, and once by a clean shutdown that keeps it down longer
// than novapg's own retries last, so that the runner and the workers meet
// the errors themselves. Everything must finish on its own and agree.
func TestRestartedServer(t *testing.T) {
	t.Parallel()
	events, runs := 2000, 100
	if raceEnabled {
		events, runs = 800, 40
	}
	events = envInt(t, "NOVA_PGFAULT_EVENTS", events)
	runs = envInt(t, "NOVA_PGFAULT_RUNS", runs)
	outage := 13 * time.Second
	if v := os.Getenv("NOVA_PGFAULT_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			t.Fatalf("NOVA_PGFAULT_OUTAGE=%q: want a duration", v)
		}
		outage = d
	}
	c := newCluster(t)
	w := open(t, c.url("application_name=pgfault"), "pgfault", false)
	want := w.load(t, events, runs, func() {
		// Once the runner has handled some of the events, crash the
		// server; later, shut it down for the long outage.
		waitHandled := func(n uint64) {
			deadline := time.Now().Add(converge)
			for st := w.runner.Status(); st.Handled < n && st.State != projection.Failed && time.Now().Before(deadline); st = w.runner.Status() {
				time.Sleep(5 * time.Millisecond)
			}
		}
		waitHandled(uint64(events / 5))
		c.restart("immediate", 0)
		waitHandled(uint64(events / 2))
		c.restart("fast", outage)
	})
	w.check(t, want, events, runs)
}
