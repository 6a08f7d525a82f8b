package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// remindPolicy: "deploy" reminds C1 every 10m at most 3 times and is
// escalated to C9 after 25m; it tells the requester the decision.
func remindPolicy() *policy.Policy {
	return &policy.Policy{Actions: map[string]*policy.Action{
		"deploy": {
			Name:            "deploy",
			Requesters:      []policy.RequesterRule{{Issuer: "github"}},
			Approvers:       policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:             2 * time.Hour,
			Notify:          policy.Notify{Slack: []string{"C1"}},
			Remind:          &policy.Remind{Every: 10 * time.Minute, Max: 3},
			Escalate:        &policy.Escalate{After: 25 * time.Minute, Notify: policy.Notify{Slack: []string{"C9"}}},
			NotifyRequester: true,
		},
		"quiet": {
			Name:       "quiet",
			Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:        time.Hour,
			Notify:     policy.Notify{Slack: []string{"C1"}},
		},
	}}
}

type remindHarness struct {
	t     *testing.T
	path  string
	store *boltstore.Store
	clock *clock.Fake
	svc   *approvals.Service
}

func newRemindHarness(t *testing.T) *remindHarness {
	h := &remindHarness{t: t, path: testenv.DBPath(t), clock: clock.NewFake(t0)}
	h.open()
	return h
}

func (h *remindHarness) open() {
	h.store = testenv.OpenStoreAt(h.t, h.path)
	h.svc = approvals.New(h.store, remindPolicy(), approvals.Options{Clock: h.clock, Logger: testenv.DiscardLogger(), Platforms: []string{"slack"}})
}

func (h *remindHarness) reopen() {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *remindHarness) create(action string) storage.Request {
	h.t.Helper()
	r, _, err := h.svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: action})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// remind does what a Deliverer does with the due reminders: it completes
// each (as if replied) and returns their numbers.
func (h *remindHarness) remind() []int {
	h.t.Helper()
	ctx := context.Background()
	entries, err := h.svc.Claim(ctx, approvals.KindRemindPrefix+"slack", 10, time.Minute)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		rem, ok := approvals.ReadReminder(e)
		if !ok || rem.Target != "C1" {
			h.t.Fatalf("reminder payload %s", e.Payload)
		}
		out = append(out, rem.Number)
		if err := h.svc.CompleteReminder(ctx, e.ID); err != nil {
			h.t.Fatal(err)
		}
	}
	return out
}

