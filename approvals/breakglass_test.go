package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// bgHarness is a service whose "deploy" action has break_glass: oncall
// may break glass, sre-leads review (one approval), within 24h.
type bgHarness struct {
	t     *testing.T
	store *boltstore.Store
	clock *clock.Fake
	svc   *approvals.Service
}

func newBGHarness(t *testing.T, opts approvals.Options) *bgHarness {
	t.Helper()
	p := &policy.Policy{Actions: map[string]*policy.Action{
		"deploy": {
			Name:       "deploy",
			Requesters: []policy.RequesterRule{{Issuer: "github", Claims: map[string]string{"repository": "acme/*"}}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 2},
			TTL:        time.Hour,
			Notify:     policy.Notify{Slack: []string{"C1"}},
			OnApprove:  &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook", Timeout: time.Second}},
			BreakGlass: &policy.BreakGlass{
				Groups: []string{"oncall"},
				Review: policy.Approvers{Groups: []string{"sre-leads"}, MinApprovals: 1, AllowSelfApproval: true},
				Within: 24 * time.Hour,
			},
		},
		"restart": {
			Name:       "restart",
			Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:        time.Hour,
		},
	}}
	h := &bgHarness{t: t, store: testenv.OpenStoreAt(t, testenv.DBPath(t)), clock: clock.NewFake(t0)}
	opts.Clock = h.clock
	opts.Logger = testenv.DiscardLogger()
	opts.Platforms = []string{"slack"}
	h.svc = approvals.New(h.store, p, opts)
	return h
}

func breakGlassInput(key string) approvals.CreateInput {
	return approvals.CreateInput{
		Requester: requester, Action: "deploy", Reason: "prod is down", IdempotencyKey: key,
		BreakGlass: true, Groups: []string{"dev", "oncall"}, GroupsClaim: "groups",
	}
}

func (h *bgHarness) breakGlass(in approvals.CreateInput) storage.Request {
	h.t.Helper()
	r, created, err := h.svc.Create(context.Background(), in)
	if err != nil || !created {
		h.t.Fatalf("break glass: created=%v err=%v", created, err)
	}
	return r
}

func (h *bgHarness) get(id string) storage.Request {
	h.t.Helper()
	r, err := h.svc.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return r
}

func (h *bgHarness) records() []audit.Record {
	h.t.Helper()
	return jsonAuditRecords(h.t, h.store)
}

func (h *bgHarness) vote(id string, who identity.Identity, d storage.Decision) (approvals.VoteResult, error) {
	who.VerifiedAt = h.clock.Now().Add(-time.Minute)
	return slackVote(h.svc, id, who, d)
}

func countType(recs []audit.Record, typ string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

func notifyEvents(t *testing.T, entries []storage.OutboxEntry, requestID string) []string {
	t.Helper()
	var out []string
	for _, e := range entries {
		if e.RequestID != requestID {
			continue
		}
		var n approvals.Notification
		if err := json.Unmarshal(e.Payload, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n.Event)
	}
	return out
}

func TestBreakGlassApprovesAtOnceExecutesOnceAndOpensReview(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	bg := h.breakGlass(breakGlassInput("k1"))
	if bg.State != storage.StateApproved || bg.DecidedBy != approvals.DecidedByBreakGlass || !bg.DecidedAt.Equal(t0) || len(bg.Votes) != 0 {
		t.Fatalf("break-glass request: %+v", bg)
	}
	if bg.Execution == nil || bg.Execution.Status != storage.ExecutionPending {
		t.Fatalf("execution: %+v", bg.Execution)
	}
	if bg.BreakGlass == nil || bg.BreakGlass.Review == "" || !bg.BreakGlass.Due.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("break_glass: %+v", bg.BreakGlass)
	}
	review := h.get(bg.BreakGlass.Review)
	if review.State != storage.StatePending || review.Action != "deploy:review" || review.BreakGlass == nil ||
		review.BreakGlass.Reviews != bg.ID || review.Reason != "prod is down" || review.MinApprovals != 1 ||
		review.Requester.Subject != requester.Subject || !review.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("review: %+v", review)
	}

	recs := h.records()
	var bgRec, approved, reviewRec *audit.Record
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Type == approvals.TypeRequestBreakGlass && r.RequestID == bg.ID:
			bgRec = r
		case r.Type == audit.TypeRequestApproved && r.RequestID == bg.ID:
			approved = r
		case r.Type == audit.TypeRequestCreated && r.RequestID == review.ID:
			reviewRec = r
		}
	}
	if bgRec == nil || bgRec.Data["reason"] != "prod is down" || bgRec.Data["review"] != review.ID || bgRec.Actor == nil || bgRec.Actor.Subject != requester.Subject {
		t.Fatalf("request.break_glass record: %+v", bgRec)
	}
	if approved == nil || approved.Data["break_glass"] != true {
		t.Fatalf("request.approved record: %+v", approved)
	}
	if reviewRec == nil || reviewRec.Data["reviews"] != bg.ID || reviewRec.Action != "deploy:review" {
		t.Fatalf("review's request.created record: %+v", reviewRec)
	}

	exec := testenv.DueOutbox(t, h.store, approvals.KindExecute)
	if len(exec) != 1 || exec[0].RequestID != bg.ID {
		t.Fatalf("execute entries: %+v", exec)
	}
	cards := testenv.DueOutbox(t, h.store, approvals.KindNotifyPrefix)
	if got := notifyEvents(t, cards, bg.ID); !slices.Equal(got, []string{approvals.EventCreated, approvals.EventDecided}) {
		t.Fatalf("break-glass card events: %v", got)
	}
	if got := notifyEvents(t, cards, review.ID); !slices.Equal(got, []string{approvals.EventCreated}) {
		t.Fatalf("review card events: %v", got)
	}

	// A faithful retry answers the first request and does nothing more;
	// the same key without break-glass is another body.
	again, created, err := h.svc.Create(context.Background(), breakGlassInput("k1"))
	if err != nil || created || again.ID != bg.ID {
		t.Fatalf("retry: %v %v %v", again.ID, created, err)
	}
	if n := len(testenv.DueOutbox(t, h.store, approvals.KindExecute)); n != 1 {
		t.Fatalf("execute entries after retry: %d", n)
	}
	plain := breakGlassInput("k1")
	plain.BreakGlass = false
	if _, _, err := h.svc.Create(context.Background(), plain); !errors.Is(err, approvals.ErrIdempotencyConflict) {
		t.Fatalf("same key without break-glass: %v", err)
	}
}

