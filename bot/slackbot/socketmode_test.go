package slackbot

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/signoff-dev/signoff/approvals/audit"
)

type recordingAcker struct {
	mu   sync.Mutex
	acks []socketmode.Request
	// payloads holds the payload of each ack (nil when none).
	payloads []any
}

func (a *recordingAcker) Ack(req socketmode.Request, payload ...any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks = append(a.acks, req)
	var p any
	if len(payload) > 0 {
		p = payload[0]
	}
	a.payloads = append(a.payloads, p)
	return nil
}

func interactiveEvent(team, user, channel, actionID, requestID, envelope string) socketmode.Event {
	return socketmode.Event{
		Type: socketmode.EventTypeInteractive,
		Data: slack.InteractionCallback{
			Type:      slack.InteractionTypeBlockActions,
			Team:      slack.Team{ID: team, Domain: "acme"},
			User:      slack.User{ID: user, TeamID: team},
			Channel:   slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: channel}}},
			TriggerID: "7100.4744562912." + envelope,
			ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{
				{ActionID: actionID, BlockID: "actions", Value: requestID, ActionTs: "1772366400.000100"},
			}},
		},
		Request: &socketmode.Request{Type: socketmode.RequestTypeInteractive, EnvelopeID: envelope},
	}
}

// A click arriving over Socket Mode, dispatched by the library's own
// handler (no websocket), is voted like an HTTP one.
func TestSocketModeRoutesThroughLibraryHandler(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))

	api := slack.New("xoxb-test", slack.OptionAPIURL(e.slack.URL()), slack.OptionAppLevelToken("xapp-test"))
	h := socketmode.NewSocketmodeHandler(socketmode.New(api))
	e.bot.registerSocketHandlers(h)
	h.DispatchEvent(interactiveEvent(testTeam, "UALICE", "C1", ActionApprove, r.ID, "env-1"))

	msg := e.slack.NextEphemeral(t)
	if !strings.Contains(msg.Form.Get("text"), "counted (1 of 2)") {
		t.Errorf("reply: %q", msg.Form.Get("text"))
	}
	e.bot.work.Wait()
	got := e.Get(r.ID)
	if len(got.Votes) != 1 || got.Votes[0].Approver.PlatformUser != "UALICE" || got.Votes[0].Source != "7100.4744562912.env-1" {
		t.Fatalf("votes: %+v", got.Votes)
	}

	// A slash command the same way.
	h.DispatchEvent(socketmode.Event{
		Type:    socketmode.EventTypeSlashCommand,
		Data:    slack.SlashCommand{TeamID: testTeam, UserID: "UALICE", ChannelID: "C9", Command: SlashCommand, Text: "link"},
		Request: &socketmode.Request{Type: socketmode.RequestTypeSlashCommands, EnvelopeID: "env-2"},
	})
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "link-UALICE") {
		t.Errorf("link reply: %q", msg)
	}
	e.bot.work.Wait()
}

func TestSocketModeAcksEveryEnvelope(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	ack := &recordingAcker{}

	// From another workspace: acknowledged, refused, audited.
	evt := interactiveEvent("T0OTHER", "UALICE", "C1", ActionApprove, r.ID, "env-a")
	e.bot.handleSocketEvent(&evt, ack)
	// A slash command answered in the acknowledgement.
	help := socketmode.Event{
		Type:    socketmode.EventTypeSlashCommand,
		Data:    slack.SlashCommand{TeamID: testTeam, UserID: "UALICE", ChannelID: "C9", Command: SlashCommand, Text: "help"},
		Request: &socketmode.Request{Type: socketmode.RequestTypeSlashCommands, EnvelopeID: "env-b"},
	}
	e.bot.handleSocketEvent(&help, ack)
	// An event type signoff does not use.
	other := socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{Type: "events_api", EnvelopeID: "env-c"}}
	e.bot.handleSocketEvent(&other, ack)
	// A click, then Slack redelivering the same envelope.
	click := interactiveEvent(testTeam, "UALICE", "C1", ActionApprove, r.ID, "env-d")
	e.bot.handleSocketEvent(&click, ack)
	e.bot.handleSocketEvent(&click, ack)
	// A connection event without an envelope: nothing to acknowledge.
	e.bot.handleSocketEvent(&socketmode.Event{Type: socketmode.EventTypeConnected}, ack)
	e.bot.work.Wait()

	var ids []string
	for _, a := range ack.acks {
		ids = append(ids, a.EnvelopeID)
	}
	if strings.Join(ids, ",") != "env-a,env-b,env-c,env-d,env-d" {
		t.Errorf("acks: %v", ids)
	}
	if p, _ := ack.payloads[1].(map[string]string); p["response_type"] != "ephemeral" || !strings.Contains(p["text"], "/signoff link") {
		t.Errorf("help ack payload: %v", ack.payloads[1])
	}
	recs := e.RecordsOf(audit.TypeCallbackRejected)
	if len(recs) != 1 || recs[0].Data["reason"] != "wrong_workspace" || recs[0].Source != "socket_mode" {
		t.Errorf("callback.rejected: %+v", recs)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Errorf("%d votes, want 1", len(got.Votes))
	}
	e.slack.NextEphemeral(t)
	e.slack.NoEphemeral(t)
	if n := len(e.RecordsOf(audit.TypeVoteApprove)); n != 1 {
		t.Errorf("%d vote records", n)
	}
}

func TestRunSocketModeNeedsAppToken(t *testing.T) {
	e := newEnv(t)
	if err := e.bot.RunSocketMode(context.Background()); err == nil || !strings.Contains(err.Error(), "app_token") {
		t.Errorf("RunSocketMode without app token: %v", err)
	}
}
