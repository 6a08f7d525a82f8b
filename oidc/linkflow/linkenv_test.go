package linkflow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// tokenKey is idp.token_encryption_key in the tests.
var tokenKey = []byte("test-token-encryption-key-0123456789abcdef")

// Users at the test IdP.
var (
	alice = testop.User{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Name: "Alice", Groups: []string{"sre"}}
	bob   = testop.User{Username: "bob", Password: "bob-pw", Email: "bob@example.com", Name: "Bob", Groups: []string{"sre"}}
	dana  = testop.User{Username: "dana", Password: "dana-pw", Email: "dana@example.com", Name: "Dana", Groups: []string{"sre"}, OTP: "424242"}
	erin  = testop.User{Username: "erin", Password: "erin-pw", Email: "erin@example.com", Name: "Erin", Groups: []string{"sre"}, OTP: "131313"}
)

// Chat accounts.
var (
	slackU1 = linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "U1"}
	slackU2 = linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "U2"}
)

func testPolicy() *policy.Policy {
	return &policy.Policy{
		Actions: map[string]*policy.Action{
			"deploy": {
				Name:       "deploy",
				Requesters: []policy.RequesterRule{{Issuer: "github"}},
				Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
				TTL:        time.Hour,
			},
			"break-glass": {
				Name:       "break-glass",
				Requesters: []policy.RequesterRule{{Issuer: "github"}},
				Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
				TTL:        time.Hour,
				StepUp:     &policy.StepUp{MaxAge: 5 * time.Minute, RequireMFA: true},
			},
			"drop-table": {
				Name:       "drop-table",
				Requesters: []policy.RequesterRule{{Issuer: "github"}},
				Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
				TTL:        time.Hour,
				StepUp:     &policy.StepUp{MaxAge: 10 * time.Minute, ACRValues: []string{testop.ACRMFA}},
			},
		},
	}
}

// switchTransport fails every request while down is set (the IdP is
// unreachable).
type switchTransport struct {
	mu   sync.Mutex
	down bool
}

func (s *switchTransport) set(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *switchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return nil, &netError{}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type netError struct{}

func (*netError) Error() string   { return "dial tcp: connection refused (test: identity provider down)" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return true }

// env is signoff's link flow wired as serve would wire it, over a real
// bbolt store and approvals.Service, against the test IdP.
type env struct {
	t       testing.TB
	mux     *http.ServeMux
	clk     *clock.Fake
	op      *testop.OP
	srv     *httptest.Server
	baseURL string
	store   *boltstore.Store
	dbPath  string
	svc     *approvals.Service
	linker  *linkflow.Linker
	logs    *testenv.LogBuffer
	net     *switchTransport
	opts    linkflow.LinkerOptions
	// dir is the chat platforms' record of who owns which account.
	dir *directory
}

// directory stands in for a chat platform's account lookup (Slack
// users.info, the Teams member lookup), which the platform adapters
// implement against their real wire formats: the tests say who owns which
// chat account (own), and err makes every lookup fail.
type directory struct {
	mu       sync.Mutex
	accounts map[string]linkflow.ChatAccount
	err      error
	lookups  int
}

func accountKey(p linkflow.PlatformUser) string {
	return p.Platform + "\x00" + p.Workspace + "\x00" + p.UserID
}

func (d *directory) LookupAccount(_ context.Context, p linkflow.PlatformUser) (linkflow.ChatAccount, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if d.err != nil {
		return linkflow.ChatAccount{}, d.err
	}
	a, ok := d.accounts[accountKey(p)]
	if !ok {
		return linkflow.ChatAccount{}, fmt.Errorf("no account %s: %w", p.UserID, linkflow.ErrAccountNotFound)
	}
	return a, nil
}

func (d *directory) set(p linkflow.PlatformUser, a linkflow.ChatAccount) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.accounts[accountKey(p)] = a
}

func (d *directory) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// own records that the chat account p belongs to u (its platform
// profile carries u's email).
func (e *env) own(p linkflow.PlatformUser, u testop.User) {
	e.dir.set(p, linkflow.ChatAccount{DisplayName: u.Name, Handle: u.Username, Email: u.Email})
}

type envOption func(*linkflow.LinkerOptions)