func TestBreakGlassRefusals(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	ctx := context.Background()
	var pr *policy.RefusalError
	cases := []struct {
		name  string
		edit  func(*approvals.CreateInput)
		check func(error) bool
	}{
		{"no reason", func(in *approvals.CreateInput) { in.Reason = "  " }, func(err error) bool { return errors.Is(err, approvals.ErrInvalid) }},
		{"not in break_glass.groups", func(in *approvals.CreateInput) { in.Groups = []string{"dev"} }, func(err error) bool { return errors.Is(err, approvals.ErrForbidden) }},
		{"no groups claim", func(in *approvals.CreateInput) { in.Groups, in.GroupsClaim = nil, "" }, func(err error) bool { return errors.Is(err, approvals.ErrForbidden) }},
		{"requester rules", func(in *approvals.CreateInput) {
			in.Requester.Claims = map[string]string{"repository": "evil/api"}
		}, func(err error) bool { return errors.As(err, &pr) && pr.Code == policy.CodeForbidden }},
		{"action without break_glass", func(in *approvals.CreateInput) { in.Action = "restart" }, func(err error) bool { return errors.Is(err, approvals.ErrForbidden) }},
		{"the review action", func(in *approvals.CreateInput) { in.Action = "deploy:review" }, func(err error) bool { return errors.Is(err, approvals.ErrForbidden) }},
		{"the review action without break-glass", func(in *approvals.CreateInput) { in.Action, in.BreakGlass = "deploy:review", false }, func(err error) bool {
			return errors.As(err, &pr) && pr.Code == policy.CodeForbidden
		}},
	}
	for _, tc := range cases {
		in := breakGlassInput("")
		tc.edit(&in)
		if _, _, err := h.svc.Create(ctx, in); !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if recs := h.records(); len(recs) != 0 {
		t.Fatalf("refusals wrote %v", types(recs))
	}
	if n := len(testenv.DueOutbox(t, h.store, "")); n != 0 {
		t.Fatalf("refusals queued %d entries", n)
	}
}

func TestBreakGlassReviewPendingUntilApproved(t *testing.T) {
	h := newBGHarness(t, approvals.Options{PendingPerRequester: 1})
	ctx := context.Background()
	bg := h.breakGlass(breakGlassInput(""))
	reviewID := bg.BreakGlass.Review

	// The same requester, and the same person from another branch, are
	// refused; another person is not.
	if _, _, err := h.svc.Create(ctx, breakGlassInput("")); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("second break-glass: %v", err)
	}
	var re *approvals.RefusalError
	if _, _, err := h.svc.Create(ctx, breakGlassInput("")); !errors.As(err, &re) || re.Reason != approvals.ReasonReviewPending {
		t.Fatalf("reason: %v", err)
	}
	other := breakGlassInput("")
	other.Requester.Subject = "repo:acme/api:ref:refs/heads/hotfix"
	if _, _, err := h.svc.Create(ctx, other); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("same person, other subject: %v", err)
	}
	someoneElse := breakGlassInput("")
	someoneElse.Requester.Subject, someoneElse.Requester.Person = "repo:acme/web:ref:refs/heads/main", "hubot"
	h.breakGlass(someoneElse)

	// The review does not count against the pending cap.
	if _, _, err := h.svc.Create(ctx, approvals.CreateInput{Requester: requester, Action: "restart", Reason: "x"}); err != nil {
		t.Fatalf("normal request with a review pending: %v", err)
	}

	// The person reviewed can neither cancel nor approve the review,
	// though the review's approvers allow self-approval in the config.
	if _, err := h.svc.Cancel(ctx, reviewID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject}); !errors.Is(err, approvals.ErrForbidden) {
		t.Fatalf("cancel of the review by its subject: %v", err)
	}
	self := approver("octocat", "sre-leads")
	if _, err := h.vote(reviewID, self, storage.DecisionApprove); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("self-review: %v", err)
	}
	if _, err := h.vote(reviewID, approver("mallory", "sre"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
		t.Fatalf("review by an approver who is no reviewer: %v", err)
	}
	if _, _, err := h.svc.Create(ctx, breakGlassInput("")); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("break-glass after refused cancel and votes: %v", err)
	}

	res, err := h.vote(reviewID, approver("lead", "sre-leads"), storage.DecisionApprove)
	if err != nil || !res.Decided || res.Request.State != storage.StateApproved || res.Request.Execution != nil {
		t.Fatalf("review approved: %+v %v", res, err)
	}
	if n := len(testenv.DueOutbox(t, h.store, approvals.KindExecute)); n != 2 {
		t.Fatalf("execute entries (two break-glass requests, no review): %d", n)
	}
	next := h.breakGlass(breakGlassInput(""))
	if next.ID == bg.ID || next.State != storage.StateApproved {
		t.Fatalf("break-glass after the review: %+v", next)
	}
}

