package linkflow_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// stepUpCallback has dana sign in (with otp as her second factor, none
// when empty) for a step-up approve of a break-glass request and stops
// at the IdP's answer: it returns the env, the request, the browser, the
// callback URL not yet opened, and a count of the step-up votes cast.
func stepUpCallback(t *testing.T, otp string) (*env, storage.Request, *browser, string, *atomic.Int32) {
	t.Helper()
	stepUps := &atomic.Int32{}
	e := newEnv(t, func(o *linkflow.LinkerOptions) {
		cast := o.OnStepUp
		o.OnStepUp = func(ctx context.Context, a storage.LinkAttempt, id identity.Identity) (string, error) {
			stepUps.Add(1)
			return cast(ctx, a, id)
		}
	})
	r, b := stepUpSetup(t, e, "break-glass")
	b.stopAtCallback = true
	b.open(e.beginStepUp(slackU1, r.ID, "approve"))
	b.login(dana.Username, dana.Password, otp)
	if b.callback == "" {
		t.Fatal("the IdP did not answer")
	}
	return e, r, b, b.callback, stepUps
}

// TestThreatStepUpCallbackReplay: the IdP's answer to a completed step-up
// sign-in (the callback URL with its code and state) is replayed, in the
// same browser and in another one. The vote was cast once; a replay must
// neither cast it again (the vote callback is not even called) nor show
// a second success, and the audit log keeps one vote.
func TestThreatStepUpCallbackReplay(t *testing.T) {
	e, r, b, callback, stepUps := stepUpCallback(t, dana.OTP)

	status, body := b.get(callback)
	wantAnswer(t, "step-up callback", status, http.StatusOK, body, `data-outcome="voted"`)
	if n := stepUps.Load(); n != 1 {
		t.Fatalf("step-up vote cast %d times, want 1", n)
	}

	replays := map[string]*browser{"same browser": b, "another browser": newBrowser(t)}
	for name, rb := range replays {
		for i := range 2 {
			status, body := rb.get(callback)
			if status == http.StatusOK || strings.Contains(body, `data-outcome="voted"`) || strings.Contains(body, "counted;") {
				t.Fatalf("replay %d in %s: status %d, the vote is reported cast again\n%s", i+1, name, status, body)
			}
			if status < 400 {
				t.Fatalf("replay %d in %s: status %d, want a refusal\n%s", i+1, name, status, body)
			}
		}
	}
	if n := stepUps.Load(); n != 1 {
		t.Fatalf("after replays the step-up vote was cast %d times, want 1", n)
	}
	got := e.request(r.ID)
	if len(got.Votes) != 1 || got.Votes[0].Approver.Subject != "sub-dana" {
		t.Fatalf("votes after replays: %+v", got.Votes)
	}
	votes := 0
	for _, rec := range e.records() {
		if rec.Type == "vote.approve" {
			votes++
		}
	}
	if votes != 1 {
		t.Fatalf("audit log holds %d vote.approve records, want 1: %v", votes, e.auditTypes())
	}
}

// TestThreatStepUpCallbackReplayAfterRefusal: an answer whose vote was
// refused (a single-factor sign-in) cannot be replayed either, so a
// refusal is not a way to keep a live code around for later.
func TestThreatStepUpCallbackReplayAfterRefusal(t *testing.T) {
	e, r, b, callback, stepUps := stepUpCallback(t, "") // no second factor
	status, body := b.get(callback)
	wantStatus(t, "single-factor step-up", status, http.StatusForbidden, body)
	before := stepUps.Load()
	for name, rb := range map[string]*browser{"same browser": b, "another browser": newBrowser(t)} {
		status, body := rb.get(callback)
		if status < 400 || strings.Contains(body, `data-outcome="voted"`) {
			t.Fatalf("replay in %s: status %d\n%s", name, status, body)
		}
	}
	if n := stepUps.Load(); n != before {
		t.Fatalf("replays reached the vote %d more times", n-before)
	}
	if got := e.request(r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("request after replays: %s with %d votes", got.State, len(got.Votes))
	}
}
