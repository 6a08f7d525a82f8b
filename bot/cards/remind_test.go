package cards

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// newRemindEnv: "deploy" needs 2 approvals from sre or dana@example.com,
// is announced in C1, reminded every 10m at most 2 times and escalated to
// C9 after 15m.
func newRemindEnv(t *testing.T) *env {
	t.Helper()
	return newDeployEnv(t, func(a *policy.Action) {
		a.Approvers = policy.Approvers{Groups: []string{"sre"}, Users: []string{"dana@example.com"}, MinApprovals: 2}
		a.Remind = &policy.Remind{Every: 10 * time.Minute, Max: 2}
		a.Escalate = &policy.Escalate{After: 15 * time.Minute, Notify: policy.Notify{Slack: []string{"C9"}}}
	})
}

func (e *env) opsString() string { return strings.Join(e.chat.ops(), ", ") }

func TestRemindersInTheCardsThreadUntilMax(t *testing.T) {
	e := newRemindEnv(t)
	r := e.create()
	e.drain()
	e.clock.Advance(10 * time.Minute)
	e.drain()
	// The reply goes to the card's message (m1) in C1.
	if got, want := e.opsString(), "post "+r.ID+", reply m1"; got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
	want := "Reminder 1 of 2: Approval requested: deploy for octocat is still pending, 2 more approvals needed. Who can approve: members of sre; dana@example.com."
	if got := e.chat.replies[0]; got != want {
		t.Fatalf("reminder:\n got %s\nwant %s", got, want)
	}
	e.clock.Advance(5 * time.Minute) // escalation: the card is posted to C9
	e.drain()
	e.clock.Advance(5 * time.Minute)
	e.drain()
	e.clock.Advance(time.Hour)
	e.drain()
	if got, want := e.opsString(), "post "+r.ID+", reply m1, post "+r.ID+", reply m1"; got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
	if len(e.chat.replies) != 2 || !strings.HasPrefix(e.chat.replies[1], "Reminder 2 of 2:") {
		t.Fatalf("replies: %q", e.chat.replies)
	}
	cards := e.cards(r.ID)
	if len(cards) != 2 || cards[1] != (storage.Card{Platform: "slack", Conversation: "C9", MessageID: "m2"}) {
		t.Fatalf("cards: %+v", cards)
	}
}

func TestRemindersAndEscalationStopAtDecision(t *testing.T) {
	e := newRemindEnv(t)
	r := e.create()
	e.drain()
	e.vote(r, "alice")
	e.vote(r, "bob") // approved
	e.drain()
	e.clock.Advance(time.Hour)
	e.drain()
	if got, want := e.opsString(), "post "+r.ID+", update "+r.ID+", update "+r.ID; got != want {
		t.Fatalf("calls after the decision:\n got %s\nwant %s", got, want)
	}
	if left := testenv.DueOutbox(t, e.store, ""); len(left) != 0 {
		t.Fatalf("entries left: %d", len(left))
	}
}

// An escalated card is updated with the request, and a decision after the
// escalation was due still posts it (it shows the outcome).
func TestEscalatedCardIsUpdated(t *testing.T) {
	e := newRemindEnv(t)
	r := e.create()
	e.drain()
	e.clock.Advance(15 * time.Minute)
	e.vote(r, "alice") // queued before the escalation is delivered
	e.drain()
	// One pass delivers the cards, then the reminders.
	want := "post " + r.ID + ", post " + r.ID + ", update " + r.ID + ", update " + r.ID + ", reply m1"
	if got := e.opsString(); got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
	var convs []string
	for _, c := range e.chat.calls {
		if c.op == "update" {
			convs = append(convs, c.conversation)
		}
	}
	if strings.Join(convs, " ") != "C1 C9" {
		t.Fatalf("updated: %v", convs)
	}
}

// A reminder whose reply fails is retried with backoff and not repeated
// once it succeeded; a card gone from the platform skips that reminder.
func TestReminderFailures(t *testing.T) {
	e := newRemindEnv(t)
	r := e.create()
	e.drain()
	e.clock.Advance(10 * time.Minute)
	e.chat.fail("reply", errors.New("boom"))
	e.drain()
	e.clock.Advance(BackoffBase)
	e.drain()
	if got, want := e.opsString(), "post "+r.ID+", reply m1(failed), reply m1"; got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
	e.clock.Advance(10 * time.Minute)
	e.chat.fail("reply", verdict{Failure{Kind: Gone}})
	e.drain()
	e.clock.Advance(time.Hour)
	e.drain()
	if n := len(e.chat.replies); n != 1 {
		t.Fatalf("replies: %d", n)
	}
	if left := testenv.DueOutbox(t, e.store, approvals.KindRemindPrefix); len(left) != 0 {
		t.Fatalf("reminders left: %d", len(left))
	}
}

