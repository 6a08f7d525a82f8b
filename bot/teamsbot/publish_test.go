package teamsbot

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
)

// newWitnessEnv is startEnv with a service that signs a checkpoint after
// every third record and publishes it to the witness conversations.
func newWitnessEnv(t *testing.T, conversations ...string) *env {
	t.Helper()
	return startEnv(t, chattest.WitnessOptions(policy.Notify{Teams: conversations}))
}

var preBlock = regexp.MustCompile("(?s)<pre>(.*)</pre>")

// Checkpoints reach the witness conversation in order: one the bot cannot
// reach yet (no service URL known) waits, a failure of the connector is
// retried through the outbox with backoff, and the later checkpoints wait
// behind the earlier ones. Each message holds the record line verbatim in
// a preformatted block, and the lines anchor the log.
func TestCheckpointsReachWitnessConversationInOrder(t *testing.T) {
	e := newWitnessEnv(t, chanNowhere)
	e.RecordBackups(3) // checkpoint at seq 4
	e.Deliver()
	if n := len(e.bf.Calls()); n != 0 {
		t.Fatalf("%d connector calls before the conversation is known", n)
	}
	if !strings.Contains(e.logs.String(), "could not be published to a Teams witness") || !strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("not logged as an error:\n%s", e.logs)
	}

	// The app is added to the conversation; the connector fails once.
	e.send(e.bf.BotAdded(teamstest.Place{Conversation: chanNowhere, Type: "groupChat"}, teamstest.NewUser("admin")))
	e.bf.Fail(http.MethodPost, teamstest.Answer{Status: http.StatusServiceUnavailable})
	e.clock.Advance(cards.Backoff(1))
	e.Deliver()
	e.RecordBackups(2) // checkpoint at seq 7, behind the one that failed
	e.Deliver()
	if n := len(e.bf.Calls()); n != 1 {
		t.Fatalf("%d connector calls, want the 1 that failed", n)
	}
	e.clock.Advance(cards.Backoff(2))
	e.Deliver()

	posts := e.bf.OK(http.MethodPost)
	if len(posts) != 2 {
		t.Fatalf("%d checkpoints posted, want 2", len(posts))
	}
	var texts []string
	for i, p := range posts {
		b := p.Body
		if p.Conversation != chanNowhere || b["type"] != "message" || b["textFormat"] != "xml" {
			t.Errorf("post %d: %s %v", i, p.Conversation, b)
		}
		text, _ := b["text"].(string)
		texts = append(texts, text)
	}
	e.CheckWitnessed(preBlock, texts, 4, 7)
}

// A conversation the app is not in is an error with a hint naming
// audit.publish.teams, and the checkpoint is kept.
func TestCheckpointToForbiddenConversationKept(t *testing.T) {
	e := newWitnessEnv(t, chanOps)
	e.send(e.bf.Installed(opsPlace, teamstest.NewUser("admin")))
	e.RecordBackups(3)
	e.bf.Fail(http.MethodPost, teamstest.Answer{Status: http.StatusForbidden})
	e.Deliver()
	left := testenv.DueOutbox(t, e.store, approvals.PublishKindPrefix("teams"))
	if len(left) != 1 || !strings.Contains(left[0].LastError, "audit.publish.teams") {
		t.Fatalf("entries: %+v", left)
	}
	e.clock.Advance(cards.Backoff(1))
	e.Deliver()
	if n := len(e.bf.OK(http.MethodPost)); n != 1 {
		t.Fatalf("%d checkpoints posted after the retry, want 1", n)
	}
}

// Whatever a record line holds, the message cannot carry markup.
func TestCheckpointHTMLIsInert(t *testing.T) {
	got := checkpointHTML(9, `{"x":"</pre><at>all</at><a href=\"https://evil\">x</a> & co"}`)
	for _, bad := range []string{"<at>", "<a href", "& co", "</pre><"} {
		if strings.Contains(got, bad) {
			t.Errorf("%q survives in %q", bad, got)
		}
	}
	if strings.Count(got, "<pre>") != 1 || strings.Count(got, "</pre>") != 1 || !strings.HasSuffix(got, "</pre>") {
		t.Errorf("text %q", got)
	}
}
