package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/browsertest"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// devLinkConfig has two dev approvers and an action whose votes need a
// fresh multi-factor sign-in. %IDP% is replaced with an idp section (or
// nothing).
const devLinkConfig = `listen: %LISTEN%
%IDP%
` + devStoreYAML + `actions:
  deploy:
    description: Deploy a service
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    approvers: {groups: [sre], min_approvals: 1}
    ttl: 1h
  guarded:
    description: Needs a fresh MFA sign-in
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    approvers: {groups: [sre], min_approvals: 1}
    ttl: 1h
    step_up: {max_age: 5m, require_mfa: true}
dev:
  approvers:
    - {name: alice, email: alice@example.com, groups: [sre]}
    - {name: bob, email: bob@example.com, groups: [sre]}
log: {level: warn}
`

// startDevLinkServer runs `signoff serve --dev` in-process on listen with
// devLinkConfig and idp (YAML, may be empty).
func startDevLinkServer(t *testing.T, listen, idp string) *testServer {
	t.Helper()
	yaml := strings.NewReplacer("%LISTEN%", listen, "%IDP%", idp).Replace(devLinkConfig)
	cfgPath := writeConfig(t, yaml)
	ts := startServeConfig(t, cfgPath, true)
	ts.logOnFailure(t)
	return ts
}

func createRequest(t *testing.T, svc *approvals.Service, action string) storage.Request {
	t.Helper()
	r, _, err := svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "dev", Subject: "dev-user", Person: "dev-user", Claims: map[string]string{"sub": "dev-user"}},
		Action:    action, Reason: "trying chat users",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	consoleCSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	continueRE    = regexp.MustCompile(`id="continue" href="([^"]+)"`)
	signInPageRE  = regexp.MustCompile(`name="page" value="([^"]+)"`)
	signInActRE   = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// consoleBrowser is an http.Client with cookies, following redirects.
type consoleBrowser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newConsoleBrowser(t *testing.T, base string) *consoleBrowser {
	jar, _ := cookiejar.New(nil)
	return &consoleBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, base: base}
}

func (b *consoleBrowser) read(resp *http.Response, err error) (*http.Response, string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var (
	confirmIDRE   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)
	confirmCSRFRE = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`)
)

// open follows a sign-in link as a person does: its confirmation page
// (which names the chat account), then Continue. It returns the page that
// follows (the sign-in page), or the link's page when it shows no
// confirmation.
func (b *consoleBrowser) open(link string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.read(b.c.Get(link))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-outcome="confirm"`) {
		return resp, body
	}
	id, csrf := confirmIDRE.FindStringSubmatch(body), confirmCSRFRE.FindStringSubmatch(body)
	if id == nil || csrf == nil {
		b.t.Fatalf("confirmation page without its form:\n%s", body)
	}
	target, err := resp.Request.URL.Parse(linkflow.StartPath)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(b.c.PostForm(target.String(), url.Values{"id": {id[1]}, "csrf": {csrf[1]}}))
}

func (b *consoleBrowser) csrf() string {
	b.t.Helper()
	_, page := b.read(b.c.Get(b.base + "/dev"))
	m := consoleCSRFRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("console has no form:\n%s", page)
	}
	return m[1]
}

