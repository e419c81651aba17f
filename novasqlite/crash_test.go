package novasqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novasqlite"
)

// crashChildEnv names the store file a re-executed test binary appends to
// until it is killed.
const crashChildEnv = "NOVASQLITE_CRASH_CHILD"

// crashChild appends batches of 1 to 5 events from four writers, each to
// its own stream, and prints every acknowledged batch as
// "ack STREAM FIRST LAST" on stdout.
func crashChild(path string) {
	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for w := range 4 {
		go func() {
			stream := fmt.Sprintf("s%d", w)
			for i := 0; ; i++ {
				k := 1 + i%5
				batch := make([]nova.EventData, k)
				for j := range batch {
					batch[j] = nova.EventData{Type: "crash.test", Data: fmt.Appendf(nil, "%s/%d/%d", stream, i, j)}
				}
				res, err := s.Append(ctx, stream, nova.Any, batch...)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("ack %s %d %d\n", stream, res.FirstVersion, res.LastVersion)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashLosesNoAcknowledgedAppend kills a process that appends
// concurrently, at a moment it does not choose, then checks the file: every
// acknowledged append is there, and every append there is whole.
func TestCrashLosesNoAcknowledgedAppend(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{} // stream -> highest acknowledged version
	lines := bufio.NewScanner(out)
	deadline := time.Now().Add(20 * time.Second)
	n := 0
	for ; n < 300 && time.Now().Before(deadline) && lines.Scan(); n++ {
		var stream string
		var first, last uint64
		if _, err := fmt.Sscanf(lines.Text(), "ack %s %d %d", &stream, &first, &last); err != nil {
			t.Fatalf("child said %q: %v", lines.Text(), err)
		}
		acked[stream] = max(acked[stream], last)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatalf("the child acknowledged nothing; stderr: %s", stderr.String())
	}

	s := open(t, novasqlite.Config{Path: path})
	ctx := context.Background()
	versions := map[string]uint64{}
	batches := map[string]map[string]int{} // stream -> batch number -> events seen
	var pos uint64
	for e, err := range s.ReadAll(ctx, nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position.Commit != pos+1 {
			t.Fatalf("event %s at position %v after %d: the log has a gap", e.ID, e.Position, pos)
		}
		pos = e.Position.Commit
		if e.Version != versions[e.Stream]+1 {
			t.Fatalf("event %s is version %d of %s after %d", e.ID, e.Version, e.Stream, versions[e.Stream])
		}
		versions[e.Stream] = e.Version
		parts := strings.Split(string(e.Data), "/")
		if len(parts) != 3 || parts[0] != e.Stream {
			t.Fatalf("event %s has data %q", e.ID, e.Data)
		}
		if batches[e.Stream] == nil {
			batches[e.Stream] = map[string]int{}
		}
		batches[e.Stream][parts[1]]++
	}
	for stream, v := range acked {
		if versions[stream] < v {
			t.Errorf("stream %s ends at version %d, but version %d was acknowledged", stream, versions[stream], v)
		}
	}
	for stream, bs := range batches {
		for b, n := range bs {
			var i int
			if _, err := fmt.Sscan(b, &i); err != nil {
				t.Fatalf("batch number %q: %v", b, err)
			}
			if want := 1 + i%5; n != want {
				t.Errorf("batch %s of stream %s has %d of its %d events: half an append survived", b, stream, n, want)
			}
		}
	}
	t.Logf("killed after %d acknowledged appends; the file holds %d events", n, pos)
}
