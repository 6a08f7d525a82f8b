package slackbot

import (
	"regexp"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
)

// newWitnessEnv is newEnv with a service that signs a checkpoint after
// every third record and publishes it to the witness channels.
func newWitnessEnv(t *testing.T, channels ...string) *env {
	t.Helper()
	return startEnv(t, chattest.WitnessOptions(policy.Notify{Slack: channels}))
}

// codeBlock is the code block of a checkpoint message.
var codeBlock = regexp.MustCompile("(?s)```(.*)```")

// Checkpoints reach the witness channel in order, the record line verbatim
// in a code block: a failed post is retried through the outbox with
// backoff, and the next checkpoint waits behind it. The lines the channel
// holds anchor the log.
func TestCheckpointsReachWitnessChannelInOrder(t *testing.T) {
	e := newWitnessEnv(t, "C0AUDIT")
	e.RecordBackups(3) // checkpoint at seq 4
	e.slack.Fail("chat.postMessage", slackError("not_in_channel"))
	e.Deliver()
	entries := testenv.DueOutbox(t, e.store, approvals.PublishKindPrefix("slack"))
	if len(entries) != 1 || !strings.Contains(entries[0].LastError, "invite the signoff app to the channel listed in audit.publish.slack") {
		t.Fatalf("after a failed post: %+v", entries)
	}
	e.RecordBackups(2) // checkpoint at seq 7, behind the one that failed
	e.Deliver()
	if n := len(e.slack.All("chat.postMessage")); n != 1 {
		t.Fatalf("%d posts while the first checkpoint backs off, want the 1 that failed", n)
	}
	e.clock.Advance(cards.Backoff(1))
	e.Deliver()

	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 2 {
		t.Fatalf("%d checkpoints posted, want 2", len(posts))
	}
	var texts []string
	for i, p := range posts {
		f := p.Form
		if f.Get("channel") != "C0AUDIT" || f.Get("unfurl_links") != "false" || f.Get("unfurl_media") != "false" {
			t.Errorf("post %d: %v", i, f)
		}
		texts = append(texts, f.Get("text"))
	}
	e.CheckWitnessed(codeBlock, texts, 4, 7)
}

// Whatever a record line holds, the message cannot mention anyone, link
// anywhere or leave its code block.
func TestCheckpointTextIsInert(t *testing.T) {
	got := checkpointText(9, `{"x":"<!channel> <https://evil|click> & co"}`)
	for _, bad := range []string{"<!channel>", "<https://", "& co"} {
		if strings.Contains(got, bad) {
			t.Errorf("%q survives in %q", bad, got)
		}
	}
	if !strings.Contains(got, "seq 9") || strings.Count(got, "```") != 2 || !strings.HasSuffix(got, "```") {
		t.Errorf("text %q", got)
	}
}