func TestBreakGlassAdminCancelOfReviewIsAudited(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	ctx := context.Background()
	bg := h.breakGlass(breakGlassInput(""))
	admin := &approvals.AdminPerson{Issuer: "login", Subject: "admin", Actor: audit.Actor{Issuer: "https://idp.example", Subject: "admin"}}
	if _, err := h.svc.Cancel(ctx, bg.BreakGlass.Review, approvals.Canceller{Admin: admin}); !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("admin cancel without reason: %v", err)
	}
	got, err := h.svc.Cancel(ctx, bg.BreakGlass.Review, approvals.Canceller{Admin: admin, Reason: "reviewed in the incident call"})
	if err != nil || got.State != storage.StateCancelled {
		t.Fatalf("admin cancel: %+v %v", got, err)
	}
	// A cancel closes the review; it approves nothing, so the block holds
	// until an admin lifts it too.
	if _, _, err := h.svc.Create(ctx, breakGlassInput("")); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("break-glass after an admin's cancel of the review: %v, want ErrReviewPending", err)
	}
	if _, err := h.svc.LiftBlock(ctx, bg.BreakGlass.Review, *admin, "reviewed in the incident call"); err != nil {
		t.Fatalf("lift after the cancel: %v", err)
	}
	h.breakGlass(breakGlassInput(""))
}