func newEnv(t testing.TB, options ...envOption) *env {
	t.Helper()
	e := &env{
		t:    t,
		clk:  clock.NewFake(time.Now().UTC().Truncate(time.Second)),
		logs: &testenv.LogBuffer{},
		net:  &switchTransport{},
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	mux := http.NewServeMux()
	e.mux = mux
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	// signoff answers on "localhost", the IdP on 127.0.0.1, so the two
	// keep their cookies apart as two sites would.
	e.baseURL = strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	e.op = testop.New(t, e.clk, e.baseURL+linkflow.CallbackPath)
	for _, u := range []testop.User{alice, bob, dana, erin} {
		e.op.AddUser(u)
	}

	e.dbPath = testenv.DBPath(t)
	st := testenv.OpenStoreAt(t, e.dbPath)
	e.store = st
	e.svc = approvals.New(st, testPolicy(), approvals.Options{Clock: e.clk, Logger: logger, GroupsMaxAge: 24 * time.Hour, Platforms: []string{"slack", "teams"}})

	e.opts = linkflow.LinkerOptions{
		Issuer:       e.op.Issuer,
		ClientID:     testop.ClientID,
		ClientSecret: testop.ClientSecret,
		Scopes:       []string{"openid", "email", "profile", "groups", "offline_access"},
		GroupsClaim:  "groups",
		RedirectURL:  e.baseURL + linkflow.CallbackPath,
		LinkMaxAge:   720 * time.Hour,
		GroupsMaxAge: 24 * time.Hour,
		TokenKey:     tokenKey,
		Store:        st,
		Links:        e.svc,
		HTTPClient:   &http.Client{Transport: e.net, Timeout: 10 * time.Second},
		Clock:        e.clk,
		Logger:       logger,
		OnStepUp:     e.svc.StepUpVote(),
		StepUpPolicy: e.svc.StepUpPolicy(),
	}
	for _, o := range options {
		o(&e.opts)
	}
	var err error
	e.linker, err = linkflow.NewLinker(e.opts)
	if err != nil {
		t.Fatalf("NewLinker: %v", err)
	}
	e.dir = &directory{accounts: map[string]linkflow.ChatAccount{}}
	e.linker.SetDirectory("slack", e.dir)
	// Unless a test says otherwise (own, linkAs), U1 is alice's and U2
	// bob's.
	e.own(slackU1, alice)
	e.own(slackU2, bob)
	e.linker.Register(mux)
	t.Cleanup(e.checkNoSecretsLeaked)
	return e
}

// checkNoSecretsLeaked runs after every test: no code, token or secret
// reached signoff's log or its audit log.
// newLinkedEnv is newEnv in which alice has linked slackU1.
func newLinkedEnv(t testing.TB, options ...envOption) *env {
	t.Helper()
	e := newEnv(t, options...)
	e.linkAs(slackU1, alice)
	return e
}

func (e *env) checkNoSecretsLeaked() {
	secrets := append(e.op.IssuedTokens(), testop.ClientSecret, string(tokenKey))
	logs := e.logs.String()
	var auditLog strings.Builder
	_ = e.store.AuditRecords(context.Background(), 1, func(_ uint64, line []byte) error {
		auditLog.Write(line)
		return nil
	}) // the store may be closed by the test already
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("signoff's log contains a code, token or secret (%.8s…)", s)
		}
		if strings.Contains(auditLog.String(), s) {
			e.t.Errorf("the audit log contains a code, token or secret (%.8s…)", s)
		}
	}
}

func (e *env) create(action string) storage.Request {
	e.t.Helper()
	r, _, err := e.svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "github", Subject: "repo:acme/api", Person: "octocat"},
		Action:    action, Reason: "test",
	})
	if err != nil {
		e.t.Fatalf("create %s: %v", action, err)
	}
	return r
}

func (e *env) vote(p linkflow.PlatformUser, id oidc.Identity, requestID string) (approvals.VoteResult, error) {
	return e.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: requestID, Approver: id, Decision: storage.DecisionApprove,
		Source: approvals.Source{Platform: p.Platform, Workspace: p.Workspace, PlatformUser: p.UserID, CallbackID: "cb-" + p.UserID},
	})
}

func (e *env) begin(p linkflow.PlatformUser) string {
	e.t.Helper()
	u, err := e.linker.Begin(context.Background(), p)
	if err != nil {
		e.t.Fatalf("Begin: %v", err)
	}
	return u
}

func (e *env) link(p linkflow.PlatformUser) (storage.IdentityLink, error) {
	return e.svc.Link(context.Background(), p.Platform, p.Workspace, p.UserID)
}

func (e *env) mustLink(p linkflow.PlatformUser) storage.IdentityLink {
	e.t.Helper()
	l, err := e.link(p)
	if err != nil {
		e.t.Fatalf("link of %s: %v", p, err)
	}
	return l
}

