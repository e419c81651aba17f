package brokertest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// child is a copy of the running test binary, started to run only the
// test that called Run, as a child process of the suite (see runChild).
type child struct {
	cmd   *exec.Cmd
	lines chan string   // stdout lines after the ready line
	done  chan struct{} // closed once the process has exited and its output is read
	err   error         // how it exited, once done is closed

	mu     sync.Mutex
	stderr strings.Builder
}

// childLines is how many stdout lines of a child are kept until the
// parent reads them; later ones are dropped. GroupKill's child says at
// most a few lines per envelope.
const childLines = 8192

// startChild starts the test binary as a child playing spec's part, and
// waits for it to print "ready"; it fails t otherwise. The child is
// killed, if still running, when t ends.
func (s *suite) startChild(t *testing.T, spec childSpec) *child {
	t.Helper()
	spec.Test = s.name
	// Select exactly the test that called Run, level by level.
	levels := strings.Split(s.name, "/")
	for i, l := range levels {
		levels[i] = "^" + regexp.QuoteMeta(l) + "$"
	}
	c := &child{
		cmd: exec.Command(os.Args[0],
			"-test.run="+strings.Join(levels, "/"),
			"-test.count=1",
			"-test.timeout="+(2*s.childLife()).String()),
		lines: make(chan string, childLines),
		done:  make(chan struct{}),
	}
	c.cmd.Env = append(os.Environ(), childEnv+"="+spec.encode())
	c.cmd.Stderr = (*childStderr)(c)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("brokertest: start a child process: %v", err)
	}
	t.Cleanup(c.stop)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		first := true
		for sc.Scan() {
			if first {
				first = false
				ready <- sc.Text() == "ready"
				continue
			}
			select {
			case c.lines <- sc.Text():
			default: // nobody reads them
			}
		}
		if first {
			ready <- false
		}
		close(c.lines)
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	select {
	case ok := <-ready:
		if !ok {
			c.stop()
			t.Fatalf("brokertest: the child process did not say ready (%v); its stderr:\n%s", c.err, c.stderrText())
		}
	case <-time.After(s.timeout):
		c.stop()
		t.Fatalf("brokertest: the child process did not say ready within %v; its stderr:\n%s", s.timeout, c.stderrText())
	}
	return c
}

// childLife bounds how long a child process waits to be killed before it
// gives up on its own.
func (s *suite) childLife() time.Duration { return 3*s.timeout + 30*time.Second }

// line returns the child's next stdout line, failing t after the timeout
// or when the child has exited.
func (s *suite) line(t *testing.T, c *child) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.done
			t.Fatalf("brokertest: the child process exited (%v); its stderr:\n%s", c.err, c.stderrText())
		}
		return l
	case <-time.After(s.timeout):
		t.Fatalf("brokertest: the child process said nothing more within %v; its stderr:\n%s", s.timeout, c.stderrText())
		return ""
	}
}

// kill kills the child with SIGKILL (on Unix; TerminateProcess on
// Windows) and waits for it; it fails t if the child had already exited.
func (c *child) kill(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		t.Fatalf("brokertest: the child process exited (%v) before it was killed; its stderr:\n%s", c.err, c.stderrText())
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop kills the child if it still runs and waits for it.
func (c *child) stop() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

func (c *child) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// childStderr collects the child's stderr, written by exec's copying
// goroutine while the parent may read it.
type childStderr child

func (w *childStderr) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stderr.Write(p)
}

// runChild plays the part of a child process: spec is the value of
// childEnv. Another Run of the same test binary than the one that started
// the child skips.
func (s *suite) runChild(t *testing.T, raw string) {
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatalf("brokertest: %s=%q: %v", childEnv, raw, err)
	}
	if spec.Test != t.Name() {
		t.Skipf("brokertest: this process is a child of %s", spec.Test)
	}
	if s.open == nil {
		t.Fatalf("brokertest: a child process needs WithOpen, given in the parent")
	}
	switch spec.Role {
	case "kill":
		s.childKill(t, spec)
	case "groupkill":
		s.childGroupKill(t, spec)
	default:
		t.Fatalf("brokertest: unknown child role %q", spec.Role)
	}
}
