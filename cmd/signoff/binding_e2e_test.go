package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// The identity binding, end to end: a sign-in link goes to one chat
// account, whoever opens it signs in at the IdP, and signoff links the
// account only when the chat platform's own record of it names the
// person who signed in. The attack these tests replay: mallory, a member
// of the workspace but no approver, clicks Approve, gets a sign-in link
// for her chat account and passes it to alice, an approver, who opens it
// and signs in as herself. Before the binding, mallory's account then
// voted as alice.
//
// signoff runs as `serve --dev` with an idp section pointing at a real
// OpenID Provider on loopback (internal/testop); the chat platforms are
// the Slack and Teams stand-ins, which serve each account's email the way
// Slack's users.info and the Bot Connector's member lookup do.

// People at the test IdP.
var (
	bindingAlice   = testop.User{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Name: "Alice", Groups: []string{"sre"}}
	bindingMallory = testop.User{Username: "mallory", Password: "mallory-pw", Email: "mallory@example.com", Name: "Mallory", Groups: []string{"dev"}}
)

// bindingConfig: dev mode (requesters get dev tokens) with the approvers'
// IdP; %CHAT% is the chat platform's section and %NOTIFY% the action's
// notify. One approval from sre approves a deploy.
const bindingConfig = idpYAML + `  scopes: [openid, email, profile, groups]
` + devRequestersYAML + `auditors: {groups: [audit]}
%CHAT%
actions:
` + deployYAML + `    approvers: {groups: [sre], min_approvals: 1}
    notify: %NOTIFY%
log: {level: warn}
`

// bindingServer is signoff linking approvers at a test OP.
type bindingServer struct {
	*testServer
	op *testop.OP
	// public is signoff's public URL. It names the host "localhost" while
	// the OP answers on 127.0.0.1, so that a browser keeps the two sites'
	// cookies apart, as it would for signoff and a company IdP.
	public string
}

// startBindingServer starts the test OP (with the people alice and
// mallory, plus any in users; their Extra claims as given) and signoff in
// dev mode against it, with the chat section chat and the deploy action's
// notify.
func startBindingServer(t *testing.T, chat, notify string, users ...testop.User) *bindingServer {
	t.Helper()
	op := testop.New(t, clock.Real{}, "")
	for _, u := range append([]testop.User{bindingAlice, bindingMallory}, users...) {
		op.AddUser(u)
	}
	ts := startWithIdP(t, op, bindingConfig, "%CHAT%", chat, "%NOTIFY%", notify)
	s := &bindingServer{testServer: ts, op: op}
	// signoff listens now: the OP learns where to send people back.
	_, port, _ := net.SplitHostPort(ts.addr)
	s.public = "http://localhost:" + port
	op.AddRedirectURI(s.public + linkflow.CallbackPath)
	return s
}

// idpYAML begins the configs startWithIdP fills in: where signoff listens,
// its public URL and the idp section naming the test OP, to which the
// configs add the scopes.
const idpYAML = `listen: %LISTEN%
public_url: %PUBLIC%
idp:
  issuer: %ISSUER%
  client_id: %CLIENTID%
  client_secret: %CLIENTSECRET%
`

// startWithIdP runs `signoff serve --dev` with config, a template whose
// placeholders name a free loopback address (%LISTEN%), signoff's public
// URL at localhost on that port (%PUBLIC%), and the test OP op with its
// confidential client (%ISSUER%, %CLIENTID%, %CLIENTSECRET%); more are
// further placeholders, each followed by its value.
func startWithIdP(t *testing.T, op *testop.OP, config string, more ...string) *testServer {
	t.Helper()
	// public_url is configuration, so the port is picked before serve
	// binds it.
	addr := freeLoopbackAddr(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.NewReplacer(append([]string{"%LISTEN%", addr, "%PUBLIC%", "http://localhost:" + port, "%ISSUER%", op.Issuer,
		"%CLIENTID%", testop.ClientID, "%CLIENTSECRET%", testop.ClientSecret}, more...)...).Replace(config)
	ts := startServeConfig(t, writeConfig(t, yaml), true)
	ts.logOnFailure(t)
	return ts
}

// requestDeploy asks for a deploy with a dev token (without waiting) and
// returns the request's id.
func (s *bindingServer) requestDeploy(t *testing.T) string {
	t.Helper()
	code, out, stderr := runCmd(t, requestArgs(s.testServer, devToken(t, s.testServer), "--reason", "release", "--output", "json")...)
	var v api.Request
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.ID == "" {
		t.Fatalf("request: exit %d\n%s\n%s", code, out, stderr)
	}
	return v.ID
}

// state returns the request's state and its votes.
func (s *bindingServer) state(t *testing.T, id string) (storage.State, []storage.Vote) {
	t.Helper()
	r, err := s.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State, r.Votes
}

// noSecretsIn fails when a code or token the OP handed out, or the
// client secret, shows in text (an audit export, the server log).
func (s *bindingServer) noSecretsIn(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range append(s.op.IssuedTokens(), testop.ClientSecret) {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains a code, token or secret (%.8s…)", what, secret)
		}
	}
}

