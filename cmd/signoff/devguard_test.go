package main

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// refusalMarker is in the page the loopback guard answers with.
const refusalMarker = "Not served to this address"

// hostClient sends requests to a dev server with a chosen Host and
// Origin, without following redirects, as a page in a browser (a DNS
// rebinding page among them) would.
type hostClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newHostClient(t *testing.T, base string) *hostClient {
	return &hostClient{t: t, base: base, c: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends method pathQuery to the server with Host host and the headers
// given (Origin, Cookie, Content-Type), and a form or JSON body.
func (h *hostClient) do(method, pathQuery, host string, headers map[string]string, body string) (int, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+pathQuery, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// startConsoleSession starts a dev server on a free loopback port and
// opens its console: it returns the server, its port, a client that sets
// any Host, the console's browser, and the session's CSRF token and Cookie
// header.
func startConsoleSession(t *testing.T) (ts *testServer, port string, h *hostClient, b *consoleBrowser, csrf, cookie string) {
	t.Helper()
	ts = startDevLinkServer(t, "127.0.0.1:0", "")
	_, port, _ = net.SplitHostPort(ts.addr)
	h = newHostClient(t, ts.base)
	b = newConsoleBrowser(t, ts.base)
	csrf = b.csrf()
	return ts, port, h, b, csrf, cookieHeader(b, ts.base+"/dev")
}

// cookieHeader is what the browser b sends to u.
func cookieHeader(b *consoleBrowser, u string) string {
	pu, _ := url.Parse(u)
	var parts []string
	for _, c := range b.c.Jar.Cookies(pu) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// TestDevRoutesRefuseForeignHost: everything dev mode serves (console,
// chat-user linking, the dev issuer's pages and endpoints, the webhook
// receiver, /dev/token) refuses a request whose Host is not a loopback
// name with the listening port, GET and POST, even a POST that carries a
// valid CSRF token (a rebinding page would have read it from the console):
// 421 with a page saying why, and nothing happens. So do the CI API,
// /metrics and the probes.
func TestDevRoutesRefuseForeignHost(t *testing.T) {
	// A valid console session: the cookie and its CSRF token. Without the
	// Host check a rebinding page reads the same token from GET /dev under
	// its own Host (the token is bound to the cookie, not to the Host).
	ts, port, h, b, csrf, consoleCookie := startConsoleSession(t)
	other := "1"
	if port == other {
		other = "2"
	}
	foreign := []string{
		"evil.example:" + port,
		"127.0.0.1.evil.example:" + port,
		"127.0.0.1.evil.example",
		"evil.example",
		"localhost:" + other, // a loopback name, another port
	}
	r := createRequest(t, ts.svc, "deploy")

	// A sign-in link for chat:bob and its confirmation form, made on
	// loopback; a rebinding page must not be able to use them either.
	resp, body := b.read(b.c.PostForm(ts.base+"/dev/link", url.Values{"csrf": {csrf}, "chat_user": {"bob"}}))
	m := continueRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("Link on loopback: %d\n%s", resp.StatusCode, body)
	}
	link, _ := url.Parse(html.UnescapeString(m[1]))
	resp, body = b.read(b.c.Get(link.String()))
	linkID, linkCSRF := confirmIDRE.FindStringSubmatch(body), confirmCSRFRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || linkID == nil || linkCSRF == nil {
		t.Fatalf("confirmation page on loopback: %d\n%s", resp.StatusCode, body)
	}
	linkCookie := cookieHeader(b, ts.base+linkflow.StartPath)

	type route struct {
		method, path string
		headers      map[string]string
		body         string
	}
	form := func(v url.Values) string { return v.Encode() }
	jsonCT := map[string]string{"Content-Type": "application/json"}
	routes := []route{
		{"GET", "/dev", nil, ""},
		{"GET", "/dev/", nil, ""},
		{"POST", "/dev/vote", map[string]string{"Cookie": consoleCookie},
			form(url.Values{"csrf": {csrf}, "request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}})},
		{"POST", "/dev/chat-vote", map[string]string{"Cookie": consoleCookie},
			form(url.Values{"csrf": {csrf}, "request": {r.ID}, "chat_user": {"alice"}, "decision": {"approve"}})},
		{"POST", "/dev/link", map[string]string{"Cookie": consoleCookie},
			form(url.Values{"csrf": {csrf}, "chat_user": {"alice"}})},
		{"GET", "/dev/webhook", nil, ""},
		{"POST", "/dev/webhook", jsonCT, `{"id":"` + r.ID + `","action":"deploy"}`},
		{"POST", "/dev/token", jsonCT, `{"sub":"attacker"}`},
		{"GET", "/dev/oidc/.well-known/openid-configuration", nil, ""},
		{"GET", "/dev/oidc/jwks", nil, ""},
		{"GET", "/dev/oidc/authorize", nil, ""},
		{"POST", "/dev/oidc/authorize", nil, form(url.Values{"person": {"alice"}})},
		{"POST", "/dev/oidc/token", nil, form(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}})},
		{"GET", link.RequestURI(), nil, ""},
		{"POST", linkflow.StartPath, map[string]string{"Cookie": linkCookie},
			form(url.Values{"id": {linkID[1]}, "csrf": {linkCSRF[1]}})},
		{"GET", linkflow.CallbackPath + "?state=x&code=y", nil, ""},
	}
	for _, host := range foreign {
		for _, rt := range routes {
			code, body := h.do(rt.method, rt.path, host, rt.headers, rt.body)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, refusalMarker) || !strings.Contains(body, "DNS rebinding") {
				t.Errorf("%s %s with Host %q: %d, want 421 with the refusal page:\n%.300s", rt.method, rt.path, host, code, body)
			}
			for _, leak := range []string{`name="csrf"`, `"token"`, "jwks_uri", `"keys"`, `id="continue"`} {
				if strings.Contains(body, leak) {
					t.Errorf("%s %s with Host %q: the answer holds %s", rt.method, rt.path, host, leak)
				}
			}
		}
	}

	// Nothing happened: no vote, no webhook call recorded.
	if got, _ := ts.svc.Get(context.Background(), r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("request after the refused posts: %s, votes %+v", got.State, got.Votes)
	}
	var calls []json.RawMessage
	if code, body := h.do("GET", "/dev/webhook", ts.addr, nil, ""); code != http.StatusOK || json.Unmarshal([]byte(body), &calls) != nil || len(calls) != 0 {
		t.Fatalf("webhook calls after the refused posts: %d %s", code, body)
	}
	// The sign-in link was neither used up nor moved on: on loopback it
	// still leads to the dev issuer's sign-in, and bob links.
	resp, body = b.read(b.c.PostForm(ts.base+linkflow.StartPath, url.Values{"id": {linkID[1]}, "csrf": {linkCSRF[1]}}))
	page, action := signInPageRE.FindStringSubmatch(body), signInActRE.FindStringSubmatch(body)
	signInCSRF := consoleCSRFRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || page == nil || action == nil || signInCSRF == nil {
		t.Fatalf("confirmation after the refused posts: %d\n%s", resp.StatusCode, body)
	}
	// The sign-in form itself, posted under a foreign Host with its valid
	// tokens, is refused too.
	target, _ := resp.Request.URL.Parse(html.UnescapeString(action[1]))
	signIn := form(url.Values{"page": {page[1]}, "csrf": {signInCSRF[1]}, "person": {"bob"}})
	for _, host := range foreign {
		code, body := h.do("POST", target.RequestURI(), host, map[string]string{"Cookie": cookieHeader(b, target.String())}, signIn)
		if code != http.StatusMisdirectedRequest || strings.Contains(body, "code=") {
			t.Errorf("sign-in posted with Host %q: %d\n%.300s", host, code, body)
		}
	}
	if _, body := b.read(b.c.PostForm(target.String(), url.Values{"page": {page[1]}, "csrf": {signInCSRF[1]}, "person": {"bob"}})); !strings.Contains(body, `data-outcome="linked"`) {
		t.Fatalf("sign-in on loopback after the refused posts:\n%s", body)
	}

	// Everything dev mode serves checks the Host, the CI API and the
	// probes too (a rebinding page reads /metrics otherwise).
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/.well-known/jwks.json"} {
		if code, _ := h.do("GET", path, "evil.example:"+port, nil, ""); code != http.StatusMisdirectedRequest {
			t.Errorf("%s with a foreign Host: %d, want 421", path, code)
		}
	}
	if code, body := h.do("POST", "/v1/requests", "signoff.example.com", jsonCT, `{"action":"deploy"}`); code != http.StatusMisdirectedRequest {
		t.Errorf("/v1/requests with a foreign Host: %d, want 421\n%s", code, body)
	}
	if code, _ := h.do("GET", "/healthz", "127.0.0.1:"+port, nil, ""); code != http.StatusOK {
		t.Errorf("/healthz on loopback: %d", code)
	}
}

// TestDevRoutesAcceptLoopbackNames: localhost, 127.0.0.1 and [::1] with
// the listening port reach every dev route; a vote posted under each
// counts.
func TestDevRoutesAcceptLoopbackNames(t *testing.T) {
	ts, port, h, _, csrf, consoleCookie := startConsoleSession(t)
	cookie := map[string]string{"Cookie": consoleCookie}
	jsonCT := map[string]string{"Content-Type": "application/json"}

	for _, host := range []string{"localhost:" + port, "LocalHost:" + port, "127.0.0.1:" + port, "[::1]:" + port} {
		r := createRequest(t, ts.svc, "deploy")
		for _, tc := range []struct {
			method, path string
			headers      map[string]string
			body         string
			want         int
			contains     string
		}{
			{"GET", "/dev", nil, "", http.StatusOK, `name="csrf"`},
			{"POST", "/dev/vote", cookie, url.Values{"csrf": {csrf}, "request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}}.Encode(), http.StatusSeeOther, ""},
			{"POST", "/dev/chat-vote", cookie, url.Values{"csrf": {csrf}, "request": {r.ID}, "chat_user": {"bob"}, "decision": {"approve"}}.Encode(), http.StatusSeeOther, ""},
			{"POST", "/dev/link", cookie, url.Values{"csrf": {csrf}, "chat_user": {"alice"}}.Encode(), http.StatusOK, `id="continue"`},
			{"GET", "/dev/webhook", nil, "", http.StatusOK, ""},
			{"POST", "/dev/webhook", jsonCT, `{"id":"x","action":"deploy"}`, http.StatusUnauthorized, "signature"},
			{"POST", "/dev/token", jsonCT, `{}`, http.StatusOK, `"token"`},
			{"GET", "/dev/oidc/.well-known/openid-configuration", nil, "", http.StatusOK, "jwks_uri"},
			{"GET", "/dev/oidc/jwks", nil, "", http.StatusOK, `"keys"`},
			{"GET", linkflow.CallbackPath + "?state=x&code=y", nil, "", 0, ""},
		} {
			code, body := h.do(tc.method, tc.path, host, tc.headers, tc.body)
			if code == http.StatusMisdirectedRequest || strings.Contains(body, refusalMarker) || (tc.want != 0 && code != tc.want) || !strings.Contains(body, tc.contains) {
				t.Errorf("%s %s with Host %q: %d, want %d with %q:\n%.300s", tc.method, tc.path, host, code, tc.want, tc.contains, body)
			}
		}
		if got, _ := ts.svc.Get(context.Background(), r.ID); got.State != storage.StateApproved {
			t.Errorf("vote posted with Host %q: request %s", host, got.State)
		}
	}
}

// TestDevRoutesRefuseForeignOrigin: a post to a dev route from a page
// elsewhere (another site, another port, https) is refused with 403 even
// with a loopback Host and a valid CSRF token; a page of this dev server,
// under any loopback name, and the opaque origin "null" are not.
func TestDevRoutesRefuseForeignOrigin(t *testing.T) {
	ts, port, h, _, csrf, consoleCookie := startConsoleSession(t)
	r := createRequest(t, ts.svc, "deploy")
	vote := url.Values{"csrf": {csrf}, "request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}}.Encode()

	for _, origin := range []string{"http://evil.example", "http://evil.example:" + port, "http://127.0.0.1.evil.example:" + port,
		"http://127.0.0.1:1", "https://127.0.0.1:" + port, "http://127.0.0.1:" + port + "/dev", "not a url"} {
		code, body := h.do("POST", "/dev/vote", ts.addr, map[string]string{"Cookie": consoleCookie, "Origin": origin}, vote)
		if code != http.StatusForbidden || !strings.Contains(body, refusalMarker) {
			t.Errorf("vote from Origin %q: %d, want 403:\n%.300s", origin, code, body)
		}
		code, body = h.do("POST", "/dev/token", ts.addr, map[string]string{"Content-Type": "application/json", "Origin": origin}, `{}`)
		if code != http.StatusForbidden || strings.Contains(body, `"token"`) {
			t.Errorf("token from Origin %q: %d, want 403:\n%.300s", origin, code, body)
		}
	}
	if got, _ := ts.svc.Get(context.Background(), r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes after the cross-origin posts: %+v", got.Votes)
	}
	for _, origin := range []string{"http://localhost:" + port, "http://[::1]:" + port, "null"} {
		r := createRequest(t, ts.svc, "deploy")
		vote := url.Values{"csrf": {csrf}, "request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}}.Encode()
		if code, body := h.do("POST", "/dev/vote", ts.addr, map[string]string{"Cookie": consoleCookie, "Origin": origin}, vote); code != http.StatusSeeOther {
			t.Errorf("vote from Origin %q: %d, want 303:\n%.300s", origin, code, body)
		}
		if got, _ := ts.svc.Get(context.Background(), r.ID); got.State != storage.StateApproved {
			t.Errorf("vote from Origin %q: request %s", origin, got.State)
		}
	}
	// The dev token CLI sends no Origin; a page of this server may mint.
	var out devTokenResponse
	code, body := h.do("POST", "/dev/token", ts.addr, map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:" + port}, `{}`)
	if code != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Token == "" {
		t.Fatalf("token from this server's own origin: %d %s", code, body)
	}
}

// TestDevTokenCommandNamesLoopback: when the dev server refuses the name
// `signoff dev token --server` reached it by, the command says how to
// address it.
func TestDevTokenCommandNamesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusMisdirectedRequest)
	}))
	defer srv.Close()
	_, err := fetchDevToken(context.Background(), srv.URL, devTokenRequest{})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "421") || !strings.Contains(err.Error(), "--server http://127.0.0.1:PORT") {
		t.Fatalf("dev token refused for its Host: %v", err)
	}
}
