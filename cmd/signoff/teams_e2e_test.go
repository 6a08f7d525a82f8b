package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// teamsE2EConfig: dev mode (approvers link at the dev issuer) with both a
// Slack workspace (slacktest) and a Teams tenant (the Bot Framework
// stand-in); deploy needs two approvals and is announced on both.
const teamsE2EConfig = `listen: 127.0.0.1:0
` + devRequestersYAML + `auditors: {groups: [audit]}
slack:
  bot_token: xoxb-e2e
  signing_secret: ` + slackE2ESecret + `
  team_id: T0E2E
  api_url: %SLACK%
teams:
  app_id: %APPID%
  app_password: %APPPASSWORD%
  tenant_ids: [%TENANT%]
  openid_metadata_url: %METADATA%
  token_url: %TOKEN%
  service_url_hosts: [127.0.0.1]   # the stand-in's Bot Connector
actions:
` + deployYAML + `    approvers: {groups: [sre], min_approvals: 2}
    notify: {slack: [C1], teams: ["%CONV%"]}
dev:
  approvers:
    - {name: alice, email: alice@example.com, groups: [sre]}
    - {name: bob, email: bob@example.com, groups: [sre]}
log: {level: warn}
`

const teamsE2EConversation = "19:deploys0e2e@thread.tacv2"

