package slackbot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

func command(user, text string) string {
	return url.Values{
		"token": {"unused"}, "team_id": {testTeam}, "team_domain": {"acme"}, "channel_id": {"C9"}, "channel_name": {"ops"},
		"user_id": {user}, "user_name": {strings.ToLower(user)}, "command": {SlashCommand}, "text": {text},
		"api_app_id":   {"A0SIGNOFF"},
		"response_url": {"https://hooks.slack.com/commands/" + testTeam + "/1/abc"},
		"trigger_id":   {fmt.Sprintf("7001.4744562912.%x", triggerSeq.Add(1))},
	}.Encode()
}

func TestCommandHelp(t *testing.T) {
	e := newEnv(t)
	for _, text := range []string{"", "help", "frobnicate <!channel>"} {
		rec := e.postSigned(CommandsPath, command("UALICE", text))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("%q: %d %s", text, rec.Code, rec.Body)
		}
		if body["response_type"] != "ephemeral" || !strings.Contains(body["text"], "/signoff pending") || strings.Contains(body["text"], "<!channel>") {
			t.Errorf("%q: answer %v", text, body)
		}
	}
}

func TestCommandLink(t *testing.T) {
	e := newEnv(t)
	rec := e.postSigned(CommandsPath, command("UALICE", "link"))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("ack: %d %q", rec.Code, rec.Body)
	}
	msg := e.slack.NextEphemeral(t)
	if msg.Form.Get("channel") != "C9" || msg.Form.Get("user") != "UALICE" ||
		!strings.Contains(msg.Form.Get("text"), "<https://signoff.example.com/link/start?id=link-UALICE|Sign in to link your account>") {
		t.Errorf("reply: %v", msg.Form)
	}
}

func TestCommandWhoami(t *testing.T) {
	e := newEnv(t)
	e.postSigned(CommandsPath, command("UALICE", "whoami"))
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "not linked") {
		t.Errorf("unlinked whoami: %q", msg)
	}
	err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: "slack", Workspace: testTeam, PlatformUser: "UALICE",
		Issuer: idpIssuer, Subject: "sub-alice", Email: "alice@example.com", Groups: []string{"sre", "oncall"},
		LinkedAt: t0.Add(-72 * time.Hour), VerifiedAt: t0.Add(-3 * time.Hour), MatchedBy: "email",
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.postSigned(CommandsPath, command("UALICE", "whoami"))
	msg := e.slack.NextEphemeral(t).Form.Get("text")
	for _, want := range []string{"*alice@example.com*", "sub-alice", "(3d ago)", "3h ago", "sre, oncall"} {
		if !strings.Contains(msg, want) {
			t.Errorf("whoami lacks %q: %q", want, msg)
		}
	}
}

func TestCommandPending(t *testing.T) {
	e := newEnv(t)
	deploy := e.Create("deploy-prod", deployParams(), "")
	restart := e.Create("restart", nil, "")
	e.Deliver()
	e.links.link("UALICE", identity("alice", "sre"))
	e.links.link("UCAROL", identity("carol", "dev"))
	e.links.link("UOCTO", identity("octocat", "sre"))

	pending := func(user string) string {
		t.Helper()
		e.postSigned(CommandsPath, command(user, "pending"))
		return e.slack.NextEphemeral(t).Form.Get("text")
	}
	msg := pending("UALICE")
	if !strings.Contains(msg, "2 pending requests") || !strings.Contains(msg, deploy.ID) || !strings.Contains(msg, restart.ID) || !strings.Contains(msg, "in <#C1>") {
		t.Errorf("alice: %q", msg)
	}
	if msg := pending("UCAROL"); !strings.Contains(msg, "No pending request") {
		t.Errorf("carol (not an approver): %q", msg)
	}
	if msg := pending("UOCTO"); !strings.Contains(msg, "No pending request") {
		t.Errorf("octocat (the requester): %q", msg)
	}
	e.VoteAs(deploy.ID, identity("alice", "sre"), storage.DecisionApprove,
		approvals.Source{Platform: "slack", Workspace: testTeam, PlatformUser: "UALICE"})
	if msg := pending("UALICE"); !strings.Contains(msg, "1 pending request ") || strings.Contains(msg, deploy.ID) {
		t.Errorf("alice after voting: %q", msg)
	}
	if msg := pending("UNOBODY"); !strings.Contains(msg, "link-UNOBODY") {
		t.Errorf("unlinked: %q", msg)
	}
}
