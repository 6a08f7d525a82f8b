package chatflow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// fakeResolver links the accounts in ids; others get a sign-in link.
type fakeResolver struct {
	ids     map[string]oidc.Identity
	down    bool
	stepUps []string
}

func (f *fakeResolver) Resolve(_ context.Context, p linkflow.PlatformUser) (oidc.Identity, error) {
	if f.down {
		return oidc.Identity{}, fmt.Errorf("%w: test", linkflow.ErrIdPUnavailable)
	}
	id, ok := f.ids[p.UserID]
	if !ok {
		return oidc.Identity{}, &linkflow.LinkRequiredError{URL: "https://signoff.example/link/start?id=" + p.UserID, Reason: linkflow.LinkReasonNotLinked, Message: "not linked yet"}
	}
	return id, nil
}

func (f *fakeResolver) BeginStepUp(_ context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error) {
	f.stepUps = append(f.stepUps, p.UserID+" "+requestID+" "+decision)
	return "https://signoff.example/link/start?id=stepup", nil
}

type env struct {
	st  storage.Store
	svc *approvals.Service
	res *fakeResolver
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := testenv.OpenStore(t)
	rule := []policy.RequesterRule{{Issuer: "ci", Claims: map[string]string{"sub": "*"}}}
	approvers := policy.Approvers{Groups: []string{"sre"}, MinApprovals: 2}
	stepUp := &policy.StepUp{MaxAge: 5 * time.Minute}
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		"plain":    {Name: "plain", Requesters: rule, Approvers: approvers, TTL: time.Hour},
		"reasoned": {Name: "reasoned", Requesters: rule, Approvers: approvers, TTL: time.Hour, RequireApproveReason: true},
		"guarded":  {Name: "guarded", Requesters: rule, Approvers: approvers, TTL: time.Hour, StepUp: stepUp},
		"both":     {Name: "both", Requesters: rule, Approvers: approvers, TTL: time.Hour, StepUp: stepUp, RequireApproveReason: true},
	}}
	now := time.Now()
	id := func(sub string) oidc.Identity {
		return oidc.Identity{Issuer: "https://idp.example", Subject: sub, Email: sub + "@example.com", Groups: []string{"sre"}, VerifiedAt: now, AuthTime: now.Add(-time.Hour)}
	}
	return &env{
		st:  st,
		svc: approvals.New(st, pol, approvals.Options{Logger: testenv.DiscardLogger()}),
		res: &fakeResolver{ids: map[string]oidc.Identity{"alice": id("alice"), "bob": id("bob")}},
	}
}

func (e *env) create(t *testing.T, action string) storage.Request {
	t.Helper()
	r, _, err := e.svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "ci", Subject: "ci-user", Person: "ci-user", Claims: map[string]string{"sub": "ci-user"}},
		Action:    action, Reason: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func click(user, requestID, reason string) chatflow.Click {
	return chatflow.Click{
		Account:   linkflow.PlatformUser{Platform: "dev", Workspace: "w", UserID: user},
		Source:    approvals.Source{Platform: "dev", Workspace: "w", PlatformUser: user, CallbackID: "cb-" + user},
		RequestID: requestID, Decision: storage.DecisionApprove, Reason: reason,
	}
}

