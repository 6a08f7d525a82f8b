package bot_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

const breakGlassBody = `{"action":"deploy","params":{"service":"api","version":"1.4.2"},"reason":"api down","break_glass":true}`

// Break-glass through the API: the codes of every refusal, and answers
// the OpenAPI document describes.
func TestBreakGlassAPI(t *testing.T) {
	o := loadOpenAPI(t)
	f := newAPIFixture(t)
	f.svc.Policy().Actions["deploy"].BreakGlass = &policy.BreakGlass{
		Groups: []string{"oncall"},
		Review: policy.Approvers{Groups: []string{"sre-leads"}, MinApprovals: 1},
		Within: 24 * time.Hour,
	}
	oncall := f.token("alice", map[string]any{"groups": []any{"oncall"}})
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
