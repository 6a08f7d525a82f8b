package linkflow_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// TestLinkMetricsCountEveryOutcome: the identity counters move with link
// attempts, links, refusals by reason, the IdP failing a sign-in, and
// refreshes and their failures at a click.
func TestLinkMetricsCountEveryOutcome(t *testing.T) {
	e := newEnv(t)
	m := e.linker.Metrics()
	for _, k := range []string{linkflow.LinkOutcomeLinked, string(linkflow.RefusalMismatch), string(linkflow.RefusalLookupFailed), linkflow.LinkOutcomeIdPUnavailable} {
		if v, ok := m.Links[k]; !ok || v != 0 {
			t.Fatalf("before any sign-in, links[%s] = %d (present %v), want a 0", k, v, ok)
		}
	}

	e.linkAs(slackU1, alice)

	// A forwarded link: refused as identity_mismatch.
	e.op.AddUser(mallory)
	attacker := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "UMALLORY"}
	e.own(attacker, mallory)
	status, body := e.completeAs(e.begin(attacker), alice)
	wantStatus(t, "forwarded link", status, http.StatusForbidden, body)

	// The chat platform cannot be asked: lookup_failed.
	e.dir.fail(errors.New("users.info: HTTP 502"))
	status, body = e.completeAs(e.begin(slackU2), bob)
	wantStatus(t, "lookup failure", status, http.StatusServiceUnavailable, body)
	e.dir.fail(nil)

	// The IdP goes away between the login and the code exchange.
	b := e.signInUntilCallback(slackU2, bob)
	e.net.set(true)
	status, body = b.get(b.callback)
	wantStatus(t, "callback with the IdP down", status, http.StatusBadGateway, body)

	m = e.linker.Metrics()
	if m.LinkAttempts != 4 {
		t.Errorf("link attempts = %d, want 4", m.LinkAttempts)
	}
	want := map[string]uint64{
		linkflow.LinkOutcomeLinked: 1, string(linkflow.RefusalMismatch): 1, string(linkflow.RefusalLookupFailed): 1,
		linkflow.LinkOutcomeIdPUnavailable: 1, linkflow.LinkOutcomeIdPRefused: 0, string(linkflow.RefusalNoChatEmail): 0,
	}
	for k, v := range want {
		if m.Links[k] != v {
			t.Errorf("links[%s] = %d, want %d (all: %v)", k, m.Links[k], v, m.Links)
		}
	}

	// A click with the IdP down, past groups_max_age: a refresh failure,
	// nothing marked; with the IdP back, a refresh by click.
	e.clk.Advance(25 * time.Hour)
	if _, err := e.resolve(slackU1); !errors.Is(err, linkflow.ErrIdPUnavailable) {
		t.Fatalf("click with the IdP down: %v", err)
	}
	e.net.set(false)
	if _, err := e.resolve(slackU1); err != nil {
		t.Fatalf("click with the IdP back: %v", err)
	}
	m = e.linker.Metrics()
	if m.RefreshFailures[linkflow.RefreshFailureUnavailable] != 1 || m.RefreshFailures[linkflow.RefreshFailureRefused] != 0 ||
		m.Refreshes["click"] != 1 || m.MarkedStale[linkflow.StaleRefreshRefused] != 0 {
		t.Fatalf("refresh metrics: failures %v, refreshes %v, stale %v", m.RefreshFailures, m.Refreshes, m.MarkedStale)
	}
}
