package bot_test

// Attacks on the admin and auditor surface of the HTTP API (bot/admin.go,
// bot/api.go, bot/attestation.go, bot/login.go). Each test starts from
// what an endpoint guarantees and tries to break exactly that.

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/storage"
)

// normalized is an error answer with id replaced by "ID", so answers
// about two ids can be compared.
func normalized(r response, id string) string {
	return fmt.Sprintf("%d %s %s", r.status, r.errorCode(), strings.ReplaceAll(r.errorMessage(), id, "ID"))
}

// TestAttackAttestationAnswerHidesWhetherAnIDExists: to a caller who may
// not read a request (a CI job of another repository, a login token of
// neither group), GET /v1/requests/{id}/attestation answers an existing
// id word for word as an unknown one, as GET /v1/requests/{id} does, so
// ids cannot be probed. (An admin who is no auditor may read any request,
// so is told why the attestation is refused.)
func TestAttackAttestationAnswerHidesWhetherAnIDExists(t *testing.T) {
	f := newAPIFixture(t)
	real := f.create("alice").ID
	// An id of the same shape that does not exist.
	fake := real[:len(real)-4] + "zzzz"
	if fake == real {
		t.Fatal("fake id equals the real one")
	}

	callers := map[string]string{
		"another requester": f.token("mallory", nil),
	}
	for who, tok := range callers {
		// The read endpoint keeps its promise: both answers are alike.
		gr, gf := f.do("GET", "/v1/requests/"+real, tok, ""), f.do("GET", "/v1/requests/"+fake, tok, "")
		if who == "another requester" && normalized(gr, real) != normalized(gf, fake) {
			t.Errorf("%s: GET /v1/requests/{id} tells an existing id from an unknown one:\n existing: %s\n unknown:  %s", who, normalized(gr, real), normalized(gf, fake))
		}
		ar := f.do("GET", "/v1/requests/"+real+"/attestation", tok, "")
		af := f.do("GET", "/v1/requests/"+fake+"/attestation", tok, "")
		if ar.status != http.StatusNotFound || af.status != http.StatusNotFound {
			t.Fatalf("%s: attestation answers %d / %d, want 404 / 404", who, ar.status, af.status)
		}
		if normalized(ar, real) != normalized(af, fake) {
			t.Errorf("%s: GET /v1/requests/{id}/attestation tells an existing id from an unknown one (ids can be probed):\n existing: %s\n unknown:  %s",
				who, normalized(ar, real), normalized(af, fake))
		}
	}
}

// loginFixtureWithKey is newLoginFixture whose IdP key file the test can
// read, to sign ID tokens with claims devissuer.Mint cannot set (a list
// aud, azp).
func loginFixtureWithKey(t *testing.T) (*apiFixture, *devissuer.Issuer, crypto.Signer) {
	t.Helper()
	f, idp := newLoginFixture(t)
	data, err := os.ReadFile(f.idpKey)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatal("idp key: no PEM block")
	}
	var priv crypto.Signer
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		priv = k.(crypto.Signer)
	} else if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		priv = k
	} else {
		t.Fatalf("idp key: %v", err)
	}
	return f, idp, priv
}

