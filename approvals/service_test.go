package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
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

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testPolicy() *policy.Policy {
	mustPattern := func(p string) *regexp.Regexp {
		re, err := policy.CompilePattern(p)
		if err != nil {
			panic(err)
		}
		return re
	}
	return &policy.Policy{
		AuditorGroups: []string{"audit"},
		Actions: map[string]*policy.Action{
			"deploy-prod": {
				Name:       "deploy-prod",
				Requesters: []policy.RequesterRule{{Issuer: "github", Claims: map[string]string{"repository": "acme/*"}}},
				Params: map[string]policy.Param{
					"service": {Required: true, Pattern: mustPattern("[a-z-]+")},
					"version": {Required: true, MaxLength: 20},
				},
				Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 2},
				TTL:       time.Hour,
				Notify:    policy.Notify{Slack: []string{"C1"}, Teams: []string{"19:x@thread.tacv2"}},
				OnApprove: &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook", Timeout: 10 * time.Second}},
			},
			"restart": {
				Name:       "restart",
				Requesters: []policy.RequesterRule{{Issuer: "github"}},
				Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1, AllowSelfApproval: true},
				TTL:        10 * time.Minute,
				Notify:     policy.Notify{Slack: []string{"C2"}},
			},
			"break-glass": {
				Name:                 "break-glass",
				Requesters:           []policy.RequesterRule{{Issuer: "github"}},
				Approvers:            policy.Approvers{Users: []string{"dana@example.com"}, MinApprovals: 1},
				TTL:                  time.Hour,
				StepUp:               &policy.StepUp{MaxAge: 5 * time.Minute, RequireMFA: true},
				RequireDenyReason:    true,
				RequireApproveReason: false,
			},
		},
	}
}

type harness struct {
	t     *testing.T
	path  string
	store *boltstore.Store
	clock *clock.Fake
	svc   *approvals.Service
	opts  approvals.Options
}

func newHarness(t *testing.T, opts approvals.Options) *harness {
	t.Helper()
	h := &harness{t: t, path: testenv.DBPath(t), clock: clock.NewFake(t0), opts: opts}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	st := testenv.OpenStoreAt(h.t, h.path)
	h.store = st
	opts := h.opts
	opts.Clock = h.clock
	if opts.Logger == nil {
		opts.Logger = testenv.DiscardLogger()
	}
	h.svc = approvals.New(st, testPolicy(), opts)
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatalf("close: %v", err)
	}
	h.open()
}

var requester = storage.Requester{
	Issuer: "github", IssuerURL: "https://token.actions.githubusercontent.com",
	Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat",
	Claims: map[string]string{"repository": "acme/api", "ref": "refs/heads/main", "actor": "octocat"},
}

func (h *harness) create(action string, params map[string]string) storage.Request {
	h.t.Helper()
	r, created, err := h.svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: action, Params: params, Reason: "ship it"})
	if err != nil || !created {
		h.t.Fatalf("create %s: created=%v err=%v", action, created, err)
	}
	return r
}

func deployParams() map[string]string { return map[string]string{"service": "api", "version": "1.4.2"} }

func approver(name string, groups ...string) identity.Identity {
	return identity.Identity{
		Issuer: "https://idp.example", Subject: "sub-" + name, Email: name + "@example.com",
		Name: name, PreferredUsername: name, Groups: groups, VerifiedAt: t0.Add(-time.Minute),
	}
}

func (h *harness) vote(id string, who identity.Identity, d storage.Decision) (approvals.VoteResult, error) {
	return slackVote(h.svc, id, who, d)
}

// slackVote casts who's vote d on request id as a click on a Slack card in
// workspace T1.
func slackVote(svc *approvals.Service, id string, who identity.Identity, d storage.Decision) (approvals.VoteResult, error) {
	return svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: id, Approver: who, Decision: d,
		Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U-" + who.Name, CallbackID: "cb-" + who.Name},
	})
}

// records returns the audit log as parsed records and checks the chain.
func (h *harness) records() []audit.Record {
	h.t.Helper()
	return jsonAuditRecords(h.t, h.store)
}

