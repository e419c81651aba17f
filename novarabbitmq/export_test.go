package novarabbitmq

import "testing"

// ServerURL returns the test server's URL, or skips t.
func ServerURL(t testing.TB) string { return serverURL(t) }

// NamespaceForTest returns a fresh namespace whose exchanges, and the
// durable queues of topics and groups, are deleted when t ends.
func NamespaceForTest(t testing.TB, topics, groups []string) string {
	u := serverURL(t)
	ns := newNamespace(t)
	n := names{ns}
	var queues []string
	for _, topic := range topics {
		queues = append(queues, n.pollQueue(topic), n.dlq(topic))
	}
	for _, g := range groups {
		queues = append(queues, n.group(g))
	}
	t.Cleanup(func() { deleteNamespace(t, u, ns, queues...) })
	return ns
}