func TestChatPlatformRules(t *testing.T) {
	e := newEnv(t)
	f := chatflow.New(chatflow.Options{Service: e.svc, Resolver: e.res, StepUpFirst: true, ReasonDialog: true, Logger: testenv.DiscardLogger()})
	ctx := context.Background()

	plain := e.create(t, "plain")
	if o := f.Click(ctx, click("alice", plain.ID, "")); o.Kind != chatflow.Counted || o.Approvals != 1 || o.Approver.Subject != "alice" {
		t.Fatalf("first approval: %+v", o)
	}
	if o := f.Click(ctx, click("alice", plain.ID, "")); o.Kind != chatflow.Duplicate {
		t.Fatalf("repeated approval: %+v", o)
	}
	if o := f.Click(ctx, click("bob", plain.ID, "")); o.Kind != chatflow.Counted || o.Approvals != 2 || o.Request.State != storage.StateApproved {
		t.Fatalf("second approval: %+v", o)
	}
	if o := f.Click(ctx, click("alice", "no-such-request", "")); o.Kind != chatflow.Refused || !errors.Is(o.Refusal, approvals.ErrUnknownRequest) {
		t.Fatalf("unknown request: %+v", o)
	}

	reasoned := e.create(t, "reasoned")
	if o := f.Click(ctx, click("alice", reasoned.ID, "")); o.Kind != chatflow.ReasonNeeded || o.Action.Name != "reasoned" || o.Request.ID != reasoned.ID {
		t.Fatalf("reason wanted: %+v", o)
	}
	if o := f.Cast(ctx, click("alice", reasoned.ID, "lgtm")); o.Kind != chatflow.Counted {
		t.Fatalf("vote with the dialog's reason: %+v", o)
	}

	guarded := e.create(t, "guarded")
	if o := f.Click(ctx, click("alice", guarded.ID, "")); o.Kind != chatflow.StepUpNeeded || o.SignInURL == "" || o.Refusal != nil {
		t.Fatalf("step-up first: %+v", o)
	}
	if want := []string{"alice " + guarded.ID + " approve"}; !slices.Equal(e.res.stepUps, want) {
		t.Fatalf("step-ups %v, want %v", e.res.stepUps, want)
	}
	both := e.create(t, "both")
	if o := f.Click(ctx, click("alice", both.ID, "")); o.Kind != chatflow.StepUpAndReason || o.Action.Name != "both" {
		t.Fatalf("step-up and reason: %+v", o)
	}

	if o := f.Click(ctx, click("mallory", plain.ID, "")); o.Kind != chatflow.SignInNeeded || o.SignInURL == "" || o.Message != "not linked yet" {
		t.Fatalf("unlinked: %+v", o)
	}
	// Only a Counted outcome adds a vote: the step-up and reason answers
	// above cast nothing.
	for _, id := range []string{guarded.ID, both.ID} {
		if r, err := e.svc.Get(ctx, id); err != nil || len(r.Votes) != 0 || r.State != storage.StatePending {
			t.Fatalf("request %s after a step-up answer: %+v, %v", id, r, err)
		}
	}
	recs := testenv.AuditRecords(t, e.st)
	if last := recs[len(recs)-1]; last.Type != "vote.rejected" || last.Actor == nil || last.Actor.PlatformUser != "mallory" || last.Data["reason"] != string(approvals.ReasonNotLinked) {
		t.Fatalf("unverified click audited as %+v", last)
	}

	e.res.down = true
	if o := f.Click(ctx, click("alice", guarded.ID+"x", "")); o.Kind != chatflow.IdentityUnavailable || !errors.Is(o.Err, linkflow.ErrIdPUnavailable) {
		t.Fatalf("IdP down: %+v", o)
	}
}

func TestVoteFirstStepsUpOnRefusal(t *testing.T) {
	e := newEnv(t)
	var later []func(context.Context)
	f := chatflow.New(chatflow.Options{Service: e.svc, Resolver: e.res, Logger: testenv.DiscardLogger(),
		Later: func(fn func(context.Context)) bool { later = append(later, fn); return true }})
	ctx := context.Background()

	guarded := e.create(t, "guarded")
	o := f.Click(ctx, click("alice", guarded.ID, ""))
	if o.Kind != chatflow.StepUpNeeded || o.Refusal == nil || !errors.Is(o.Refusal, approvals.ErrStepUpRequired) || o.Approver.Subject != "alice" {
		t.Fatalf("vote first, then step-up: %+v", o)
	}
	// A reason is not asked for without a dialog: Vote refuses.
	reasoned := e.create(t, "reasoned")
	if o := f.Click(ctx, click("alice", reasoned.ID, "")); o.Kind != chatflow.Refused || !errors.Is(o.Refusal, approvals.ErrReasonRequired) {
		t.Fatalf("missing reason: %+v", o)
	}
	// The audit record of an unverified click waits for Later.
	before := len(testenv.AuditRecords(t, e.st))
	if o := f.Click(ctx, click("mallory", reasoned.ID, "")); o.Kind != chatflow.SignInNeeded || len(later) != 1 {
		t.Fatalf("unlinked: %+v (later %d)", o, len(later))
	}
	if n := len(testenv.AuditRecords(t, e.st)); n != before {
		t.Fatalf("audited before Later ran: %d records, had %d", n, before)
	}
	later[0](ctx)
	if n := len(testenv.AuditRecords(t, e.st)); n != before+1 {
		t.Fatalf("after Later: %d records, had %d", n, before)
	}
}

