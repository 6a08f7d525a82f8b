package linkflow_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// sweep runs one sweep pass.
func (e *env) sweep() (linkflow.SweepResult, error) {
	return e.linker.Sweep(context.Background())
}

// mustSweep runs one sweep pass that must get through.
func (e *env) mustSweep() linkflow.SweepResult {
	e.t.Helper()
	res, err := e.sweep()
	if err != nil {
		e.t.Fatalf("Sweep: %v", err)
	}
	return res
}

// runSweep runs RunSweep until the test ends and returns a function that
// waits until n passes have finished (by the Sweeps counter) and the loop
// is parked on the clock again.
func (e *env) runSweep() (waitPasses func(n uint64)) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.linker.RunSweep(ctx)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return func(n uint64) {
		e.t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if passes(e.linker.Metrics()) == n && e.clk.Waiters() == 1 {
				return
			}
			if passes(e.linker.Metrics()) > n {
				e.t.Fatalf("sweep passes = %d, want %d", passes(e.linker.Metrics()), n)
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("sweep passes = %d (clock waiters %d), want %d", passes(e.linker.Metrics()), e.clk.Waiters(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func passes(m linkflow.LinkerMetrics) uint64 {
	var n uint64
	for _, v := range m.Sweeps {
		n += v
	}
	return n
}

// noPassWithin advances the clock by d and checks that the sweep loop
// stays parked (no pass was due yet).
func (e *env) noPassWithin(d time.Duration) {
	e.t.Helper()
	before := passes(e.linker.Metrics())
	e.clk.Advance(d)
	time.Sleep(20 * time.Millisecond)
	if got := passes(e.linker.Metrics()); got != before || e.clk.Waiters() != 1 {
		e.t.Fatalf("after %s: sweep passes %d (was %d), clock waiters %d: a pass ran before it was due", d, got, before, e.clk.Waiters())
	}
}

// TestSweepMarksDisabledUserStale: a person disabled at the IdP shows as
// stale once the sweep ran, without anyone clicking, through the same
// refresh a click uses (identity.stale, no refresh token kept).
func TestSweepMarksDisabledUserStale(t *testing.T) {
	e := newLinkedEnv(t)
	e.linkAs(slackU2, bob)
	attemptsBefore := e.linker.Metrics().LinkAttempts

	// Within groups_max_age the sweep asks the IdP nothing.
	e.clk.Advance(23 * time.Hour)
	e.op.Disable("alice")
	if res := e.mustSweep(); res != (linkflow.SweepResult{}) || e.op.Refreshes() != 0 {
		t.Fatalf("sweep within groups_max_age = %+v (refreshes %d), want nothing done", res, e.op.Refreshes())
	}

	e.clk.Advance(2 * time.Hour)
	res := e.mustSweep()
	if res.Due != 2 || res.MarkedStale != 1 || res.Refreshed != 1 || res.NeedSignIn != 0 || res.Failed != 0 {
		t.Fatalf("sweep = %+v, want alice marked stale and bob refreshed", res)
	}
	l := e.mustLink(slackU1)
	if !l.Stale || l.RefreshToken != nil || !strings.Contains(l.StaleReason, "invalid_grant") {
		t.Fatalf("alice's link after the sweep: stale %v, reason %q, token %d bytes", l.Stale, l.StaleReason, len(l.RefreshToken))
	}
	if b := e.mustLink(slackU2); b.Stale || !b.VerifiedAt.Equal(e.clk.Now()) {
		t.Fatalf("bob's link after the sweep: stale %v, verified_at %v (now %v)", b.Stale, b.VerifiedAt, e.clk.Now())
	}
	// The listing an operator reads (approvals.Links, behind links list)
	// shows it.
	links, err := e.svc.Links(context.Background(), storage.LinkFilter{Platform: "slack", Workspace: "T1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if stale := l.PlatformUser == slackU1.UserID; l.Stale != stale {
			t.Fatalf("links list: %s stale = %v", l.PlatformUser, l.Stale)
		}
	}
	var staleRecords int
	for _, rec := range e.records() {
		if rec.Type == approvals.TypeIdentityStale {
			staleRecords++
			if rec.Actor.PlatformUser != slackU1.UserID || !strings.Contains(rec.Data["reason"].(string), "invalid_grant") {
				t.Errorf("identity.stale record = %+v", rec)
			}
		}
	}
	if staleRecords != 1 {
		t.Fatalf("identity.stale records: %d, want 1 (%v)", staleRecords, e.auditTypes())
	}

	m := e.linker.Metrics()
	if m.RefreshFailures[linkflow.RefreshFailureRefused] != 1 || m.MarkedStale[linkflow.StaleRefreshRefused] != 1 ||
		m.Refreshes["sweep"] != 1 || m.Refreshes["click"] != 0 || m.Sweeps[linkflow.SweepCompleted] != 2 {
		t.Fatalf("metrics after the sweep: %+v", m)
	}
	// The sweep sent nobody a sign-in link.
	if m.LinkAttempts != attemptsBefore {
		t.Fatalf("link attempts %d → %d: the sweep made sign-in links", attemptsBefore, m.LinkAttempts)
	}

	// The next click is asked to sign in again, without asking the IdP.
	refreshes := e.op.Refreshes()
	_, err = e.resolve(slackU1)
	asLinkRequired(t, err, linkflow.LinkReasonStale)
	if e.op.Refreshes() != refreshes {
		t.Fatal("a link the sweep marked stale was refreshed again at the click")
	}
	// A second pass leaves the stale link alone.
	if res := e.mustSweep(); res.Due != 0 || e.op.Refreshes() != refreshes {
		t.Fatalf("second sweep = %+v (refreshes %d → %d)", res, refreshes, e.op.Refreshes())
	}
}

// TestSweepReadsRemovedGroup: a group removed at the IdP is gone from the
// link after the sweep (identity.refreshed names the previous groups), the
// refresh token rotated, and the next click needs no refresh.
func TestSweepReadsRemovedGroup(t *testing.T) {
	e := newLinkedEnv(t)
	first := e.mustLink(slackU1)

	e.clk.Advance(25 * time.Hour)
	e.op.SetGroups("alice")
	if res := e.mustSweep(); res.Due != 1 || res.Refreshed != 1 {
		t.Fatalf("sweep = %+v", res)
	}
	l := e.mustLink(slackU1)
	if len(l.Groups) != 0 || !l.VerifiedAt.Equal(e.clk.Now()) || l.Stale || !l.LinkedAt.Equal(first.LinkedAt) {
		t.Fatalf("link after the sweep: groups %v, verified_at %v, stale %v", l.Groups, l.VerifiedAt, l.Stale)
	}
	if slices.Equal(l.RefreshToken, first.RefreshToken) || e.op.LiveRefreshTokens() != 1 {
		t.Fatalf("refresh token not rotated (live at the IdP: %d)", e.op.LiveRefreshTokens())
	}
	e.wantGroupsRefreshedFromSRE()

	// The click uses what the sweep read: no refresh, not eligible.
	refreshes := e.op.Refreshes()
	id, err := e.resolve(slackU1)
	if err != nil || len(id.Groups) != 0 || e.op.Refreshes() != refreshes {
		t.Fatalf("click after the sweep = %+v, %v (refreshes %d → %d)", id, err, refreshes, e.op.Refreshes())
	}
	if _, err := e.vote(slackU1, id, e.create("deploy").ID); !errors.Is(err, approvals.ErrNotEligible) {
		t.Fatalf("vote after the group was removed: %v, want ErrNotEligible", err)
	}
	if m := e.linker.Metrics(); m.Refreshes["sweep"] != 1 || m.Refreshes["click"] != 0 {
		t.Fatalf("refreshes by trigger: %v", m.Refreshes)
	}
}

// TestSweepBacksOffWhileIdPDown: with the IdP unreachable nothing is
// marked stale, the pass stops, and the next passes wait 1m, 2m, 4m … ;
// once the IdP answers again a pass refreshes everything and the loop
// returns to its interval.
func TestSweepBacksOffWhileIdPDown(t *testing.T) {
	e := newLinkedEnv(t)
	e.linkAs(slackU2, bob)
	if got := e.linker.SweepInterval(); got != time.Hour {
		t.Fatalf("sweep interval for groups_max_age 24h = %s, want 1h", got)
	}
	e.clk.Advance(25 * time.Hour)
	e.net.set(true)

	wait := e.runSweep()
	wait(1)
	m := e.linker.Metrics()
	if m.Sweeps[linkflow.SweepIdPUnavailable] != 1 || m.RefreshFailures[linkflow.RefreshFailureUnavailable] == 0 || m.RefreshFailures[linkflow.RefreshFailureRefused] != 0 {
		t.Fatalf("metrics after a pass with the IdP down: %+v", m)
	}
	for _, p := range []linkflow.PlatformUser{slackU1, slackU2} {
		if l := e.mustLink(p); l.Stale || l.RefreshToken == nil {
			t.Fatalf("%s after a pass with the IdP down: stale %v (%s), token %d bytes", p, l.Stale, l.StaleReason, len(l.RefreshToken))
		}
	}
	if slices.Contains(e.auditTypes(), approvals.TypeIdentityStale) {
		t.Fatalf("audit after a pass with the IdP down: %v", e.auditTypes())
	}

	// Backoff: 1m, then 2m, then 4m.
	for i, d := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		e.noPassWithin(d - time.Second)
		e.clk.Advance(time.Second)
		wait(uint64(i + 2))
		if got := e.linker.Metrics().Sweeps[linkflow.SweepIdPUnavailable]; got != uint64(i+2) {
			t.Fatalf("passes stopped by the outage: %d, want %d", got, i+2)
		}
	}

	// The IdP is back: the next pass (after 8m) refreshes both links.
	e.net.set(false)
	e.noPassWithin(8*time.Minute - time.Second)
	e.clk.Advance(time.Second)
	wait(5)
	m = e.linker.Metrics()
	if m.Sweeps[linkflow.SweepCompleted] != 1 || m.Refreshes["sweep"] != 2 {
		t.Fatalf("metrics after recovery: %+v", m)
	}
	for _, p := range []linkflow.PlatformUser{slackU1, slackU2} {
		if l := e.mustLink(p); l.Stale || !l.VerifiedAt.Equal(e.clk.Now()) {
			t.Fatalf("%s after recovery: stale %v, verified_at %v (now %v)", p, l.Stale, l.VerifiedAt, e.clk.Now())
		}
	}

	// Back to the interval: nothing for an hour.
	e.noPassWithin(time.Hour - time.Second)
	e.clk.Advance(time.Second)
	wait(6)
	if got := e.linker.Metrics().Sweeps[linkflow.SweepCompleted]; got != 2 {
		t.Fatalf("completed passes: %d, want 2", got)
	}
}

// gatedTransport holds requests to the IdP's token endpoint while closed
// and records how many were in flight at once.
type gatedTransport struct {
	mu       sync.Mutex
	on       bool
	inFlight int
	most     int
	release  chan struct{}
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	gated := g.on && strings.HasSuffix(r.URL.Path, "/oauth/token")
	if gated {
		g.inFlight++
		g.most = max(g.most, g.inFlight)
	}
	g.mu.Unlock()
	if gated {
		defer func() {
			g.mu.Lock()
			g.inFlight--
			g.mu.Unlock()
		}()
		select {
		case <-g.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (g *gatedTransport) state() (inFlight, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight, g.most
}

// TestSweepConcurrencyBound: a pass over more due links than its
// concurrency never has more refreshes in flight than the bound, and does
// use it.
func TestSweepConcurrencyBound(t *testing.T) {
	gate := &gatedTransport{release: make(chan struct{})}
	e := newEnv(t, func(o *linkflow.LinkerOptions) {
		o.HTTPClient = &http.Client{Transport: gate, Timeout: 20 * time.Second}
	})
	people := []testop.User{alice, bob, dana, erin}
	for _, name := range []string{"frank", "gina", "hank"} {
		u := testop.User{Username: name, Password: name + "-pw", Email: name + "@example.com", Name: name, Groups: []string{"sre"}}
		e.op.AddUser(u)
		people = append(people, u)
	}
	for _, u := range people {
		e.linkAs(linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "U" + u.Username, Conversation: "D" + u.Username}, u)
	}
	e.clk.Advance(25 * time.Hour)

	gate.mu.Lock()
	gate.on = true
	gate.mu.Unlock()
	done := make(chan linkflow.SweepResult, 1)
	go func() {
		res, err := e.sweep()
		if err != nil {
			t.Errorf("Sweep: %v", err)
		}
		done <- res
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, _ := gate.state(); n == linkflow.DefaultSweepConcurrency {
			break
		}
		if time.Now().After(deadline) {
			n, _ := gate.state()
			t.Fatalf("refreshes in flight: %d, want %d", n, linkflow.DefaultSweepConcurrency)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Held at the bound: no fifth refresh starts.
	time.Sleep(50 * time.Millisecond)
	if n, most := gate.state(); n != linkflow.DefaultSweepConcurrency || most != linkflow.DefaultSweepConcurrency {
		t.Fatalf("while held: %d in flight (at most %d), want %d", n, most, linkflow.DefaultSweepConcurrency)
	}
	close(gate.release)
	res := <-done
	if res.Due != len(people) || res.Refreshed != len(people) {
		t.Fatalf("sweep = %+v, want %d refreshed", res, len(people))
	}
	if _, most := gate.state(); most > linkflow.DefaultSweepConcurrency {
		t.Fatalf("at most %d refreshes in flight, bound %d", most, linkflow.DefaultSweepConcurrency)
	}
}

// TestSweepLeavesLinksWithoutRefreshToken: a link without a refresh token
// cannot be refreshed: the sweep counts it, asks the IdP nothing and
// leaves it as it is; the next click asks for a sign-in.
func TestSweepLeavesLinksWithoutRefreshToken(t *testing.T) {
	for name, setup := range map[string]struct {
		opts []envOption
		op   func(*testop.OP)
	}{
		"the IdP issues none":     {op: func(o *testop.OP) { o.NoRefreshTokens(true) }},
		"no token encryption key": {opts: []envOption{func(o *linkflow.LinkerOptions) { o.TokenKey = nil }}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, setup.opts...)
			if setup.op != nil {
				setup.op(e.op)
			}
			e.linkAs(slackU1, alice)
			before := e.mustLink(slackU1)
			if before.RefreshToken != nil {
				t.Fatal("the link holds a refresh token")
			}
			recs := len(e.records())
			e.clk.Advance(25 * time.Hour)
			res := e.mustSweep()
			if res.Due != 1 || res.NeedSignIn != 1 || res.Refreshed != 0 || res.MarkedStale != 0 || e.op.Refreshes() != 0 {
				t.Fatalf("sweep = %+v (refreshes %d)", res, e.op.Refreshes())
			}
			after := e.mustLink(slackU1)
			if after.Stale || !after.VerifiedAt.Equal(before.VerifiedAt) || len(e.records()) != recs {
				t.Fatalf("link changed by the sweep: stale %v, verified_at %v → %v, audit %v", after.Stale, before.VerifiedAt, after.VerifiedAt, e.auditTypes())
			}
			if m := e.linker.Metrics(); !m.Swept || m.NeedSignIn != 1 {
				t.Fatalf("metrics: swept %v, need sign-in %d", m.Swept, m.NeedSignIn)
			}
			_, err := e.resolve(slackU1)
			asLinkRequired(t, err, linkflow.LinkReasonReverify)
		})
	}
}
