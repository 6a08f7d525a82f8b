package devconsole_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
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
	"github.com/signoff-dev/signoff/bot/devconsole"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// fakeLinker stands in for *linkflow.Linker: links are read from the store
// (written with svc.SaveLink), sign-in links are made up and recorded.
type fakeLinker struct {
	svc  *approvals.Service
	mu   sync.Mutex
	n    int
	down bool
	// stepUps records BeginStepUp calls as "user request decision".
	stepUps []string
}

func (f *fakeLinker) next(kind string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return fmt.Sprintf("http://127.0.0.1:1/link/start?id=%s-%d", kind, f.n)
}

func (f *fakeLinker) Begin(_ context.Context, p linkflow.PlatformUser) (string, error) {
	if p.Platform != "dev" || p.Workspace != "dev" {
		return "", fmt.Errorf("unexpected chat account %v", p)
	}
	return f.next("link-" + p.UserID), nil
}

func (f *fakeLinker) Resolve(ctx context.Context, p linkflow.PlatformUser) (oidc.Identity, error) {
	if f.down {
		return oidc.Identity{}, fmt.Errorf("%w: test", linkflow.ErrIdPUnavailable)
	}
	l, err := f.svc.Link(ctx, p.Platform, p.Workspace, p.UserID)
	if errors.Is(err, approvals.ErrNotLinked) {
		u, _ := f.Begin(ctx, p)
		return oidc.Identity{}, &linkflow.LinkRequiredError{URL: u, Reason: linkflow.LinkReasonNotLinked, Message: "your chat account is not linked yet"}
	}
	if err != nil {
		return oidc.Identity{}, err
	}
	return oidc.Identity{Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, Name: l.Name, Groups: l.Groups,
		VerifiedAt: l.VerifiedAt, AuthTime: l.AuthTime, AMR: l.AMR}, nil
}

func (f *fakeLinker) BeginStepUp(_ context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error) {
	f.mu.Lock()
	f.stepUps = append(f.stepUps, p.UserID+" "+requestID+" "+decision)
	f.mu.Unlock()
	return f.next("stepup"), nil
}

type chatFixture struct {
	*fixture
	linker *fakeLinker
}

// newChatFixture is the console with a Linker; action "guarded" demands a
// step-up sign-in. mutate, when given, adjusts the console's options.
func newChatFixture(t *testing.T, mutate ...func(*devconsole.Options)) *chatFixture {
	t.Helper()
	st := testenv.OpenStore(t)
	rule := []policy.RequesterRule{{Issuer: "dev", Claims: map[string]string{"sub": "*"}}}
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		"deploy": {Name: "deploy", Requesters: rule, Params: map[string]policy.Param{"service": {}},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1}, TTL: time.Hour},
		"guarded": {Name: "guarded", Requesters: rule,
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1}, TTL: time.Hour,
			StepUp: &policy.StepUp{MaxAge: 5 * time.Minute, RequireMFA: true}},
	}}
	svc := approvals.New(st, pol, approvals.Options{Logger: testenv.DiscardLogger()})
	fl := &fakeLinker{svc: svc}
	opts := devconsole.Options{
		Service:   svc,
		IssuerURL: "http://127.0.0.1/dev/oidc",
		Approvers: []devconsole.Approver{{Name: "alice", Email: "alice@example.com", Groups: []string{"sre"}}, {Name: "bob", Email: "bob@example.com", Groups: []string{"sre"}}},
		Logger:    testenv.DiscardLogger(),
		Linker:    fl,
	}
	for _, m := range mutate {
		m(&opts)
	}
	con := devconsole.New(opts)
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &chatFixture{fixture: &fixture{svc: svc, srv: srv, client: &http.Client{Jar: jar}}, linker: fl}
}

// link stores a link for the chat user name, as a finished sign-in would.
func (f *chatFixture) link(t *testing.T, name string, groups []string, authTime time.Time) {
	t.Helper()
	now := time.Now().UTC()
	err := f.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: "dev", Workspace: "dev", PlatformUser: name,
		Issuer: "http://127.0.0.1/dev/oidc", Subject: name, Email: name + "@example.com", Name: name, Groups: groups,
		LinkedAt: now, VerifiedAt: now, AuthTime: authTime, AMR: []string{"pwd", "otp"}, MatchedBy: "email",
	}, "")
	if err != nil {
		t.Fatal(err)
	}
}

