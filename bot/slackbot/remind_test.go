package slackbot

import (
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/policy"
)

// A reminder is a reply in the card's thread (thread_ts = the card's ts);
// the escalation posts the card to the escalation channel, and later
// changes update it there too.
func TestReminderInThreadAndEscalationChannel(t *testing.T) {
	e := newEnv(t)
	a := e.svc.Policy().Actions["deploy-prod"]
	a.Remind = &policy.Remind{Every: 10 * time.Minute, Max: 1}
	a.Escalate = &policy.Escalate{After: 20 * time.Minute, Notify: policy.Notify{Slack: []string{"C9ESC"}}}

	r := e.Create("deploy-prod", deployParams(), "ship it")
	e.Deliver()
	card := e.Get(r.ID).Cards[0]

	e.clock.Advance(10 * time.Minute)
	e.Deliver()
	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 2 {
		t.Fatalf("%d posts, want the card and the reminder", len(posts))
	}
	rem := posts[1].Form
	if rem.Get("channel") != "C1" || rem.Get("thread_ts") != card.MessageID {
		t.Fatalf("reminder not in the card's thread: channel %q thread_ts %q, card ts %q", rem.Get("channel"), rem.Get("thread_ts"), card.MessageID)
	}
	if text := rem.Get("text"); !strings.Contains(text, "deploy-prod") || !strings.Contains(text, "Who can approve: members of sre") {
		t.Fatalf("reminder text: %q", text)
	}
	if rem.Get("blocks") != "" {
		t.Errorf("a reminder carries no card: %q", rem.Get("blocks"))
	}

	e.clock.Advance(10 * time.Minute)
	e.Deliver()
	posts = e.slack.OK("chat.postMessage")
	if len(posts) != 3 || posts[2].Form.Get("channel") != "C9ESC" || posts[2].Form.Get("thread_ts") != "" || posts[2].Form.Get("blocks") == "" {
		t.Fatalf("escalation: %d posts, last %v", len(posts), posts[len(posts)-1].Form)
	}
	cards := e.Get(r.ID).Cards
	if len(cards) != 2 || cards[1].Conversation != "C9ESC" {
		t.Fatalf("cards: %+v", cards)
	}
	e.clock.Advance(time.Hour) // max 1: no more reminders; the request expires
	e.ExpireDue()
	e.Deliver()
	var updated []string
	for _, u := range e.slack.OK("chat.update") {
		updated = append(updated, u.Form.Get("channel"))
	}
	if strings.Join(updated, " ") != "C1 C9ESC" {
		t.Fatalf("updated after the expiry: %v", updated)
	}
	if n := len(e.slack.OK("chat.postMessage")); n != 3 {
		t.Fatalf("%d posts in all, want 3", n)
	}
}

// A break-glass review still pending when it is due is announced again
// once, in the thread of the review's card (thread_ts = its ts).
func TestOverdueBreakGlassReviewInThread(t *testing.T) {
	e := newEnv(t)
	bg, card := e.BreakGlassReview("deploy-prod", deployParams(), "prod is down")
	posts := len(e.slack.OK("chat.postMessage"))

	e.clock.Set(bg.BreakGlass.Due.Add(-time.Second))
	e.ExpireDue()
	e.Deliver()
	if n := len(e.slack.OK("chat.postMessage")); n != posts {
		t.Fatalf("%d posts before the review was due, want %d", n, posts)
	}
	for range 2 {
		e.clock.Set(bg.BreakGlass.Due.Add(time.Hour))
		e.ExpireDue()
		e.Deliver()
	}
	all := e.slack.OK("chat.postMessage")
	if len(all) != posts+1 {
		t.Fatalf("%d posts after the review was due, want %d", len(all), posts+1)
	}
	msg := all[posts].Form
	if msg.Get("channel") != "C1" || msg.Get("thread_ts") != card.MessageID {
		t.Fatalf("announcement not in the review card's thread: channel %q thread_ts %q, card ts %q", msg.Get("channel"), msg.Get("thread_ts"), card.MessageID)
	}
	want := "BREAK-GLASS review overdue: request " + bg.ID + " (deploy-prod) by octocat was approved without votes at "
	if text := msg.Get("text"); !strings.HasPrefix(text, want) || !strings.Contains(text, "still not reviewed") || !strings.Contains(text, "Reviewers: members of sre-leads.") {
		t.Fatalf("announcement: %q", text)
	}
}
