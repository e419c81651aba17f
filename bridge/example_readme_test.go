package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/bridge"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/novamem"
)

// ShipOrder is the command the example's inbox runs for each message.
type ShipOrder struct {
	MessageID string `json:"-"`
	OrderID   string `json:"order_id"`
}

func (c ShipOrder) CommandID() string { return c.MessageID }

// The README's example: a store's events out to a broker, and a broker's
// messages in as commands.
func Example_forwarderAndInbox() {
	ctx := context.Background()
	store, _ := novamem.New(novamem.Config{})
	b, _ := broker.NewMemory(broker.MemoryConfig{}) // or novanats, novarabbitmq, novakafka
	defer b.Close()

	// Out: every "order" event, published as "events.order.{type}", keyed
	// by its stream, from a checkpoint that survives restarts.
	fwd, _ := bridge.NewForwarder(bridge.ForwarderConfig{Store: store, Broker: b, Categories: []string{"order"}})
	_ = fwd.Start(ctx)
	defer fwd.Stop(ctx)

	// In: each "shipping.requested" message runs ShipOrder once, keyed by
	// the message's ID.
	bus := cqrs.NewCommandBus()
	shipped := make(chan string, 1)
	_ = cqrs.Handle(bus, func(ctx context.Context, c ShipOrder) error {
		shipped <- c.OrderID
		return nil
	})
	inbox, _ := bridge.NewInbox(bridge.InboxConfig{
		Broker: b, Pattern: "shipping.requested", Bus: bus,
		Decode: func(e broker.Envelope) (any, error) {
			c := ShipOrder{MessageID: e.ID}
			return c, json.Unmarshal(e.Payload, &c)
		},
	})
	_ = inbox.Start(ctx)
	defer inbox.Stop(ctx)

	res, _ := store.Append(ctx, "order-42", nova.NoStream,
		nova.EventData{Type: "OrderPlaced", Data: []byte(`{"total":1250}`)})
	_ = fwd.WaitFor(ctx, res.Position)
	out, _ := b.Poll(ctx, "events.order.OrderPlaced", 10)
	fmt.Println(out[0].Topic, out[0].Key, string(out[0].Payload))

	msg, _ := broker.NewEnvelope("msg-1", "shipping.requested", "ShippingRequested", map[string]string{"order_id": "order-42"})
	_ = b.Publish(ctx, msg)
	select {
	case id := <-shipped:
		fmt.Println("shipping", id)
	case <-time.After(5 * time.Second):
		fmt.Println("no command")
	}
	// Output:
	// events.order.OrderPlaced order-42 {"total":1250}
	// shipping order-42
}
