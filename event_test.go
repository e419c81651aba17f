package nova_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/nova-go/nova"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewEventIDForm(t *testing.T) {
	t.Parallel()
	const n = 10_000
	seen := make(map[string]struct{}, n)
	for range n {
		id := nova.NewEventID()
		if !uuidV7.MatchString(id) {
			t.Fatalf("NewEventID() = %q, not a canonical version 7 UUID", id)
		}
		if _, dup := seen[id]; dup {
			t.Fatalf("NewEventID() returned %q twice", id)
		}
		seen[id] = struct{}{}
	}
}

func TestNewEventIDTimeOrdered(t *testing.T) {
	t.Parallel()
	// IDs made in different milliseconds sort in time order, as strings
	// (how the stores' indexes compare them).
	prev := nova.NewEventID()
	for range 5 {
		time.Sleep(2 * time.Millisecond)
		next := nova.NewEventID()
		if next <= prev {
			t.Fatalf("NewEventID() = %q after %q, want it to sort later", next, prev)
		}
		prev = next
	}
}

func TestNewEventIDCarriesTime(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMilli()
	id := nova.NewEventID()
	after := time.Now().UnixMilli()
	var ms int64
	for _, c := range id[:8] + id[9:13] {
		ms = ms<<4 | int64(hexVal(c))
	}
	if ms < before || ms > after {
		t.Fatalf("NewEventID() = %q carries %d ms, want within [%d, %d]", id, ms, before, after)
	}
}

func hexVal(c rune) int {
	if c >= 'a' {
		return int(c-'a') + 10
	}
	return int(c - '0')
}

func TestMetadataEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b nova.Metadata
		want bool
	}{
		{"zero", nova.Metadata{}, nova.Metadata{}, true},
		{"nil vs empty extra", nova.Metadata{}, nova.Metadata{Extra: map[string]string{}}, true},
		{"schema 0 vs 1", nova.Metadata{Schema: 0}, nova.Metadata{Schema: 1}, true},
		{"schema negative vs 1", nova.Metadata{Schema: -3}, nova.Metadata{Schema: 1}, true},
		{"schema 1 vs 2", nova.Metadata{Schema: 1}, nova.Metadata{Schema: 2}, false},
		{"schema 0 vs 2", nova.Metadata{}, nova.Metadata{Schema: 2}, false},
		{"correlation", nova.Metadata{CorrelationID: "a"}, nova.Metadata{CorrelationID: "b"}, false},
		{"causation", nova.Metadata{CausationID: "a"}, nova.Metadata{}, false},
		{"same extra", nova.Metadata{Extra: map[string]string{"k": "v"}}, nova.Metadata{Extra: map[string]string{"k": "v"}}, true},
		{"extra value", nova.Metadata{Extra: map[string]string{"k": "v"}}, nova.Metadata{Extra: map[string]string{"k": "w"}}, false},
		{"extra key vs nil", nova.Metadata{Extra: map[string]string{"k": ""}}, nova.Metadata{}, false},
		{"extra subset", nova.Metadata{Extra: map[string]string{"k": "v"}}, nova.Metadata{Extra: map[string]string{"k": "v", "j": "v"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Errorf("a.Equal(b) = %v, want %v", got, tt.want)
			}
			if got := tt.b.Equal(tt.a); got != tt.want {
				t.Errorf("b.Equal(a) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetadataSchemaVersion(t *testing.T) {
	t.Parallel()
	for schema, want := range map[int]int{-1: 1, 0: 1, 1: 1, 2: 2, 9: 9} {
		if got := (nova.Metadata{Schema: schema}).SchemaVersion(); got != want {
			t.Errorf("Schema %d: SchemaVersion() = %d, want %d", schema, got, want)
		}
	}
}
