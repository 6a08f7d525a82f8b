package bot_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/slackbot"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// Secrets of the metrics test, each distinctive enough that finding any
// part of it in a scrape means it leaked.
const (
	thrSlackSecret = "thr-slack-signing-secret-5b1d0e7f93"
	thrBotToken    = "xoxb-thr-bot-token-8c2a4f6e10"
)

var thrTokenKey = []byte("thr-token-encryption-key-0123456789abcdef")

// thrBrowser is a browser for the link flow: a cookie jar, redirects
// followed, the last page kept.
type thrBrowser struct {
	t    *testing.T
	c    *http.Client
	last *url.URL
	body string
}

func newThrBrowser(t *testing.T) *thrBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &thrBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

func (b *thrBrowser) do(req *http.Request) int {
	b.t.Helper()
	resp, data := testenv.Do(b.t, b.c, req)
	b.last, b.body = resp.Request.URL, string(data)
	return resp.StatusCode
}

func (b *thrBrowser) get(u string) int {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *thrBrowser) postForm(u string, vals url.Values, origin string) int {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(vals.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(req)
}

var (
	thrField     = func(name string) *regexp.Regexp { return regexp.MustCompile(`name="` + name + `" value="([^"]+)"`) }
	thrLinkURL   = regexp.MustCompile(`https?://[^\s|>"<]+` + regexp.QuoteMeta(linkflow.StartPath) + `\?id=[A-Za-z0-9_.~-]+`)
	thrIDField   = thrField("id")
	thrCSRFField = thrField("csrf")
)

// link follows a sign-in link as a person does: the confirmation page,
// Continue, the IdP's login form, back to signoff.
func (b *thrBrowser) link(startURL string, u testop.User) {
	b.t.Helper()
	if st := b.get(startURL); st != http.StatusOK || !strings.Contains(b.body, `data-outcome="confirm"`) {
		b.t.Fatalf("link page: %d\n%s", st, b.body)
	}
	id, csrf := thrIDField.FindStringSubmatch(b.body), thrCSRFField.FindStringSubmatch(b.body)
	if id == nil || csrf == nil {
		b.t.Fatalf("confirmation page without its form:\n%s", b.body)
	}
	su, _ := url.Parse(startURL)
	target := su.Scheme + "://" + su.Host + su.Path
	if st := b.postForm(target, url.Values{"id": {id[1]}, "csrf": {csrf[1]}}, su.Scheme+"://"+su.Host); st != http.StatusOK {
		b.t.Fatalf("continue: %d\n%s", st, b.body)
	}
	m := thrIDField.FindStringSubmatch(b.body)
	if m == nil {
		b.t.Fatalf("no IdP login form on %s:\n%s", b.last, b.body)
	}
	login := b.last.ResolveReference(&url.URL{Path: "/login"})
	st := b.postForm(login.String(), url.Values{"id": {m[1]}, "username": {u.Username}, "password": {u.Password}, "otp": {u.OTP}, "action": {"login"}}, "")
	if st != http.StatusOK || !strings.Contains(b.body, `data-outcome="linked"`) {
		b.t.Fatalf("sign-in: %d\n%s", st, b.body)
	}
}

// TestThreatMetricsHoldNoSecrets runs, on the real front door, flows that
// use each secret signoff holds for its integrations: Slack callbacks
// signed with the signing secret (and one forged), Slack Web API calls
// with the bot token, an account link whose code is exchanged at the IdP
// with the client secret, and the link attempt's id (in a URL that is
// opened, and a guessed one). Then /metrics is scraped: none of these
// secrets, nor the link URL, nor anything the IdP issued, may appear in
// it, while the flows do show in the counters.
func TestThreatMetricsHoldNoSecrets(t *testing.T) {
	f := newAPIFixture(t, apiLimits{platforms: []string{"slack"}})
	logger := testenv.DiscardLogger()
	// signoff answers on "localhost", the IdP on 127.0.0.1, so their
	// cookies stay apart as two sites' would.
	base := strings.Replace(f.api.URL, "127.0.0.1", "localhost", 1)
	op := testop.New(t, clock.Real{}, base+linkflow.CallbackPath)
	dana := testop.User{Username: "dana", Password: "dana-pw-9d1c", Email: "udana@example.com", Name: "Dana", Groups: []string{"sre"}, OTP: "otp-7e3b19c2"}
	op.AddUser(dana)

	linker, err := linkflow.NewLinker(linkflow.LinkerOptions{
		Issuer: op.Issuer, ClientID: testop.ClientID, ClientSecret: testop.ClientSecret,
		Scopes:      []string{"openid", "email", "profile", "groups", "offline_access"},
		GroupsClaim: "groups", RedirectURL: base + linkflow.CallbackPath,
		LinkMaxAge: 720 * time.Hour, GroupsMaxAge: 24 * time.Hour, TokenKey: thrTokenKey,
		Store: f.store, Links: f.svc, Clock: clock.Real{}, Logger: logger,
		OnStepUp: f.svc.StepUpVote(), StepUpPolicy: f.svc.StepUpPolicy(),
	})
	if err != nil {
		t.Fatal(err)
	}
	fs := chattest.NewSlackAPI(t, map[string]func(http.ResponseWriter, chattest.SlackCall){
		"users.info": func(w http.ResponseWriter, call chattest.SlackCall) {
			id := call.Form.Get("user")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{
				"id": id, "team_id": xpSlackTeam, "name": strings.ToLower(id), "real_name": id,
				"profile": map[string]any{"email": strings.ToLower(id) + "@example.com", "real_name": id, "team": xpSlackTeam},
			}})
		},
		"auth.test": func(w http.ResponseWriter, _ chattest.SlackCall) {
			w.Header().Set("X-OAuth-Scopes", "chat:write,commands,users:read,users:read.email")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "team_id": xpSlackTeam, "user_id": "U0SIGNOFF", "bot_id": "B0SIGNOFF"})
		},
	})
	sb, err := slackbot.New(slackbot.Options{
		Service: f.svc, Resolver: linker, BotToken: thrBotToken, SigningSecret: thrSlackSecret, TeamID: xpSlackTeam,
		APIURL: fs.URL(), PublicURL: base, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Shutdown(context.Background()) })
	// Mounted as serve mounts them.
	linker.Register(f.front)
	linker.SetDirectory(slackbot.Platform, sb)
	f.front.AddMetrics(bot.IdentityMetrics(linker))
	sb.Register(f.front)

	// The bot token at work.
	if err := sb.CheckToken(t.Context(), slackbot.RequiredScopes(linker.LinkMatch())); err != nil {
		t.Fatalf("CheckToken: %v", err)
	}
	r := f.create("dev-user")
	click := func(body, secret string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, f.api.URL+slackbot.InteractionsPath, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = chattest.SlackHeaders(secret, time.Now().Unix(), body)
		resp, err := f.api.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A forged click, then a signed one by an unlinked account: it gets
	// a sign-in link in an ephemeral message.
	if st := click(xpSlackClick("UDANA", r.ID, 1), "not-the-signing-secret"); st == http.StatusOK {
		t.Fatalf("forged click answered %d", st)
	}
	if st := click(xpSlackClick("UDANA", r.ID, 2), thrSlackSecret); st != http.StatusOK {
		t.Fatalf("signed click: %d", st)
	}
	eph := fs.NextEphemeral(t)
	raw, _ := json.Marshal(eph)
	linkURL := thrLinkURL.FindString(string(raw))
	if linkURL == "" {
		t.Fatalf("no sign-in link in the ephemeral message: %s", raw)
	}
	lu, err := url.Parse(linkURL)
	if err != nil {
		t.Fatal(err)
	}
	attemptID := lu.Query().Get("id")
	if len(attemptID) < 16 {
		t.Fatalf("link attempt id %q", attemptID)
	}
	// A guessed attempt id, then the real link, completed.
	if st := newThrBrowser(t).get(base + linkflow.StartPath + "?id=" + strings.Repeat("A", len(attemptID))); st == http.StatusOK {
		t.Logf("a guessed link id answered %d", st)
	}
	newThrBrowser(t).link(linkURL, dana)
	if _, err := f.svc.Link(t.Context(), slackbot.Platform, xpSlackTeam, "UDANA"); err != nil {
		t.Fatalf("the link was not made: %v", err)
	}
	// The linked account votes (the link is read, maybe refreshed).
	if st := click(xpSlackClick("UDANA", r.ID, 3), thrSlackSecret); st != http.StatusOK {
		t.Fatalf("linked click: %d", st)
	}

	lines := f.scrape()
	scrape := strings.Join(lines, "\n")
	// The flows are on the scrape, so it is the scrape after them.
	wantLines(t, lines, `signoff_link_attempts_total 1`, `signoff_links_total{outcome="linked"} 1`)
	if !strings.Contains(scrape, slackbot.InteractionsPath) {
		t.Errorf("the Slack callbacks are not on the scrape:\n%s", scrape)
	}

	secrets := map[string]string{
		"Slack signing secret":   thrSlackSecret,
		"Slack bot token":        thrBotToken,
		"IdP client secret":      testop.ClientSecret,
		"token encryption key":   string(thrTokenKey),
		"link attempt id":        attemptID,
		"link URL":               linkURL,
		"approver password":      dana.Password,
		"approver one-time code": dana.OTP,
	}
	for i, tok := range op.IssuedTokens() {
		secrets["IdP-issued token or code "+string(rune('a'+i%26))] = tok
	}
	for what, s := range secrets {
		for _, part := range secretParts(s) {
			if strings.Contains(scrape, part) {
				t.Errorf("/metrics contains the %s (%q)", what, part)
				break
			}
		}
	}
}

// secretParts returns s and, for longer secrets, every 12-byte window of
// it, so a truncated or embedded copy is found too.
func secretParts(s string) []string {
	if len(s) <= 12 {
		return []string{s}
	}
	parts := []string{s}
	for i := 0; i+12 <= len(s); i++ {
		parts = append(parts, s[i:i+12])
	}
	return parts
}