// due lists the outbox entries of kindPrefix due on the fake clock.
func (h *remindHarness) due(kindPrefix string) []storage.OutboxEntry {
	h.t.Helper()
	var out []storage.OutboxEntry
	err := h.store.View(context.Background(), func(tx storage.ReadTx) error {
		var err error
		out, err = tx.DueOutbox(h.clock.Now(), kindPrefix, 0)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// escalations returns the due escalation entries' targets.
func (h *remindHarness) escalations() []string {
	h.t.Helper()
	var out []string
	for _, e := range h.due(approvals.KindNotifyPrefix + "slack") {
		var n approvals.Notification
		if err := json.Unmarshal(e.Payload, &n); err != nil {
			h.t.Fatal(err)
		}
		if n.Event == approvals.EventEscalated {
			out = append(out, n.Target)
		}
	}
	return out
}

func TestRemindersEveryUpToMaxAcrossRestart(t *testing.T) {
	h := newRemindHarness(t)
	h.create("deploy")
	if got := h.remind(); len(got) != 0 {
		t.Fatalf("reminded at creation: %v", got)
	}
	h.clock.Advance(10*time.Minute - time.Second)
	if got := h.remind(); len(got) != 0 {
		t.Fatalf("reminded before every: %v", got)
	}
	h.clock.Advance(time.Second)
	if got := h.remind(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("at every: %v, want [1]", got)
	}
	h.reopen() // the next reminder is in the store, not in memory
	h.clock.Advance(10 * time.Minute)
	if got := h.remind(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("at 2×every after a restart: %v, want [2]", got)
	}
	h.clock.Advance(10 * time.Minute)
	if got := h.remind(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("at 3×every: %v, want [3]", got)
	}
	h.clock.Advance(time.Hour)
	if got := h.remind(); len(got) != 0 {
		t.Fatalf("more than max: %v", got)
	}
	if left := testenv.DueOutbox(t, h.store, approvals.KindRemindPrefix); len(left) != 0 {
		t.Fatalf("reminder entries left: %d", len(left))
	}
}

// Slots that passed while nothing delivered are skipped, not sent in a
// burst.
func TestMissedRemindersAreNotMadeUp(t *testing.T) {
	h := newRemindHarness(t)
	h.create("deploy")
	h.clock.Advance(25 * time.Minute) // slots 1 and 2 passed
	if got := h.remind(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("late: %v, want [1]", got)
	}
	if got := h.remind(); len(got) != 0 {
		t.Fatalf("slot 2 sent at once: %v", got)
	}
	h.clock.Advance(5 * time.Minute)
	if got := h.remind(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("next slot: %v, want [3]", got)
	}
}

func TestRemindersStopAtDecision(t *testing.T) {
	h := newRemindHarness(t)
	r := h.create("deploy")
	h.clock.Advance(10 * time.Minute)
	if got := h.remind(); len(got) != 1 {
		t.Fatalf("first reminder: %v", got)
	}
	if _, err := h.svc.Cancel(context.Background(), r.ID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject}); err != nil {
		t.Fatal(err)
	}
	// The pending entry is dropped when it comes due (the Deliverer reads
	// the state); completing it queues no other.
	h.clock.Advance(10 * time.Minute)
	entries, err := h.svc.Claim(context.Background(), approvals.KindRemindPrefix, 10, time.Minute)
	if err != nil || len(entries) != 1 {
		t.Fatalf("claim: %d, %v", len(entries), err)
	}
	if err := h.svc.CompleteReminder(context.Background(), entries[0].ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	if left := testenv.DueOutbox(t, h.store, approvals.KindRemindPrefix); len(left) != 0 {
		t.Fatalf("reminders after the decision: %d", len(left))
	}
	// Completing an entry twice: the second finds it gone.
	if err := h.svc.CompleteReminder(context.Background(), entries[0].ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second completion: %v", err)
	}
}

func TestEscalationOnceAtAfter(t *testing.T) {
	h := newRemindHarness(t)
	r := h.create("deploy")
	h.clock.Advance(25*time.Minute - time.Second)
	if got := h.escalations(); len(got) != 0 {
		t.Fatalf("escalated early: %v", got)
	}
	h.reopen()
	h.clock.Advance(time.Second)
	if got := h.escalations(); len(got) != 1 || got[0] != "C9" {
		t.Fatalf("escalations at after: %v, want [C9]", got)
	}
	// Once escalated, a change updates the escalated card too.
	if _, err := h.vote(r.ID); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range testenv.DueOutbox(t, h.store, approvals.KindNotifyPrefix+"slack") {
		var n approvals.Notification
		_ = json.Unmarshal(e.Payload, &n)
		targets = append(targets, n.Event+":"+n.Target)
	}
	if got := strings.Join(targets, " "); got != "created:C1 escalated:C9 decided:C1 decided:C9" {
		t.Fatalf("notifications: %s", got)
	}
	if !h.svc.EscalationDue("deploy", r.CreatedAt, r.CreatedAt.Add(25*time.Minute)) || h.svc.EscalationDue("deploy", r.CreatedAt, r.CreatedAt.Add(time.Minute)) || h.svc.EscalationDue("quiet", r.CreatedAt, r.CreatedAt.Add(time.Hour)) {
		t.Error("EscalationDue")
	}
}

func TestNoTimersWithoutRemindOrEscalate(t *testing.T) {
	h := newRemindHarness(t)
	h.create("quiet")
	h.clock.Advance(time.Hour - time.Second)
	if got := h.remind(); len(got) != 0 {
		t.Fatalf("reminders: %v", got)
	}
	if got := h.escalations(); len(got) != 0 {
		t.Fatalf("escalations: %v", got)
	}
}

func (h *remindHarness) vote(id string) (approvals.VoteResult, error) {
	who := approver("sam", "sre")
	who.VerifiedAt = h.clock.Now()
	return h.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: id, Approver: who, Decision: storage.DecisionApprove,
		Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U-sam", CallbackID: "cb-sam"},
	})
}

// requesterNotices returns the users the requester's notices go to.
func (h *remindHarness) requesterNotices() []string {
	h.t.Helper()
	var out []string
	for _, e := range testenv.DueOutbox(h.t, h.store, approvals.KindNoticePrefix) {
		var n approvals.AccountNotice
		if err := json.Unmarshal(e.Payload, &n); err != nil {
			h.t.Fatal(err)
		}
		if strings.Contains(n.Text, "Your signoff request") {
			out = append(out, e.Kind+":"+n.User+":"+n.Text)
		}
	}
	return out
}

func TestRequesterToldTheDecision(t *testing.T) {
	h := newRemindHarness(t)
	ctx := context.Background()
	link := func(user, subject, username string, handles ...string) storage.IdentityLink {
		l := storage.IdentityLink{
			Platform: "slack", Workspace: "T1", PlatformUser: user,
			Issuer: "https://idp.example", Subject: subject, Email: subject + "@example.com", PreferredUsername: username,
			LinkedAt: t0, VerifiedAt: t0,
		}
		if len(handles) > 0 {
			l.PersonClaims = map[string][]string{"github_login": handles}
		}
		return l
	}
	for _, l := range []storage.IdentityLink{
		link("U-OCTO", "sub-octo", "OctoCat"),               // the requester, by username (any case)
		link("U-GH", "sub-gh", "someone", "octocat"),        // the requester, by a person claim
		link("U-LOOK", "sub-look", "octocat2", "octo-cat"),  // a look-alike
		link("U-OTHER", "sub-other", "mona", "not-octocat"), // someone else
	} {
		if err := h.svc.SaveLink(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	stale := link("U-STALE", "sub-stale", "octocat")
	stale.Workspace = "T2"
	if err := h.svc.SaveLink(ctx, stale, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.MarkLinkStale(ctx, "slack", "T2", "U-STALE", "refresh refused"); err != nil {
		t.Fatal(err)
	}

	r := h.create("deploy")
	if got := h.requesterNotices(); len(got) != 0 {
		t.Fatalf("notices before the decision: %v", got)
	}
	if _, err := h.vote(r.ID); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.requesterNotices(), "\n")
	want := "notice.slack:U-GH:Your signoff request " + r.ID + " (deploy) was approved.\n" +
		"notice.slack:U-OCTO:Your signoff request " + r.ID + " (deploy) was approved."
	if got != want {
		t.Fatalf("notices:\n got %s\nwant %s", got, want)
	}

	// notify.requester false: nothing.
	h2 := newRemindHarness(t)
	if err := h2.svc.SaveLink(ctx, link("U-OCTO", "sub-octo", "octocat"), ""); err != nil {
		t.Fatal(err)
	}
	q := h2.create("quiet")
	if _, err := h2.vote(q.ID); err != nil {
		t.Fatal(err)
	}
	if got := h2.requesterNotices(); len(got) != 0 {
		t.Fatalf("notices with notify.requester false: %v", got)
	}
}

// An expiry tells the requester too, matched by email when the requester
// has one.
func TestRequesterToldOfExpiryByEmail(t *testing.T) {
	r, got := noticesOfExpiryByEmail(t, storage.IdentityLink{
		Platform: "slack", Workspace: "T1", PlatformUser: "U-MAIL",
		Issuer: "https://idp.example", Subject: "sub-x", Email: "Octo@Example.com", LinkedAt: t0, VerifiedAt: t0,
	})
	if len(got) != 1 || got[0] != "notice.slack:U-MAIL:Your signoff request "+r.ID+" (deploy) was expired: nobody decided in time." {
		t.Fatalf("notices: %v", got)
	}
}

// TestRequesterNotToldThroughAnUnvouchedEmail: a link whose email the IdP
// did not vouch for (someone set it to the requester's) gets no notice of
// the requester's decision; the notice goes to the accounts that are
// theirs.
func TestRequesterNotToldThroughAnUnvouchedEmail(t *testing.T) {
	r, got := noticesOfExpiryByEmail(t,
		storage.IdentityLink{Platform: "slack", Workspace: "T1", PlatformUser: "U-CLAIMED", Issuer: "https://idp.example", Subject: "sub-mallory", Email: "octo@example.com", EmailUnverified: true, LinkedAt: t0, VerifiedAt: t0},
		storage.IdentityLink{Platform: "slack", Workspace: "T1", PlatformUser: "U-MAIL", Issuer: "https://idp.example", Subject: "sub-octo", Email: "octo@example.com", LinkedAt: t0, VerifiedAt: t0},
	)
	if len(got) != 1 || got[0] != "notice.slack:U-MAIL:Your signoff request "+r.ID+" (deploy) was expired: nobody decided in time." {
		t.Fatalf("notices: %v", got)
	}
}

// noticesOfExpiryByEmail saves links, lets a request of a requester known
// only by the email octo@example.com expire, and returns the request and
// the requester notices queued.
func noticesOfExpiryByEmail(t *testing.T, links ...storage.IdentityLink) (storage.Request, []string) {
	t.Helper()
	h := newRemindHarness(t)
	ctx := context.Background()
	for _, l := range links {
		if err := h.svc.SaveLink(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	in := requester
	in.Person, in.Email = "", "octo@example.com"
	r, _, err := h.svc.Create(ctx, approvals.CreateInput{Requester: in, Action: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Hour)
	if _, err := h.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	return r, h.requesterNotices()
}
