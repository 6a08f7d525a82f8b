package bot_test

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/internal/attesttest"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
)

func (f *apiFixture) attestation(id, token string) response {
	f.t.Helper()
	return f.do("GET", "/v1/requests/"+id+"/attestation", token, "")
}

func (r response) attestation(t *testing.T) string {
	t.Helper()
	var a api.Attestation
	if err := json.Unmarshal(r.body, &a); err != nil || r.status != http.StatusOK {
		t.Fatalf("attestation answer %d: %s (%v)", r.status, r.body, err)
	}
	return a.Attestation
}

// Who reads an attestation, and when: the requester and auditors, once
// the request is approved; the same token each time, one a stock JWT
// library verifies with the keys the front door publishes.
func TestAttestationEndpoint(t *testing.T) {
	f := newAPIFixture(t)
	alice, bob := f.token("alice", nil), f.token("bob", nil)
	admin, auditor := f.adminToken(), f.auditorToken()
	r := f.create("alice")

	if resp := f.attestation(r.ID, alice); resp.status != http.StatusConflict || resp.errorCode() != api.CodeNotApproved || !strings.Contains(resp.errorMessage(), "pending") {
		t.Errorf("pending: %d %s %q; want 409 not_approved", resp.status, resp.errorCode(), resp.errorMessage())
	}
	f.vote(r.ID, "carol", storage.DecisionApprove)
	tok := f.attestation(r.ID, alice).attestation(t)
	if again := f.attestation(r.ID, auditor).attestation(t); again != tok {
		t.Error("the auditor got another token than the requester")
	}
	stored, err := f.svc.Get(context.Background(), r.ID)
	if err != nil || stored.Attestation != tok {
		t.Errorf("the answer is not the stored attestation (%v)", err)
	}
	// Another requester, an admin who is not an auditor, an unknown id:
	// 404, alike.
	for name, call := range map[string]response{
		"another requester": f.attestation(r.ID, bob),
		"an admin":          f.attestation(r.ID, admin),
		"an unknown id":     f.attestation("req_missing", alice),
	} {
		if call.status != http.StatusNotFound || call.errorCode() != api.CodeNotFound || strings.Contains(string(call.body), tok) {
			t.Errorf("%s: %d %s; want 404 not_found", name, call.status, call.errorCode())
		}
	}
	if resp := f.attestation(r.ID, ""); resp.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.status)
	}
	if resp := f.do("POST", "/v1/requests/"+r.ID+"/attestation", alice, ""); resp.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.status)
	}

	// The keys, as a relying party fetches them: discovery, then jwks_uri.
	disco := f.do("GET", "/.well-known/openid-configuration", "", "")
	var d map[string]any
	if err := json.Unmarshal(disco.body, &d); err != nil || disco.status != http.StatusOK {
		t.Fatalf("discovery: %d %s", disco.status, disco.body)
	}
	if d["issuer"] != attestIssuer || d["jwks_uri"] != attestIssuer+"/.well-known/jwks.json" ||
		!sameJSON(d["response_types_supported"], []string{"id_token"}) || !sameJSON(d["subject_types_supported"], []string{"public"}) ||
		!sameJSON(d["id_token_signing_alg_values_supported"], []string{"ES256"}) {
		t.Errorf("discovery document %v", d)
	}
	keys := f.do("GET", "/.well-known/jwks.json", "", "")
	if keys.status != http.StatusOK || keys.header.Get("Content-Type") != "application/json" || keys.header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(keys.header.Get("Cache-Control"), "max-age=") {
		t.Errorf("JWKS: %d, headers %v", keys.status, keys.header)
	}
	attesttest.CheckPublicOnly(t, keys.body)
	claims := attesttest.Claims(t, tok, keys.body, attestIssuer, "signoff", time.Now())
	if claims["sub"] != r.ID || claims["action"] != "deploy" || !sameJSON(claims["params"], map[string]string{"service": "api", "version": "1.4.2"}) ||
		!sameJSON(claims["requester"], map[string]string{"issuer": f.ci.URL(), "subject": "alice", "person": "alice"}) ||
		!sameJSON(claims["approvers"], []map[string]string{{"issuer": "https://idp.example", "subject": "carol", "platform": "dev"}}) {
		t.Errorf("claims %v", claims)
	}
	if head := f.do("HEAD", "/.well-known/jwks.json", "", ""); head.status != http.StatusOK || len(head.body) != 0 {
		t.Errorf("HEAD: %d, %d bytes", head.status, len(head.body))
	}
	// The token is a credential: it is in no log line.
	if strings.Contains(f.logs.String(), tok) || strings.Contains(f.logs.String(), tok[strings.LastIndex(tok, ".")+1:]) {
		t.Error("the attestation is in the log")
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Denied, cancelled and expired requests have no attestation: 409
// not_approved, to the requester and auditors alike.
func TestNoAttestationUnlessApproved(t *testing.T) {
	f := newAPIFixture(t)
	alice, auditor := f.token("alice", nil), f.auditorToken()
	denied := f.create("alice")
	f.vote(denied.ID, "carol", storage.DecisionDeny)
	cancelled := f.create("alice")
	if resp := f.do("POST", "/v1/requests/"+cancelled.ID+"/cancel", alice, ""); resp.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", resp.status, resp.body)
	}
	// An expired request, stored as the expiry loop leaves it.
	now := time.Now().UTC()
	expired := storage.Request{
		ID: "req_expired", Action: "deploy", State: storage.StateExpired, MinApprovals: 1,
		Requester: storage.Requester{Issuer: "ci", Subject: "alice"},
		CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), DecidedAt: now.Add(-time.Hour), DecidedBy: "expiry",
	}
	if err := f.store.Update(context.Background(), func(tx storage.Tx) error { return tx.CreateRequest(expired) }); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{denied.ID, cancelled.ID, expired.ID} {
		for _, tok := range []string{alice, auditor} {
			resp := f.attestation(id, tok)
			if resp.status != http.StatusConflict || resp.errorCode() != api.CodeNotApproved {
				t.Errorf("%s: %d %s %s; want 409 not_approved", id, resp.status, resp.errorCode(), resp.body)
			}
		}
		if got, _ := f.svc.Get(context.Background(), id); got.Attestation != "" {
			t.Errorf("%s (%s) has an attestation", id, got.State)
		}
	}
}