// jsonAuditRecords returns st's audit log decoded with encoding/json
// (numbers as float64), not audit.ParseRecord, and checks the chain.
func jsonAuditRecords(t *testing.T, st storage.Store) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, line := range testenv.AuditLines(t, st) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit records: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func types(recs []audit.Record) []string { return testenv.AuditTypes(recs) }

func (h *harness) outbox(kindPrefix string) []storage.OutboxEntry {
	h.t.Helper()
	return testenv.DueOutbox(h.t, h.store, kindPrefix)
}

func TestCreateRefusals(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	cases := []struct {
		name string
		in   approvals.CreateInput
		code policy.Reason
	}{
		{"undeclared action", approvals.CreateInput{Requester: requester, Action: "drop-db"}, policy.CodeUnknownAction},
		{"requester claim mismatch", approvals.CreateInput{Requester: func() storage.Requester {
			r := requester
			r.Claims = map[string]string{"repository": "evil/api"}
			return r
		}(), Action: "deploy-prod", Params: deployParams()}, policy.CodeForbidden},
		{"other issuer", approvals.CreateInput{Requester: func() storage.Requester {
			r := requester
			r.Issuer = "gitlab"
			return r
		}(), Action: "deploy-prod", Params: deployParams()}, policy.CodeForbidden},
		{"missing param", approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: map[string]string{"service": "api"}}, policy.CodeInvalidParams},
		{"undeclared param", approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: map[string]string{"service": "api", "version": "1", "force": "yes"}}, policy.CodeInvalidParams},
		{"pattern", approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: map[string]string{"service": "api; rm -rf /", "version": "1"}}, policy.CodeInvalidParams},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := h.svc.Create(ctx, c.in)
			var pe *policy.RefusalError
			if !errors.As(err, &pe) || pe.Code != c.code {
				t.Fatalf("got %v, want policy refusal %s", err, c.code)
			}
		})
	}
	_, _, err := h.svc.Create(ctx, approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(),
		Links: []storage.Link{{Title: "run", URL: "javascript:alert(1)"}}})
	if !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("javascript: link accepted: %v", err)
	}
	if n := len(h.records()); n != 0 {
		t.Fatalf("refused creates wrote %d audit records", n)
	}
}

func TestCreateWritesAuditAndNotifications(t *testing.T) {
	h := newHarness(t, approvals.Options{Platforms: []string{"slack", "teams"}})
	r := h.create("deploy-prod", deployParams())
	if r.State != storage.StatePending || r.MinApprovals != 2 || !r.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("unexpected request: %+v", r)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Type != audit.TypeRequestCreated || recs[0].RequestID != r.ID || recs[0].Actor.Subject != requester.Subject {
		t.Fatalf("audit: %+v", recs)
	}
	if got := len(h.outbox("notify.slack")); got != 1 {
		t.Fatalf("slack notifications queued: %d, want 1", got)
	}
	if got := len(h.outbox("notify.teams")); got != 1 {
		t.Fatalf("teams notifications queued: %d, want 1", got)
	}
}

func TestIdempotentCreate(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), IdempotencyKey: "run-42-1"}
	first, created, err := h.svc.Create(ctx, in)
	if err != nil || !created {
		t.Fatalf("first create: %v %v", created, err)
	}
	again, created, err := h.svc.Create(ctx, in)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("retry: created=%v id=%s err=%v, want the first request %s", created, again.ID, err, first.ID)
	}
	in.Params = map[string]string{"service": "api", "version": "9.9.9"}
	if _, _, err := h.svc.Create(ctx, in); !errors.Is(err, approvals.ErrIdempotencyConflict) {
		t.Fatalf("reused key with another body: %v, want ErrIdempotencyConflict", err)
	}
	// Another requester may use the same key.
	other := requester
	other.Subject = "repo:acme/web:ref:refs/heads/main"
	in.Requester = other
	if _, created, err := h.svc.Create(ctx, in); err != nil || !created {
		t.Fatalf("same key, other requester: created=%v err=%v", created, err)
	}
	if n := len(h.records()); n != 2 {
		t.Fatalf("%d audit records, want 2", n)
	}
}

