package teamsbot

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/policy"
)

// A reminder is a reply to the card's activity (POST …/activities/{card's
// id}, replyToId set); the escalation posts the card to the escalation
// channel, and later changes update it there too.
func TestReminderRepliesToCardAndEscalationChannel(t *testing.T) {
	e := newEnv(t)
	chanEsc := "19:e5c0000000000000000000000000000e@thread.tacv2"
	escPlace := teamstest.Place{Conversation: chanEsc, TeamID: teamOps, TeamName: "Ops", ChannelName: "escalations"}
	if rec := e.send(e.bf.Installed(escPlace, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("install: %d", rec.Code)
	}
	a := e.svc.Policy().Actions["deploy-prod"]
	a.Remind = &policy.Remind{Every: 10 * time.Minute, Max: 1}
	a.Escalate = &policy.Escalate{After: 20 * time.Minute, Notify: policy.Notify{Teams: []string{chanEsc}}}

	r := e.Create("deploy-prod", deployParams(), "ship it")
	e.Deliver()
	card := e.Get(r.ID).Cards[0]

	e.clock.Advance(10 * time.Minute)
	e.Deliver()
	var reply *teamstest.Call
	for _, c := range e.bf.OK(http.MethodPost) {
		if c.ActivityID == card.MessageID && c.Conversation == chanOps {
			reply = &c
		}
	}
	if reply == nil {
		t.Fatalf("no reply to the card's activity %s: %+v", card.MessageID, e.bf.Calls())
	}
	if reply.Body["replyToId"] != card.MessageID {
		t.Errorf("replyToId %v, want %s", reply.Body["replyToId"], card.MessageID)
	}
	if text, _ := reply.Body["text"].(string); !strings.Contains(text, "Reminder") || !strings.Contains(text, "Who can approve: members of sre") {
		t.Errorf("reminder text: %q", text)
	}

	e.clock.Advance(10 * time.Minute)
	e.Deliver()
	posted := e.bf.Posted()
	if len(posted) != 2 || posted[1].Conversation != chanEsc {
		t.Fatalf("cards posted: %+v", posted)
	}
	e.clock.Advance(time.Hour)
	e.ExpireDue()
	e.Deliver()
	var updated []string
	for _, c := range e.bf.OK(http.MethodPut) {
		updated = append(updated, c.Conversation)
	}
	if strings.Join(updated, " ") != chanOps+" "+chanEsc {
		t.Fatalf("updated after the expiry: %v", updated)
	}
}

// A break-glass review still pending when it is due is announced again
// once, as a reply to the review card's activity.
func TestOverdueBreakGlassReviewReply(t *testing.T) {
	e := newEnv(t)
	bg, card := e.BreakGlassReview("deploy-prod", deployParams(), "prod is down")
	replies := func() []teamstest.Call {
		var out []teamstest.Call
		for _, c := range e.bf.OK(http.MethodPost) {
			if c.Body["replyToId"] != nil {
				out = append(out, c)
			}
		}
		return out
	}
	for range 2 {
		e.clock.Set(bg.BreakGlass.Due.Add(time.Hour))
		e.ExpireDue()
		e.Deliver()
	}
	got := replies()
	if len(got) != 1 || got[0].ActivityID != card.MessageID || got[0].Conversation != chanOps || got[0].Body["replyToId"] != card.MessageID {
		t.Fatalf("replies: %+v, want one to the review card %s", got, card.MessageID)
	}
	if text, _ := got[0].Body["text"].(string); !strings.Contains(text, "BREAK-GLASS review overdue: request "+bg.ID) || !strings.Contains(text, "Reviewers: members of sre-leads.") {
		t.Errorf("announcement: %q", text)
	}
}