// A server that signs no attestations says so: 404 on its keys, and on an
// approved request's attestation.
func TestAttestationsOff(t *testing.T) {
	f := newAPIFixture(t)
	off := bot.New(bot.Options{Service: f.svc, Store: f.store})
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		rec := httptest.NewRecorder()
		off.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "attest.signing_key_file") {
			t.Errorf("GET %s without a signer: %d %s", path, rec.Code, rec.Body)
		}
	}
	// Approved before the server signed attestations: none to give.
	now := time.Now().UTC()
	old := storage.Request{
		ID: "req_old", Action: "deploy", State: storage.StateApproved, MinApprovals: 1,
		Requester: storage.Requester{Issuer: "ci", Subject: "alice"},
		CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), DecidedAt: now, DecidedBy: "quorum",
	}
	if err := f.store.Update(context.Background(), func(tx storage.Tx) error { return tx.CreateRequest(old) }); err != nil {
		t.Fatal(err)
	}
	if resp := f.attestation(old.ID, f.token("alice", nil)); resp.status != http.StatusNotFound || !strings.Contains(resp.errorMessage(), "approved without an attestation") {
		t.Errorf("approved without an attestation: %d %q", resp.status, resp.errorMessage())
	}
}

// Rotation at the front door: after a restart with a new signing key and
// the old one listed as previous, new approvals are signed with the new
// key, and the JWKS serves both, so the attestations signed before the
// restart still verify (until they expire).
func TestKeyRotationAtTheFrontDoor(t *testing.T) {
	f := newAPIFixture(t)
	before := f.create("alice")
	f.vote(before.ID, "carol", storage.DecisionApprove)
	oldTok := f.attestation(before.ID, f.token("alice", nil)).attestation(t)

	newKey, err := attest.GenerateKey(true)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := attest.NewSigner(attest.SignerOptions{Issuer: attestIssuer, Key: newKey, Previous: []crypto.PublicKey{f.attestKey.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	svc := approvals.New(f.store, testPolicy(t), approvals.Options{Attester: rotated})
	front := bot.New(bot.Options{Service: svc, Store: f.store, Attestations: rotated})
	after := f.create("alice")
	if _, err := svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: after.ID, Decision: storage.DecisionApprove, Source: approvals.Source{Platform: "dev", PlatformUser: "carol"},
		Approver: oidc.Identity{Issuer: "https://idp.example", Subject: "carol", Groups: []string{"sre"}, VerifiedAt: time.Now()},
	}); err != nil {
		t.Fatal(err)
	}
	stored, err := svc.Get(context.Background(), after.ID)
	if err != nil || stored.Attestation == "" {
		t.Fatalf("no attestation after the rotation (%v)", err)
	}
	rec := httptest.NewRecorder()
	front.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	jwks := rec.Body.Bytes()
	attesttest.CheckPublicOnly(t, jwks)
	if keys := attesttest.Keys(t, jwks); len(keys) != 2 || keys[f.attest.KeyID()] == nil || keys[rotated.KeyID()] == nil {
		t.Fatalf("after the rotation the JWKS publishes %d keys: %s", len(keys), jwks)
	}
	for name, tc := range map[string]struct{ token, kid, alg string }{
		"signed before": {oldTok, f.attest.KeyID(), "ES256"},
		"signed after":  {stored.Attestation, rotated.KeyID(), "RS256"},
	} {
		tok, err := attesttest.Parse(t, tc.token, jwks, attestIssuer, "signoff", time.Now())
		if err != nil {
			t.Errorf("%s: a stock library refuses it with the rotated JWKS: %v", name, err)
			continue
		}
		if tok.Header["kid"] != tc.kid || tok.Method.Alg() != tc.alg {
			t.Errorf("%s: kid %v, alg %s; want %s, %s", name, tok.Header["kid"], tok.Method.Alg(), tc.kid, tc.alg)
		}
	}
	rec = httptest.NewRecorder()
	front.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/openid-configuration", nil))
	var d map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &d)
	if !sameJSON(d["id_token_signing_alg_values_supported"], []string{"RS256", "ES256"}) {
		t.Errorf("discovery after the rotation: %v", d)
	}
}