func TestConcurrentIdempotentCreateMakesOne(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), IdempotencyKey: "k"}
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			r, _, err := h.svc.Create(context.Background(), in)
			if err != nil {
				t.Error(err)
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creates with one key made several requests: %v", ids)
		}
	}
}

func TestQuorumApprovesAndQueuesOneExecution(t *testing.T) {
	h := newHarness(t, approvals.Options{Platforms: []string{"slack"}})
	r := h.create("deploy-prod", deployParams())
	res, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove)
	if err != nil || !res.Counted || res.Decided || res.Request.State != storage.StatePending {
		t.Fatalf("first approval: %+v %v", res, err)
	}
	res, err = h.vote(r.ID, approver("bob", "sre"), storage.DecisionApprove)
	if err != nil || !res.Decided || res.Request.State != storage.StateApproved {
		t.Fatalf("second approval: %+v %v", res, err)
	}
	if res.Request.Execution == nil || res.Request.Execution.Status != storage.ExecutionPending {
		t.Fatalf("execution not pending: %+v", res.Request.Execution)
	}
	if n := len(h.outbox(approvals.KindExecute)); n != 1 {
		t.Fatalf("%d executions queued, want 1", n)
	}
	want := []string{"request.created", "vote.approve", "vote.approve", "request.approved"}
	if got := types(h.records()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit types %v, want %v", got, want)
	}
	// created + two votes (the second one decides): three card updates.
	if n := len(h.outbox("notify.slack")); n != 3 {
		t.Fatalf("%d slack notifications, want 3", n)
	}
}

func TestDenyByAnyEligibleApprover(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	if _, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	res, err := h.vote(r.ID, approver("bob", "sre"), storage.DecisionDeny)
	if err != nil || res.Request.State != storage.StateDenied {
		t.Fatalf("deny: %+v %v", res, err)
	}
	if n := len(h.outbox(approvals.KindExecute)); n != 0 {
		t.Fatalf("a denied request queued %d executions", n)
	}
}

