//go:build unix

package testenv

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Child is a copy of the running test binary started as a child process,
// for the crash tests: the child's TestMain sees a variable in env, does
// its work instead of running tests, prints a ready line on stdout when it
// has started, and is then killed with SIGKILL at a moment of the parent's
// choosing.
type Child struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{}
	err    error
	lines  chan string
}

// StartChild starts the test binary with env added to the environment and
// no test selected, and waits for its first stdout line, which must be
// ready; otherwise it kills the child and fails t with what the child said.
func StartChild(t testing.TB, env []string, ready string) *Child {
	t.Helper()
	c := &Child{cmd: exec.Command(os.Args[0], "-test.run=^$"), done: make(chan struct{}), lines: make(chan string, 16)}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = (*lockedWriter)(c)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != ready {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		t.Fatalf("child said %q, want %q; stderr: %s", sc.Text(), ready, c.Stderr())
	}
	go func() {
		// Read to the end before Wait, which closes the pipe.
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads them
			}
		}
		close(c.lines)
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c
}

// Lines receives the lines the child prints on stdout after its ready
// line (the last 16 unread at most); it is closed when stdout ends.
func (c *Child) Lines() <-chan string { return c.lines }

// Done is closed once the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the child ended (the error of exec.Cmd.Wait), once Done is
// closed.
func (c *Child) Err() error {
	<-c.done
	return c.err
}

// Stderr returns what the child has written on stderr so far.
func (c *Child) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// Kill kills the child with SIGKILL, waits for it, and fails t, naming
// what, unless the kill is what ended it.
func (c *Child) Kill(t testing.TB, what string) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	err := c.Err()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended by itself (%v) before the kill; stderr: %s", what, err, c.Stderr())
	}
}

// Stop kills the child and waits for it, whatever state it is in.
func (c *Child) Stop() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// lockedWriter is the child's stderr buffer, written by exec's copying
// goroutine while the parent may read it.
type lockedWriter Child

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stderr.Write(p)
}
