package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
)

const slackE2ESecret = "e2e-signing-secret"

// slackE2EConfig: dev mode (its issuer is where approvers link) plus a
// Slack workspace pointed at a slacktest stand-in; deploy needs two
// approvals and is announced in channel C1.
const slackE2EConfig = `listen: 127.0.0.1:0
` + devRequestersYAML + `slack:
  bot_token: xoxb-e2e
  signing_secret: ` + slackE2ESecret + `
  team_id: T0E2E
  api_url: %API%
actions:
` + deployYAML + `    approvers: {groups: [sre], min_approvals: 2}
    notify: {slack: [C1]}
dev:
  approvers:
    - {name: alice, email: alice@example.com, groups: [sre]}
    - {name: bob, email: bob@example.com, groups: [sre]}
auditors: {groups: [audit]}
log: {level: warn}
`

// slackE2EScopes are the bot token scopes the stand-in's auth.test
// reports (Slack sends them in the X-OAuth-Scopes header): the ones
// signoff needs.
const slackE2EScopes = "chat:write,commands,users:read,users:read.email"

// slackStandIn is chattest's Slack Web API stand-in answering for
// workspace T0E2E: a direct message goes to a D… channel, auth.test names
// the workspace with slackE2EScopes, and users.info knows the accounts in
// users (U0ALICE and U0BOB to begin with): any other id is user_not_found.
type slackStandIn struct {
	*chattest.SlackAPI
	mu    sync.Mutex
	users map[string]slackAccount
}

// slackAccount is an account users.info answers for.
type slackAccount struct {
	ID, Team, Name, RealName, Email string
}

func newSlackStandIn(t *testing.T) *slackStandIn {
	s := &slackStandIn{users: map[string]slackAccount{}}
	s.addUser(slackAccount{ID: "U0ALICE", Team: "T0E2E", Name: "alice", RealName: "Alice", Email: "alice@example.com"})
	s.addUser(slackAccount{ID: "U0BOB", Team: "T0E2E", Name: "bob", RealName: "Bob", Email: "bob@example.com"})
	s.SlackAPI = chattest.NewSlackAPI(t, map[string]func(http.ResponseWriter, chattest.SlackCall){
		"auth.test": func(w http.ResponseWriter, _ chattest.SlackCall) {
			w.Header().Set("X-OAuth-Scopes", slackE2EScopes)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "signoff",
				"team_id": "T0E2E", "user_id": "U0SIGNOFF", "bot_id": "B0SIGNOFF", "is_enterprise_install": false,
			})
		},
		"users.info": func(w http.ResponseWriter, call chattest.SlackCall) {
			_ = json.NewEncoder(w).Encode(s.userInfo(call.Form.Get("user")))
		},
	}, chattest.DirectMessageChannels())
	return s
}

// addUser makes users.info know a (replacing an account of the same id).
func (s *slackStandIn) addUser(a slackAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[a.ID] = a
}

// userInfo is users.info's answer for id, in Slack's wire format.
func (s *slackStandIn) userInfo(id string) map[string]any {
	s.mu.Lock()
	a, ok := s.users[id]
	s.mu.Unlock()
	if !ok {
		return map[string]any{"ok": false, "error": "user_not_found"}
	}
	return map[string]any{"ok": true, "user": map[string]any{
		"id": a.ID, "team_id": a.Team, "name": a.Name, "deleted": false, "real_name": a.RealName,
		"tz": "Europe/Berlin", "is_bot": false, "is_restricted": false, "is_ultra_restricted": false,
		"profile": map[string]any{
			"email": a.Email, "real_name": a.RealName, "real_name_normalized": a.RealName,
			"display_name": a.Name, "display_name_normalized": a.Name, "team": a.Team,
		},
	}}
}

// find returns the form bodies of the calls of method that mention
// substr.
func (s *slackStandIn) find(method, substr string) []url.Values {
	var out []url.Values
	for _, c := range s.All(method) {
		if strings.Contains(c.Form.Encode(), url.QueryEscape(substr)) {
			out = append(out, c.Form)
		}
	}
	return out
}

