// Command servers tells which of the servers Nova's tests use are
// reachable, so which tests `go test ./...` will run and which it will
// skip (or, with NOVA_REQUIRE_SERVICES=1, fail), before any test runs:
//
//	go run ./internal/testenv/cmd/servers
//
// Each server's address comes from its NOVA_TEST_* variable, or its
// default (see package testenv). It exits 0 when every server is
// reachable and 1 otherwise.
package main

import (
	"fmt"
	"os"
	"sync"
	"text/tabwriter"

	"github.com/nova-go/nova/internal/testenv"
)

func main() {
	errs := make([]error, len(testenv.Servers))
	var wg sync.WaitGroup
	for i, s := range testenv.Servers {
		if embedded(s) {
			continue
		}
		wg.Go(func() { errs[i] = s.Reachable() })
	}
	wg.Wait()

	then := "skip"
	if testenv.Required() {
		then = "fail (NOVA_REQUIRE_SERVICES is set)"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	missing := 0
	for i, s := range testenv.Servers {
		switch {
		case embedded(s):
			fmt.Fprintf(w, "%s\tembedded\t%s unset: the tests run an embedded FerretDB\n", s.Name, s.Env)
		case errs[i] != nil:
			missing++
			fmt.Fprintf(w, "%s\tunreachable\t%s (%s): its tests will %s\n", s.Name, testenv.HostPort(s.Address()), s.Env, then)
		default:
			fmt.Fprintf(w, "%s\treachable\t%s (%s)\n", s.Name, testenv.HostPort(s.Address()), s.Env)
		}
	}
	w.Flush()
	if missing > 0 {
		fmt.Printf("\n%d of %d servers unreachable; set the variables to their addresses, or start them.\n", missing, len(testenv.Servers))
		os.Exit(1)
	}
}

// embedded reports whether the tests need no server s: novamongo's run
// FerretDB in the test process unless NOVA_TEST_MONGO_URI names one.
func embedded(s testenv.Server) bool {
	return s == testenv.Mongo && os.Getenv(s.Env) == ""
}
