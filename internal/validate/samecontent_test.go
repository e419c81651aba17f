package validate_test

import (
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

func TestEventSameContent(t *testing.T) {
	t.Parallel()
	const id = "0190a0b0-0000-7000-8000-000000000001"
	base := nova.Event{
		ID: id, Stream: "s", Type: "t", Version: 3, Position: nova.Position{Commit: 9},
		Data: []byte(`{"a":1}`), Metadata: nova.Metadata{CorrelationID: "c", Schema: 1},
		RecordedAt: time.Unix(1, 0),
	}
	data := nova.EventData{ID: id, Type: "t", Data: []byte(`{"a":1}`), Metadata: nova.Metadata{CorrelationID: "c"}}
	tests := []struct {
		name string
		e    func(*nova.Event)
		d    func(*nova.EventData)
		want bool
	}{
		{"same", nil, nil, true},
		{"schema 0 vs 1", nil, func(d *nova.EventData) { d.Metadata.Schema = 0 }, true},
		{"schema 2", nil, func(d *nova.EventData) { d.Metadata.Schema = 2 }, false},
		{"nil vs empty data", func(e *nova.Event) { e.Data = nil }, func(d *nova.EventData) { d.Data = []byte{} }, true},
		{"empty vs nil data", func(e *nova.Event) { e.Data = []byte{} }, func(d *nova.EventData) { d.Data = nil }, true},
		{"nil vs empty extra", func(e *nova.Event) { e.Metadata.Extra = nil }, func(d *nova.EventData) { d.Metadata.Extra = map[string]string{} }, true},
		{"stream, version, position, time ignored", func(e *nova.Event) {
			e.Stream, e.Version, e.Position, e.RecordedAt = "other", 1, nova.Position{Commit: 1}, time.Time{}
		}, nil, true},
		{"other id", nil, func(d *nova.EventData) { d.ID = "0190a0b0-0000-7000-8000-000000000002" }, false},
		{"other type", nil, func(d *nova.EventData) { d.Type = "u" }, false},
		{"other data", nil, func(d *nova.EventData) { d.Data = []byte(`{"a":2}`) }, false},
		{"data vs nil", nil, func(d *nova.EventData) { d.Data = nil }, false},
		{"other metadata", nil, func(d *nova.EventData) { d.Metadata.CausationID = "x" }, false},
		{"other trace context", func(e *nova.Event) {
			e.Metadata.Extra = map[string]string{"k": "v", "traceparent": "00-a-b-01", "tracestate": "x=1"}
		}, func(d *nova.EventData) {
			d.Metadata.Extra = map[string]string{"k": "v", "traceparent": "00-c-d-01"}
		}, true},
		{"trace context only on one side", func(e *nova.Event) {
			e.Metadata.Extra = map[string]string{"traceparent": "00-a-b-01"}
		}, nil, true},
		{"other extra beside trace context", func(e *nova.Event) {
			e.Metadata.Extra = map[string]string{"k": "v", "traceparent": "00-a-b-01"}
		}, func(d *nova.EventData) { d.Metadata.Extra = map[string]string{"k": "w"} }, false},
		{"extra key missing", func(e *nova.Event) {
			e.Metadata.Extra = map[string]string{"k": "v"}
		}, func(d *nova.EventData) { d.Metadata.Extra = map[string]string{"traceparent": "00-a-b-01"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, d := base, data
			if tt.e != nil {
				tt.e(&e)
			}
			if tt.d != nil {
				tt.d(&d)
			}
			if got := validate.SameContent(e, d); got != tt.want {
				t.Errorf("SameContent = %v, want %v", got, tt.want)
			}
		})
	}
}