// signedPost sends body to path the way Slack does: v0 signature over the
// timestamp and raw body.
func signedPost(t *testing.T, base, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	req.Header = chattest.SlackHeaders(slackE2ESecret, time.Now().Unix(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s answered %d", path, resp.StatusCode)
	}
}

var linkURLRE = regexp.MustCompile(`http://[0-9.:]+/link/start\?id=[A-Za-z0-9_-]+`)

// waitApprovedCard waits for a chat.update of request id's card that shows
// it approved, without its Approve button; what names the card in the
// failure.
func (s *slackStandIn) waitApprovedCard(t *testing.T, id, what string) {
	t.Helper()
	waitFor(t, 30*time.Second, what, func() bool {
		for _, u := range s.find("chat.update", id) {
			if strings.Contains(strings.ToLower(u.Encode()), "approved") && !strings.Contains(u.Get("blocks"), "signoff_approve") {
				return true
			}
		}
		return false
	})
}

// linkCommand is the form Slack posts when user (named name) types
// /signoff link in channel C1 of workspace T0E2E; response names the
// command's response URL and trigger is its trigger id.
func linkCommand(user, name, response, trigger string) string {
	return url.Values{
		"token": {"unused"}, "team_id": {"T0E2E"}, "team_domain": {"acme"}, "channel_id": {"C1"}, "channel_name": {"deploys"},
		"user_id": {user}, "user_name": {name}, "command": {"/signoff"}, "text": {"link"},
		"response_url": {"https://hooks.slack.com/commands/T0E2E/" + response + "/x"}, "trigger_id": {trigger},
	}.Encode()
}

// linkSlackUser runs `/signoff link` as user, opens the link it gets back
// and signs in as person at the dev issuer.
func linkSlackUser(t *testing.T, ts *testServer, slack *slackStandIn, user, person string) {
	t.Helper()
	signedPost(t, ts.base, "/slack/commands", linkCommand(user, person, "1", "1.2."+user))
	var link string
	waitFor(t, 20*time.Second, "the link message", func() bool {
		for _, c := range slack.find("chat.postEphemeral", user) {
			if m := linkURLRE.FindString(c.Encode()); m != "" {
				link = m
			}
			if m := linkURLRE.FindString(c.Get("text") + c.Get("blocks")); m != "" {
				link = m
			}
		}
		return link != ""
	})
	signIn(t, ts.base, link, person)
}

// clickPayload is a block_actions payload shaped like Slack's, from a
// member of workspace T0E2E.
func clickPayload(user, requestID, actionID, trigger string) string {
	return clickPayloadFrom(user, "T0E2E", requestID, actionID, trigger)
}

// clickPayloadFrom is clickPayload from an account of team userTeam (a
// Slack Connect member's own organisation when it is not T0E2E), clicked
// in workspace T0E2E.
func clickPayloadFrom(user, userTeam, requestID, actionID, trigger string) string {
	raw, _ := json.Marshal(map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": user, "team_id": userTeam},
		"team":       map[string]any{"id": "T0E2E", "domain": "acme"},
		"api_app_id": "A0SIGNOFF",
		"trigger_id": trigger,
		"container":  map[string]any{"type": "message", "message_ts": "1772366400.000001", "channel_id": "C1"},
		"channel":    map[string]any{"id": "C1", "name": "deploys"},
		"actions": []any{map[string]any{
			"action_id": actionID, "block_id": "actions", "type": "button", "value": requestID,
			"action_ts": "1772366400." + trigger,
		}},
	})
	return url.Values{"payload": {string(raw)}}.Encode()
}

// TestSlackEndToEnd is the Slack issue's "done when": a request created by
// CI appears as a card in the stand-in Slack, two linked approvers approve
// by signed clicks, the card shows the final state, `signoff request
// --wait` exits 0, and the audit log holds every step with Slack's user,
// team and callback ids.
func TestSlackEndToEnd(t *testing.T) {
	clearCIEnv(t)
	slack := newSlackStandIn(t)
	cfgPath := writeConfig(t, strings.ReplaceAll(slackE2EConfig, "%API%", slack.URL()))
	ts := startServeConfig(t, cfgPath, true)
	ts.logOnFailure(t)

	linkSlackUser(t, ts, slack, "U0ALICE", "alice")
	linkSlackUser(t, ts, slack, "U0BOB", "bob")

	tok := devToken(t, ts)
	_, result := runAsync(requestArgs(ts, tok, "--reason", "release <!channel>", "--wait", "--timeout", "2m")...)
	var id string
	waitFor(t, 30*time.Second, "the card in Slack", func() bool {
		posts := slack.find("chat.postMessage", "req_")
		if len(posts) == 0 {
			return false
		}
		id = regexp.MustCompile(`req_[a-z0-9]+`).FindString(posts[0].Encode())
		return id != ""
	})
	if posts := slack.find("chat.postMessage", id); len(posts) != 1 || posts[0].Get("channel") != "C1" || strings.Contains(posts[0].Encode(), url.QueryEscape("<!channel>")) {
		t.Fatalf("card posts %v", posts)
	}

	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "111"))
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "222"))
	if res := awaitCommand(t, result); res.code != 0 {
		t.Fatalf("request --wait exited %d:\n%s", res.code, res.stderr)
	}
	slack.waitApprovedCard(t, id, "the final card")

	recs := requestAudit(t, ts, id)
	var votes int
	for _, r := range recs {
		if r.Type == audit.TypeVoteApprove {
			votes++
			if r.Actor.Platform != "slack" || r.Actor.Workspace != "T0E2E" || !strings.HasPrefix(r.Actor.PlatformUser, "U0") || r.Source == "" {
				t.Fatalf("vote record without Slack's ids: %+v", r)
			}
		}
	}
	if votes != 2 || !hasType(recs, audit.TypeRequestCreated) || !hasType(recs, audit.TypeRequestApproved) {
		t.Fatalf("audit for %s: %v", id, testenv.AuditTypes(recs))
	}
}

// hasType reports whether one of recs is of type typ.
func hasType(recs []audit.Record, typ string) bool {
	return slices.Contains(testenv.AuditTypes(recs), typ)
}

// requestAudit reads one request's audit records from a running server
// the way an auditor does: signoff audit export --server with an
// auditor's token.
func requestAudit(t *testing.T, ts *testServer, id string) []audit.Record {
	t.Helper()
	return serverAudit(t, ts, "--request", id)
}

// serverAudit reads the audit records of a running server (all of them,
// or those args select) with signoff audit export --server and an
// auditor's token.
func serverAudit(t *testing.T, ts *testServer, args ...string) []audit.Record {
	t.Helper()
	auditor := devToken(t, ts, "--sub", "auditor", "--claim", `groups=["audit"]`)
	code, export, errOut := runCmd(t, append([]string{"audit", "export", "--server", ts.base, "--token", auditor}, args...)...)
	if code != 0 {
		t.Fatalf("audit export: %s", errOut)
	}
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(export), "\n") {
		if line == "" {
			continue
		}
		r, err := audit.ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}
