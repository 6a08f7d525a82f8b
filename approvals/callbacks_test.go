package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

func TestRecordRejectedCallback(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	if err := h.svc.RecordRejectedCallback(ctx, "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.RecordRejectedCallback(ctx, "slack", "T999", "wrong_workspace", "POST /slack/commands"); err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	if len(recs) != 2 {
		t.Fatalf("records: %v", types(recs))
	}
	r := recs[0]
	if r.Type != audit.TypeCallbackRejected || r.Source != "POST /slack/interactions" || r.Actor != nil {
		t.Errorf("first record: %+v", r)
	}
	if r.Data["platform"] != "slack" || r.Data["reason"] != "bad_signature" || len(r.Data) != 2 {
		t.Errorf("first record data: %v", r.Data)
	}
	if a := recs[1].Actor; a == nil || a.Workspace != "T999" || a.Platform != "slack" {
		t.Errorf("second record actor: %+v", a)
	}
}

func TestRecordRejectedCallbackSampledUnderFlood(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	flood := approvals.CallbackRejectedPerMinute + 5
	for range flood {
		if err := h.svc.RecordRejectedCallback(ctx, "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
			t.Fatal(err)
		}
	}
	// Another reason has its own budget.
	if err := h.svc.RecordRejectedCallback(ctx, "slack", "", "stale_timestamp", "POST /slack/interactions"); err != nil {
		t.Fatal(err)
	}
	if got := len(h.records()); got != approvals.CallbackRejectedPerMinute+1 {
		t.Fatalf("%d records written during the flood, want %d", got, approvals.CallbackRejectedPerMinute+1)
	}
	h.clock.Advance(time.Minute)
	if err := h.svc.RecordRejectedCallback(ctx, "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	last := recs[len(recs)-1]
	if n, _ := last.Data["dropped"].(float64); int(n) != flood-approvals.CallbackRejectedPerMinute {
		t.Errorf("dropped = %v, want %d", last.Data["dropped"], flood-approvals.CallbackRejectedPerMinute)
	}
	// The count was reported once; the next record carries none.
	if err := h.svc.RecordRejectedCallback(ctx, "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
		t.Fatal(err)
	}
	recs = h.records()
	if _, ok := recs[len(recs)-1].Data["dropped"]; ok {
		t.Errorf("dropped reported twice: %v", recs[len(recs)-1].Data)
	}
}

func TestRecordRejectedCallbackClipsInput(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	long := strings.Repeat("é", 500)
	if err := h.svc.RecordRejectedCallback(context.Background(), "slack", long, "wrong_workspace", long); err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	if len(recs[0].Actor.Workspace) > 128 || len(recs[0].Source) > 128 {
		t.Errorf("not clipped: %d, %d bytes", len(recs[0].Actor.Workspace), len(recs[0].Source))
	}
	line, _ := json.Marshal(recs[0])
	if !json.Valid(line) {
		t.Error("record not valid JSON")
	}
}

func TestRecordUnverifiedVote(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	err := h.svc.RecordUnverifiedVote(context.Background(), approvals.UnverifiedVote{
		RequestID: r.ID, Decision: storage.DecisionApprove,
		Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U9", CallbackID: "trig-1"},
		Reason: approvals.ReasonNotLinked, Message: "link your account first",
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	last := recs[len(recs)-1]
	if last.Type != audit.TypeVoteRejected || last.RequestID != r.ID || last.Action != "deploy-prod" || last.Source != "trig-1" {
		t.Errorf("record: %+v", last)
	}
	if last.Actor == nil || last.Actor.PlatformUser != "U9" || last.Actor.Subject != "" {
		t.Errorf("actor: %+v", last.Actor)
	}
	if last.Data["reason"] != string(approvals.ReasonNotLinked) || last.Data["decision"] != "approve" {
		t.Errorf("data: %v", last.Data)
	}
	got, err := h.svc.Get(context.Background(), r.ID)
	if err != nil || len(got.Votes) != 0 {
		t.Errorf("votes after unverified click: %v, %v", got.Votes, err)
	}
}

// TestUnverifiedVotesSampledUnderFlood: any workspace member can click, so
// a flood of clicks from unlinked accounts writes a bounded number of
// vote.rejected records a minute; the rest are counted, not lost.
func TestUnverifiedVotesSampledUnderFlood(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	flood := approvals.CallbackRejectedPerMinute + 7
	click := func(i int) approvals.UnverifiedVote {
		return approvals.UnverifiedVote{
			RequestID: "req_unknown", Decision: storage.DecisionApprove, Reason: approvals.ReasonNotLinked, Message: "not linked",
			Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U" + strings.Repeat("X", i%3+1), CallbackID: "cb"},
		}
	}
	for i := range flood {
		if err := h.svc.RecordUnverifiedVote(ctx, click(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(h.records()); got != approvals.CallbackRejectedPerMinute {
		t.Fatalf("%d vote.rejected records during the flood, want %d", got, approvals.CallbackRejectedPerMinute)
	}
	h.clock.Advance(time.Minute)
	if err := h.svc.RecordUnverifiedVote(ctx, click(0)); err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	last := recs[len(recs)-1]
	if n, _ := last.Data["dropped"].(float64); last.Type != audit.TypeVoteRejected || int(n) != flood-approvals.CallbackRejectedPerMinute {
		t.Errorf("next record %s dropped = %v, want %d", last.Type, last.Data["dropped"], flood-approvals.CallbackRejectedPerMinute)
	}
}

// TestRefusedVotesSampledUnderFlood: linked members who may not approve
// (or who ask about ids no request has) can click as often as those who
// are not linked; their refused votes are sampled the same way, per
// platform and reason, and the rest counted in "dropped", never lost.
// Every refusal is still answered with its reason.
func TestRefusedVotesSampledUnderFlood(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	r := h.create("deploy-prod", deployParams())
	base := len(h.records())
	flood := approvals.CallbackRejectedPerMinute + 5
	for i := range flood {
		who := approver(fmt.Sprintf("dev%d", i%4), "dev") // linked, not an approver
		if _, err := h.vote(r.ID, who, storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
			t.Fatalf("click %d: %v, want ErrNotEligible", i, err)
		}
		if _, err := h.vote("req_nope", who, storage.DecisionApprove); !errors.Is(err, approvals.ErrUnknownRequest) {
			t.Fatalf("click %d on an unknown id: %v", i, err)
		}
	}
	count := func(reason approvals.Reason) int {
		n := 0
		for _, rec := range h.records()[base:] {
			if rec.Type == audit.TypeVoteRejected && rec.Data["reason"] == string(reason) {
				n++
			}
		}
		return n
	}
	for _, reason := range []approvals.Reason{approvals.ReasonNotEligible, approvals.ReasonUnknownRequest} {
		if n := count(reason); n != approvals.CallbackRejectedPerMinute {
			t.Errorf("%d %s records during the flood, want %d (one window per platform and reason)", n, reason, approvals.CallbackRejectedPerMinute)
		}
	}

	h.clock.Advance(time.Minute)
	if _, err := h.vote(r.ID, approver("dev0", "dev"), storage.DecisionApprove); !errors.Is(err, approvals.ErrNotEligible) {
		t.Fatal(err)
	}
	recs := h.records()
	last := recs[len(recs)-1]
	if n, _ := last.Data["dropped"].(float64); last.Type != audit.TypeVoteRejected || int(n) != flood-approvals.CallbackRejectedPerMinute {
		t.Errorf("next record %s dropped = %v, want %d", last.Type, last.Data["dropped"], flood-approvals.CallbackRejectedPerMinute)
	}
	// The request is untouched and a real approver still counts.
	if res, err := h.vote(r.ID, approver("carol", "sre"), storage.DecisionApprove); err != nil || !res.Counted {
		t.Fatalf("approver after the flood: %+v %v", res, err)
	}
}
