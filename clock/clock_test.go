package clock

import (
	"testing"
	"time"
)

func TestFakeFiresWaitersWhenDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	early, late := f.After(time.Second), f.After(time.Minute)
	if f.Waiters() != 2 {
		t.Fatalf("waiters %d", f.Waiters())
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-early:
		t.Fatal("fired before it was due")
	default:
	}
	f.Advance(time.Millisecond)
	select {
	case got := <-early:
		if !got.Equal(t0.Add(time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("did not fire when due")
	}
	if f.Waiters() != 1 {
		t.Fatalf("waiters after one fired: %d", f.Waiters())
	}
	f.Set(t0.Add(time.Hour))
	<-late
	if now := <-f.After(0); !now.Equal(t0.Add(time.Hour)) {
		t.Fatalf("After(0) = %v", now)
	}
}
