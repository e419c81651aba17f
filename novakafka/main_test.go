package novakafka_test

import (
	"fmt"
	"os"
	"strings"
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
	goleak.VerifyTestMain(clusterRun{m})
}

// clusterSeedsEnv carries the shared cluster's addresses to the child
// processes the conformance suite starts (its Kill case), so that they
// open brokers on the parent's cluster rather than on one of their own.
const clusterSeedsEnv = "NOVAKAFKA_TEST_CLUSTER"

// seeds returns the addresses of the shared cluster.
func seeds() []string {
	if s := os.Getenv(clusterSeedsEnv); s != "" {
		return strings.Split(s, ",")
	}
	return cluster.ListenAddrs()
}

// clusterRun starts the shared cluster around the tests and closes it
// before goleak looks for goroutines left behind.
type clusterRun struct{ m *testing.M }

func (r clusterRun) Run() int {
	if os.Getenv(clusterSeedsEnv) != "" {
		return r.m.Run() // a child of the suite: the parent's cluster
	}
	c, err := newCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "novakafka tests: start the in-process cluster:", err)
		return 1
	}
	cluster = c
	os.Setenv(clusterSeedsEnv, strings.Join(c.ListenAddrs(), ","))
	code := r.m.Run()
	c.Close()
	return code
}