// sendActivity posts an activity to /teams/messages as the Bot Connector
// does (with its signed bearer token) and returns the answer's body.
func sendActivity(t *testing.T, base string, bf *teamstest.Server, activity map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(activity)
	req, _ := http.NewRequest(http.MethodPost, base+"/teams/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", bf.Authorization(activity))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /teams/messages answered %d: %s", resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// signIn opens a sign-in link and signs in as person at the dev issuer.
func signIn(t *testing.T, base, link, person string) {
	t.Helper()
	b := newConsoleBrowser(t, base)
	resp, body := b.open(link)
	page, action, csrf := signInPageRE.FindStringSubmatch(body), signInActRE.FindStringSubmatch(body), consoleCSRFRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || page == nil || action == nil || csrf == nil {
		t.Fatalf("sign-in page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	target, _ := resp.Request.URL.Parse(html.UnescapeString(action[1]))
	_, body = b.read(b.c.PostForm(target.String(), url.Values{"page": {page[1]}, "csrf": {csrf[1]}, "person": {person}}))
	if !strings.Contains(body, `data-outcome="linked"`) {
		t.Fatalf("sign-in as %s ended on:\n%s", person, body)
	}
}

// TestTeamsEndToEnd is the Teams issue's "done when": a CI request appears
// as an Adaptive Card in the stand-in Teams (and as a card in Slack), two
// linked approvers approve by verified invokes, both cards show the final
// state, `signoff request --wait` exits 0, and the audit log holds every
// step with the Teams tenant, user and activity ids.
func TestTeamsEndToEnd(t *testing.T) {
	clearCIEnv(t)
	slack := newSlackStandIn(t)
	bf := teamstest.NewServer(teamstest.Options{})
	t.Cleanup(bf.Close)
	yaml := strings.NewReplacer("%SLACK%", slack.URL(), "%APPID%", bf.AppID(), "%APPPASSWORD%", bf.AppPassword(),
		"%TENANT%", bf.TenantID(), "%METADATA%", bf.OpenIDMetadataURL(), "%TOKEN%", bf.TokenURL(), "%CONV%", teamsE2EConversation).Replace(teamsE2EConfig)
	cfgPath := writeConfig(t, yaml)
	ts := startServeConfig(t, cfgPath, true)
	ts.logOnFailure(t)

	place := teamstest.Place{Conversation: teamsE2EConversation, TeamID: "19:team0e2e@thread.tacv2", TeamName: "Platform", ChannelName: "deploys"}
	alice, bob := teamstest.NewUser("alice"), teamstest.NewUser("bob")
	// Teams' roster of the channel: before a link is saved, signoff asks
	// it who owns the clicking account, and the email it names must be
	// the one the approver signs in with at the dev issuer.
	bf.AddMember(teamsE2EConversation, alice.Member("alice@example.com"))
	bf.AddMember(teamsE2EConversation, bob.Member("bob@example.com"))
	// Installing the bot in the team tells signoff the conversation's
	// service URL.
	sendActivity(t, ts.base, bf, bf.BotAdded(place, alice))

	tok := devToken(t, ts)
	_, result := runAsync(requestArgs(ts, tok, "--reason", "release [click](https://evil)", "--wait", "--timeout", "2m")...)
	var cardID, id string
	var approveData map[string]any
	waitFor(t, 30*time.Second, "the Adaptive Card in Teams", func() bool {
		for _, c := range bf.Posted() {
			if c.Conversation == teamsE2EConversation && c.Card() != nil {
				cardID = c.ActivityID
				approveData = buttonData(c.Card(), "approve")
				raw, _ := json.Marshal(c.Card())
				id = regexp.MustCompile(`req_[a-z0-9]+`).FindString(string(raw))
			}
		}
		return cardID != "" && id != "" && approveData != nil
	})
	waitFor(t, 30*time.Second, "the card in Slack", func() bool { return len(slack.find("chat.postMessage", id)) == 1 })

	click := func(u teamstest.User) string {
		out := sendActivity(t, ts.base, bf, bf.Invoke(teamstest.Click{Place: place, User: u, ReplyToID: cardID, Verb: "approve", Data: approveData}))
		raw, _ := json.Marshal(out)
		return string(raw)
	}
	// First clicks: not linked yet; the answer carries a sign-in link.
	for _, u := range []teamstest.User{alice, bob} {
		answer := click(u)
		link := linkURLRE.FindString(strings.ReplaceAll(answer, `\u0026`, "&"))
		if link == "" {
			t.Fatalf("unlinked click answered without a sign-in link: %s", answer)
		}
		signIn(t, ts.base, link, u.Name)
	}
	// Linked now: the clicks count.
	for _, u := range []teamstest.User{alice, bob} {
		if answer := click(u); !strings.Contains(answer, "application/vnd.microsoft.card.adaptive") {
			t.Fatalf("linked click by %s answered %s", u.Name, answer)
		}
	}
	if res := awaitCommand(t, result); res.code != 0 {
		t.Fatalf("request --wait exited %d:\n%s", res.code, res.stderr)
	}

	// Both cards end in the same final state.
	waitFor(t, 30*time.Second, "the final Teams card", func() bool {
		for _, c := range bf.OK(http.MethodPut) {
			raw, _ := json.Marshal(c.Card())
			if c.ActivityID == cardID && strings.Contains(string(raw), "Approved") && !strings.Contains(string(raw), `"verb":"approve"`) {
				return true
			}
		}
		return false
	})
	slack.waitApprovedCard(t, id, "the final Slack card")
	// The reason reaches the card only as plain text: a TextRun, which
	// Teams never reads as markdown, and nowhere as a live link.
	for _, c := range bf.Posted() {
		if where := markdownSink(c.Card(), "](https://evil)"); where != "" {
			t.Fatalf("requester markdown reached a markdown field of the Teams card: %s", where)
		}
	}

	recs := requestAudit(t, ts, id)
	votes, refused := 0, 0
	for _, r := range recs {
		switch r.Type {
		case audit.TypeVoteApprove:
			votes++
			if r.Actor.Platform != "teams" || r.Actor.Workspace != bf.TenantID() || !strings.HasPrefix(r.Actor.PlatformUser, "aad-") || r.Source == "" {
				t.Fatalf("vote record without Teams' ids: %+v", r)
			}
		case audit.TypeVoteRejected:
			refused++ // the two clicks before linking
		}
	}
	if votes != 2 || refused != 2 || !hasType(recs, audit.TypeRequestApproved) {
		t.Fatalf("audit for %s: %v", id, testenv.AuditTypes(recs))
	}
}

// buttonData finds the Action.Execute with verb in a card and returns the
// data Teams sends back when it is pressed.
func buttonData(node any, verb string) map[string]any {
	switch v := node.(type) {
	case map[string]any:
		if v["type"] == "Action.Execute" && v["verb"] == verb {
			data, _ := v["data"].(map[string]any)
			return data
		}
		for _, child := range v {
			if d := buttonData(child, verb); d != nil {
				return d
			}
		}
	case []any:
		for _, child := range v {
			if d := buttonData(child, verb); d != nil {
				return d
			}
		}
	}
	return nil
}

// markdownSink names the first element (other than a TextRun, which is
// never markdown) whose text contains needle, or "".
func markdownSink(node any, needle string) string {
	switch v := node.(type) {
	case map[string]any:
		if v["type"] == "TextRun" {
			return ""
		}
		for k, child := range v {
			if str, ok := child.(string); ok && strings.Contains(str, needle) {
				return fmt.Sprintf("%v.%s", v["type"], k)
			}
			if w := markdownSink(child, needle); w != "" {
				return w
			}
		}
	case []any:
		for _, child := range v {
			if w := markdownSink(child, needle); w != "" {
				return w
			}
		}
	}
	return ""
}
