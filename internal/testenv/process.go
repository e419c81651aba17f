package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Process is a server program running as a child process of the test,
// for a test that needs a server of its own.
type Process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// StartProcess starts the program at path with args, its standard output
// and error going to the file logPath, and stops it when t ends (see
// [Process.Stop]). Where the system allows (Linux), the child is also
// killed if the test process dies first, so no server outlives a test
// binary.
func StartProcess(t testing.TB, path, logPath string, args ...string) *Process {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	p := &Process{cmd: exec.Command(path, args...), log: logPath, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = dieWithParent()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("%v\n%s", err, p.Log())
		}
	})
	return p
}

// Exited is closed once the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Stop asks the process to end (SIGTERM), kills it after 10 seconds, and
// waits for it. It reports how the process ended when that was not the
// stop (a crash before it); stopping a stopped process does nothing.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		if p.err != nil && !stoppedBy(p.err, syscall.SIGTERM) && !stoppedBy(p.err, syscall.SIGKILL) {
			return fmt.Errorf("%s ended before it was stopped: %w", p.cmd.Path, p.err)
		}
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 10 s of SIGTERM; killed", p.cmd.Path)
	}
	return nil
}

// stoppedBy reports whether err says the process ended on sig.
func stoppedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