func signIDToken(t *testing.T, idp *devissuer.Issuer, priv crypto.Signer, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	base := map[string]any{"iss": idp.URL(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	payload, err := json.Marshal(testkeys.Claims(base, claims))
	if err != nil {
		t.Fatal(err)
	}
	return testkeys.Sign(t, priv, jose.ES256, idp.KeyID(), payload, nil)
}

// TestAttackLoginTokenOfAnotherClientRefused: a login token is an ID token
// issued to signoff's command-line client (idp.cli_client_id). One the
// IdP issued to another client (azp: the approvers' link-flow client) that
// merely also lists the command-line client in its audience is refused
// (OpenID Connect Core 3.1.3.7), as is one whose audience names several
// clients without an azp; one for another client alone is refused too.
func TestAttackLoginTokenOfAnotherClientRefused(t *testing.T) {
	f, idp, priv := loginFixtureWithKey(t)

	sanity := signIDToken(t, idp, priv, map[string]any{"sub": "audrey", "aud": loginClientID, "groups": []string{"audit"}})
	if r := f.do("GET", "/v1/audit", sanity, ""); r.status != http.StatusOK {
		t.Fatalf("a proper login token: %d %s", r.status, r.body)
	}
	other := signIDToken(t, idp, priv, map[string]any{"sub": "audrey", "aud": "link-client", "groups": []string{"audit"}})
	if r := f.do("GET", "/v1/audit", other, ""); r.status != http.StatusUnauthorized {
		t.Errorf("an ID token for another client alone: %d %s", r.status, r.body)
	}

	foreign := signIDToken(t, idp, priv, map[string]any{
		"sub": "audrey", "aud": []string{"link-client", loginClientID}, "azp": "link-client", "groups": []string{"audit"},
	})
	if r := f.do("GET", "/v1/audit", foreign, ""); r.status != http.StatusUnauthorized {
		t.Errorf("an ID token issued to another client (azp link-client, aud also naming %s) read the audit log: %d", loginClientID, r.status)
	}
	unnamed := signIDToken(t, idp, priv, map[string]any{
		"sub": "audrey", "aud": []string{"link-client", loginClientID}, "groups": []string{"audit"},
	})
	if r := f.do("GET", "/v1/audit", unnamed, ""); r.status != http.StatusUnauthorized {
		t.Errorf("an ID token for several clients without azp read the audit log: %d", r.status)
	}
	ours := signIDToken(t, idp, priv, map[string]any{
		"sub": "audrey", "aud": []string{"link-client", loginClientID}, "azp": loginClientID, "groups": []string{"audit"},
	})
	if r := f.do("GET", "/v1/audit", ours, ""); r.status != http.StatusOK {
		t.Errorf("an ID token issued to the command-line client (azp), for several audiences: %d %s", r.status, r.body)
	}
}

// The role matrix: a requester, an auditor, an admin, a login
// token with neither group, each on every admin and auditor endpoint.
// An auditor does no admin's job (links, revoke, lift, backup, cancel),
// an admin does no auditor's (the audit log, an attestation), a requester
// neither; a refusal changes nothing and writes no audit record.
func TestAttackRoleMatrix(t *testing.T) {
	f, idp := newLoginFixture(t)
	seedLinks(t, f)
	req := f.create("alice")
	nRecords := len(f.records())

	loginPlain := mint(t, idp, "dev-user", loginClientID, map[string]any{"groups": []string{"sre", "oncall"}})
	loginAdmin := mint(t, idp, "root", loginClientID, map[string]any{"groups": []string{"signoff-admins"}})
	loginAuditor := mint(t, idp, "audrey", loginClientID, map[string]any{"groups": []string{"audit"}})
	requester := f.token("bob", map[string]any{"groups": []string{"sre"}})

	type ep struct{ method, path, body string }
	links := ep{"GET", "/v1/links", ""}
	revoke := ep{"DELETE", "/v1/links/slack/T1/U1", `{"reason":"x"}`}
	list := ep{"GET", "/v1/requests", ""}
	backup := ep{"GET", "/v1/backup", ""}
	auditLog := ep{"GET", "/v1/audit", ""}
	lift := ep{"POST", "/v1/requests/" + req.ID + "/lift-block", `{"reason":"x"}`}
	cancel := ep{"POST", "/v1/requests/" + req.ID + "/cancel", `{"reason":"x"}`}

	refused := []struct {
		who, tok string
		eps      []ep
	}{
		{"a requester", requester, []ep{links, revoke, list, backup, auditLog, lift}},
		{"a login token without groups of a role", loginPlain, []ep{links, revoke, list, backup, auditLog, lift}},
		{"an auditor (ci)", f.auditorToken(), []ep{links, revoke, backup, lift, cancel}},
		{"an auditor (login)", loginAuditor, []ep{links, revoke, backup, lift, cancel}},
		{"an admin (ci)", f.adminToken(), []ep{auditLog}},
		{"an admin (login)", loginAdmin, []ep{auditLog}},
	}
	for _, c := range refused {
		for _, e := range c.eps {
			r := f.do(e.method, e.path, c.tok, e.body)
			if r.status != http.StatusForbidden {
				t.Errorf("%s: %s %s = %d %s, want 403", c.who, e.method, e.path, r.status, r.body)
			}
		}
	}
	// Not a requester's to cancel, and invisible to them.
	for who, tok := range map[string]string{"a requester": requester, "a login token": loginPlain} {
		if r := f.do(cancel.method, cancel.path, tok, cancel.body); r.status != http.StatusNotFound {
			t.Errorf("%s cancels another's request: %d %s", who, r.status, r.body)
		}
	}
	// An admin who is no auditor reads no attestation (not approved yet:
	// the 404 comes before the state check).
	if r := f.do("GET", "/v1/requests/"+req.ID+"/attestation", loginAdmin, ""); r.status != http.StatusNotFound {
		t.Errorf("admin login token reads an attestation: %d %s", r.status, r.body)
	}

	if got, _ := f.svc.Get(t.Context(), req.ID); got.State != storage.StatePending {
		t.Errorf("a refused call changed the request: %s", got.State)
	}
	if _, err := f.svc.Link(t.Context(), "slack", "T1", "U1"); err != nil {
		t.Errorf("a refused revoke removed the link: %v", err)
	}
	if n := len(f.records()); n != nRecords {
		t.Errorf("refusals wrote %d audit records", n-nRecords)
	}
}

// Group claims of odd types never make an admin: only a string or
// a list of strings is read, matched exactly (no case folding, trimming,
// splitting on commas or prefix match), and an empty configured group
// never matches an empty one. (A single string holding the exact group
// IS taken as that group, as many IdPs send one group.)
func TestAttackOddGroupClaimsMakeNoAdmin(t *testing.T) {
	f := newAPIFixture(t)
	for name, groups := range map[string]any{
		"object":                map[string]any{"signoff-admins": true},
		"number":                42,
		"bool":                  true,
		"nested list":           []any{[]any{"signoff-admins"}},
		"object in list":        []any{map[string]any{"name": "signoff-admins"}},
		"comma string":          "dev,signoff-admins",
		"space string":          "dev signoff-admins",
		"upper case":            []any{"SIGNOFF-ADMINS"},
		"padded":                []any{" signoff-admins"},
		"trailing NUL":          []any{"signoff-admins\x00"},
		"prefix":                []any{"signoff-admin"},
		"suffix":                []any{"signoff-admins-not"},
		"empty string":          []any{""},
		"null":                  nil,
		"null in list":          []any{nil},
		"full-width":            []any{"ｓignoff-admins"},
		"zero-width joiner":     []any{"signoff\u200d-admins"},
		"group as path":         []any{"/signoff-admins"},
		"string of a JSON list": `["signoff-admins"]`,
	} {
		extra := map[string]any{"groups": groups}
		if groups == nil {
			extra = map[string]any{"groups": []any{}}
		}
		tok := f.token("odd-"+strings.ReplaceAll(name, " ", "-"), extra)
		for _, e := range [][2]string{{"GET", "/v1/links"}, {"GET", "/v1/backup"}, {"GET", "/v1/audit"}, {"GET", "/v1/requests"}} {
			r := f.do(e[0], e[1], tok, "")
			if r.status != http.StatusForbidden {
				t.Errorf("groups %s (%#v): %s %s = %d", name, groups, e[0], e[1], r.status)
			}
		}
	}
}

// The person a break-glass review reviews cannot end or lift it
// as an admin under another subject of the same issuer whatever the case
// or padding of their person claim, nor through their email or
// preferred_username; the block stays, nothing is written.
func TestAttackReviewedAdminUnderOtherNames(t *testing.T) {
	_, f, oncall := newBreakGlassFixture(t)
	created := f.do("POST", "/v1/requests", oncall, breakGlassBody)
	if created.status != http.StatusCreated {
		t.Fatalf("break-glass: %d %s", created.status, created.body)
	}
	reviewID := created.view(t).BreakGlass.Review
	admins := []any{"signoff-admins"}
	tokens := map[string]string{
		"person upper case and padded": f.token("alice-2", map[string]any{"groups": admins, "actor": "  ALICE "}),
		"person as email":              f.token("alice-3", map[string]any{"groups": admins, "actor": "ops-bot", "email": "alice"}),
		"person as preferred_username": f.token("alice-4", map[string]any{"groups": admins, "actor": "ops-bot", "preferred_username": "Alice"}),
		"same subject, other actor":    f.token("alice", map[string]any{"groups": admins, "actor": "not-alice"}),
	}
	reason := `{"reason":"it was fine"}`
	for name, tok := range tokens {
		if r := f.do("POST", "/v1/requests/"+reviewID+"/cancel", tok, reason); r.status != http.StatusForbidden {
			t.Errorf("%s: cancel of own pending review = %d %s", name, r.status, r.body)
		}
	}
	f.denyReview(reviewID, "no ticket")
	for name, tok := range tokens {
		if r := f.do("POST", "/v1/requests/"+reviewID+"/lift-block", tok, reason); r.status != http.StatusForbidden {
			t.Errorf("%s: lift of own block = %d %s", name, r.status, r.body)
		}
	}
	for _, r := range f.records() {
		if r.Type == approvals.TypeBreakGlassLifted {
			t.Fatal("a refused lift wrote break_glass.lifted")
		}
	}
	if r := f.do("POST", "/v1/requests", oncall, strings.Replace(breakGlassBody, "api down", "again", 1)); r.status != http.StatusForbidden || r.errorCode() != api.CodeReviewPending {
		t.Errorf("the block was lifted: %d %s", r.status, r.body)
	}
}

// Nothing an admin or auditor reads carries a secret: no refresh
// token (sealed or not) in links, a revoke's answer, the request list or
// the audit log; no attestation in a listing or in the audit log (only
// its jti); no bearer token echoed in any refusal.
func TestAttackNoSecretsInAdminAnswers(t *testing.T) {
	f := newAPIFixture(t)
	seedLinks(t, f)
	req := f.create("alice")
	f.vote(req.ID, "sre-1", storage.DecisionApprove)
	att := f.do("GET", "/v1/requests/"+req.ID+"/attestation", f.auditorToken(), "")
	var a api.Attestation
	if json.Unmarshal(att.body, &a) != nil || a.Attestation == "" {
		t.Fatalf("attestation: %d %s", att.status, att.body)
	}
	adm, aud := f.adminToken(), f.auditorToken()
	answers := map[string]response{
		"links":         f.do("GET", "/v1/links", adm, ""),
		"requests list": f.do("GET", "/v1/requests", adm, ""),
		"request":       f.do("GET", "/v1/requests/"+req.ID, adm, ""),
		"revoke":        f.do("DELETE", "/v1/links/slack/T1/U1", adm, `{"reason":"left"}`),
	}
	answers["audit log"] = f.do("GET", "/v1/audit", aud, "") // after the revoke: identity.unlinked in it
	stranger := f.token("mallory", map[string]any{"groups": []string{"x"}})
	answers["403"] = f.do("GET", "/v1/links", stranger, "")
	answers["404"] = f.do("GET", "/v1/requests/"+req.ID+"/attestation", stranger, "")
	for name, r := range answers {
		if r.status >= 500 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
		for _, secret := range []string{"SEALED-REFRESH-TOKEN", "refresh_token", a.Attestation, adm, aud, stranger} {
			if bytes.Contains(r.body, []byte(secret)) {
				t.Errorf("%s answer holds a secret (%.20s…)", name, secret)
			}
		}
	}
}

// rawDo sends one request line as written (no client-side cleaning of
// the path) and returns the status and body.
func rawDo(t *testing.T, f *apiFixture, method, target, token string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.api.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", method, target, token)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// Path tricks (trailing and double slashes, dot segments, encoded
// slashes and dots, encoded method names) reach no admin endpoint as
// another, and no trick turns a non-admin into one: each answer is a
// refusal, a 404 or a redirect, never the backup or a listing.
func TestAttackPathTricks(t *testing.T) {
	f := newAPIFixture(t)
	seedLinks(t, f)
	req := f.create("alice")
	adm := f.adminToken()
	plain := f.token("mallory", nil)
	records := len(f.records())

	for _, c := range []struct{ method, target string }{
		{"GET", "/v1/backup/"},
		{"GET", "/v1/%62ackup"}, // the same path decoded: an admin's backup, a plain token's 403
		{"GET", "//v1/backup"},
		{"GET", "/v1//backup"},
		{"GET", "/v1/requests/" + req.ID + "/../../backup"},
		{"GET", "/v1/requests/x/..%2f..%2fbackup"},
		{"GET", "/V1/backup"},
		{"GET", "/v1/links/"},
		{"GET", "/v1/links/slack/T1/U1/"},
		{"DELETE", "/v1/links/slack/T1/U1/"},
		{"DELETE", "//v1/links/slack/T1/U1"},
		{"DELETE", "/v1/links/slack/T1%2FU1"},
		{"DELETE", "/v1/links/slack/./T1/U1"},
		{"POST", "/v1/requests/" + req.ID + "/cancel/"},
		{"POST", "/v1/requests/" + req.ID + "%2Fcancel"},
		{"GET", "/v1/requests/"},
		{"GET", "/v1/requests/" + req.ID + "/"},
	} {
		for who, tok := range map[string]string{"admin": adm, "plain": plain} {
			if who == "admin" && c.target == "/v1/%62ackup" {
				continue // it is /v1/backup: the admin may
			}
			status, body := rawDo(t, f, c.method, c.target, tok)
			if status == http.StatusOK || status == http.StatusCreated {
				t.Errorf("%s: %s %s = %d %.200s", who, c.method, c.target, status, body)
			}
			if status >= 500 {
				t.Errorf("%s: %s %s = %d %.200s", who, c.method, c.target, status, body)
			}
		}
	}
	if _, err := f.svc.Link(t.Context(), "slack", "T1", "U1"); err != nil {
		t.Errorf("a path trick revoked a link: %v", err)
	}
	if got, _ := f.svc.Get(t.Context(), req.ID); got.State != storage.StatePending {
		t.Errorf("a path trick cancelled the request: %s", got.State)
	}
	if n := len(f.records()); n != records {
		t.Errorf("path tricks wrote %d audit records (a backup?)", n-records)
	}
}

// Method confusion: HEAD on the backup takes no snapshot and
// writes no admin.backup; override headers are ignored; GET on the write
// endpoints is a 405, never a read of the thing they change.
func TestAttackMethodConfusion(t *testing.T) {
	f := newAPIFixture(t)
	seedLinks(t, f)
	req := f.create("alice")
	adm := f.adminToken()
	records := len(f.records())
	for _, c := range []struct {
		method, path string
		headers      []string
		want         int
	}{
		{"HEAD", "/v1/backup", nil, http.StatusMethodNotAllowed},
		{"POST", "/v1/links/slack/T1/U1", []string{"X-HTTP-Method-Override", "DELETE"}, http.StatusMethodNotAllowed},
		{"GET", "/v1/links/slack/T1/U1", []string{"X-HTTP-Method", "DELETE"}, http.StatusMethodNotAllowed},
		{"GET", "/v1/requests/" + req.ID + "/cancel", nil, http.StatusMethodNotAllowed},
		{"GET", "/v1/requests/" + req.ID + "/lift-block", nil, http.StatusMethodNotAllowed},
		{"PUT", "/v1/requests/" + req.ID + "/cancel", nil, http.StatusMethodNotAllowed},
		{"PATCH", "/v1/requests/" + req.ID, nil, http.StatusMethodNotAllowed},
		{"OPTIONS", "/v1/backup", nil, http.StatusMethodNotAllowed},
		{"TRACE", "/v1/links", nil, http.StatusMethodNotAllowed},
	} {
		r := f.do(c.method, c.path, adm, "", c.headers...)
		if r.status != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.body, c.want)
		}
	}
	if n := len(f.records()); n != records {
		t.Errorf("method confusion wrote %d audit records", n-records)
	}
	if _, err := f.svc.Link(t.Context(), "slack", "T1", "U1"); err != nil {
		t.Errorf("link removed: %v", err)
	}
}

// Odd and huge query parameters and bodies are refused with a
// bounded 4xx that echoes at most a short cut of the input, never a 500.
func TestAttackOddQueriesAndBodies(t *testing.T) {
	f := newAPIFixture(t)
	seedLinks(t, f)
	req := f.create("alice")
	adm, aud := f.adminToken(), f.auditorToken()
	huge := strings.Repeat("A", 200<<10)
	for _, c := range []struct {
		method, path, tok, body string
		want                    int
	}{
		{"GET", "/v1/requests?limit=1001", adm, "", 400},
		{"GET", "/v1/requests?limit=-1", adm, "", 400},
		{"GET", "/v1/requests?limit=1e3", adm, "", 400},
		{"GET", "/v1/requests?limit=99999999999999999999999", adm, "", 400},
		{"GET", "/v1/requests?limit=0x10", adm, "", 400},
		{"GET", "/v1/requests?state=pending&state=approved", adm, "", 400},
		{"GET", "/v1/requests?state=PENDING", adm, "", 400},
		{"GET", "/v1/requests?state=pending%00", adm, "", 400},
		{"GET", "/v1/requests?state=" + huge, adm, "", 400},
		{"GET", "/v1/requests?action=" + huge, adm, "", 200},
		{"GET", "/v1/links?platform=" + huge, adm, "", 200},
		{"GET", "/v1/links?" + huge + "=1", adm, "", 400},
		{"GET", "/v1/audit?since=" + huge, aud, "", 400},
		{"GET", "/v1/audit?request=a&request=b", aud, "", 400},
		{"GET", "/v1/audit?since=2026-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", aud, "", 200},
		{"DELETE", "/v1/links/slack/T1/U1", adm, `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
		{"DELETE", "/v1/links/slack/T1/U1", adm, `{"reason":"x","extra":1}`, 400},
		{"DELETE", "/v1/links/slack/T1/U1", adm, `{"reason":"x"}{"reason":"y"}`, 400},
		{"DELETE", "/v1/links/slack/T1/U1", adm, `{"reason":` + strings.Repeat("[", 10000) + `}`, 400},
		{"POST", "/v1/requests/" + req.ID + "/cancel", adm, `{"reason":"   "}`, 400},
		{"POST", "/v1/requests/" + req.ID + "/cancel", adm, `{"reason":"` + strings.Repeat("x", 5000) + `"}`, 400},
		{"POST", "/v1/requests/" + req.ID + "/cancel", adm, `["reason"]`, 400},
		{"POST", "/v1/requests/" + req.ID + "/lift-block", adm, `{"reason":null}`, 400},
	} {
		r := f.do(c.method, c.path, c.tok, c.body)
		if r.status != c.want {
			t.Errorf("%s %.80s: %d %.300s, want %d", c.method, c.path, r.status, r.body, c.want)
		}
		if r.status >= 400 && len(r.body) > 2000 {
			t.Errorf("%s %.80s: error body of %d bytes echoes the input", c.method, c.path, len(r.body))
		}
	}
	if got, _ := f.svc.Get(t.Context(), req.ID); got.State != storage.StatePending {
		t.Errorf("a refused cancel changed the request: %s", got.State)
	}
	if _, err := f.svc.Link(t.Context(), "slack", "T1", "U1"); err != nil {
		t.Errorf("a refused revoke removed the link: %v", err)
	}
}

// Idempotency keys are scoped to the requester: another requester
// (or the same subject from another issuer, or a login token) reusing a
// key gets nothing of the first request, neither on the create path nor
// on the over-the-limit replay path.
func TestAttackIdempotencyKeyAcrossRequesters(t *testing.T) {
	f := newAPIFixture(t, apiLimits{requestsPerMinute: 1})
	key := "deploy-42"
	first := f.do("POST", "/v1/requests", f.token("alice", nil), validBody, "Idempotency-Key", key)
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	id := first.view(t).ID
	// mallory's first call (under her limit) creates her own request.
	m := f.do("POST", "/v1/requests", f.token("mallory", nil), validBody, "Idempotency-Key", key)
	if m.status != http.StatusCreated || m.view(t).ID == id {
		t.Fatalf("mallory reusing alice's key: %d %s", m.status, m.body)
	}
	// Over her limit, her replay finds her own request, never alice's.
	m2 := f.do("POST", "/v1/requests", f.token("mallory", nil), validBody, "Idempotency-Key", key)
	if bytes.Contains(m2.body, []byte(id)) {
		t.Fatalf("mallory's over-limit replay answered alice's request: %d %s", m2.status, m2.body)
	}
	// The same subject at another issuer: refused by policy, and no replay.
	other := mint(t, f.other, "alice", "signoff", map[string]any{"repository": "acme/api", "actor": "alice"})
	o := f.do("POST", "/v1/requests", other, validBody, "Idempotency-Key", key)
	if bytes.Contains(o.body, []byte(id)) {
		t.Fatalf("alice at another issuer got alice@ci's request: %d %s", o.status, o.body)
	}
}

// The admin's cancel is audited as the admin with the reason, and a
// cancel of a request already decided is a 409 that writes nothing;
// lift-block on an unknown id is a 404, on an ordinary request a 400.
func TestAttackAdminCancelAndLiftEdges(t *testing.T) {
	f := newAPIFixture(t)
	req := f.create("alice")
	adm := f.adminToken()
	if r := f.do("POST", "/v1/requests/"+req.ID+"/cancel", adm, `{"reason":"wrong train"}`); r.status != http.StatusOK || r.view(t).DecidedBy != "admin" {
		t.Fatalf("admin cancel: %d %s", r.status, r.body)
	}
	rec := lastOfType(f.records(), "request.cancelled")
	if rec == nil || rec.Actor == nil || rec.Actor.Subject != "root-admin" || rec.Data["reason"] != "wrong train" || rec.Data["by"] != "admin" {
		t.Fatalf("request.cancelled: %+v", rec)
	}
	n := len(f.records())
	if r := f.do("POST", "/v1/requests/"+req.ID+"/cancel", adm, `{"reason":"again"}`); r.status != http.StatusConflict {
		t.Errorf("second cancel: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/requests/req_nope/lift-block", adm, `{"reason":"x"}`); r.status != http.StatusNotFound {
		t.Errorf("lift of unknown id: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/requests/"+req.ID+"/lift-block", adm, `{"reason":"x"}`); r.status != http.StatusBadRequest {
		t.Errorf("lift of a request that is no review: %d %s", r.status, r.body)
	}
	if m := len(f.records()); m != n {
		t.Errorf("refusals wrote %d records", m-n)
	}
}
