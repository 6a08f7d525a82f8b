package slackbot

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

func TestApproveQuorumAcrossTwoUsers(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	e.links.link("UALICE", identity("alice", "sre"))
	e.links.link("UBOB", identity("bob", "sre"))

	e.click("UALICE", r.ID, ActionApprove, "C1")
	msg := e.slack.NextEphemeral(t)
	if msg.Form.Get("channel") != "C1" || msg.Form.Get("user") != "UALICE" || !strings.Contains(msg.Form.Get("text"), "counted (1 of 2); 1 more needed") {
		t.Errorf("reply to alice: %v", msg.Form)
	}
	e.Deliver()
	if s := sectionText(blockByID(blocksOf(t, e.slack.OK("chat.update")[0]), "status")); !strings.Contains(s, "1 of 2 approvals") {
		t.Errorf("card after alice: %q", s)
	}

	e.click("UBOB", r.ID, ActionApprove, "C1")
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "the request is approved") {
		t.Errorf("reply to bob: %q", msg)
	}
	e.Deliver()
	updates := e.slack.OK("chat.update")
	final := blocksOf(t, updates[len(updates)-1])
	if s := sectionText(blockByID(final, "status")); !strings.Contains(s, "*Approved*") || !strings.Contains(s, "alice@example.com approved") || !strings.Contains(s, "bob@example.com approved") {
		t.Errorf("final card: %q", s)
	}
	if blockByID(final, "actions") != nil {
		t.Error("buttons left on the approved card")
	}

	// The vote records the click's trigger id (blockActions numbers them
	// across the whole test binary, so only their shape is known here).
	if v := e.CheckApprovedByTwo(r.ID, teamAccount("UALICE"), "sub-alice"); !triggerIDShape.MatchString(v.Source) {
		t.Errorf("vote: %+v", v)
	}
}

func TestDenyPath(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	e.links.link("UALICE", identity("alice", "sre"))
	e.click("UALICE", r.ID, ActionDeny, "C1")
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "deny of *deploy-prod*") || !strings.Contains(msg, "the request is denied") {
		t.Errorf("reply: %q", msg)
	}
	if got := e.Get(r.ID); got.State != storage.StateDenied {
		t.Fatalf("state %s", got.State)
	}
	e.Deliver()
	final := blocksOf(t, e.slack.OK("chat.update")[0])
	if s := sectionText(blockByID(final, "status")); !strings.Contains(s, "*Denied*") || !strings.Contains(s, "alice@example.com denied") {
		t.Errorf("card: %q", s)
	}
	if blockByID(final, "actions") != nil {
		t.Error("buttons left on the denied card")
	}
}

// viewSubmission is a view_submission payload shaped like Slack's, for
// the reason dialog opened from a click.
func viewSubmission(team, user string, metadata, reason string) string {
	payload := map[string]any{
		"type":       "view_submission",
		"team":       map[string]any{"id": team, "domain": "acme"},
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": team},
		"api_app_id": "A0SIGNOFF", "token": "unused", "trigger_id": "7123.4744562912.feedface",
		"view": map[string]any{
			"id": "V0REASON", "team_id": team, "type": "modal", "callback_id": ReasonCallbackID,
			"private_metadata": metadata, "hash": "1772366400.abcd",
			"title":  map[string]any{"type": "plain_text", "text": "Deny request"},
			"blocks": []any{},
			"state": map[string]any{"values": map[string]any{
				"reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": reason}},
			}},
		},
		"response_urls": []any{}, "is_enterprise_install": false, "enterprise": nil,
	}
	raw, _ := json.Marshal(payload)
	return url.Values{"payload": {string(raw)}}.Encode()
}

func TestDenyWithRequiredReasonOpensDialog(t *testing.T) {
	e := newEnv(t)
	r := e.Create("restart", nil, "")
	e.Deliver()
	e.links.link("UALICE", identity("alice", "sre"))
	e.click("UALICE", r.ID, ActionDeny, "C2")

	opens := e.slack.OK("views.open")
	if len(opens) != 1 {
		t.Fatalf("%d views.open calls", len(opens))
	}
	view, _ := opens[0].JSON["view"].(map[string]any)
	if opens[0].JSON["trigger_id"] == "" || view["callback_id"] != ReasonCallbackID {
		t.Errorf("views.open: %v", opens[0].JSON)
	}
	meta, _ := view["private_metadata"].(string)
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatal("a vote counted before the reason was given")
	}
	e.slack.NoEphemeral(t)

	rec := e.postSigned(InteractionsPath, viewSubmission(testTeam, "UALICE", meta, "disk full <!channel>"))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("submission answered %d %q (an empty 200 closes the dialog)", rec.Code, rec.Body)
	}
	if msg := e.slack.NextEphemeral(t); msg.Form.Get("channel") != "C2" || !strings.Contains(msg.Form.Get("text"), "denied") {
		t.Errorf("reply: %v", msg.Form)
	}
	got := e.Get(r.ID)
	if got.State != storage.StateDenied || got.Votes[0].Reason != "disk full <!channel>" {
		t.Fatalf("request: %s %+v", got.State, got.Votes)
	}
	recs := e.RecordsOf(audit.TypeVoteDeny)
	if len(recs) != 1 || recs[0].Data["reason"] != "disk full <!channel>" {
		t.Errorf("vote.deny record: %+v", recs)
	}
	e.Deliver()
	card := renderedStrings(t, e.slack.OK("chat.update")[0])
	if !strings.Contains(card, "alice@example.com denied") || !strings.Contains(card, "disk full &lt;!channel&gt;") || strings.Contains(card, "<!channel>") {
		t.Errorf("card does not show the escaped reason:\n%s", card)
	}
}

