// Command servers tells which of the servers Nova's tests use are
// reachable, and which of the server programs they start are found, so
// which tests `go test ./...` will run and which it will skip (or, with
// NOVA_REQUIRE_SERVICES=1, fail), before any test runs:
//
//	go run ./internal/testenv/cmd/servers
//
// Each server's address and each program's path comes from its NOVA_TEST_*
// variable, or its default (see package testenv). It exits 0 when every
// server is reachable and every program found, and 1 otherwise.
package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/nova-go/nova/internal/testenv"
)

func main() {
	errs := make([]error, len(testenv.Servers))
	paths := make([]string, len(testenv.Programs))
	perrs := make([]error, len(testenv.Programs))
	var wg sync.WaitGroup
	for i, s := range testenv.Servers {
		wg.Go(func() { errs[i] = s.Reachable() })
	}
	for i, p := range testenv.Programs {
		wg.Go(func() { paths[i], perrs[i] = p.Find() })
	}
	wg.Wait()

	then := "skip"
	if testenv.Required() {
		then = "fail (NOVA_REQUIRE_SERVICES is set)"
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	missing := 0
	for i, s := range testenv.Servers {
		if errs[i] != nil {
			missing++
			fmt.Fprintf(w, "%s\tunreachable\t%s (%s): its tests will %s\n", s.Name, testenv.HostPort(s.Address()), s.Env, then)
			continue
		}
		fmt.Fprintf(w, "%s\treachable\t%s (%s)\n", s.Name, testenv.HostPort(s.Address()), s.Env)
	}
	for i, p := range testenv.Programs {
		if perrs[i] != nil {
			missing++
			why := strings.TrimPrefix(perrs[i].Error(), p.Name+": ")
			fmt.Fprintf(w, "%s\tmissing\t%s (%s): its tests will %s\n", p.Name, why, p.Env, then)
			continue
		}
		fmt.Fprintf(w, "%s\tfound\t%s (%s)\n", p.Name, paths[i], p.Env)
	}
	w.Flush()
	if total := len(testenv.Servers) + len(testenv.Programs); missing > 0 {
		fmt.Printf("\n%d of %d servers and programs missing; set the variables to their addresses or paths, or start or install them.\n", missing, total)
		os.Exit(1)
	}
}