// A reminder waits for its card to be posted.
func TestReminderWaitsForTheCard(t *testing.T) {
	e := newRemindEnv(t)
	r := e.create()
	e.chat.fail("post", errors.New("down"), errors.New("down"), errors.New("down"))
	e.clock.Advance(10 * time.Minute)
	e.drain()
	if len(e.chat.replies) != 0 {
		t.Fatal("replied without a card")
	}
	for range 4 { // until 14m: before the escalation
		e.clock.Advance(time.Minute)
		e.drain()
	}
	if len(e.cards(r.ID)) != 1 || len(e.chat.replies) != 1 {
		t.Fatalf("cards %d, replies %d", len(e.cards(r.ID)), len(e.chat.replies))
	}
}

func TestReminderTextNamesWhoCouldStillApprove(t *testing.T) {
	a := &policy.Action{Approvers: policy.Approvers{Users: []string{"dana@example.com", "sub-erin"}, MinApprovals: 2}, Remind: &policy.Remind{Max: 1}}
	r := storage.Request{Action: "deploy", MinApprovals: 2, Requester: storage.Requester{Person: "octocat"},
		Votes: []storage.Vote{{Decision: storage.DecisionApprove, Approver: storage.Approver{Subject: "sub-x", Email: "Dana@example.com"}}}}
	want := "Reminder: Approval requested: deploy for octocat is still pending, 1 more approval needed. Who can approve: sub-erin."
	if got := ReminderText(r, a, 1); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// newBreakGlassEnv: "deploy" has break_glass for oncall, reviewed by one
// of sre within 24h, and is announced in C1.
func newBreakGlassEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	a := e.svc.Policy().Actions["deploy"]
	a.BreakGlass = &policy.BreakGlass{
		Groups: []string{"oncall"},
		Review: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
		Within: 24 * time.Hour,
	}
	return e
}

func (e *env) breakGlass() storage.Request {
	e.t.Helper()
	r, _, err := e.svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "github", Subject: "repo:acme/api", Person: "octocat"},
		Action:    "deploy", Reason: "prod is down", BreakGlass: true, Groups: []string{"oncall"}, GroupsClaim: "groups",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// An overdue break-glass review is announced once in its card's thread,
// naming the request, the requester and the reviewers.
func TestOverdueReviewAnnouncedInItsThread(t *testing.T) {
	e := newBreakGlassEnv(t)
	bg := e.breakGlass()
	e.drain()
	review := e.cards(bg.BreakGlass.Review)
	if len(review) != 1 {
		t.Fatalf("review cards: %+v", review)
	}
	e.clock.Set(bg.BreakGlass.Due.Add(-time.Second))
	if _, err := e.svc.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if len(e.chat.replies) != 0 {
		t.Fatalf("replies before due: %q", e.chat.replies)
	}
	e.clock.Set(bg.BreakGlass.Due)
	if _, err := e.svc.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.drain()
	e.clock.Advance(48 * time.Hour)
	if _, err := e.svc.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.drain()
	var replied []string
	for _, c := range e.chat.calls {
		if c.op == "reply" {
			replied = append(replied, c.request+" "+c.conversation)
		}
	}
	if len(replied) != 1 || replied[0] != review[0].MessageID+" C1" {
		t.Fatalf("replies to %v, want one to the review card %s in C1", replied, review[0].MessageID)
	}
	want := "BREAK-GLASS review overdue: request " + bg.ID + " (deploy) by octocat was approved without votes at 2026-03-01 12:00 UTC" +
		" and was due for review by 2026-03-02 12:00 UTC. It is still not reviewed: review " + bg.BreakGlass.Review +
		" needs 1 more approval. Reviewers: members of sre."
	if got := e.chat.replies[0]; got != want {
		t.Fatalf("announcement:\n got %s\nwant %s", got, want)
	}
}

// The announcement reports what is on the record: a review approved
// before it was delivered still gets it, saying how the review ended.
func TestOverdueAnnouncementAfterReview(t *testing.T) {
	e := newBreakGlassEnv(t)
	bg := e.breakGlass()
	e.drain()
	e.clock.Set(bg.BreakGlass.Due)
	if _, err := e.svc.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	review, err := e.svc.Get(context.Background(), bg.BreakGlass.Review)
	if err != nil {
		t.Fatal(err)
	}
	e.vote(review, "alice")
	e.drain()
	if len(e.chat.replies) != 1 || !strings.HasSuffix(e.chat.replies[0], "Review "+review.ID+" has since been approved.") {
		t.Fatalf("replies: %q", e.chat.replies)
	}
	if left := testenv.DueOutbox(t, e.store, ""); len(left) != 0 {
		t.Fatalf("entries left: %+v", left)
	}
}
