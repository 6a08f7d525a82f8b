package counts

import (
	"maps"
	"testing"
)

func TestAdd(t *testing.T) {
	var m map[string]uint64
	Add(&m, "a", 1)
	Add(&m, "a", 2)
	Add(&m, "b", 1)
	if want := map[string]uint64{"a": 3, "b": 1}; !maps.Equal(m, want) {
		t.Errorf("after Add: %v, want %v", m, want)
	}
}

func TestWithKeys(t *testing.T) {
	var empty map[string]uint64
	WithKeys(&empty)
	if empty == nil || len(empty) != 0 {
		t.Errorf("WithKeys on nil with no keys: %v, want an empty map", empty)
	}
	m := map[string]uint64{"a": 3}
	WithKeys(&m, "a", "b")
	if want := map[string]uint64{"a": 3, "b": 0}; !maps.Equal(m, want) {
		t.Errorf("after WithKeys: %v, want %v (a count kept, a missing key at 0)", m, want)
	}
}