func (e *env) noLink(p linkflow.PlatformUser) {
	e.t.Helper()
	if l, err := e.link(p); !errors.Is(err, approvals.ErrNotLinked) {
		e.t.Fatalf("%s is linked (to %s), want no link; err %v", p, l.Subject, err)
	}
}

// linkAs runs the whole flow in a fresh browser as the owner of p and
// expects success.
func (e *env) linkAs(p linkflow.PlatformUser, u testop.User) *browser {
	e.t.Helper()
	e.own(p, u)
	b := newBrowser(e.t)
	b.open(e.begin(p))
	status, body := b.login(u.Username, u.Password, u.OTP)
	if status != http.StatusOK || !strings.Contains(body, `data-outcome="linked"`) {
		e.t.Fatalf("linking %s as %s: status %d\n%s", p, u.Username, status, body)
	}
	return b
}

// signInUntilCallback opens the sign-in link for p in a fresh browser and
// signs in at the IdP as u, stopping before the IdP's answer reaches
// signoff: the browser's callback holds that answer.
func (e *env) signInUntilCallback(p linkflow.PlatformUser, u testop.User) *browser {
	e.t.Helper()
	b := newBrowser(e.t)
	b.stopAtCallback = true
	b.open(e.begin(p))
	b.login(u.Username, u.Password, u.OTP)
	if b.callback == "" {
		e.t.Fatal("the IdP did not answer")
	}
	return b
}

// linkOcho links slackU1 to ocho, an IdP user of group sre whose
// github_login claim is login, with the person claims preferred_username
// and github_login. It returns the env, ocho, a deploy request (by the
// GitHub actor "octocat") and the identity slackU1 resolves to.
func linkOcho(t *testing.T, login any) (*env, testop.User, storage.Request, oidc.Identity) {
	t.Helper()
	e := newEnv(t, func(o *linkflow.LinkerOptions) { o.PersonClaims = []string{"preferred_username", "github_login"} })
	octo := testop.User{Username: "ocho", Password: "ocho-pw", Email: "o.cho@example.com", Name: "O Cho", Groups: []string{"sre"},
		Extra: map[string]any{"github_login": login}}
	e.op.AddUser(octo)
	e.linkAs(slackU1, octo)
	r := e.create("deploy") // requested by the GitHub actor "octocat"
	id, err := e.resolve(slackU1)
	if err != nil {
		t.Fatal(err)
	}
	return e, octo, r, id
}

func (e *env) resolve(p linkflow.PlatformUser) (oidc.Identity, error) {
	return e.linker.Resolve(context.Background(), p)
}

// records returns the audit log, checking its chain.
func (e *env) records() []audit.Record {
	e.t.Helper()
	return testenv.AuditRecords(e.t, e.store)
}

func (e *env) auditTypes() []string {
	return testenv.AuditTypes(e.records())
}

// wantGroupsRefreshedFromSRE checks that the audit log holds an
// identity.refreshed record and that each one names the previous groups
// [sre].
func (e *env) wantGroupsRefreshedFromSRE() {
	e.t.Helper()
	var refreshed bool
	for _, rec := range e.records() {
		if rec.Type == approvals.TypeIdentityRefreshed {
			refreshed = true
			if prev, _ := rec.Data["previous_groups"].([]any); len(prev) != 1 || prev[0] != "sre" {
				e.t.Errorf("identity.refreshed previous_groups = %v", rec.Data["previous_groups"])
			}
		}
	}
	if !refreshed {
		e.t.Fatalf("no identity.refreshed record: %v", e.auditTypes())
	}
}

