package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// scheduledService is a service over one action, "deploy", bound to
// weekday office hours in Berlin, with a freeze over the turn of the year
// and rules needing one approval from sre and one from security.
func scheduledService(t *testing.T, now time.Time) (*approvals.Service, *clock.Fake, storage.Store) {
	t.Helper()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	pol := &policy.Policy{Actions: map[string]*policy.Action{"deploy": {
		Name:       "deploy",
		Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Approvers: policy.Approvers{Groups: []string{"sre", "security"}, MinApprovals: 2, Require: []policy.Rule{
			{Groups: []string{"sre"}, Min: 1}, {Groups: []string{"security"}, Min: 1},
		}},
		TTL:       24 * time.Hour,
		OnApprove: &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook"}},
		Windows: []policy.Window{{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
			From: 9 * 60, To: 17 * 60, Location: berlin}},
		Freezes: []policy.Freeze{{From: time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), Reason: "year-end"}},
	}}}
	st := testenv.OpenStore(t)
	clk := clock.NewFake(now)
	return approvals.New(st, pol, approvals.Options{Clock: clk, Logger: testenv.DiscardLogger()}), clk, st
}

func createDeploy(svc *approvals.Service) (storage.Request, error) {
	r, _, err := svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: "deploy", Reason: "ship it"})
	return r, err
}

func TestCreateRefusedOutsideWindowsAndInFreezes(t *testing.T) {
	cases := []struct {
		name string
		at   time.Time
		code policy.Reason
		says []string
	}{
		{"Sunday", t0, policy.CodeOutsideWindow, []string{"2026-03-02 09:00 CET (2026-03-02T08:00:00Z)"}},
		{"Monday 17:00 Berlin, the window's end", time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC), policy.CodeOutsideWindow, []string{"2026-03-03 09:00 CET"}},
		{"Friday evening before summer time", time.Date(2026, 3, 27, 18, 0, 0, 0, time.UTC), policy.CodeOutsideWindow, []string{"2026-03-30 09:00 CEST (2026-03-30T07:00:00Z)"}},
		{"in the freeze, inside a window", time.Date(2026, 12, 22, 10, 0, 0, 0, time.UTC), policy.CodeFrozen, []string{"frozen until 2027-01-04T00:00:00Z", "year-end", "2027-01-04 09:00 CET"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc, _, st := scheduledService(t, tc.at)
			_, err := createDeploy(svc)
			var re *policy.RefusalError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("create: %v, want a %s refusal", err, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(re.Message, s) {
					t.Errorf("message %q does not say %q", re.Message, s)
				}
			}
			if recs := testenv.AuditRecords(t, st); len(recs) != 0 {
				t.Errorf("a refused create wrote %v", testenv.AuditTypes(recs))
			}
		})
	}
	// Inside the window, the same ask is accepted.
	svc, _, _ := scheduledService(t, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	if _, err := createDeploy(svc); err != nil {
		t.Fatalf("create at Monday 09:00 Berlin: %v", err)
	}
}

func TestRulesDecideTheVote(t *testing.T) {
	svc, _, _ := scheduledService(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	r, err := createDeploy(svc)
	if err != nil {
		t.Fatal(err)
	}
	vote := func(who string, groups ...string) approvals.VoteResult {
		t.Helper()
		id := approver(who, groups...)
		id.VerifiedAt = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
		res, err := svc.Vote(context.Background(), approvals.VoteInput{RequestID: r.ID, Approver: id, Decision: storage.DecisionApprove,
			Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U-" + who}})
		if err != nil {
			t.Fatalf("vote %s: %v", who, err)
		}
		return res
	}
	// One person in both groups fills one rule only.
	res := vote("alice", "sre", "security")
	if res.Decided {
		t.Fatal("one person in sre and security decided a request needing both rules")
	}
	p := approvals.Progress(svc.Policy().Actions["deploy"], res.Request)
	if p.Remaining() != 1 || p.RulesMet() {
		t.Fatalf("after alice: %+v", p)
	}
	// A second sre: alice moves to security, whatever the vote order.
	if res = vote("bob", "sre"); !res.Decided || res.Request.State != storage.StateApproved {
		t.Fatalf("after bob: %s decided=%v", res.Request.State, res.Decided)
	}
}

func TestApprovalAfterTheWindowClosedRunsWhenItReopens(t *testing.T) {
	ctx := context.Background()
	// Monday 16:50 in Berlin: inside the window.
	svc, clk, st := scheduledService(t, time.Date(2026, 3, 2, 15, 50, 0, 0, time.UTC))
	r, err := createDeploy(svc)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(15 * time.Minute) // 17:05: the window closed
	for _, who := range []struct {
		name  string
		group string
	}{{"alice", "sre"}, {"bob", "security"}} {
		id := approver(who.name, who.group)
		id.VerifiedAt = clk.Now()
		if _, err := svc.Vote(ctx, approvals.VoteInput{RequestID: r.ID, Approver: id, Decision: storage.DecisionApprove,
			Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U-" + who.name}}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := svc.Claim(ctx, approvals.KindExecute, 10, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	stale := claimed[0]
	stale.Attempts++
	if _, _, err := svc.DeferExecution(ctx, stale); !errors.Is(err, approvals.ErrStaleClaim) {
		t.Fatalf("a stale claim: %v, want ErrStaleClaim", err)
	}
	deferred, until, err := svc.DeferExecution(ctx, claimed[0])
	reopen := time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC) // Tuesday 09:00 CET
	if err != nil || !deferred || !until.Equal(reopen) {
		t.Fatalf("defer: deferred=%v until=%s err=%v; want until %s", deferred, until, err, reopen)
	}
	recs := testenv.AuditRecords(t, st)
	last := recs[len(recs)-1]
	if last.Type != audit.TypeExecutionDeferred || last.Data["reason"] != "outside_window" || last.Data["until"] != audit.FormatTime(reopen) {
		t.Fatalf("last record %s %v, want execution.deferred until %s", last.Type, last.Data, reopen)
	}
	// Not dropped: the entry waits, with its attempt given back.
	if q := testenv.DueOutbox(t, st, approvals.KindExecute); len(q) != 1 || !q[0].NextAttempt.Equal(reopen) || q[0].Attempts != 0 {
		t.Fatalf("queued executions %v, want one at %s with no attempt counted", q, reopen)
	}
	clk.Advance(reopen.Sub(clk.Now()) - time.Second)
	if again, _ := svc.Claim(ctx, approvals.KindExecute, 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed a second before the window reopens: %v", again)
	}
	clk.Advance(time.Second)
	again, err := svc.Claim(ctx, approvals.KindExecute, 10, time.Minute)
	if err != nil || len(again) != 1 || again[0].Attempts != 1 {
		t.Fatalf("claim at the reopening: %v %v (want one entry, attempt 1)", again, err)
	}
	if deferred, _, err := svc.DeferExecution(ctx, again[0]); err != nil || deferred {
		t.Fatalf("inside the window: deferred=%v err=%v", deferred, err)
	}
	if n := len(testenv.AuditRecords(t, st)); n != len(recs) {
		t.Errorf("a check inside the window wrote %d records", n-len(recs))
	}
}