func TestRepeatedVoteIsIdempotentAndChangedVoteRefused(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	alice := approver("alice", "sre")
	if _, err := h.vote(r.ID, alice, storage.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	before := len(h.records())
	res, err := h.vote(r.ID, alice, storage.DecisionApprove)
	if err != nil || !res.Duplicate || res.Counted {
		t.Fatalf("repeated vote: %+v %v", res, err)
	}
	if after := len(h.records()); after != before {
		t.Fatalf("repeated vote wrote %d audit records", after-before)
	}
	_, err = h.vote(r.ID, alice, storage.DecisionDeny)
	if !errors.Is(err, approvals.ErrVoteChanged) {
		t.Fatalf("changed vote: %v, want ErrVoteChanged", err)
	}
	got, _ := h.svc.Get(context.Background(), r.ID)
	if len(got.Votes) != 1 || got.Votes[0].Decision != storage.DecisionApprove || got.State != storage.StatePending {
		t.Fatalf("changed vote altered the request: %+v", got)
	}
	recs := h.records()
	last := recs[len(recs)-1]
	if last.Type != audit.TypeVoteRejected || last.Data["reason"] != string(approvals.ReasonVoteChanged) {
		t.Fatalf("last record %+v, want vote.rejected vote_changed", last)
	}
}

func TestVoteRefusalsAreAudited(t *testing.T) {
	h := newHarness(t, approvals.Options{GroupsMaxAge: time.Hour})
	r := h.create("deploy-prod", deployParams())
	stale := approver("sam", "sre")
	stale.VerifiedAt = t0.Add(-2 * time.Hour)
	self := approver("octocat", "sre")
	cases := []struct {
		name   string
		id     string
		who    identity.Identity
		want   error
		reason approvals.Reason
	}{
		{"unknown request", "req_nope", approver("alice", "sre"), approvals.ErrUnknownRequest, approvals.ReasonUnknownRequest},
		{"not in group", r.ID, approver("carol", "dev"), approvals.ErrNotEligible, approvals.ReasonNotEligible},
		{"unverified identity", r.ID, identity.Identity{Issuer: "https://idp.example", Subject: "x", Groups: []string{"sre"}}, approvals.ErrStaleIdentity, approvals.ReasonStaleIdentity},
		{"stale identity", r.ID, stale, approvals.ErrStaleIdentity, approvals.ReasonStaleIdentity},
		{"self-approval", r.ID, self, approvals.ErrSelfApproval, approvals.ReasonSelfApproval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.vote(c.id, c.who, storage.DecisionApprove)
			var re *approvals.RefusalError
			if !errors.Is(err, c.want) || !errors.As(err, &re) || re.Reason != c.reason {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			recs := h.records()
			last := recs[len(recs)-1]
			if last.Type != audit.TypeVoteRejected || last.Data["reason"] != string(c.reason) || last.Actor.PlatformUser != "U-"+c.who.Name {
				t.Fatalf("last audit record %+v", last)
			}
		})
	}
	got, _ := h.svc.Get(context.Background(), r.ID)
	if len(got.Votes) != 0 {
		t.Fatalf("refused votes counted: %+v", got.Votes)
	}
	// Decided requests refuse further votes.
	h.vote(r.ID, approver("alice", "sre"), storage.DecisionDeny)
	if _, err := h.vote(r.ID, approver("bob", "sre"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("vote on denied request: %v", err)
	}
}

func TestSelfApprovalMatchesEmailAndUsername(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	byEmail := approver("someone", "sre")
	byEmail.Email = "OctoCat"
	if _, err := h.vote(r.ID, byEmail, storage.DecisionApprove); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Fatalf("self by email: %v", err)
	}
	// restart allows self-approval.
	r2 := h.create("restart", nil)
	if res, err := h.vote(r2.ID, approver("octocat", "sre"), storage.DecisionApprove); err != nil || res.Request.State != storage.StateApproved {
		t.Fatalf("allowed self-approval: %+v %v", res, err)
	}
}

func TestStepUpAndReasons(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("break-glass", nil)
	dana := approver("dana")
	if _, err := h.vote(r.ID, dana, storage.DecisionApprove); !errors.Is(err, approvals.ErrStepUpRequired) {
		t.Fatalf("no auth_time: %v", err)
	}
	dana.AuthTime = t0.Add(-10 * time.Minute)
	dana.AMR = []string{"pwd", "otp"}
	if _, err := h.vote(r.ID, dana, storage.DecisionApprove); !errors.Is(err, approvals.ErrStepUpRequired) {
		t.Fatalf("stale auth_time: %v", err)
	}
	dana.AuthTime = t0.Add(-time.Minute)
	dana.AMR = []string{"pwd"}
	if _, err := h.vote(r.ID, dana, storage.DecisionApprove); !errors.Is(err, approvals.ErrStepUpRequired) {
		t.Fatalf("no MFA: %v", err)
	}
	if _, err := h.vote(r.ID, dana, storage.DecisionDeny); !errors.Is(err, approvals.ErrReasonRequired) {
		t.Fatalf("deny without reason: %v", err)
	}
	dana.AMR = []string{"pwd", "otp"}
	res, err := h.vote(r.ID, dana, storage.DecisionApprove)
	if err != nil || res.Request.State != storage.StateApproved {
		t.Fatalf("stepped-up vote: %+v %v", res, err)
	}
	recs := h.records()
	var vote audit.Record
	for _, rec := range recs {
		if rec.Type == audit.TypeVoteApprove {
			vote = rec
		}
	}
	if vote.Data["auth_time"] != audit.FormatTime(dana.AuthTime) || fmt.Sprint(vote.Data["amr"]) != "[pwd otp]" {
		t.Fatalf("vote record lacks step-up facts: %+v", vote.Data)
	}
}

// TestConcurrentVotesDecideOnce is invariant 4 (docs/architecture.md): 50 approvers clicking
// approve and deny at once produce exactly one decision and at most one
// queued execution.
func TestConcurrentVotesDecideOnce(t *testing.T) {
	for round := 0; round < 3; round++ {
		h := newHarness(t, approvals.Options{})
		r := h.create("deploy-prod", deployParams())
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 50; i++ {
			wg.Go(func() {
				<-start
				d := storage.DecisionApprove
				if i%7 == 3 {
					d = storage.DecisionDeny
				}
				_, err := h.vote(r.ID, approver(fmt.Sprintf("u%02d", i), "sre"), d)
				if err != nil && !errors.Is(err, approvals.ErrNotPending) {
					t.Errorf("vote %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		decisions := 0
		for _, rec := range h.records() {
			if rec.Type == audit.TypeRequestApproved || rec.Type == audit.TypeRequestDenied {
				decisions++
			}
		}
		got, _ := h.svc.Get(context.Background(), r.ID)
		execs := len(h.outbox(approvals.KindExecute))
		if decisions != 1 || got.State == storage.StatePending || execs > 1 {
			t.Fatalf("round %d: %d decisions, state %s, %d executions", round, decisions, got.State, execs)
		}
		if (got.State == storage.StateApproved) != (execs == 1) {
			t.Fatalf("state %s with %d executions", got.State, execs)
		}
	}
}

func TestCancelByRequesterOnly(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	ctx := context.Background()
	if _, err := h.svc.Cancel(ctx, r.ID, approvals.Canceller{Issuer: "github", Subject: "someone-else"}); !errors.Is(err, approvals.ErrForbidden) {
		t.Fatalf("cancel by another: %v", err)
	}
	got, err := h.svc.Cancel(ctx, r.ID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject})
	if err != nil || got.State != storage.StateCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if _, err := h.svc.Cancel(ctx, r.ID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject}); !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("vote after cancel: %v", err)
	}
}

func TestExpiryLoopWithInjectedClock(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.RunExpiry(ctx) }()
	defer func() { cancel(); <-done }()

	changed, stop := h.svc.Watch(r.ID)
	defer stop()
	waitParked(t, h.clock)
	h.clock.Set(r.ExpiresAt.Add(-time.Second))
	waitParked(t, h.clock)
	if got, _ := h.svc.Get(ctx, r.ID); got.State != storage.StatePending {
		t.Fatalf("expired a second early: %s", got.State)
	}
	h.clock.Set(r.ExpiresAt)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("request did not expire at its deadline")
	}
	got, _ := h.svc.Get(ctx, r.ID)
	if got.State != storage.StateExpired || !got.DecidedAt.Equal(r.ExpiresAt) {
		t.Fatalf("after deadline: state %s decided %v", got.State, got.DecidedAt)
	}
}

// waitParked waits until the expiry loop is asleep on the fake clock.
func waitParked(t *testing.T, c *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("expiry loop never waited on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestExpiryAcrossRestart(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	h.reopen()
	h.clock.Set(r.ExpiresAt.Add(3 * time.Hour)) // signoff was down past the deadline
	n, err := h.svc.ExpireDue(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("expire after reopen: n=%d err=%v", n, err)
	}
	got, _ := h.svc.Get(context.Background(), r.ID)
	if got.State != storage.StateExpired {
		t.Fatalf("state %s", got.State)
	}
}

func TestVoteAfterDeadlineExpiresInsteadOfCounting(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("restart", nil)
	h.clock.Set(r.ExpiresAt)
	_, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove)
	if !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("vote at deadline: %v", err)
	}
	got, _ := h.svc.Get(context.Background(), r.ID)
	if got.State != storage.StateExpired || len(got.Votes) != 0 {
		t.Fatalf("after late vote: %+v", got)
	}
}

func TestWaitReturnsOnDecision(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("restart", nil)
	out := make(chan storage.Request, 1)
	go func() {
		got, err := h.svc.Wait(context.Background(), r.ID)
		if err != nil {
			t.Error(err)
		}
		out <- got
	}()
	if _, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-out:
		if got.State != storage.StateApproved {
			t.Fatalf("wait returned %s", got.State)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the decision")
	}
	r2 := h.create("restart", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if got, err := h.svc.Wait(ctx, r2.ID); !errors.Is(err, context.DeadlineExceeded) || got.State != storage.StatePending {
		t.Fatalf("wait with ended ctx: %v %v", got.State, err)
	}
}