// An admin who is the person a review reviews (by the requester's
// issuer and subject, or named by its person claim) can neither cancel
// the review nor lift its block: they would be ending their own review.
func TestBreakGlassAdminCannotEndTheReviewOfTheirOwnBreakGlass(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	ctx := context.Background()
	bg := h.breakGlass(breakGlassInput(""))
	reviewID := bg.BreakGlass.Review
	admin := &audit.Actor{Issuer: "https://idp.example", Subject: "00u-octo"}
	for name, by := range map[string]approvals.Canceller{
		"same issuer and subject": {Admin: &approvals.AdminPerson{Issuer: requester.Issuer, Subject: requester.Subject, Actor: *admin}, Reason: "done"},
		"person claim":            {Admin: &approvals.AdminPerson{Issuer: "login", Subject: "00u-octo", Actor: *admin, Person: policy.Person{Subject: "00u-octo", PreferredUsername: requester.Person}}, Reason: "done"},
		"handle":                  {Admin: &approvals.AdminPerson{Issuer: "login", Subject: "00u-octo", Actor: *admin, Person: policy.Person{Subject: "00u-octo", Handles: []string{strings.ToUpper(requester.Person)}}}, Reason: "done"},
	} {
		if _, err := h.svc.Cancel(ctx, reviewID, by); !errors.Is(err, approvals.ErrForbidden) {
			t.Errorf("%s: admin cancel of their own review: %v", name, err)
		}
	}
	if r := h.get(reviewID); r.State != storage.StatePending {
		t.Fatalf("review after refused cancels: %s", r.State)
	}
	if _, err := h.vote(reviewID, approver("lead", "sre-leads"), storage.DecisionDeny); err != nil {
		t.Fatal(err)
	}
	self := approvals.AdminPerson{Issuer: "login", Subject: "00u-octo", Actor: *admin, Person: policy.Person{Email: "x@example.com", PreferredUsername: requester.Person}}
	if _, err := h.svc.LiftBlock(ctx, reviewID, self, "I was right"); !errors.Is(err, approvals.ErrForbidden) {
		t.Fatalf("lift of their own block: %v", err)
	}
	if _, _, err := h.svc.Create(ctx, breakGlassInput("")); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("break-glass after a refused self-lift: %v", err)
	}
	other := approvals.AdminPerson{Issuer: "login", Subject: "00u-lead", Actor: audit.Actor{Issuer: "https://idp.example", Subject: "00u-lead"}, Person: policy.Person{Subject: "00u-lead", PreferredUsername: "lead"}}
	if r, err := h.svc.LiftBlock(ctx, reviewID, other, "postmortem: justified"); err != nil || r.BreakGlass.Lifted.IsZero() {
		t.Fatalf("lift by another admin: %+v %v", r.BreakGlass, err)
	}
	if c := countType(h.records(), approvals.TypeBreakGlassLifted); c != 1 {
		t.Fatalf("break_glass.lifted records: %d", c)
	}
	h.breakGlass(breakGlassInput(""))
}

// An approved or cancelled review holds no block: lifting it is refused
// and writes nothing; a lift needs a reason.
func TestBreakGlassLiftOnlyADeniedReview(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	ctx := context.Background()
	admin := approvals.AdminPerson{Issuer: "login", Subject: "00u-lead", Actor: audit.Actor{Subject: "00u-lead"}}
	bg := h.breakGlass(breakGlassInput(""))
	if _, err := h.vote(bg.BreakGlass.Review, approver("lead", "sre-leads"), storage.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{"approved review": bg.BreakGlass.Review, "break-glass request": bg.ID} {
		if _, err := h.svc.LiftBlock(ctx, id, admin, "why not"); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := h.svc.LiftBlock(ctx, "req_nope", admin, "why not"); !errors.Is(err, approvals.ErrUnknownRequest) {
		t.Errorf("unknown id: %v", err)
	}
	next := h.breakGlass(breakGlassInput(""))
	if _, err := h.vote(next.BreakGlass.Review, approver("lead", "sre-leads"), storage.DecisionDeny); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.LiftBlock(ctx, next.BreakGlass.Review, admin, " "); !errors.Is(err, approvals.ErrInvalid) {
		t.Errorf("lift without a reason: %v", err)
	}
	if c := countType(h.records(), approvals.TypeBreakGlassLifted); c != 0 {
		t.Fatalf("refused lifts wrote %d break_glass.lifted records", c)
	}
}

func TestBreakGlassUnreviewedAfterWithin(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	ctx := context.Background()
	bg := h.breakGlass(breakGlassInput(""))
	reviewID := bg.BreakGlass.Review
	due := bg.BreakGlass.Due

	h.clock.Set(due.Add(-time.Second))
	if n, err := h.svc.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("before due: %d %v", n, err)
	}
	if c := countType(h.records(), approvals.TypeBreakGlassUnreviewed); c != 0 {
		t.Fatalf("flagged a second early: %d", c)
	}

	// Through the expiry loop, on the injected clock.
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.svc.RunExpiry(loopCtx) }()
	changed, stop := h.svc.Watch(reviewID)
	defer stop()
	waitParked(t, h.clock)
	h.clock.Set(due)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("review was not flagged at its due time")
	}
	cancel()
	<-done

	h.clock.Set(due.Add(48 * time.Hour))
	if _, err := h.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	if c := countType(recs, approvals.TypeBreakGlassUnreviewed); c != 1 {
		t.Fatalf("break_glass.unreviewed records: %d", c)
	}
	for _, r := range recs {
		if r.Type == approvals.TypeBreakGlassUnreviewed && (r.RequestID != bg.ID || r.Data["review"] != reviewID || r.Action != "deploy") {
			t.Fatalf("record: %+v", r)
		}
	}
	review := h.get(reviewID)
	if review.State != storage.StatePending || !review.BreakGlass.Unreviewed.Equal(due) || review.ExpiresAt.Before(due.Add(365*24*time.Hour)) {
		t.Fatalf("review after due: %+v", review)
	}
	if got := h.get(bg.ID); got.BreakGlass == nil || !got.BreakGlass.Unreviewed.Equal(due) {
		t.Fatalf("break-glass request after due: %+v", got.BreakGlass)
	}
	cards := testenv.DueOutbox(t, h.store, approvals.KindNotifyPrefix)
	if got := notifyEvents(t, cards, reviewID); !slices.Contains(got, approvals.EventUnreviewed) {
		t.Fatalf("review card events: %v", got)
	}
	if got := notifyEvents(t, cards, bg.ID); !slices.Contains(got, approvals.EventUnreviewed) {
		t.Fatalf("break-glass card events: %v", got)
	}

	// Still blocked, and the review still counts a reviewer's vote.
	if _, _, err := h.svc.Create(ctx, breakGlassInput("")); !errors.Is(err, approvals.ErrReviewPending) {
		t.Fatalf("break-glass while unreviewed: %v", err)
	}
	res, err := h.vote(reviewID, approver("lead", "sre-leads"), storage.DecisionApprove)
	if err != nil || res.Request.State != storage.StateApproved {
		t.Fatalf("late review: %+v %v", res.Request.State, err)
	}
	h.breakGlass(breakGlassInput(""))
}