func TestStepUpSendsSignInLink(t *testing.T) {
	e := newEnv(t)
	r := e.Create("break-glass", nil, "")
	e.links.link("UALICE", identity("alice", "sre"))
	e.click("UALICE", r.ID, ActionApprove, "C3")
	msg := e.slack.NextEphemeral(t).Form.Get("text")
	if !strings.Contains(msg, "<https://signoff.example.com/link/start?id=stepup-UALICE|Sign in to approve>") {
		t.Errorf("reply: %q", msg)
	}
	if stepUps := e.links.StepUps(); len(stepUps) != 1 || stepUps[0] != "UALICE:"+r.ID+":approve" {
		t.Errorf("step-ups: %v", stepUps)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Error("vote counted without the step-up sign-in")
	}
	if n := len(e.RecordsOf(audit.TypeVoteRejected)) + len(e.RecordsOf(audit.TypeVoteApprove)); n != 0 {
		t.Errorf("%d vote records", n)
	}
}

func TestClickRefusals(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	decided := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	e.links.link("UCAROL", identity("carol", "dev"))
	e.links.link("UOCTO", identity("octocat", "sre"))
	e.links.link("USTALE", identity("stale", "sre"))
	e.links.markStale("USTALE")
	e.click("UALICE", decided.ID, ActionDeny, "C1")
	e.slack.NextEphemeral(t)

	cases := []struct {
		name, user, request string
		reason, reply       string
	}{
		{"unlinked", "UNOBODY", r.ID, string(approvals.ReasonNotLinked), "<https://signoff.example.com/link/start?id=link-UNOBODY|Sign in to link your account>"},
		{"stale link", "USTALE", r.ID, string(approvals.ReasonStaleIdentity), "<https://signoff.example.com/link/start?id=relink-USTALE|"},
		{"wrong group", "UCAROL", r.ID, string(approvals.ReasonNotEligible), "carol@example.com may not approve deploy-prod"},
		{"self-approval", "UOCTO", r.ID, string(approvals.ReasonSelfApproval), "you asked for request " + r.ID + " yourself"},
		{"already decided", "UALICE", decided.ID, string(approvals.ReasonNotPending), "is already denied"},
		{"unknown request", "UALICE", "req_nope", string(approvals.ReasonUnknownRequest), "no request has id"},
	}
	for _, c := range cases {
		before := len(e.RecordsOf(audit.TypeVoteRejected))
		e.click(c.user, c.request, ActionApprove, "C1")
		msg := e.slack.NextEphemeral(t)
		if msg.Form.Get("user") != c.user || !strings.Contains(msg.Form.Get("text"), c.reply) {
			t.Errorf("%s: reply %q, want it to contain %q", c.name, msg.Form.Get("text"), c.reply)
		}
		recs := e.RecordsOf(audit.TypeVoteRejected)
		if len(recs) != before+1 {
			t.Errorf("%s: no vote.rejected record", c.name)
			continue
		}
		last := recs[len(recs)-1]
		if last.Data["reason"] != c.reason || last.RequestID != c.request || last.Actor.PlatformUser != c.user {
			t.Errorf("%s: record %+v", c.name, last)
		}
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Errorf("votes counted: %+v", got.Votes)
	}
	if n := len(e.RecordsOf(audit.TypeVoteApprove)); n != 0 {
		t.Errorf("%d vote.approve records", n)
	}
}

func TestIdPUnavailable(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	e.links.SetDown(true)
	e.click("UALICE", r.ID, ActionApprove, "C1")
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "could not be confirmed") {
		t.Errorf("reply: %q", msg)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Error("vote counted without an identity")
	}
}

func TestCallbackFromAnotherWorkspaceRefused(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	// The same user id, linked in our workspace, clicking from another.
	rec := e.postSigned(InteractionsPath, blockActions("T0OTHER", "UALICE", "C1", ActionApprove, r.ID))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", rec.Code)
	}
	recs := e.RecordsOf(audit.TypeCallbackRejected)
	if len(recs) != 1 || recs[0].Data["reason"] != "wrong_workspace" || recs[0].Actor.Workspace != "T0OTHER" {
		t.Errorf("records: %+v", recs)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Error("vote from another workspace counted")
	}
	e.slack.NoEphemeral(t)

	// A slash command from another workspace too.
	body := url.Values{"team_id": {"T0OTHER"}, "user_id": {"UALICE"}, "command": {"/signoff"}, "text": {"pending"}, "channel_id": {"C1"}}.Encode()
	if rec := e.postSigned(CommandsPath, body); rec.Code != http.StatusForbidden {
		t.Errorf("command status %d, want 403", rec.Code)
	}
}

func TestEnterpriseMustMatch(t *testing.T) {
	b := &Bot{opts: Options{TeamID: "T1", EnterpriseID: "E1"}}
	for _, c := range []struct{ team, ent, want string }{
		{"T1", "E1", ""}, {"T1", "", "wrong_enterprise"}, {"T1", "E2", "wrong_enterprise"}, {"T2", "E1", "wrong_workspace"},
	} {
		if got := b.tenantProblem(c.team, c.ent); string(got) != c.want {
			t.Errorf("tenantProblem(%s, %s) = %q, want %q", c.team, c.ent, got, c.want)
		}
	}
}

func TestShutdownWaitsForWork(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	e.click("UALICE", r.ID, ActionApprove, "C1")
	e.slack.NextEphemeral(t)
	if err := e.bot.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// After shutdown a click is acknowledged but not acted on.
	e.clock.Advance(time.Second)
	e.links.link("UBOB", identity("bob", "sre"))
	e.click("UBOB", r.ID, ActionApprove, "C1")
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Errorf("%d votes", len(got.Votes))
	}
}
