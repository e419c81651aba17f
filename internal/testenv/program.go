package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Program is a server binary that tests start as child processes of
// their own, on free ports and in temporary directories, when they need a
// server they configure, stop or restart: the shared servers are never
// touched that way.
type Program struct {
	// Name is how messages call it, for example "nats-server 2.12 or
	// later".
	Name string
	// Env is the variable holding the binary's path.
	Env string
	// Default is the command looked up on PATH when Env is unset.
	Default string
	// Check, when set, tells whether the binary at path will do (its
	// version, say), with an error saying why not.
	Check func(path string) error
}

// The programs the backends' tests start.
var (
	// NATSServer is the nats-server that novanats's tests start private
	// servers from. They need atomic batch publish, new in 2.12.
	NATSServer = Program{"nats-server 2.12 or later", "NOVA_TEST_NATS_SERVER", "nats-server", minNATSServer(2, 12)}
)

// Programs lists every program the tests may start, in the order tools
// report them.
var Programs = []Program{NATSServer}

// found memoizes Find by program and variable value: a check runs the
// binary.
var found sync.Map // string -> findResult

type findResult struct {
	path string
	err  error
}

// Find returns the program's path: the variable's value, or Default on
// PATH; and an error saying what is missing or wrong ("nats-server 2.12 or
// later: /usr/sbin/nats-server is v2.9.10"). The answer is kept for the
// rest of the process.
func (p Program) Find() (string, error) {
	key := p.Env + "=" + os.Getenv(p.Env)
	if r, ok := found.Load(key); ok {
		r := r.(findResult)
		return r.path, r.err
	}
	path, err := p.find()
	found.Store(key, findResult{path, err})
	return path, err
}

func (p Program) find() (string, error) {
	name := os.Getenv(p.Env)
	path, err := exec.LookPath(name)
	switch {
	case name == "":
		if path, err = exec.LookPath(p.Default); err != nil {
			return "", fmt.Errorf("%s: no %s on PATH", p.Name, p.Default)
		}
	case err != nil:
		return "", fmt.Errorf("%s: %s=%s: %w", p.Name, p.Env, name, errors.Unwrap(err))
	}
	if p.Check != nil {
		if err := p.Check(path); err != nil {
			return "", fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return path, nil
}

// NeedProgram returns the program's path when it is there and will do,
// and otherwise skips t (or fails it, under NOVA_REQUIRE_SERVICES) with a
// message naming the program, what is wrong and the variable. A skip is
// recorded for [Main]'s report.
func NeedProgram(t testing.TB, p Program) string {
	t.Helper()
	path, err := p.Find()
	if err == nil {
		return path
	}
	msg := err.Error() + "; set " + p.Env + " to the path of one"
	if Required() {
		t.Fatalf("testenv: %s; NOVA_REQUIRE_SERVICES is set, so this fails instead of skipping", msg)
	}
	skips.record(p.Name, err.Error(), "set "+p.Env+" to the path of one", t.Name())
	t.Skipf("testenv: skipping: %s", msg)
	return ""
}

// minNATSServer checks that `nats-server --version` says vMAJOR.MINOR or
// later.
func minNATSServer(major, minor int) func(string) error {
	return func(path string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "--version").Output()
		if err != nil {
			return fmt.Errorf("%s --version: %w", path, err)
		}
		text := strings.TrimSpace(string(out)) // "nats-server: v2.15.2"
		_, v, _ := strings.Cut(text, " v")
		gotMajor, gotMinor, err := majorMinor(v)
		if err != nil {
			return fmt.Errorf("%s --version said %q: %w", path, text, err)
		}
		if gotMajor < major || gotMajor == major && gotMinor < minor {
			return fmt.Errorf("%s is v%s", path, v)
		}
		return nil
	}
}

// majorMinor reads the first two numbers of a version such as 2.15.2 or
// 2.12.0-RC.1.
func majorMinor(v string) (int, int, error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, errors.New("no version number")
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("no version number")
	}
	return major, minor, nil
}
