// Package brokertest is the conformance suite every [broker.Broker]
// passes: the in-memory broker and the adapters for NATS JetStream,
// RabbitMQ and Kafka. A backend's test calls [Run] with a constructor of
// fresh, empty brokers:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) broker.Broker {
//			b, err := broker.NewMemory(broker.MemoryConfig{MinBackoff: time.Millisecond})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// A backend with a server also gives the suite a way to open brokers on a
// named namespace ([WithOpen]), which two processes can share, and one
// whose connection goes through a proxy the suite can cut ([WithOutage]):
//
//	open := func(t testing.TB, namespace string) broker.Broker {
//		return newBroker(t, serverURL, namespace) // Close and clean-up registered with t
//	}
//	brokertest.Run(t, func(t *testing.T) broker.Broker { return open(t, uniqueName()) },
//		brokertest.WithOpen(open),
//		brokertest.WithOutage(func(t testing.TB, namespace string) (broker.Broker, brokertest.Outage) {
//			p := testenv.NewProxy(t, serverHostPort)
//			return newBroker(t, "nats://"+p.Addr(), namespace), p
//		}))
//
// The suite finds what a backend can do by type assertion: consumer
// groups ([broker.GroupSubscriber]) and promises beyond the contract
// ([broker.GuaranteesOf]). A case that needs what the backend lacks, or
// an option that was not given, skips with a message saying what to
// pass. The cases:
//
//   - Close: Close with idle and busy subscriptions and group members
//     ends them all, cancels busy handlers' ctx, leaves no goroutine
//     (goleak), is harmless twice; every call after it fails with
//     [nova.ErrClosed].
//   - PublishPoll: each topic's poll queue returns its envelopes oldest
//     first, at most max at a time, each once, with every field; a zero
//     timestamp is stamped.
//   - PollCompete: pollers of one topic at once get each envelope exactly
//     once between them.
//   - Wildcards: patterns with "*" and ">" receive exactly the topics they
//     match.
//   - Fanout: two subscriptions each receive their own copy of what
//     matches, one delivery at a time, nothing published before they
//     started; polling and subscribing take nothing from each other.
//   - Ack: an acknowledged envelope is delivered once, with Attempts 0.
//   - NackDeadLetter: an envelope rejected every time is delivered with
//     Attempts 0, 1, … up to the attempt limit, then dead-lettered with
//     the last error as reason; one rejected once comes back with
//     Attempts 1.
//   - Panic: a handler's panic is a rejection; the subscription goes on.
//   - PublishDLQ: dead letters by hand, read back in order, not
//     deduplicated, not published.
//   - Dedup (only with [broker.Guarantees].Dedup): a repeated ID on a
//     topic is a successful no-op.
//   - Payloads: an envelope with many headers (unicode, case variants,
//     separators, line breaks, empty values) and one with a payload of
//     1,000,000 bytes come back through Poll, a subscription, a group
//     member and the dead letters exactly as sent, the payload byte for
//     byte.
//   - BadInput: every method with every kind of bad input (envelopes,
//     topics, patterns, group names, max < 1, reasons) returns an error
//     matching [nova.ErrInvalid] and changes nothing.
//   - Cancel: a subscription's and a group member's ctx ends them; a call
//     whose ctx is already done returns its error and changes nothing (a
//     group joined so is not created).
//   - Unsubscribe: a subscription ends on Unsubscribe, others go on.
//   - Concurrent: publishers at once; every envelope arrives once, in each
//     publisher's order.
//   - GroupShare: two members of a group handle every envelope exactly
//     once between them, never one envelope at both at once; after one
//     leaves, the other handles everything.
//   - GroupDurable: what is published while a group has no member waits
//     for the next member.
//   - GroupCopies: two groups each get their own copy; a group does not
//     get what was published before it was created.
//   - GroupHandOver: an envelope a member holds unanswered when it leaves
//     goes to the next member (with Attempts 1 or more under
//     [broker.Guarantees].ServerAttempts), not before.
//   - GroupDeadLetter: rejected across two members, an envelope's
//     attempts run 0, 1, … one delivery at a time, and it is dead-lettered
//     at the limit with the last error.
//   - KeyOrder (only with [broker.Guarantees].KeyOrder): with some
//     deliveries rejected once, a subscription and a group of two members
//     acknowledge each key's envelopes in publish order, one at a time,
//     redeliveries included.
//   - Namespace (needs [WithOpen]): two brokers of one namespace share
//     poll queues, subscriptions' traffic, groups and dead letters; a
//     broker of another namespace sees none of it.
//   - Kill (needs [WithOpen]): a group member in a child process
//     acknowledges two envelopes, holds the third and is killed with
//     SIGKILL; a member started in the parent receives every envelope not
//     acknowledged, those published after the kill included. Under
//     [broker.Guarantees].ServerAttempts the held one comes back with
//     Attempts 1 or more; without it the count died with the process, and
//     the suite does not ask for it. Envelopes the child acknowledged may
//     come again.
//   - GroupKill (needs [WithOpen], or [WithOpenSpread]): a consumer group
//     has two members in two processes, a child and the test's own (it
//     joins once the child receives envelopes), and envelopes are
//     published over several topics and keys; each member records what it handles before it answers (the
//     child on its stdout). The child acknowledges a few slowly, then
//     holds what comes without answering, and is killed with SIGKILL once
//     the parent has acknowledged a quarter of the envelopes. Every envelope is then
//     acknowledged by a member (with an attempt limit of 1 under
//     ServerAttempts, the held ones may be dead-lettered instead), every
//     envelope the child held is handled by the survivor (with Attempts 1
//     or more under ServerAttempts), none went to the parent while the
//     child held it, the parent handles none twice, and one handled by
//     both is one the child acknowledged as it died, handled again after
//     the kill. It skips without WithOpen: an in-process broker such as
//     [broker.Memory] cannot have members in two processes. Under the race
//     detector it publishes 150 envelopes instead of 300.
//   - BadInputOffline (needs [WithOutage]): with the connection cut, every
//     call of BadInput still returns [nova.ErrInvalid], without waiting:
//     input is validated before any I/O.
//   - Reconnect (needs [WithOutage]): the connection is cut under a
//     running subscription and group member. Publish during the outage
//     fails or waits for its ctx, never reporting success for an envelope
//     then lost; after Restore, publishing works again by itself, the same
//     subscription and member receive new envelopes, and the member and
//     the poll queue get every envelope whose Publish succeeded.
//
// The suite learns the attempt limit by watching an envelope rejected
// until it is dead-lettered (or is told it with [WithMaxAttempts]), so
// it needs no configuration, but the backend's redelivery backoff should
// be short in tests, and an acknowledgement deadline after which the
// server redelivers (JetStream's AckWait, a Kafka session timeout) well
// below the timeout ([WithTimeout]).
//
// # The child process
//
// The Kill and GroupKill cases start the test binary again, running only
// the test that called Run, with the environment variable
// NOVA_BROKERTEST_CHILD naming its part and the namespace. Run recognises
// it at its start, opens the namespace with the function given to
// [WithOpen] (to [WithOpenSpread] for GroupKill, when given), plays the
// part and waits to be killed; nothing else in the backend's test needs
// to know, as long as what runs before Run in that test (finding
// the server, say) works in the child too. A server or proxy the test
// starts itself must be reachable from the child: start it in the parent
// and hand its address down in an environment variable (t.Setenv before
// Run), as this package's own test does.
//
// Checking that something does not happen needs a wait: the suite waits
// for a settle time (default 100ms, see [WithSettle]) before concluding
// that no further delivery comes.
package brokertest