func (e *env) auditText() string {
	e.t.Helper()
	var b strings.Builder
	err := e.store.AuditRecords(context.Background(), 1, func(_ uint64, line []byte) error {
		b.Write(line)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

// attempt reads a sign-in attempt by the id in its start URL.
func (e *env) attempt(startURL string) (storage.LinkAttempt, error) {
	u, err := url.Parse(startURL)
	if err != nil {
		e.t.Fatal(err)
	}
	var a storage.LinkAttempt
	err = e.store.View(context.Background(), func(tx storage.ReadTx) error {
		var err error
		a, err = tx.LinkAttempt(u.Query().Get("id"))
		return err
	})
	return a, err
}

// browser is an http.Client with a cookie jar, following redirects like a
// browser, optionally stopping before it reaches signoff's callback.
type browser struct {
	t              testing.TB
	c              *http.Client
	stopAtCallback bool
	stopAtIdP      bool
	lastURL        *url.URL
	lastBody       string
	// callback is the callback URL a stop left pending.
	callback string
	// idpURL is the authorization URL a stop left pending.
	idpURL string
}

func newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second}
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		if b.stopAtCallback && req.URL.Path == linkflow.CallbackPath {
			b.callback = req.URL.String()
			return http.ErrUseLastResponse
		}
		if b.stopAtIdP && req.URL.Path == "/authorize" {
			b.idpURL = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, body := testenv.Do(b.t, b.c, req)
	b.lastURL, b.lastBody = resp.Request.URL, string(body)
	return resp.StatusCode, string(body)
}

func (b *browser) get(u string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// open follows a sign-in link to the IdP's login form: the confirmation
// page, then its Continue button.
func (b *browser) open(startURL string) {
	b.t.Helper()
	status, body := b.start(startURL)
	if status != http.StatusOK || !strings.Contains(body, "Sign in to the test IdP") {
		b.t.Fatalf("opening %s: status %d, want the IdP's login form\n%s", startURL, status, body)
	}
}

var (
	confirmIDField   = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)
	confirmCSRFField = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]+)">`)
)

// start opens a sign-in link as a person does: it reads the confirmation
// page and presses Continue. When the link shows no confirmation (used,
// expired) it returns that page.
func (b *browser) start(startURL string) (int, string) {
	b.t.Helper()
	status, body := b.get(startURL)
	if status != http.StatusOK || !strings.Contains(body, `data-outcome="confirm"`) {
		return status, body
	}
	id, csrf := confirmIDField.FindStringSubmatch(body), confirmCSRFField.FindStringSubmatch(body)
	if id == nil || csrf == nil {
		b.t.Fatalf("confirmation page without its form:\n%s", body)
	}
	return b.confirm(startURL, url.Values{"id": {id[1]}, "csrf": {csrf[1]}})
}

// confirm posts the confirmation form of startURL with vals, as signoff's
// own page does.
func (b *browser) confirm(startURL string, vals url.Values) (int, string) {
	b.t.Helper()
	u, err := url.Parse(startURL)
	if err != nil {
		b.t.Fatal(err)
	}
	u.RawQuery = ""
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	return b.do(req)
}

var authRequestIDField = regexp.MustCompile(`name="id" value="([^"]+)"`)

// submit posts the login form on the current page.
func (b *browser) submit(vals url.Values) (int, string) {
	b.t.Helper()
	m := authRequestIDField.FindStringSubmatch(b.lastBody)
	if m == nil {
		b.t.Fatalf("no login form on %s:\n%s", b.lastURL, b.lastBody)
	}
	vals.Set("id", m[1])
	target := b.lastURL.ResolveReference(&url.URL{Path: "/login"})
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) login(username, password, otp string) (int, string) {
	b.t.Helper()
	return b.submit(url.Values{"username": {username}, "password": {password}, "otp": {otp}, "action": {"login"}})
}

func (b *browser) cancel() (int, string) {
	b.t.Helper()
	return b.submit(url.Values{"action": {"deny"}})
}

func wantStatus(t *testing.T, what string, got, want int, body string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d\n%s", what, got, want, body)
	}
}

// wantAnswer is wantStatus and wantPage: status must be want and body a
// page with every fragment.
func wantAnswer(t *testing.T, what string, status, want int, body string, fragments ...string) {
	t.Helper()
	wantStatus(t, what, status, want, body)
	wantPage(t, what, body, fragments...)
}

func wantPage(t *testing.T, what, body string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(body, f) {
			t.Errorf("%s: page lacks %q\n%s", what, f, body)
		}
	}
	for _, bad := range []string{"goroutine ", "panic", "<script"} {
		if strings.Contains(body, bad) {
			t.Errorf("%s: page contains %q\n%s", what, bad, body)
		}
	}
}

func asLinkRequired(t *testing.T, err error, reason linkflow.LinkReason) *linkflow.LinkRequiredError {
	t.Helper()
	var lr *linkflow.LinkRequiredError
	if !errors.As(err, &lr) {
		t.Fatalf("err = %v (%T), want *LinkRequiredError", err, err)
	}
	if lr.Reason != reason {
		t.Fatalf("reason = %q (%s), want %q", lr.Reason, lr.Message, reason)
	}
	if !strings.HasPrefix(lr.URL, "http") || !strings.Contains(lr.URL, linkflow.StartPath+"?id=") {
		t.Fatalf("LinkRequiredError.URL = %q, want a start link", lr.URL)
	}
	return lr
}
