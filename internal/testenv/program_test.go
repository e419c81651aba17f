package testenv

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNATSServer writes a script that answers --version as a nats-server
// of version v would, and returns its path.
func fakeNATSServer(t *testing.T, v string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats-server")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho 'nats-server: "+v+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// A program is found through its variable, and refused, with a message
// naming it and what is wrong, when it is missing or older than the tests
// need.
func TestProgramFind(t *testing.T) {
	p := Program{"nats-server 2.12 or later", "NOVA_TEST_FAKE_NATS_SERVER", "nova-no-such-program", minNATSServer(2, 12)}
	for _, tc := range []struct {
		path, want string // want: "" for found, or a part of the error
	}{
		{fakeNATSServer(t, "v2.12.0"), ""},
		{fakeNATSServer(t, "v2.15.2"), ""},
		{fakeNATSServer(t, "v3.0.1"), ""},
		{fakeNATSServer(t, "v2.12.0-RC.3"), ""},
		{fakeNATSServer(t, "v2.9.10"), "is v2.9.10"},
		{fakeNATSServer(t, "v2.11.9"), "is v2.11.9"},
		{fakeNATSServer(t, "garbage"), "no version number"},
		{filepath.Join(t.TempDir(), "absent"), "NOVA_TEST_FAKE_NATS_SERVER="},
		{"", "no nova-no-such-program on PATH"},
	} {
		t.Setenv(p.Env, tc.path)
		got, err := p.Find()
		switch {
		case tc.want == "" && (err != nil || got != tc.path):
			t.Errorf("%s: Find = %q, %v; want it found", tc.path, got, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p.Name+": ")):
			t.Errorf("%s: Find = %q, %v; want an error naming the program and saying %q", tc.path, got, err, tc.want)
		}
	}
}

func TestNeedProgramSkipsOrFails(t *testing.T) {
	p := Program{"X server", "NOVA_TEST_FAKE_X_SERVER", "nova-no-such-program", nil}
	t.Setenv(p.Env, "")
	skips.report(io.Discard, "") // what other tests recorded
	for _, required := range []string{"", "1"} {
		t.Setenv("NOVA_REQUIRE_SERVICES", required)
		ft := &fakeTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			NeedProgram(ft, p)
		}()
		if required == "" && (!ft.skipped || ft.failed) {
			t.Errorf("unrequired: skipped=%v failed=%v, want a skip", ft.skipped, ft.failed)
		}
		if required == "1" && (!ft.failed || ft.skipped) {
			t.Errorf("required: skipped=%v failed=%v, want a failure", ft.skipped, ft.failed)
		}
	}
	var out strings.Builder
	skips.report(&out, "novax")
	if want := "novax: skipped 1 test: X server: no nova-no-such-program on PATH; set NOVA_TEST_FAKE_X_SERVER to the path of one\n"; out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}
