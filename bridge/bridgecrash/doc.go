// Package bridgecrash holds the crash test of the bridge's Forwarder and
// nothing else: a forwarder process killed with SIGKILL again and again,
// while events are appended, must still get every event to the broker.
//
// TestKilledForwarder appends events to a SQLite store from the test
// process while a forwarder runs in a child process (the test binary
// started again) and is killed with SIGKILL at random moments and started
// again, NOVA_BRIDGECRASH_KILLS times (default 10). A consumer group that
// existed before the first event collects what reaches the broker. Every
// event must arrive — none skipped — and an event may arrive twice only
// on a broker that cannot drop repeated IDs. It runs on RabbitMQ and on
// NATS JetStream (the shared servers); NOVA_BRIDGECRASH_EVENTS sets the
// events appended (default 3,000).
package bridgecrash