// An overdue review is announced again in its card's thread: one Overdue
// reminder per notify conversation, queued with break_glass.unreviewed and
// never before; completing it queues nothing after it.
func TestBreakGlassUnreviewedAnnouncedOnce(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	h.svc.Policy().Actions["deploy"].Notify = policy.Notify{Slack: []string{"C1", "C2"}}
	ctx := context.Background()
	bg := h.breakGlass(breakGlassInput(""))
	reviewID := bg.BreakGlass.Review
	due := bg.BreakGlass.Due
	overdue := func() []approvals.Reminder {
		t.Helper()
		var out []approvals.Reminder
		for _, e := range testenv.DueOutbox(t, h.store, approvals.KindRemindPrefix) {
			rem, ok := approvals.ReadReminder(e)
			if !ok || !rem.Overdue {
				t.Fatalf("remind entry: %+v", e)
			}
			if e.Kind != approvals.KindRemindPrefix+"slack" || e.RequestID != reviewID || e.NextAttempt.After(h.clock.Now()) {
				t.Fatalf("overdue entry: %+v", e)
			}
			out = append(out, rem)
		}
		return out
	}

	h.clock.Set(due.Add(-time.Second))
	if _, err := h.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := overdue(); len(got) != 0 {
		t.Fatalf("announced before due: %+v", got)
	}

	h.clock.Set(due)
	if _, err := h.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	h.clock.Set(due.Add(72 * time.Hour))
	if _, err := h.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	got := overdue()
	if len(got) != 2 || got[0].Target != "C1" || got[1].Target != "C2" || got[0].Number != 1 {
		t.Fatalf("overdue announcements: %+v", got)
	}
	if c := countType(h.records(), approvals.TypeBreakGlassUnreviewed); c != 1 {
		t.Fatalf("break_glass.unreviewed records: %d", c)
	}

	entries, err := h.svc.Claim(ctx, approvals.KindRemindPrefix+"slack", 10, time.Minute)
	if err != nil || len(entries) != 2 {
		t.Fatalf("claim: %d %v", len(entries), err)
	}
	for _, e := range entries {
		if err := h.svc.CompleteReminder(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	if left := testenv.DueOutbox(t, h.store, approvals.KindRemindPrefix); len(left) != 0 {
		t.Fatalf("entries after completing the announcements: %+v", left)
	}
}

// Break-glass is not bound by windows or freezes; a normal request is.
func TestBreakGlassIgnoresFreeze(t *testing.T) {
	h := newBGHarness(t, approvals.Options{})
	h.svc.Policy().Actions["deploy"].Freezes = []policy.Freeze{{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Reason: "incident freeze"}}
	plain := breakGlassInput("")
	plain.BreakGlass = false
	var pr *policy.RefusalError
	if _, _, err := h.svc.Create(context.Background(), plain); !errors.As(err, &pr) {
		t.Fatalf("normal request in a freeze: %v", err)
	}
	if bg := h.breakGlass(breakGlassInput("")); bg.State != storage.StateApproved {
		t.Fatalf("break-glass in a freeze: %+v", bg)
	}
}