// link clicks Link for chatUser in the console and signs in as person at
// the sign-in page the flow leads to; it returns the final page.
func (b *consoleBrowser) link(chatUser, person string) string {
	b.t.Helper()
	resp, body := b.read(b.c.PostForm(b.base+"/dev/link", url.Values{"csrf": {b.csrf()}, "chat_user": {chatUser}}))
	m := continueRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("Link: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.open(html.UnescapeString(m[1]))
	page, action := signInPageRE.FindStringSubmatch(body), signInActRE.FindStringSubmatch(body)
	csrf := consoleCSRFRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || page == nil || action == nil || csrf == nil {
		b.t.Fatalf("sign-in page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	_, body = b.read(b.c.PostForm(target.String(), url.Values{"page": {page[1]}, "csrf": {csrf[1]}, "person": {person}}))
	return body
}

func (b *consoleBrowser) chatVote(id, chatUser, decision string) string {
	b.t.Helper()
	_, body := b.read(b.c.PostForm(b.base+"/dev/chat-vote", url.Values{"csrf": {b.csrf()}, "request": {id}, "chat_user": {chatUser}, "decision": {decision}}))
	return body
}

// TestDevConsoleLinksAtDevIssuer: in dev mode without an idp section, a
// chat user is linked at the built-in dev issuer and then votes under the
// linked identity.
func TestDevConsoleLinksAtDevIssuer(t *testing.T) {
	ts := startDevLinkServer(t, "127.0.0.1:0", "")
	b := newConsoleBrowser(t, ts.base)

	// The dev issuer now signs people in.
	_, disc := b.read(b.c.Get(ts.base + "/dev/oidc/.well-known/openid-configuration"))
	if !strings.Contains(disc, `"authorization_endpoint":"`+ts.base+`/dev/oidc/authorize"`) {
		t.Fatalf("discovery: %s", disc)
	}

	r := createRequest(t, ts.svc, "deploy")
	body := b.chatVote(r.ID, "alice", "approve")
	if !strings.Contains(body, "chat:alice&#39;s vote was not counted") || !strings.Contains(body, `class="signin-link" href="`+ts.base+`/link/start?id=`) {
		t.Fatalf("unlinked vote:\n%s", body)
	}

	if body := b.link("alice", "alice"); !strings.Contains(body, `data-outcome="linked"`) || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("link flow ended on:\n%s", body)
	}
	l, err := ts.svc.Link(context.Background(), "dev", "dev", "alice")
	if err != nil || l.Issuer != ts.base+"/dev/oidc" || l.Subject != "alice" || strings.Join(l.Groups, ",") != "sre" {
		t.Fatalf("link %+v (%v)", l, err)
	}
	_, page := b.read(b.c.Get(ts.base + "/dev"))
	if !strings.Contains(page, `data-chat-user="alice" data-linked="true"`) {
		t.Fatalf("console does not show the link:\n%s", page)
	}

	if body := b.chatVote(r.ID, "alice", "approve"); !strings.Contains(body, "it is now approved") {
		t.Fatalf("linked vote:\n%s", body)
	}
	// Dev sign-ins are fresh and multi-factor: a step-up action's vote
	// counts right after linking.
	g := createRequest(t, ts.svc, "guarded")
	if body := b.chatVote(g.ID, "alice", "approve"); !strings.Contains(body, "it is now approved") {
		t.Fatalf("step-up action vote:\n%s", body)
	}
	got, _ := ts.svc.Get(context.Background(), r.ID)
	if v := got.Votes[0]; v.Approver.Platform != "dev" || v.Approver.PlatformUser != "alice" || v.Approver.Issuer != ts.base+"/dev/oidc" {
		t.Fatalf("vote %+v", v)
	}
}

// TestDevConsoleUsesConfiguredIdP: with an idp section, dev mode leaves
// the dev issuer's sign-in off and the console's chat users link at the
// configured IdP, through serve's link routes.
func TestDevConsoleUsesConfiguredIdP(t *testing.T) {
	addr := freeLoopbackAddr(t)
	// The "company IdP": another dev issuer, on its own port.
	mux := http.NewServeMux()
	company := httptest.NewServer(mux)
	defer company.Close()
	idp, err := devissuer.New(company.URL, filepath.Join(t.TempDir(), "idp.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.EnableLogin(devissuer.LoginOptions{ClientID: "signoff", RedirectURL: "http://" + addr + "/link/callback",
		// The same person as dev approver alice: her pretend chat account
		// carries the email the IdP vouches for (the binding check).
		People: []devissuer.Person{{Name: "alice-corp", Email: "alice@example.com", Groups: []string{"sre"}}}}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", idp.Handler())

	ts := startDevLinkServer(t, addr, "public_url: http://"+addr+"\nidp: {issuer: \""+company.URL+"\", client_id: signoff, scopes: [openid, email, profile, groups]}")
	b := newConsoleBrowser(t, ts.base)
	if resp, _ := b.read(b.c.Get(ts.base + "/dev/oidc/authorize")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("dev issuer sign-in enabled despite the idp section: %d", resp.StatusCode)
	}
	if body := b.link("alice", "alice-corp"); !strings.Contains(body, `data-outcome="linked"`) {
		t.Fatalf("link flow ended on:\n%s", body)
	}
	r := createRequest(t, ts.svc, "deploy")
	if body := b.chatVote(r.ID, "alice", "approve"); !strings.Contains(body, "chat:alice (alice@example.com) voted approve") {
		t.Fatalf("vote:\n%s", body)
	}
	got, _ := ts.svc.Get(context.Background(), r.ID)
	if v := got.Votes[0]; v.Approver.Issuer != company.URL || v.Approver.Subject != "alice-corp" {
		t.Fatalf("vote %+v", v)
	}
}

// TestDevConsoleChatUsersInBrowser: in headless Chromium, link chat:alice
// at the dev issuer's sign-in page, come back, vote as chat user alice;
// an unlinked chat user's vote shows the sign-in link instead.
func TestDevConsoleChatUsersInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	ts := startDevLinkServer(t, "127.0.0.1:0", "")
	ctx := browsertest.New(t, 90*time.Second)
	r := createRequest(t, ts.svc, "deploy")
	card := `section.card[id="` + r.ID + `"]`

	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.base+"/dev"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-chat-user="alice"][data-linked="false"] button.link`)),
		chromedp.Click(chromedp.CSS(`li[data-chat-user="alice"] button.link`)),
		// signoff's page naming the chat account being linked.
		chromedp.WaitVisible(chromedp.CSS(`main[data-outcome="confirm"] #continue`)),
		chromedp.Click(chromedp.CSS(`#continue`)),
		// The dev issuer's sign-in page.
		chromedp.WaitVisible(chromedp.CSS(`li.person[data-person="alice"] button.signin`)),
		chromedp.Click(chromedp.CSS(`li.person[data-person="alice"] button.signin`)),
		// signoff's landing page.
		chromedp.WaitVisible(chromedp.CSS(`main[data-outcome]`)),
	); err != nil {
		t.Fatalf("link in the browser: %v", err)
	}
	outcome, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`main`), "data-outcome"))
	if err != nil || outcome.Value != "linked" {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
		t.Fatalf("landing page outcome %q (%v):\n%s", outcome.Value, err, text)
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.base+"/dev"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-chat-user="alice"][data-linked="true"]`)),
		chromedp.SetValue(chromedp.CSS(card+` select[name=chat_user]`), "alice"),
		chromedp.Click(chromedp.CSS(card+` button.chat-approve`)),
		chromedp.WaitVisible(chromedp.CSS(`section.card[id="`+r.ID+`"][data-state="approved"]`)),
	); err != nil {
		t.Fatalf("vote as chat user: %v", err)
	}
	got, _ := ts.svc.Get(context.Background(), r.ID)
	if got.State != storage.StateApproved || len(got.Votes) != 1 || got.Votes[0].Approver.PlatformUser != "alice" || got.Votes[0].Approver.Subject != "alice" {
		t.Fatalf("request after the chat vote: %+v", got)
	}

	// bob never linked: his vote is not counted and the link is shown.
	r2 := createRequest(t, ts.svc, "deploy")
	card2 := `section.card[id="` + r2.ID + `"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.base+"/dev"),
		chromedp.WaitVisible(chromedp.CSS(card2)),
		chromedp.SetValue(chromedp.CSS(card2+` select[name=chat_user]`), "bob"),
		chromedp.Click(chromedp.CSS(card2+` button.chat-approve`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash a.signin-link`)),
	); err != nil {
		t.Fatalf("unlinked vote: %v", err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.flash`)))
	if err != nil || !strings.Contains(flash, "chat:bob's vote was not counted") || !strings.Contains(flash, "not linked") {
		t.Fatalf("flash %q (%v)", flash, err)
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`.flash a.signin-link`), "href"))
	if err != nil || !strings.HasPrefix(href.Value, ts.base+"/link/start?id=") {
		t.Fatalf("sign-in link %q (%v)", href.Value, err)
	}
	if got, _ := ts.svc.Get(context.Background(), r2.ID); len(got.Votes) != 0 {
		t.Fatalf("bob's vote counted: %+v", got.Votes)
	}
}
