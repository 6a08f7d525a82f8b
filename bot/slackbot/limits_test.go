package slackbot

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatlimit"
)

// TestClickFloodIsLimitedPerAccount: a linked Slack user clicking far more
// than limits.clicks_per_minute gets at most that many clicks to
// approvals (each one a vote.rejected record here, as the user may not
// approve), and one private "try again" message for all the others (each
// costs a chat.postEphemeral, so a flood must not cost one a click); the
// audit log grows by the limit, not by the flood. Another account is not
// affected, and a minute later the account may click again.
func TestClickFloodIsLimitedPerAccount(t *testing.T) {
	const limit = 4
	e := newEnv(t)
	e.bot.opts.Clicks = chatlimit.New(limit, e.clock)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UEVE", identity("eve", "dev")) // linked, not an approver
	before := len(e.Records())

	const flood = 5 * limit
	for range flood {
		e.click("UEVE", r.ID, ActionApprove, "C1")
	}
	var replies []string
	for range limit + 1 {
		replies = append(replies, e.slack.NextEphemeral(t).Form.Get("text"))
	}
	e.slack.NoEphemeral(t)
	e.CheckClickFlood(replies, limit, before) // limit counted, one told to wait
	if n := len(e.links.askedAbout()); n != limit {
		t.Errorf("the identity of %d clicks was looked up, want %d", n, limit)
	}
	if got := e.bot.opts.Clicks.Refused(); got != flood-limit {
		t.Errorf("limiter counted %d refusals, want %d", got, flood-limit)
	}

	// Another account clicks as usual.
	e.links.link("UALICE", identity("alice", "sre"))
	e.click("UALICE", r.ID, ActionApprove, "C1")
	if text := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(text, "counted (1 of 2)") {
		t.Errorf("alice's click: %q", text)
	}

	// Over the limit, a slash command is answered with the
	// acknowledgement; help does not count.
	rec := e.postSigned(CommandsPath, command("UEVE", "whoami"))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK ||
		body["response_type"] != "ephemeral" || !strings.Contains(body["text"], "Try again in") {
		t.Errorf("limited command: %d %s", rec.Code, rec.Body)
	}
	if rec := e.postSigned(CommandsPath, command("UEVE", "help")); !strings.Contains(rec.Body.String(), "/signoff pending") {
		t.Errorf("help while limited: %s", rec.Body)
	}
	e.slack.NoEphemeral(t)

	// The same limit holds over Socket Mode (eve was told this minute
	// already, so nothing is posted).
	refused := e.bot.opts.Clicks.Refused()
	ack := &recordingAcker{}
	evt := interactiveEvent(testTeam, "UEVE", "C1", ActionApprove, r.ID, "env-limit")
	e.bot.handleSocketEvent(&evt, ack)
	e.bot.work.Wait()
	e.slack.NoEphemeral(t)
	if got := e.bot.opts.Clicks.Refused(); got != refused+1 {
		t.Errorf("the Socket Mode click was not refused by the limit: %d refusals, want %d", got, refused+1)
	}
	if got := len(e.RecordsOf(audit.TypeVoteRejected)); got != limit {
		t.Errorf("a limited Socket Mode click reached approvals: %d vote.rejected records", got)
	}

	// A minute later the bucket is full again.
	e.clock.Advance(time.Minute)
	e.click("UEVE", r.ID, ActionApprove, "C1")
	if text := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(text, "Not counted") {
		t.Errorf("a minute later: %q", text)
	}
}

// TestReasonDialogCountsAgainstTheLimit: a dialog submission is a click
// too; over the limit it casts no vote, and the refusal comes back in the
// acknowledgement, on the dialog's reason field: the dialog stays open
// with what the person typed (an empty acknowledgement would close it as
// if the vote were taken), and telling them costs no call to Slack. That
// holds over HTTP and Socket Mode, also after a double click has used up
// the minute's "try again" reply.
func TestReasonDialogCountsAgainstTheLimit(t *testing.T) {
	e := newEnv(t)
	e.bot.opts.Clicks = chatlimit.New(1, e.clock)
	r := e.Create("restart", nil, "")
	e.links.link("UALICE", identity("alice", "sre"))
	meta, _ := json.Marshal(reasonMetadata{RequestID: r.ID, Decision: "deny", Channel: "C2"})
	cb := slack.InteractionCallback{
		Type: slack.InteractionTypeViewSubmission, Team: slack.Team{ID: testTeam},
		User: slack.User{ID: "UALICE", TeamID: testTeam}, TriggerID: "t",
		View: slack.View{CallbackID: ReasonCallbackID, PrivateMetadata: string(meta), State: &slack.ViewState{
			Values: map[string]map[string]slack.BlockAction{reasonBlockID: {reasonBlockID: {Value: "broken"}}},
		}},
	}
	wantRefusedOnTheDialog := func(how string, body []byte) {
		t.Helper()
		var resp slack.ViewSubmissionResponse
		if err := json.Unmarshal(body, &resp); err != nil || resp.ResponseAction != slack.RAErrors || !strings.Contains(resp.Errors[reasonBlockID], "Try again in") {
			t.Errorf("%s: a limited submission is acknowledged with %s, want the refusal on the reason field", how, body)
		}
		e.bot.work.Wait()
		if got := e.Get(r.ID); len(got.Votes) != 0 {
			t.Fatalf("%s: a limited submission voted: %+v", how, got.Votes)
		}
	}

	e.click("UALICE", r.ID, ActionDeny, "C2") // opens the dialog: the one click allowed
	if got := e.slack.OK("views.open"); len(got) != 1 {
		t.Fatalf("views.open calls: %d", len(got))
	}
	e.click("UALICE", r.ID, ActionDeny, "C2") // a double click: over the limit, told
	if text := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(text, "Try again in") {
		t.Errorf("limited click: %q", text)
	}

	payload, _ := json.Marshal(cb)
	rec := e.postSigned(InteractionsPath, url.Values{"payload": {string(payload)}}.Encode())
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("limited submission over HTTP: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	wantRefusedOnTheDialog("HTTP", rec.Body.Bytes())

	ack := &recordingAcker{}
	evt := socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb, Request: &socketmode.Request{EnvelopeID: "env-dialog"}}
	e.bot.handleSocketEvent(&evt, ack)
	if len(ack.payloads) != 1 || ack.payloads[0] == nil {
		t.Fatalf("socket mode acks: %+v", ack.payloads)
	}
	body, _ := json.Marshal(ack.payloads[0])
	wantRefusedOnTheDialog("Socket Mode", body)
	e.slack.NoEphemeral(t)

	e.clock.Advance(time.Minute)
	if resp := e.bot.acceptInteraction(cb, socketSource); resp != nil {
		t.Fatalf("a submission within the limit is refused: %+v", resp)
	}
	e.bot.work.Wait()
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Fatalf("after a minute the submission did not vote: %+v", got.Votes)
	}
}