// signInLinkRE finds a sign-in link at signoff's public URL.
var signInLinkRE = regexp.MustCompile(`http://localhost:[0-9]+/link/start\?id=[A-Za-z0-9_-]+`)

// opLoginIDRE finds the auth request id on the test OP's login form.
var opLoginIDRE = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)

// signInAtIdP opens a sign-in link in b as a person does (signoff's
// confirmation page, Continue) and signs in at the test OP as u, unless
// the OP still knows b from an earlier sign-in (single sign-on). It
// returns the page signoff ends the flow on.
func signInAtIdP(t *testing.T, b *consoleBrowser, link string, u testop.User) (*http.Response, string) {
	t.Helper()
	resp, body := b.open(link)
	if strings.Contains(body, "Sign in to the test IdP") {
		m := opLoginIDRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the IdP's login form has no request id:\n%s", body)
		}
		target := resp.Request.URL.ResolveReference(&url.URL{Path: "/login"})
		resp, body = b.read(b.c.PostForm(target.String(), url.Values{
			"id": {m[1]}, "username": {u.Username}, "password": {u.Password}, "action": {"login"},
		}))
	}
	start, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Request.URL.Host != start.Host || !strings.Contains(body, "data-outcome=") {
		t.Fatalf("signing in as %s did not end on a signoff page: %d at %s\n%s", u.Username, resp.StatusCode, resp.Request.URL, body)
	}
	return resp, body
}

// checkPreviewLeavesLink fetches link as a link-preview bot does (HEAD and
// GET, no cookies): the link's page names the chat account it is for,
// wantAccount, and the link is not used up by it.
func checkPreviewLeavesLink(t *testing.T, link, wantAccount string) {
	t.Helper()
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		req, _ := http.NewRequest(method, link, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s of a sign-in link: %d\n%s", method, resp.StatusCode, body)
		}
		if method == http.MethodGet && (!strings.Contains(body, `data-outcome="confirm"`) || !strings.Contains(body, wantAccount)) {
			t.Fatalf("the sign-in link's page does not name chat account %s before the IdP:\n%s", wantAccount, body)
		}
	}
}

