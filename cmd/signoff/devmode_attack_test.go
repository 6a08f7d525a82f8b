package main

// Attacks on dev mode (the "Dev mode" part of the attacker's checklist):
// DNS rebinding on every route, cross-site posts, dev tokens at a non-dev
// server, listening beyond loopback.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage"
)

// TestAttackDevModeEveryRouteChecksHost: everything dev mode serves answers
// only requests whose Host is a loopback name or address (no DNS
// rebinding): the probes, /metrics, the OpenAPI document and the
// attestation keys too, or a page rebound to 127.0.0.1 reads them through
// the browser (/metrics: action names, request and vote counts, issuers).
func TestAttackDevModeEveryRouteChecksHost(t *testing.T) {
	ts, port, h, _, _, _ := startConsoleSession(t)
	createRequest(t, ts.svc, "deploy")
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/v1/openapi.json", "/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		code, body := h.do("GET", path, "rebind.evil.example:"+port, nil, "")
		if code != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with a rebinding Host: %d (%d bytes readable by the rebound page)", path, code, len(body))
		}
	}
}

// TestAttackDevCrossSitePostsRefused: cross-site posts to the
// console's vote buttons and to token minting, as a browser sends them
// from another site (no SameSite=Strict cookie, a simple content type,
// Origin of the other site or "null" from a sandboxed frame), change
// nothing and mint nothing; a preflight is never granted.
func TestAttackDevCrossSitePostsRefused(t *testing.T) {
	ts, _, h, _, csrf, _ := startConsoleSession(t)
	r := createRequest(t, ts.svc, "deploy")
	vote := url.Values{"csrf": {csrf}, "request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}}.Encode()
	noCSRF := url.Values{"request": {r.ID}, "approver": {"alice"}, "decision": {"approve"}}.Encode()
	for _, origin := range []string{"null", "http://evil.example", ""} {
		hdr := map[string]string{}
		if origin != "" {
			hdr["Origin"] = origin
		}
		// The page may even know a CSRF token (leaked), but not the
		// SameSite=Strict cookie it is bound to.
		for _, body := range []string{vote, noCSRF} {
			for _, path := range []string{"/dev/vote", "/dev/chat-vote"} {
				code, _ := h.do("POST", path, ts.addr, hdr, body)
				if code == http.StatusSeeOther || code == http.StatusOK {
					t.Errorf("POST %s from Origin %q without the cookie: %d", path, origin, code)
				}
			}
		}
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
			hh := map[string]string{"Content-Type": ct}
			if origin != "" {
				hh["Origin"] = origin
			}
			code, body := h.do("POST", "/dev/token", ts.addr, hh, `{"sub":"attacker"}`)
			if strings.Contains(body, `"token"`) {
				t.Errorf("POST /dev/token from Origin %q as %s minted: %d", origin, ct, code)
			}
		}
	}
	code, _ := h.doHeaders("OPTIONS", "/dev/token", ts.addr, map[string]string{"Origin": "http://evil.example",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	_ = code
	if got, _ := ts.svc.Get(context.Background(), r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("after cross-site posts: %s %+v", got.State, got.Votes)
	}
}

// doHeaders sends a body-less request and returns the status and the
// CORS headers it answered with.
func (h *hostClient) doHeaders(method, path, host string, headers map[string]string) (int, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		h.t.Errorf("%s %s: Access-Control-Allow-Origin %q", method, path, v)
	}
	return resp.StatusCode, resp.Header
}

// TestAttackDevIssuerURLRecognised (holds, with the documented carve-out):
// every spelling of a default dev issuer URL a non-dev serve could be
// given is refused; a loopback issuer on another path under another
// requester name is not (docs: "Other loopback issuers ... are not").
func TestAttackDevIssuerURLRecognised(t *testing.T) {
	for _, iss := range []string{
		"http://127.0.0.1:8080/dev/oidc", "http://localhost:8080/dev/oidc/", "http://LOCALHOST:8080/dev/oidc",
		"http://[::1]:8080/dev/oidc", "http://127.9.9.9:1/dev/oidc", "https://127.0.0.1/dev/oidc",
		"http://[::ffff:127.0.0.1]:8080/dev/oidc",
	} {
		if ok, _ := isDevIssuerURL(reviewRequester("ci", iss)); !ok {
			t.Errorf("%s not recognised as a dev-mode issuer URL", iss)
		}
	}
	if ok, _ := isDevIssuerURL(reviewRequester("dev", "http://127.0.0.1:9000/anything")); !ok {
		t.Error("the requester named dev on loopback not recognised")
	}
}

// TestAttackDevListenLoopbackOnly: dev mode refuses every
// non-loopback or wildcard listen address.
func TestAttackDevListenLoopbackOnly(t *testing.T) {
	for _, l := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "10.0.0.1:8080", "localhost.:8080", "127.1:8080", "0:8080", "[::ffff:0.0.0.0]:8080"} {
		if err := checkLoopback(l); err == nil {
			t.Errorf("dev mode accepts listen %q", l)
		}
	}
}

func reviewRequester(name, issuer string) config.RequesterConfig {
	return config.RequesterConfig{Name: name, Issuer: issuer, Audience: "signoff", PersonClaim: "sub"}
}
