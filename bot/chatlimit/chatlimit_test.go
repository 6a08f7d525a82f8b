package chatlimit

import (
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/clock"
)

func TestAllowPerAccount(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(2, clk)
	for range 2 {
		if msg := l.Allow("slack", "T1", "U1"); msg != "" {
			t.Fatalf("refused within the limit: %q", msg)
		}
	}
	msg := l.Allow("slack", "T1", "U1")
	if !strings.Contains(msg, "more than 2 times in the last minute") || !strings.Contains(msg, "Try again in 30 seconds") {
		t.Errorf("refusal %q", msg)
	}
	// The same user id in another workspace or on another platform is
	// another account.
	for _, acct := range [][3]string{{"slack", "T2", "U1"}, {"teams", "T1", "U1"}, {"slack", "T1", "U2"}} {
		if msg := l.Allow(acct[0], acct[1], acct[2]); msg != "" {
			t.Errorf("%v refused: %q", acct, msg)
		}
	}
	if l.Refused() != 1 || l.PerMinute() != 2 {
		t.Errorf("Refused %d, PerMinute %d", l.Refused(), l.PerMinute())
	}
	clk.Advance(30 * time.Second)
	if msg := l.Allow("slack", "T1", "U1"); msg != "" {
		t.Errorf("after 30s: %q", msg)
	}
}

func TestNilAllowsEverything(t *testing.T) {
	l := New(0, nil)
	if l != nil || l.Allow("slack", "T1", "U1") != "" || l.Refused() != 0 || l.PerMinute() != 0 {
		t.Error("a zero limit limits")
	}
}

// TestTellOncePerMinute: an account over the limit is told once a minute;
// another account is told on its own.
func TestTellOncePerMinute(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(2, clk)
	if !l.Tell("slack", "T1", "U1") {
		t.Fatal("the first refusal is not told")
	}
	for range 5 {
		if l.Tell("slack", "T1", "U1") {
			t.Fatal("told twice within a minute")
		}
	}
	if !l.Tell("slack", "T1", "U2") || !l.Tell("teams", "T1", "U1") {
		t.Error("another account's refusal is not told")
	}
	clk.Advance(59 * time.Second)
	if l.Tell("slack", "T1", "U1") {
		t.Error("told again before a minute passed")
	}
	clk.Advance(time.Second)
	if !l.Tell("slack", "T1", "U1") {
		t.Error("not told again a minute later")
	}
	var none *Limiter
	if !none.Tell("slack", "T1", "U1") {
		t.Error("a nil Limiter tells nothing")
	}
}