// wantRefusedPage checks the page a refused binding ends on: 403, and it
// names the chat account the link was for, its email and who signed in.
func wantRefusedPage(t *testing.T, resp *http.Response, body string, fragments ...string) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-outcome="refused"`) {
		t.Fatalf("the approver completing someone else's link got %d:\n%s", resp.StatusCode, body)
	}
	for _, f := range fragments {
		if !strings.Contains(body, f) {
			t.Errorf("the refused page does not say %q:\n%s", f, body)
		}
	}
}

// recordsBy returns recs of type typ whose actor is the chat account
// platformUser.
func recordsBy(recs []audit.Record, typ, platformUser string) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Type == typ && r.Actor != nil && r.Actor.PlatformUser == platformUser {
			out = append(out, r)
		}
	}
	return out
}

// wantRefusalRecord checks that the audit log holds exactly one
// identity.link_refused record for the chat account (platform, workspace,
// user), naming the identity that signed in (issuer, subject, email), the
// reason and the chat account's email; and that the account was never
// linked.
func wantRefusalRecord(t *testing.T, recs []audit.Record, platform, workspace, user, issuer, subject, email, reason, chatEmail string) {
	t.Helper()
	refused := recordsBy(recs, audit.TypeIdentityLinkRefused, user)
	if len(refused) != 1 {
		t.Fatalf("identity.link_refused records for %s: %d, want 1; audit: %v", user, len(refused), testenv.AuditTypes(recs))
	}
	r := refused[0]
	a := r.Actor
	if a.Platform != platform || a.Workspace != workspace || a.Issuer != issuer || a.Subject != subject || a.Email != email {
		t.Errorf("identity.link_refused names %+v, want chat account %s/%s/%s and identity %s %s (%s)", *a, platform, workspace, user, issuer, subject, email)
	}
	if r.Data["reason"] != reason || r.Data["chat_email"] != chatEmail {
		t.Errorf("identity.link_refused data %v, want reason %s and chat_email %s", r.Data, reason, chatEmail)
	}
	if linked := recordsBy(recs, audit.TypeIdentityLinked, user); len(linked) != 0 {
		t.Errorf("%s was linked: %+v", user, linked)
	}
}

// wantVoteBy checks that the request's audit holds exactly one
// vote.approve, cast from chat account user as the identity subject of
// issuer.
func wantVoteBy(t *testing.T, recs []audit.Record, platform, user, issuer, subject string) {
	t.Helper()
	var votes []audit.Record
	for _, r := range recs {
		if r.Type == audit.TypeVoteApprove {
			votes = append(votes, r)
		}
	}
	if len(votes) != 1 {
		t.Fatalf("vote.approve records: %d, want 1; audit: %v", len(votes), testenv.AuditTypes(recs))
	}
	if a := votes[0].Actor; a == nil || a.Platform != platform || a.PlatformUser != user || a.Issuer != issuer || a.Subject != subject {
		t.Fatalf("the vote was cast by %+v, want %s user %s as %s at %s", a, platform, user, subject, issuer)
	}
}

// slackBindingSection is the slack section for the stand-in slack.
func slackBindingSection(slack *slackStandIn) string {
	return `slack:
  bot_token: xoxb-e2e
  signing_secret: ` + slackE2ESecret + `
  team_id: T0E2E
  api_url: ` + slack.URL()
}

// ephemeralLinks returns the sign-in links in the private replies Slack
// was asked to show user, oldest first.
func ephemeralLinks(slack *slackStandIn, user string) []string {
	var out []string
	for _, c := range slack.find("chat.postEphemeral", user) {
		if c.Get("user") != user {
			continue
		}
		if m := signInLinkRE.FindString(c.Get("text") + c.Get("blocks")); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// newSlackLink waits for a private reply to user carrying a sign-in link
// it had not been sent before (it had been sent the ones in seen).
func newSlackLink(t *testing.T, slack *slackStandIn, user string, seen int) string {
	t.Helper()
	var link string
	waitFor(t, 20*time.Second, "a sign-in link for "+user, func() bool {
		links := ephemeralLinks(slack, user)
		if len(links) > seen {
			link = links[len(links)-1]
		}
		return link != ""
	})
	return link
}

// directMessages returns the texts of the messages sent to user directly
// (chat.postMessage with the user id as the channel).
func directMessages(slack *slackStandIn, user string) []string {
	var out []string
	for _, c := range slack.find("chat.postMessage", user) {
		if c.Get("channel") == user {
			out = append(out, c.Get("text"))
		}
	}
	return out
}

// waitDirectMessage waits for a direct message to user containing each
// of fragments.
func waitDirectMessage(t *testing.T, slack *slackStandIn, user string, fragments ...string) {
	t.Helper()
	waitFor(t, 20*time.Second, "a direct message to "+user+" saying "+strings.Join(fragments, ", "), func() bool {
	next:
		for _, text := range directMessages(slack, user) {
			for _, f := range fragments {
				if !strings.Contains(text, f) {
					continue next
				}
			}
			return true
		}
		return false
	})
}

// startSlackBinding starts the Slack stand-in, which also knows account,
// and a binding server announcing deploys in its channel C1, then asks for
// a deploy. It returns them and the request's id once its card is posted.
func startSlackBinding(t *testing.T, account slackAccount) (*slackStandIn, *bindingServer, string) {
	t.Helper()
	clearCIEnv(t)
	slack := newSlackStandIn(t)
	slack.addUser(account)
	s := startBindingServer(t, slackBindingSection(slack), "{slack: [C1]}")
	id := s.requestDeploy(t)
	waitFor(t, 20*time.Second, "the card in Slack", func() bool { return len(slack.find("chat.postMessage", id)) == 1 })
	return slack, s, id
}

// TestBindingSlackForwardedLinkIsRefused replays the attack in Slack:
// mallory's sign-in link, completed by alice, links nothing; the audit
// log names both sides, mallory is told, and her next click counts
// nothing. alice's own link and vote still work.
func TestBindingSlackForwardedLinkIsRefused(t *testing.T) {
	slack, s, id := startSlackBinding(t, slackAccount{ID: "U0MALLORY", Team: "T0E2E", Name: "mallory", RealName: "Mallory", Email: "mallory@example.com"})

	// mallory clicks Approve: not linked, so she gets a sign-in link for
	// her account, privately.
	signedPost(t, s.base, "/slack/interactions", clickPayload("U0MALLORY", id, "signoff_approve", "301"))
	malloryLink := newSlackLink(t, slack, "U0MALLORY", 0)
	if !strings.HasPrefix(malloryLink, s.public+linkflow.StartPath) {
		t.Fatalf("sign-in link %s is not at signoff's public URL %s", malloryLink, s.public)
	}
	// The chat unfurls it (a preview bot fetches it): the page names
	// mallory's account, and the link still works afterwards.
	checkPreviewLeavesLink(t, malloryLink, "U0MALLORY")

	// She passes it to alice, who opens it in her browser, presses
	// Continue and signs in at the IdP as herself.
	alice := newConsoleBrowser(t, s.base)
	resp, body := signInAtIdP(t, alice, malloryLink, bindingAlice)
	wantRefusedPage(t, resp, body, "U0MALLORY", "mallory@example.com", "alice@example.com")

	// The refusal is in the audit log with both sides, and mallory's
	// account is told who tried to link it.
	all := serverAudit(t, s.testServer)
	wantRefusalRecord(t, all, "slack", "T0E2E", "U0MALLORY", s.op.Issuer, "sub-alice", "alice@example.com", string(linkflow.RefusalMismatch), "mallory@example.com")
	waitDirectMessage(t, slack, "U0MALLORY", "alice@example.com", "refused")

	// mallory's next click counts nothing: she is asked to sign in again.
	signedPost(t, s.base, "/slack/interactions", clickPayload("U0MALLORY", id, "signoff_approve", "302"))
	if again := newSlackLink(t, slack, "U0MALLORY", 1); again == malloryLink {
		t.Fatalf("the second click got the used link again: %s", again)
	}
	if state, votes := s.state(t, id); state != storage.StatePending || len(votes) != 0 {
		t.Fatalf("after mallory's clicks the request is %s with votes %+v", state, votes)
	}

	// alice links her own account (her single sign-on session at the IdP
	// still runs) and her click counts, as hers.
	signedPost(t, s.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "303"))
	aliceLink := newSlackLink(t, slack, "U0ALICE", 0)
	resp, body = signInAtIdP(t, alice, aliceLink, bindingAlice)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-outcome="linked"`) || !strings.Contains(body, "U0ALICE") {
		t.Fatalf("alice linking her own account: %d\n%s", resp.StatusCode, body)
	}
	waitDirectMessage(t, slack, "U0ALICE", "now linked to alice@example.com")
	signedPost(t, s.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "304"))
	waitFor(t, 20*time.Second, "alice's vote to approve the request", func() bool {
		state, _ := s.state(t, id)
		return state == storage.StateApproved
	})

	recs := requestAudit(t, s.testServer, id)
	wantVoteBy(t, recs, "slack", "U0ALICE", s.op.Issuer, "sub-alice")
	if rejected := recordsBy(recs, audit.TypeVoteRejected, "U0MALLORY"); len(rejected) != 2 {
		t.Errorf("vote.rejected records of mallory's two clicks: %d; audit: %v", len(rejected), testenv.AuditTypes(recs))
	}
	all = serverAudit(t, s.testServer)
	linked := recordsBy(all, audit.TypeIdentityLinked, "U0ALICE")
	if len(linked) != 1 || linked[0].Actor.Subject != "sub-alice" || linked[0].Data["matched_by"] != linkflow.MatchedByEmail {
		t.Errorf("identity.linked of alice's account: %+v", linked)
	}
	if l := recordsBy(all, audit.TypeIdentityLinked, "U0MALLORY"); len(l) != 0 {
		t.Errorf("mallory's account was linked after all: %+v", l)
	}
	raw, _ := json.Marshal(all)
	s.noSecretsIn(t, "the audit log", string(raw))
	s.noSecretsIn(t, "the server log", s.log.String())
}

