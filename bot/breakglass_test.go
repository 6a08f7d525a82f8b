package bot_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

const breakGlassBody = `{"action":"deploy","params":{"service":"api","version":"1.4.2"},"reason":"api down","break_glass":true}`

// newBreakGlassFixture is the API fixture whose deploy action has
// break_glass (oncall breaks glass, sre-leads review), the OpenAPI
// document to check answers against, and a token of alice in oncall.
func newBreakGlassFixture(t *testing.T) (openAPI, *apiFixture, string) {
	t.Helper()
	o := loadOpenAPI(t)
	f := newAPIFixture(t)
	f.svc.Policy().Actions["deploy"].BreakGlass = &policy.BreakGlass{
		Groups: []string{"oncall"},
		Review: policy.Approvers{Groups: []string{"sre-leads"}, MinApprovals: 1},
		Within: 24 * time.Hour,
	}
	return o, f, f.token("alice", map[string]any{"groups": []any{"oncall"}})
}

// Break-glass through the API: the codes of every refusal, and answers
// the OpenAPI document describes.
func TestBreakGlassAPI(t *testing.T) {
	o, f, oncall := newBreakGlassFixture(t)
	auditor := f.auditorToken()

	// Refusals first: none of them breaks glass.
	noReason := f.exchange("POST", "/v1/requests", oncall, `{"action":"deploy","params":{"service":"api","version":"1"},"break_glass":true}`)
	o.check(t, noReason, http.StatusBadRequest, true)
	if noReason.resp.errorCode() != api.CodeInvalidRequest || !strings.Contains(noReason.resp.errorMessage(), "reason") {
		t.Errorf("no reason: %s", noReason.resp.body)
	}
	notOncall := f.exchange("POST", "/v1/requests", f.token("bob", map[string]any{"groups": []any{"dev"}}), breakGlassBody)
	o.check(t, notOncall, http.StatusForbidden, true)
	if notOncall.resp.errorCode() != api.CodeForbidden || !strings.Contains(notOncall.resp.errorMessage(), "oncall") {
		t.Errorf("not in break_glass.groups: %s", notOncall.resp.body)
	}
	if r := f.do("POST", "/v1/requests", f.token("carol", nil), breakGlassBody); r.status != http.StatusForbidden || r.errorCode() != api.CodeForbidden {
		t.Errorf("a token without groups: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/requests", f.token("mallory", map[string]any{"repository": "evil/repo", "groups": []any{"oncall"}}), breakGlassBody); r.status != http.StatusForbidden {
		t.Errorf("oncall but not an allowed requester: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/requests", oncall, `{"action":"deploy:review","reason":"x","break_glass":true}`); r.status != http.StatusForbidden {
		t.Errorf("break-glass on the review action: %d %s", r.status, r.body)
	}

	created := f.exchange("POST", "/v1/requests", oncall, breakGlassBody)
	o.check(t, created, http.StatusCreated, true)
	v := created.resp.view(t)
	if v.State != api.StateApproved || v.DecidedBy != api.DecidedByBreakGlass || v.BreakGlass == nil || v.BreakGlass.Review == "" || v.Execution != nil && v.Execution.Status != api.ExecutionPending {
		t.Fatalf("break-glass answer: %s", created.resp.body)
	}
	reviewID := v.BreakGlass.Review
	review := f.exchange("GET", "/v1/requests/"+reviewID, auditor, "")
	o.check(t, review, http.StatusOK, true)
	if rv := review.resp.view(t); rv.State != api.StatePending || rv.Action != "deploy:review" || rv.BreakGlass == nil || rv.BreakGlass.Reviews != v.ID {
		t.Fatalf("review: %s", review.resp.body)
	}

	again := f.exchange("POST", "/v1/requests", oncall, strings.Replace(breakGlassBody, "api down", "still down", 1))
	o.check(t, again, http.StatusForbidden, true)
	if again.resp.errorCode() != api.CodeReviewPending || !strings.Contains(again.resp.errorMessage(), reviewID) {
		t.Errorf("second break-glass: %s", again.resp.body)
	}
	cancel := f.exchange("POST", "/v1/requests/"+reviewID+"/cancel", oncall, "")
	o.check(t, cancel, http.StatusForbidden, true)

	// The person reviewed cannot approve the review; a reviewer can.
	vote := func(sub string) error {
		_, err := f.svc.Vote(context.Background(), approvals.VoteInput{
			RequestID: reviewID, Decision: storage.DecisionApprove,
			Source:   approvals.Source{Platform: "dev", PlatformUser: sub},
			Approver: oidc.Identity{Issuer: "https://idp.example", Subject: sub, PreferredUsername: sub, Groups: []string{"sre-leads"}, VerifiedAt: time.Now()},
		})
		return err
	}
	if err := vote("alice"); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("self-review: %v", err)
	}
	if err := vote("lead"); err != nil {
		t.Fatalf("review: %v", err)
	}
	o.check(t, f.exchange("POST", "/v1/requests", oncall, strings.Replace(breakGlassBody, "api down", "down again", 1)), http.StatusCreated, true)
}

// A denied review is the finding that the break-glass was not justified:
// its requester stays blocked until an admin (not the requester, under
// any of their names) lifts the block with a reason, through the API the
// OpenAPI document describes.
func TestBreakGlassDeniedReviewBlocksUntilAnAdminLiftsIt(t *testing.T) {
	o, f, oncall := newBreakGlassFixture(t)
	created := f.exchange("POST", "/v1/requests", oncall, breakGlassBody)
	o.check(t, created, http.StatusCreated, true)
	reviewID := created.resp.view(t).BreakGlass.Review

	lift := func(token, body string) exchange {
		return f.exchange("POST", "/v1/requests/"+reviewID+"/lift-block", token, body)
	}
	reason := `{"reason":"postmortem found the outage real; deny was about the missing ticket"}`

	// Pending: nothing to lift yet.
	if x := lift(f.adminToken(), reason); x.resp.status != http.StatusBadRequest || !strings.Contains(x.resp.errorMessage(), "still pending") {
		t.Fatalf("lift of a pending review: %d %s", x.resp.status, x.resp.body)
	}

	f.denyReview(reviewID, "no incident ticket")
	again := f.exchange("POST", "/v1/requests", oncall, strings.Replace(breakGlassBody, "api down", "down again", 1))
	o.check(t, again, http.StatusForbidden, true)
	if again.resp.errorCode() != api.CodeReviewPending || !strings.Contains(again.resp.errorMessage(), "denied") || !strings.Contains(again.resp.errorMessage(), "lift-block "+reviewID) {
		t.Fatalf("break-glass after a denied review: %s", again.resp.body)
	}

	// Who may not lift it: a non-admin, the person reviewed though an admin
	// (by subject, or by the person claim of another subject), an admin
	// without a reason.
	o.check(t, lift(oncall, reason), http.StatusForbidden, true)
	adminGroups := []any{"signoff-admins", "oncall"}
	for name, tok := range map[string]string{
		"same subject": f.token("alice", map[string]any{"groups": adminGroups}),
		"same person":  f.token("alice-admin", map[string]any{"groups": adminGroups, "actor": "alice"}),
	} {
		x := lift(tok, reason)
		o.check(t, x, http.StatusForbidden, true)
		if !strings.Contains(x.resp.errorMessage(), "your own break-glass") {
			t.Errorf("%s: %s", name, x.resp.body)
		}
	}
	noReason := lift(f.adminToken(), `{"reason":"  "}`)
	o.check(t, noReason, http.StatusBadRequest, true)
	if x := f.do("POST", "/v1/requests/"+created.resp.view(t).ID+"/lift-block", f.adminToken(), reason); x.status != http.StatusBadRequest || !strings.Contains(x.errorMessage(), "not a break-glass review") {
		t.Fatalf("lift of the break-glass request itself: %d %s", x.status, x.body)
	}
	if slices.ContainsFunc(f.records(), func(r audit.Record) bool { return r.Type == approvals.TypeBreakGlassLifted }) {
		t.Fatal("a refused lift wrote break_glass.lifted")
	}
	o.check(t, f.exchange("POST", "/v1/requests", oncall, strings.Replace(breakGlassBody, "api down", "third try", 1)), http.StatusForbidden, true)

	lifted := lift(f.adminToken(), reason)
	o.check(t, lifted, http.StatusOK, true)
	if v := lifted.resp.view(t); v.State != api.StateDenied || v.BreakGlass == nil || v.BreakGlass.Lifted == nil {
		t.Fatalf("lifted review: %s", lifted.resp.body)
	}
	// Once: a retry answers the same review and writes nothing more.
	o.check(t, lift(f.adminToken(), reason), http.StatusOK, true)
	var rec *audit.Record
	for _, r := range f.records() {
		if r.Type == approvals.TypeBreakGlassLifted {
			if rec != nil {
				t.Fatal("two break_glass.lifted records for one lift")
			}
			rec = &r
		}
	}
	if rec == nil || rec.RequestID != reviewID || rec.Actor == nil || rec.Actor.Subject != "root-admin" || !strings.Contains(rec.Data["reason"].(string), "postmortem") {
		t.Fatalf("break_glass.lifted record: %+v", rec)
	}
	o.check(t, f.exchange("POST", "/v1/requests", oncall, strings.Replace(breakGlassBody, "api down", "fourth", 1)), http.StatusCreated, true)
}

// denyReview has lead, a break_glass.review approver, deny review id.
func (f *apiFixture) denyReview(id, reason string) {
	f.t.Helper()
	if _, err := f.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: id, Decision: storage.DecisionDeny, Reason: reason,
		Source:   approvals.Source{Platform: "dev", PlatformUser: "lead"},
		Approver: oidc.Identity{Issuer: "https://idp.example", Subject: "lead", Groups: []string{"sre-leads"}, VerifiedAt: time.Now()},
	}); err != nil {
		f.t.Fatalf("deny review %s: %v", id, err)
	}
}