// TestUnverifiedClickAuditedDuringShutdown: when the deferred audit can no
// longer be scheduled (shutdown began), the vote.rejected record is
// written at once rather than lost.
func TestUnverifiedClickAuditedDuringShutdown(t *testing.T) {
	e := newEnv(t)
	f := chatflow.New(chatflow.Options{Service: e.svc, Resolver: e.res, Logger: testenv.DiscardLogger(),
		Later: func(func(context.Context)) bool { return false }})
	r := e.create(t, "plain")
	before := len(testenv.AuditRecords(t, e.st))
	if o := f.Click(context.Background(), click("mallory", r.ID, "")); o.Kind != chatflow.SignInNeeded {
		t.Fatalf("unlinked: %+v", o)
	}
	recs := testenv.AuditRecords(t, e.st)
	if len(recs) != before+1 || recs[len(recs)-1].Type != "vote.rejected" {
		t.Fatalf("records after an unlinked click during shutdown: %d (before %d)", len(recs), before)
	}
}

// storedResolver resolves accounts from the links in the approvals store,
// as the account-link flow does, and says so (chatflow.StoredLinks).
// afterResolve, when set, runs between Resolve and the vote: a revoke
// committing while the click is on its way.
type storedResolver struct {
	fakeResolver
	svc          *approvals.Service
	afterResolve func()
}

func (s *storedResolver) ResolvesStoredLinks() bool { return true }

func (s *storedResolver) Resolve(ctx context.Context, p linkflow.PlatformUser) (oidc.Identity, error) {
	l, err := s.svc.Link(ctx, p.Platform, p.Workspace, p.UserID)
	if err != nil {
		return oidc.Identity{}, &linkflow.LinkRequiredError{URL: "https://signoff.example/link/start", Reason: linkflow.LinkReasonNotLinked, Message: "not linked"}
	}
	if s.afterResolve != nil {
		s.afterResolve()
	}
	return oidc.Identity{Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, Groups: l.Groups, VerifiedAt: l.VerifiedAt}, nil
}

// A click whose link is revoked after the flow resolved it, before the
// vote is stored, is refused: the flow has the vote read the link again in
// its transaction. With the link left alone the same click counts.
func TestClickOutrunByARevokeIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, revoke := range []bool{false, true} {
		t.Run(fmt.Sprintf("revoked=%v", revoke), func(t *testing.T) {
			e := newEnv(t)
			r := e.create(t, "plain")
			link := storage.IdentityLink{
				Platform: "dev", Workspace: "w", PlatformUser: "alice",
				Issuer: "https://idp.example", Subject: "alice", Email: "alice@example.com", Groups: []string{"sre"},
				LinkedAt: time.Now(), VerifiedAt: time.Now(),
			}
			if err := e.svc.SaveLink(ctx, link, ""); err != nil {
				t.Fatal(err)
			}
			res := &storedResolver{svc: e.svc}
			if revoke {
				res.afterResolve = func() {
					if err := e.svc.Unlink(ctx, "dev", "w", "alice", "revoked"); err != nil {
						t.Error(err)
					}
				}
			}
			out := chatflow.New(chatflow.Options{Service: e.svc, Resolver: res, Logger: testenv.DiscardLogger()}).Click(ctx, click("alice", r.ID, ""))
			got, err := e.svc.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !revoke {
				if out.Kind != chatflow.Counted || len(got.Votes) != 1 {
					t.Fatalf("click through a standing link: outcome %v, votes %d", out.Kind, len(got.Votes))
				}
				return
			}
			if out.Kind != chatflow.Refused || out.Refusal == nil || out.Refusal.Reason != approvals.ReasonNotLinked || len(got.Votes) != 0 {
				t.Fatalf("click outrun by a revoke: outcome %v %+v, votes %d", out.Kind, out.Refusal, len(got.Votes))
			}
		})
	}
}