// TestBindingSlackConnectUserGetsNoLink: an account of another
// organisation in a shared (Slack Connect) channel is refused when it
// clicks a card or types /signoff link, and is offered no sign-in link.
func TestBindingSlackConnectUserGetsNoLink(t *testing.T) {
	slack, s, id := startSlackBinding(t, slackAccount{ID: "U0EVE", Team: "T0PARTNER", Name: "eve", RealName: "Eve", Email: "alice@example.com"})

	signedPost(t, s.base, "/slack/interactions", clickPayloadFrom("U0EVE", "T0PARTNER", id, "signoff_approve", "401"))
	signedPost(t, s.base, "/slack/commands", linkCommand("U0EVE", "eve", "2", "2.3.U0EVE"))
	waitFor(t, 20*time.Second, "both refusals told to eve", func() bool {
		n := 0
		for _, c := range slack.find("chat.postEphemeral", "U0EVE") {
			if strings.Contains(c.Get("text"), "Slack Connect") {
				n++
			}
		}
		return n == 2
	})
	for _, c := range slack.find("chat.postEphemeral", "U0EVE") {
		if strings.Contains(c.Encode(), "link%2Fstart") || signInLinkRE.MatchString(c.Get("text")+c.Get("blocks")) {
			t.Fatalf("an account of another organisation was offered a sign-in link: %v", c)
		}
	}
	if state, votes := s.state(t, id); state != storage.StatePending || len(votes) != 0 {
		t.Fatalf("after eve's click the request is %s with votes %+v", state, votes)
	}
	all := serverAudit(t, s.testServer)
	foreign := 0
	for _, r := range all {
		if r.Type == audit.TypeCallbackRejected && r.Data["reason"] == "foreign_user" {
			foreign++
		}
		if r.Actor != nil && r.Actor.PlatformUser == "U0EVE" {
			t.Errorf("eve's click reached approvals: %+v", r)
		}
	}
	if foreign != 2 {
		t.Fatalf("callback.rejected (foreign_user) records: %d, want 2; audit: %v", foreign, testenv.AuditTypes(all))
	}
}

