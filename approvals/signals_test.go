package approvals_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// linkOf is sampleLink for another chat account.
func linkOf(platform, workspace, user, subject, email string) storage.IdentityLink {
	l := sampleLink(subject, "sre")
	l.Platform, l.Workspace, l.PlatformUser, l.Email = platform, workspace, user, email
	return l
}

func staleNames(ls []storage.IdentityLink) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Platform+"/"+l.Workspace+"/"+l.PlatformUser)
	}
	slices.Sort(out)
	return out
}

// TestMarkIdentitiesStale: every link of the identity, on every platform
// and workspace, goes stale in one transaction with one audited record
// each carrying the signal's data; other identities keep theirs; the
// signal id is refused a second time, also after a restart.
func TestMarkIdentitiesStale(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	for _, l := range []storage.IdentityLink{
		linkOf("slack", "T1", "U1", "alice", "Alice@Example.com"),
		linkOf("slack", "T2", "U9", "alice", "alice@example.com"),
		linkOf("teams", "tenant-a", "aad-1", "alice", "alice@example.com"),
		linkOf("slack", "T1", "U2", "bob", "bob@example.com"),
	} {
		if err := h.svc.SaveLink(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	before := len(h.records())
	sig := approvals.StaleSignal{
		Scope: "ssf https://idp.example", ID: "jti-1", RememberUntil: t0.Add(time.Hour),
		Subjects: []approvals.IdentityMatch{{Issuer: "https://idp.example", Subject: "alice"}},
		Reason:   "your identity provider ended your sessions",
		Data:     map[string]any{"jti": "jti-1", "event": "https://schemas.openid.net/secevent/caep/event-type/session-revoked"},
	}
	res, err := h.svc.MarkIdentitiesStale(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := staleNames(res.Marked), []string{"slack/T1/U1", "slack/T2/U9", "teams/tenant-a/aad-1"}; !slices.Equal(got, want) {
		t.Errorf("marked %v, want %v", got, want)
	}
	for _, u := range []struct{ p, w, u string }{{"slack", "T1", "U1"}, {"slack", "T2", "U9"}, {"teams", "tenant-a", "aad-1"}} {
		l, err := h.svc.Link(ctx, u.p, u.w, u.u)
		if err != nil || !l.Stale || l.StaleReason != sig.Reason || l.RefreshToken != nil {
			t.Errorf("link %s/%s: stale=%v reason=%q refresh token kept=%v err=%v", u.w, u.u, l.Stale, l.StaleReason, l.RefreshToken != nil, err)
		}
	}
	if l, _ := h.svc.Link(ctx, "slack", "T1", "U2"); l.Stale {
		t.Error("another identity's link went stale")
	}
	recs := h.records()[before:]
	if len(recs) != 3 {
		t.Fatalf("%d new audit records, want 3: %v", len(recs), types(recs))
	}
	for _, r := range recs {
		if r.Type != approvals.TypeIdentityStale || r.Data["jti"] != "jti-1" || r.Data["event"] != sig.Data["event"] || r.Data["reason"] != sig.Reason || r.Actor.Subject != "alice" {
			t.Errorf("record %s actor %+v data %v", r.Type, r.Actor, r.Data)
		}
	}

	// The same signal again changes nothing, also after a restart.
	for _, restart := range []bool{false, true} {
		if restart {
			h.reopen()
		}
		n := len(h.records())
		if _, err := h.svc.MarkIdentitiesStale(ctx, sig); !errors.Is(err, approvals.ErrReplayed) {
			t.Errorf("replay (restart %v): err = %v, want ErrReplayed", restart, err)
		}
		if len(h.records()) != n {
			t.Errorf("replay (restart %v) wrote audit records", restart)
		}
	}

	// Matched by email (ASCII case folded only), already stale links are
	// counted, not re-marked.
	res, err = h.svc.MarkIdentitiesStale(ctx, approvals.StaleSignal{
		Scope: sig.Scope, ID: "jti-2", RememberUntil: t0.Add(time.Hour),
		Subjects: []approvals.IdentityMatch{{Email: "ALICE@example.COM"}, {Email: "bob@exam\u212ble.com"}},
		Reason:   "your account was disabled at your identity provider",
	})
	if err != nil || len(res.Marked) != 0 || res.AlreadyStale != 3 {
		t.Errorf("by email: marked %v, already stale %d, err %v; want none marked, 3 already stale", staleNames(res.Marked), res.AlreadyStale, err)
	}
	if l, _ := h.svc.Link(ctx, "slack", "T1", "U2"); l.Stale {
		t.Error("an email equal only under Unicode case folding (Kelvin sign) matched")
	}
}

// TestMarkIdentitiesStaleSparesLaterSignIns: a link signed in after the
// event is not the sign-in the event ended.
func TestMarkIdentitiesStaleSparesLaterSignIns(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	old := linkOf("slack", "T1", "U1", "carol", "carol@example.com")
	old.AuthTime = t0.Add(-time.Hour)
	fresh := linkOf("teams", "tenant-a", "aad-3", "carol", "carol@example.com")
	fresh.LinkedAt = t0.Add(time.Minute) // no auth_time: when it was linked
	for _, l := range []storage.IdentityLink{old, fresh} {
		if err := h.svc.SaveLink(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.svc.MarkIdentitiesStale(ctx, approvals.StaleSignal{
		Scope: "s", ID: "j", RememberUntil: t0.Add(time.Hour),
		Subjects:       []approvals.IdentityMatch{{Issuer: "https://idp.example", Subject: "carol"}},
		SignedInBefore: t0,
		Reason:         "r",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := staleNames(res.Marked); !slices.Equal(got, []string{"slack/T1/U1"}) || res.SignedInAfter != 1 {
		t.Errorf("marked %v, signed in after %d; want only the older sign-in marked", got, res.SignedInAfter)
	}
}

// TestMarkIdentitiesStaleRecordsIDWithoutSubjects: a signal about no link
// still uses its id up.
func TestMarkIdentitiesStaleRecordsIDWithoutSubjects(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	sig := approvals.StaleSignal{Scope: "s", ID: "verification-1", RememberUntil: t0.Add(time.Hour)}
	if res, err := h.svc.MarkIdentitiesStale(ctx, sig); err != nil || len(res.Marked) != 0 {
		t.Fatalf("= %+v, %v", res, err)
	}
	if _, err := h.svc.MarkIdentitiesStale(ctx, sig); !errors.Is(err, approvals.ErrReplayed) {
		t.Errorf("again: %v, want ErrReplayed", err)
	}
	if _, err := h.svc.MarkIdentitiesStale(ctx, approvals.StaleSignal{Scope: "s"}); !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("no id: %v, want ErrInvalid", err)
	}
	// Once remembered long enough, the id is forgotten by a later signal's
	// sweep.
	h.clock.Advance(2 * time.Hour)
	if _, err := h.svc.MarkIdentitiesStale(ctx, approvals.StaleSignal{Scope: "s", ID: "later", RememberUntil: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.MarkIdentitiesStale(ctx, sig); err != nil {
		t.Errorf("an id past its RememberUntil is still refused: %v", err)
	}
}
