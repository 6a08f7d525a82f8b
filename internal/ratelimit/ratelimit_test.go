package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/clock"
)

func TestBurstThenRefusedUntilRefill(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(3, clk)
	for i := range 3 {
		if d, ok := l.Allow("a"); !ok {
			t.Fatalf("call %d refused (retry after %s); the first 3 in a minute are allowed", i+1, d)
		}
	}
	d, ok := l.Allow("a")
	if ok {
		t.Fatal("4th call in a minute allowed; want refused")
	}
	if d != 20*time.Second {
		t.Errorf("retry after %s, want 20s (one token every minute/3)", d)
	}
	// A refusal takes nothing: refused again, and told the same wait.
	if d2, ok := l.Allow("a"); ok || d2 != d {
		t.Errorf("refused call moved the next token: got %s, %v; want %s, false", d2, ok, d)
	}
	// Another key has its own bucket.
	if _, ok := l.Allow("b"); !ok {
		t.Error("another key refused")
	}
	clk.Advance(19 * time.Second)
	if d, ok := l.Allow("a"); ok || d < time.Second-time.Millisecond || d > time.Second {
		t.Errorf("after 19s: %s, %v; want refused with 1s left", d, ok)
	}
	clk.Advance(time.Second)
	if _, ok := l.Allow("a"); !ok {
		t.Error("after 20s: refused; one token should have come back")
	}
	if _, ok := l.Allow("a"); ok {
		t.Error("after 20s: two calls allowed; only one token came back")
	}
	clk.Advance(time.Minute)
	for i := range 3 {
		if _, ok := l.Allow("a"); !ok {
			t.Fatalf("a minute later, call %d refused; the bucket should be full again", i+1)
		}
	}
}

func TestIdleKeysForgotten(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(2, clk)
	for i := range 100 {
		l.Allow(fmt.Sprint("k", i))
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	clk.Advance(30 * time.Second)
	l.Allow("k0")
	if n := l.Len(); n != 100 {
		t.Errorf("after 30s: Len = %d, want 100 (nothing idle for a minute yet)", n)
	}
	clk.Advance(30 * time.Second)
	l.Allow("fresh")
	if n := l.Len(); n != 2 {
		t.Errorf("after a minute: Len = %d, want 2 (k0, used 30s ago, and fresh)", n)
	}
}

func TestMaxKeysBoundsMemory(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(1, clk)
	l.maxKeys = 3
	l.Allow("a")
	l.Allow("b")
	l.Allow("c")
	l.Allow("a") // refused, but a is now the most recently used
	l.Allow("d") // evicts b, the least recently used
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	if _, ok := l.Allow("a"); ok {
		t.Error("a was forgotten; the least recently used key (b) should have been")
	}
	if _, ok := l.Allow("b"); !ok {
		t.Error("b still remembered; it should have been forgotten (and start full)")
	}
}

func TestNilAndZeroAllowEverything(t *testing.T) {
	for _, n := range []int{0, -1} {
		l := New(n, nil)
		if l != nil {
			t.Fatalf("New(%d) = %v, want nil", n, l)
		}
		for range 1000 {
			if _, ok := l.Allow("a"); !ok {
				t.Fatal("nil limiter refused")
			}
		}
		if l.PerMinute() != 0 || l.Len() != 0 {
			t.Error("nil limiter reports a limit or keys")
		}
	}
}

func TestConcurrentCallersShareTheBucket(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(50, clk)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				if _, ok := l.Allow("k"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d of 200 concurrent calls allowed, want 50", allowed)
	}
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {20 * time.Second, 20}} {
		if got := Seconds(c.d); got != c.want {
			t.Errorf("Seconds(%s) = %d, want %d", c.d, got, c.want)
		}
	}
}