// TestBindingTeamsForwardedLinkIsRefused replays the attack in Microsoft
// Teams, with an IdP that sends Microsoft Entra ID's oid claim: mallory's
// sign-in link, completed by alice, links nothing; the audit log names
// both sides, the conversation is told, and mallory's next click counts
// nothing. alice's own link (matched by her object id) and vote still
// work.
func TestBindingTeamsForwardedLinkIsRefused(t *testing.T) {
	clearCIEnv(t)
	bf := teamstest.NewServer(teamstest.Options{})
	t.Cleanup(bf.Close)
	alice, mallory := teamstest.NewUser("alice"), teamstest.NewUser("mallory")
	bf.AddMember(teamsE2EConversation, alice.Member("alice@example.com"))
	bf.AddMember(teamsE2EConversation, mallory.Member("mallory@example.com"))
	teams := strings.NewReplacer("%APPID%", bf.AppID(), "%APPPASSWORD%", bf.AppPassword(), "%TENANT%", bf.TenantID(),
		"%METADATA%", bf.OpenIDMetadataURL(), "%TOKEN%", bf.TokenURL()).Replace(`teams:
  app_id: %APPID%
  app_password: %APPPASSWORD%
  tenant_ids: [%TENANT%]
  openid_metadata_url: %METADATA%
  token_url: %TOKEN%
  service_url_hosts: [127.0.0.1]`)
	// The IdP is Entra-like: ID tokens carry the person's object id.
	idpAlice, idpMallory := bindingAlice, bindingMallory
	idpAlice.Extra = map[string]any{"oid": alice.AADObjectID}
	idpMallory.Extra = map[string]any{"oid": mallory.AADObjectID}
	s := startBindingServer(t, teams, `{teams: ["`+teamsE2EConversation+`"]}`, idpAlice, idpMallory)

	place := teamstest.Place{Conversation: teamsE2EConversation, TeamID: "19:team0e2e@thread.tacv2", TeamName: "Platform", ChannelName: "deploys"}
	sendActivity(t, s.base, bf, bf.BotAdded(place, alice))
	id := s.requestDeploy(t)
	var cardID string
	var approveData map[string]any
	waitFor(t, 20*time.Second, "the Adaptive Card in Teams", func() bool {
		for _, c := range bf.Posted() {
			raw, _ := json.Marshal(c.Card())
			if c.Conversation == teamsE2EConversation && strings.Contains(string(raw), id) {
				cardID, approveData = c.ActivityID, buttonData(c.Card(), "approve")
			}
		}
		return cardID != "" && approveData != nil
	})
	click := func(u teamstest.User) string {
		out := sendActivity(t, s.base, bf, bf.Invoke(teamstest.Click{Place: place, User: u, ReplyToID: cardID, Verb: "approve", Data: approveData}))
		raw, _ := json.Marshal(out)
		return strings.ReplaceAll(string(raw), `\u0026`, "&")
	}
	linkIn := func(who, answer string) string {
		t.Helper()
		link := signInLinkRE.FindString(answer)
		if link == "" {
			t.Fatalf("%s's unlinked click answered without a sign-in link: %s", who, answer)
		}
		return link
	}

	// mallory clicks Approve and gets a sign-in link for her account.
	malloryLink := linkIn("mallory", click(mallory))
	checkPreviewLeavesLink(t, malloryLink, mallory.AADObjectID)

	// alice opens it and signs in as herself.
	b := newConsoleBrowser(t, s.base)
	resp, body := signInAtIdP(t, b, malloryLink, bindingAlice)
	wantRefusedPage(t, resp, body, mallory.AADObjectID, "mallory@example.com", "alice@example.com")

	all := serverAudit(t, s.testServer)
	wantRefusalRecord(t, all, "teams", bf.TenantID(), mallory.AADObjectID, s.op.Issuer, "sub-alice", "alice@example.com", string(linkflow.RefusalMismatch), "mallory@example.com")
	// Teams cannot write to mallory privately: the notice goes into the
	// conversation she clicked in, without names.
	waitFor(t, 20*time.Second, "the refusal notice in the channel", func() bool {
		for _, c := range bf.OK(http.MethodPost) {
			text, _ := c.Body["text"].(string)
			if c.Card() == nil && strings.HasPrefix(c.Conversation, teamsE2EConversation) && strings.Contains(text, "refused") {
				if strings.Contains(text, "alice@example.com") || strings.Contains(text, "mallory@example.com") {
					t.Fatalf("a notice in a channel names people: %s", text)
				}
				return true
			}
		}
		return false
	})

	// mallory's next click counts nothing.
	if again := linkIn("mallory", click(mallory)); again == malloryLink {
		t.Fatalf("the second click got the used link again: %s", again)
	}
	if state, votes := s.state(t, id); state != storage.StatePending || len(votes) != 0 {
		t.Fatalf("after mallory's clicks the request is %s with votes %+v", state, votes)
	}

	// alice links her own account and her click counts.
	aliceLink := linkIn("alice", click(alice))
	resp, body = signInAtIdP(t, b, aliceLink, bindingAlice)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-outcome="linked"`) || !strings.Contains(body, alice.AADObjectID) {
		t.Fatalf("alice linking her own account: %d\n%s", resp.StatusCode, body)
	}
	if answer := click(alice); !strings.Contains(answer, "application/vnd.microsoft.card.adaptive") {
		t.Fatalf("alice's linked click answered %s", answer)
	}
	waitFor(t, 20*time.Second, "alice's vote to approve the request", func() bool {
		state, _ := s.state(t, id)
		return state == storage.StateApproved
	})

	recs := requestAudit(t, s.testServer, id)
	wantVoteBy(t, recs, "teams", alice.AADObjectID, s.op.Issuer, "sub-alice")
	if rejected := recordsBy(recs, audit.TypeVoteRejected, mallory.AADObjectID); len(rejected) != 2 {
		t.Errorf("vote.rejected records of mallory's two clicks: %d; audit: %v", len(rejected), testenv.AuditTypes(recs))
	}
	all = serverAudit(t, s.testServer)
	linked := recordsBy(all, audit.TypeIdentityLinked, alice.AADObjectID)
	if len(linked) != 1 || linked[0].Actor.Subject != "sub-alice" || linked[0].Data["matched_by"] != linkflow.MatchedByOID {
		t.Errorf("identity.linked of alice's account: %+v", linked)
	}
	if l := recordsBy(all, audit.TypeIdentityLinked, mallory.AADObjectID); len(l) != 0 {
		t.Errorf("mallory's account was linked after all: %+v", l)
	}
	raw, _ := json.Marshal(all)
	s.noSecretsIn(t, "the audit log", string(raw))
	s.noSecretsIn(t, "the server log", s.log.String())
}
