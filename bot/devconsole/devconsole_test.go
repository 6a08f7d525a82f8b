package devconsole_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/devconsole"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

type fixture struct {
	svc    *approvals.Service
	srv    *httptest.Server
	client *http.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testenv.OpenStore(t)
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		"deploy": {
			Name:       "deploy",
			Requesters: []policy.RequesterRule{{Issuer: "dev", Claims: map[string]string{"sub": "*"}}},
			Params:     map[string]policy.Param{"service": {}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:        time.Hour,
			OnApprove:  &policy.OnApprove{Webhook: &policy.Webhook{URL: "http://127.0.0.1/dev/webhook", Secret: "s3cret", Timeout: time.Second}},
		},
	}}
	svc := approvals.New(st, pol, approvals.Options{Logger: testenv.DiscardLogger()})
	con := devconsole.New(devconsole.Options{
		Service:   svc,
		IssuerURL: "http://127.0.0.1/dev/oidc",
		Approvers: []devconsole.Approver{{Name: "alice", Email: "alice@example.com", Groups: []string{"sre"}}, {Name: "carol", Email: "carol@example.com"}},
		Logger:    testenv.DiscardLogger(),
	})
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &fixture{svc: svc, srv: srv, client: &http.Client{Jar: jar}}
}

func (f *fixture) create(t *testing.T, reason string) storage.Request {
	t.Helper()
	return f.createInput(t, approvals.CreateInput{
		Action: "deploy", Params: map[string]string{"service": "<b>api</b>"}, Reason: reason,
		Links: []storage.Link{{Title: "CI run", URL: "https://ci.example/run/1"}},
	})
}

// createInput asks for the request in describes, with dev-user as its
// requester.
func (f *fixture) createInput(t *testing.T, in approvals.CreateInput) storage.Request {
	t.Helper()
	in.Requester = storage.Requester{Issuer: "dev", Subject: "dev-user", Person: "dev-user", Claims: map[string]string{"sub": "dev-user"}}
	r, _, err := f.svc.Create(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) page(t *testing.T) string {
	t.Helper()
	resp, err := f.client.Get(f.srv.URL + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /dev: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("no restrictive CSP: %q", csp)
	}
	return string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (f *fixture) vote(t *testing.T, csrf, id, approver, decision string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"csrf": {csrf}, "request": {id}, "approver": {approver}, "decision": {decision}}
	resp, err := f.client.PostForm(f.srv.URL+"/dev/vote", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestConsoleShowsEscapedRequestAndApproves(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, `<script>alert(1)</script> & <a href="https://evil">x</a>`)
	page := f.page(t)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, `<a href="https://evil"`) || strings.Contains(page, "<b>api</b>") {
		t.Fatal("requester text rendered unescaped")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(page, r.ID) {
		t.Fatalf("page lacks the escaped reason or the request id:\n%s", page)
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the form")
	}
	resp, body := f.vote(t, m[1], r.ID, "alice", "approve")
	if resp.StatusCode != 200 || !strings.Contains(body, "it is now approved") {
		t.Fatalf("vote: %d\n%s", resp.StatusCode, body)
	}
	got, _ := f.svc.Get(context.Background(), r.ID)
	if got.State != storage.StateApproved || got.Votes[0].Approver.Platform != "dev" || got.Votes[0].Approver.Subject != "alice" {
		t.Fatalf("after console vote: %+v", got)
	}
}

func TestConsoleRefusesForgedOrBadVotes(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "x")
	page := f.page(t)
	token := csrfRE.FindStringSubmatch(page)[1]

	// Wrong token.
	if resp, _ := f.vote(t, "forged", r.ID, "alice", "approve"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", resp.StatusCode)
	}
	// Right token, but from a browser without the cookie (another site).
	bare := &http.Client{}
	resp, err := bare.PostForm(f.srv.URL+"/dev/vote", url.Values{"csrf": {token}, "request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("vote without the cookie: %d", resp.StatusCode)
	}
	if resp, _ := f.vote(t, token, r.ID, "mallory", "approve"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown approver: %d", resp.StatusCode)
	}
	if resp, _ := f.vote(t, token, r.ID, "alice", "maybe"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad decision: %d", resp.StatusCode)
	}
	got, _ := f.svc.Get(context.Background(), r.ID)
	if len(got.Votes) != 0 {
		t.Fatalf("refused posts counted votes: %+v", got.Votes)
	}
	// An approver outside the approver groups is refused with the reason shown.
	_, body := f.vote(t, token, r.ID, "carol", "approve")
	if !strings.Contains(body, "carol&#39;s vote was not counted") || !strings.Contains(body, "may not approve") {
		t.Fatalf("refusal not shown:\n%s", body)
	}
}

func TestBuiltInWebhookReceiverChecksSignatures(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"id":"req_1","action":"deploy","decision":"approved"}`)
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/dev/webhook", bytes.NewReader(body))
		req.Header.Set(executor.HeaderSignature, sig)
		req.Header.Set(executor.HeaderIdempotencyKey, "req_1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(executor.Sign([]byte("wrong"), time.Now(), body)); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", code)
	}
	if code := post(executor.Sign([]byte("s3cret"), time.Now().Add(-time.Hour), body)); code != http.StatusUnauthorized {
		t.Fatalf("stale signature: %d", code)
	}
	if code := post(executor.Sign([]byte("s3cret"), time.Now(), body)); code != http.StatusOK {
		t.Fatalf("good signature: %d", code)
	}
	var calls []devconsole.WebhookCall
	testenv.GetJSON(t, f.srv.URL+"/dev/webhook", &calls)
	if len(calls) != 3 || !calls[0].SignatureValid || calls[1].SignatureValid || calls[2].SignatureValid || calls[0].RequestID != "req_1" {
		t.Fatalf("calls %+v", calls)
	}
	if page := f.page(t); !strings.Contains(page, "signature valid") || !strings.Contains(page, "refused") {
		t.Fatal("console does not list the webhook calls")
	}
}
