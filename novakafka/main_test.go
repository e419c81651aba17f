package novakafka_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

// cluster is the in-process Kafka cluster the tests share, each in a
// namespace of its own.
var cluster *kfake.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	flag.Parse()
	// brokertest's Dedup case expects a deduplicating backend; Kafka does
	// not deduplicate (Guarantees.Dedup is false), so it is skipped until
	// the suite asks the backend's Guarantees.
	if f := flag.Lookup("test.skip"); f != nil && f.Value.String() == "" {
		_ = f.Value.Set("^TestConformance$/^Dedup$")
	}
	goleak.VerifyTestMain(clusterRun{m})
}

// clusterRun starts the shared cluster around the tests and closes it
// before goleak looks for goroutines left behind.
type clusterRun struct{ m *testing.M }

func (r clusterRun) Run() int {
	c, err := newCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "novakafka tests: start the in-process cluster:", err)
		return 1
	}
	cluster = c
	code := r.m.Run()
	c.Close()
	return code
}