func (f *chatFixture) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := f.client.PostForm(f.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var signinLinkRE = regexp.MustCompile(`class="signin-link" href="([^"]+)"`)

func TestChatUsersPanelHiddenWithoutLinker(t *testing.T) {
	f := newFixture(t)
	f.create(t, "x")
	page := f.page(t)
	if strings.Contains(page, `id="chat-users"`) || strings.Contains(page, "/dev/chat-vote") {
		t.Fatal("chat users shown without a Linker")
	}
	resp, err := f.client.PostForm(f.srv.URL+"/dev/link", url.Values{"chat_user": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /dev/link without a Linker: %d", resp.StatusCode)
	}
}

func TestChatUsersPanelShowsLinks(t *testing.T) {
	f := newChatFixture(t)
	f.create(t, "x")
	page := f.page(t)
	for _, want := range []string{`data-chat-user="alice" data-linked="false"`, `data-chat-user="bob" data-linked="false"`, `name="chat_user"`, `action="/dev/chat-vote"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %s:\n%s", want, page)
		}
	}
	// The quick path is still there.
	if !strings.Contains(page, `select name="approver"`) || !strings.Contains(page, `class="approve"`) {
		t.Fatal("the dev approver form is gone")
	}
	f.link(t, "alice", []string{"sre", "oncall"}, time.Now())
	page = f.page(t)
	if !strings.Contains(page, `data-chat-user="alice" data-linked="true"`) || !strings.Contains(page, "alice@example.com") || !strings.Contains(page, "sre, oncall") {
		t.Fatalf("linked chat user not shown:\n%s", page)
	}
}

func TestLinkButtonStartsSignIn(t *testing.T) {
	f := newChatFixture(t)
	token := csrfRE.FindStringSubmatch(f.page(t))[1]
	resp, body := f.post(t, "/dev/link", url.Values{"csrf": {token}, "chat_user": {"alice"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `http-equiv="refresh" content="0; url=http://127.0.0.1:1/link/start?id=link-alice-1"`) ||
		!strings.Contains(body, `id="continue" href="http://127.0.0.1:1/link/start?id=link-alice-1"`) {
		t.Fatalf("link: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp, _ := f.post(t, "/dev/link", url.Values{"csrf": {"forged"}, "chat_user": {"alice"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF: %d", resp.StatusCode)
	}
	if resp, _ := f.post(t, "/dev/link", url.Values{"csrf": {token}, "chat_user": {"mallory"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown chat user: %d", resp.StatusCode)
	}
}

func TestChatVoteUnlinkedShowsLink(t *testing.T) {
	f := newChatFixture(t)
	r := f.create(t, "x")
	token := csrfRE.FindStringSubmatch(f.page(t))[1]
	resp, body := f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r.ID}, "chat_user": {"bob"}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "chat:bob&#39;s vote was not counted: your chat account is not linked yet") {
		t.Fatalf("unlinked vote: %d\n%s", resp.StatusCode, body)
	}
	m := signinLinkRE.FindStringSubmatch(body)
	if m == nil || html.UnescapeString(m[1]) != "http://127.0.0.1:1/link/start?id=link-bob-1" {
		t.Fatalf("no sign-in link shown:\n%s", body)
	}
	got, _ := f.svc.Get(context.Background(), r.ID)
	if len(got.Votes) != 0 {
		t.Fatalf("an unlinked chat user's vote counted: %+v", got.Votes)
	}
	// The console shows only sign-in links it made itself.
	resp, err := f.client.Get(f.srv.URL + "/dev?" + url.Values{"msg": {"hi"}, "link": {"https://evil.example/"}, "lsig": {"00"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "evil.example") {
		t.Fatal("an unsigned link was shown")
	}
}

func TestChatVoteLinkedCounts(t *testing.T) {
	f := newChatFixture(t)
	r := f.create(t, "x")
	f.link(t, "alice", []string{"sre"}, time.Time{})
	token := csrfRE.FindStringSubmatch(f.page(t))[1]
	_, body := f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r.ID}, "chat_user": {"alice"}, "decision": {"approve"}, "reason": {"lgtm"}})
	if !strings.Contains(body, "chat:alice (alice@example.com) voted approve on "+r.ID+"; it is now approved") {
		t.Fatalf("linked vote:\n%s", body)
	}
	got, _ := f.svc.Get(context.Background(), r.ID)
	if got.State != storage.StateApproved || len(got.Votes) != 1 {
		t.Fatalf("after the vote: %+v", got)
	}
	v := got.Votes[0]
	if v.Approver.Platform != "dev" || v.Approver.PlatformUser != "alice" || v.Approver.Subject != "alice" || v.Reason != "lgtm" {
		t.Fatalf("vote %+v", v)
	}
	// A linked chat user outside the approver groups is refused, with why.
	r2 := f.create(t, "y")
	f.link(t, "bob", nil, time.Time{})
	_, body = f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r2.ID}, "chat_user": {"bob"}, "decision": {"approve"}})
	if !strings.Contains(body, "chat:bob (bob@example.com)&#39;s vote was not counted") || !strings.Contains(body, "may not approve") {
		t.Fatalf("refusal not shown:\n%s", body)
	}
}

func TestChatVoteStepUp(t *testing.T) {
	f := newChatFixture(t)
	r := f.createInput(t, approvals.CreateInput{Action: "guarded", Reason: "test"})
	f.link(t, "alice", []string{"sre"}, time.Now().Add(-time.Hour))
	token := csrfRE.FindStringSubmatch(f.page(t))[1]
	_, body := f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r.ID}, "chat_user": {"alice"}, "decision": {"approve"}})
	if !strings.Contains(body, "chat:alice&#39;s vote needs a fresh sign-in") {
		t.Fatalf("step-up not explained:\n%s", body)
	}
	if m := signinLinkRE.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], "id=stepup-") {
		t.Fatalf("no step-up link:\n%s", body)
	}
	if len(f.linker.stepUps) != 1 || f.linker.stepUps[0] != "alice "+r.ID+" approve" {
		t.Fatalf("BeginStepUp calls %v", f.linker.stepUps)
	}
	// A fresh sign-in with MFA counts.
	f.link(t, "alice", []string{"sre"}, time.Now())
	_, body = f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r.ID}, "chat_user": {"alice"}, "decision": {"approve"}})
	if !strings.Contains(body, "it is now approved") {
		t.Fatalf("vote after a fresh sign-in:\n%s", body)
	}
}

func TestChatVoteIdPDown(t *testing.T) {
	f := newChatFixture(t)
	r := f.create(t, "x")
	f.linker.down = true
	token := csrfRE.FindStringSubmatch(f.page(t))[1]
	_, body := f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r.ID}, "chat_user": {"alice"}, "decision": {"approve"}})
	if !strings.Contains(body, "the identity provider cannot be reached") {
		t.Fatalf("unavailable IdP not explained:\n%s", body)
	}
	if resp, _ := f.post(t, "/dev/chat-vote", url.Values{"csrf": {"forged"}, "request": {r.ID}, "chat_user": {"alice"}, "decision": {"approve"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF: %d", resp.StatusCode)
	}
}
