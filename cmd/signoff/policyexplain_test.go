package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/testkeys"
)

// explainIssuer is an OpenID issuer on loopback (discovery and a key set)
// whose tokens the policy explain tests mint.
type explainIssuer struct {
	url  string
	srv  *httptest.Server
	key  *testkeys.Key
	keys testkeys.KeySet
}

func startExplainIssuer(t *testing.T) *explainIssuer {
	t.Helper()
	iss := &explainIssuer{key: testkeys.New(t, "key-1", jose.ES256)}
	iss.keys.Publish(iss.key)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url, iss.srv = srv.URL, srv
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.url,
			"jwks_uri":                              iss.url + "/keys",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.Handle("GET /keys", &iss.keys)
	return iss
}

// claims is a CI job's claim set from this issuer, valid for ten
// minutes, with extra merged in (a nil value deletes a claim).
func (i *explainIssuer) claims(extra map[string]any) map[string]any {
	now := time.Now()
	return testkeys.Claims(map[string]any{
		"iss": i.url, "aud": "signoff", "sub": "repo:acme/api:ref:refs/heads/main",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"actor": "octocat", "repository": "acme/api", "ref": "refs/heads/main", "run_id": 4242,
		"groups": []string{"ci-bots"},
	}, extra)
}

// token is a token of this issuer with claims(extra).
func (i *explainIssuer) token(t *testing.T, extra map[string]any) string {
	t.Helper()
	return i.key.Sign(t, i.claims(extra))
}

// explainConfig is the explain tests' config: requester ci (the loopback
// issuer) and gitlab, three actions.
func explainConfig(t *testing.T, issuer string) string {
	t.Helper()
	return writeConfig(t, `storage: {path: ./unused/signoff.db}
requesters:
  - {name: ci, issuer: "`+issuer+`", audience: signoff, person_claim: actor, groups_claim: groups}
  - {name: gitlab, issuer: "https://gitlab.com", audience: signoff, person_claim: user_login}
idp: {person_claims: [preferred_username, github_login]}
actions:
  deploy-prod:
    requesters:
      - {issuer: ci, claims: {repository: "acme/*", ref: refs/heads/main}}
    approvers: {groups: [sre], users: [dana@example.com], min_approvals: 2}
    ttl: 1h
  deploy-staging:
    requesters:
      - {issuer: gitlab, claims: {project_path: "acme/*"}}
      - {issuer: ci, claims: {repository: "acme/*", environment: staging}}
      - {issuer: ci, claims: {repository: "*/infra"}}
    approvers: {groups: [dev, sre], allow_self_approval: true}
    ttl: 1h
  rotate-keys:
    requesters:
      - {issuer: gitlab, claims: {project_path: acme/keys}}
    approvers: {groups: [security]}
    ttl: 1h
`)
}

// writeClaims writes v as JSON to a temporary file and returns its path.
func writeClaims(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "claims.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantLines fails t unless text holds each of lines as a whole line, in
// this order.
func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	rest := strings.Split(text, "\n")
	for _, l := range lines {
		i := slices.Index(rest, l)
		if i < 0 {
			t.Fatalf("output lacks the line %q (in this order):\n%s", l, text)
		}
		rest = rest[i+1:]
	}
}

// TestPolicyExplainVerifiedToken: a real token, verified against the
// loopback issuer, may request one action and not the two others, each
// with the rule and claim that decided; --token - reads it from standard
// input.
func TestPolicyExplainVerifiedToken(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	tok := iss.token(t, nil)

	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--token", tok)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, out,
		`Token VERIFIED against requester "ci" (`+iss.url+`): signature, issuer, audience and expiry checked as signoff serve checks them.`,
		"Claims signoff reads:",
		"  issuer   ci ("+iss.url+")",
		"  subject  repo:acme/api:ref:refs/heads/main",
		"  person   octocat (claim actor)",
		"  groups   ci-bots (claim groups)",
		"  claims the policy matches:",
		`    environment: missing`,
		`    ref: "refs/heads/main"`,
		`    repository: "acme/api"`,
		"deploy-prod: may request",
		`  rule 1 matches: issuer "ci", claims ref "refs/heads/main", repository "acme/*"`,
		"deploy-staging: may not request",
		`  rule 2: claim "environment" is missing (want "staging")`,
		`  rule 3: claim "repository" is "acme/api", which does not match "*/infra"`,
		"rotate-keys: may not request",
		`  no rule names issuer "ci" (the rules name "gitlab")`,
	)
	if strings.Contains(out, "NOT VERIFIED") || strings.Contains(out, "rule 1 wants issuer") {
		t.Errorf("a verified token's explanation says it was not verified, or lists rules of other issuers:\n%s", out)
	}
	if strings.Contains(out+stderr, tok) {
		t.Error("the token was printed")
	}

	// The same token from standard input, another claim set: now staging
	// is allowed through its third rule, production is not.
	infra := iss.token(t, map[string]any{"repository": "acme/infra", "ref": "refs/heads/dev"})
	var stdout, errOut bytes.Buffer
	code = run(context.Background(), []string{"policy", "explain", "--config", cfg, "--token", "-"}, strings.NewReader(infra+"\n"), &stdout, &errOut)
	if code != exitOK {
		t.Fatalf("--token -: exit %d: %s", code, errOut.String())
	}
	wantLines(t, stdout.String(),
		"deploy-prod: may not request",
		`  rule 1: claim "ref" is "refs/heads/dev", which does not match "refs/heads/main"`,
		"deploy-staging: may request",
		`  rule 3 matches: issuer "ci", claims repository "*/infra"`,
	)
}

// TestPolicyExplainRefusedTokens: a token signoff serve would refuse exits
// 3 with the verifier's reason, and explains nothing.
func TestPolicyExplainRefusedTokens(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	forger := testkeys.New(t, "key-1", jose.ES256) // same kid, another key
	hour := time.Hour
	cases := []struct {
		name, token, reason string
	}{
		{"forged signature", forger.Sign(t, iss.claims(nil)), "(bad_signature)"},
		{"altered claims", alterClaim(t, iss.token(t, nil), "repository", "acme/api", "acme/apj"), "(bad_signature)"},
		{"expired", iss.token(t, map[string]any{"iat": time.Now().Add(-2 * hour).Unix(), "exp": time.Now().Add(-hour).Unix()}), "(expired): the token expired at"},
		{"another audience", iss.token(t, map[string]any{"aud": "someone-else"}), "(wrong_audience)"},
		{"no person claim", iss.token(t, map[string]any{"actor": nil}), `(missing_claim): the token has no "actor" claim`},
		{"unknown issuer", iss.token(t, map[string]any{"iss": "https://evil.example"}), "(unknown_issuer)"},
		{"not a JWT", "not-a-token", "(malformed)"},
	}
	// An issuer that does not answer: serve refuses its tokens too.
	down := startExplainIssuer(t)
	downCfg, downToken := explainConfig(t, down.url), down.token(t, nil)
	down.srv.Close()
	for _, c := range append(cases, struct{ name, token, reason string }{"issuer unreachable", downToken, "(issuer_unavailable)"}) {
		t.Run(c.name, func(t *testing.T) {
			config := cfg
			if c.token == downToken {
				config = downCfg
			}
			code, out, stderr := runCmd(t, "policy", "explain", "--config", config, "--token", c.token)
			if code != exitRefused || out != "" || !strings.Contains(stderr, "the token does not verify "+c.reason) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 3, nothing on stdout, the reason %q", code, out, stderr, c.reason)
			}
		})
	}
}

// alterClaim changes one claim value in a signed token's payload, keeping
// its signature: a token tampered with after signing.
func alterClaim(t *testing.T, tok, claim, from, to string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(payload), `"`+claim+`":"`+from+`"`, `"`+claim+`":"`+to+`"`, 1)
	if changed == string(payload) {
		t.Fatalf("claim %s=%s not in %s", claim, from, payload)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(changed))
	return strings.Join(parts, ".")
}

// TestPolicyExplainClaimsFile: a claims file is explained and said plainly
// not to be verified; claims a token could not be accepted with exit 3,
// a file that is not a claims object exits 2.
func TestPolicyExplainClaimsFile(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	// Old claims (expired an hour ago): expiry is not checked.
	path := writeClaims(t, iss.claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "environment": "staging", "ref": "refs/heads/x"}))

	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--claims", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, out,
		"Claims from "+path+", NOT VERIFIED: no signature, issuer, audience or expiry was checked; a real token gets these answers only if it verifies.",
		"  issuer   ci ("+iss.url+")",
		`    environment: "staging"`,
		"deploy-prod: may not request",
		`  rule 1: claim "ref" is "refs/heads/x", which does not match "refs/heads/main"`,
		"deploy-staging: may request",
		`  rule 2 matches: issuer "ci", claims environment "staging", repository "acme/*"`,
		"rotate-keys: may not request",
	)
	if strings.Contains(out, "VERIFIED against") {
		t.Errorf("unverified claims are said to be verified:\n%s", out)
	}

	refused := []struct {
		name   string
		claims map[string]any
		reason string
	}{
		{"unknown issuer", iss.claims(map[string]any{"iss": "https://evil.example"}), "(unknown_issuer)"},
		{"another audience", iss.claims(map[string]any{"aud": "other"}), "(wrong_audience)"},
		{"no sub", iss.claims(map[string]any{"sub": nil}), "(missing_claim)"},
	}
	for _, c := range refused {
		code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--claims", writeClaims(t, c.claims))
		if code != exitRefused || out != "" || !strings.Contains(stderr, "signoff would refuse a token with these claims, even signed "+c.reason) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 3 with %s", c.name, code, out, stderr, c.reason)
		}
	}
	for name, content := range map[string]string{"not JSON": "repository=acme/api", "a list": `["a"]`, "no iss": `{"sub": "x"}`} {
		p := filepath.Join(t.TempDir(), "claims.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--claims", p)
		if code != exitUsage || !strings.Contains(stderr, "--claims "+p+": the claims") {
			t.Errorf("%s: exit %d, %s; want exit 2 naming the file", name, code, stderr)
		}
	}
}

// TestPolicyExplainActionFilter: --action explains one action; an
// undeclared one is a usage error naming the declared ones.
func TestPolicyExplainActionFilter(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	path := writeClaims(t, iss.claims(nil))
	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--claims", path, "--action", "deploy-staging")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, out, "deploy-staging: may not request")
	if strings.Contains(out, "deploy-prod") || strings.Contains(out, "rotate-keys") {
		t.Errorf("--action deploy-staging explained other actions:\n%s", out)
	}
	// Only the filtered action's rules decide which claims are shown.
	wantLines(t, out, "  claims the policy matches:", `    environment: missing`, `    repository: "acme/api"`)
	if strings.Contains(out, "    ref:") {
		t.Errorf("a claim only another action names is shown:\n%s", out)
	}

	code, _, stderr = runCmd(t, "policy", "explain", "--config", cfg, "--claims", path, "--action", "drop-db")
	if code != exitUsage || !strings.Contains(stderr, `action "drop-db" is not declared; declared actions: deploy-prod, deploy-staging, rotate-keys`) {
		t.Errorf("undeclared --action: exit %d, %s", code, stderr)
	}
}

// TestPolicyExplainJSON: --output json has exactly the documented shape.
func TestPolicyExplainJSON(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--token", iss.token(t, nil), "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	wantKeys(t, "top level", top, "actions", "claims", "verified")
	var doc struct {
		Verified bool `json:"verified"`
		Claims   struct {
			Issuer, Subject, Person, PersonClaim string
			Groups                               []string
			Policy                               map[string]*string
		} `json:"claims"`
		Actions []map[string]json.RawMessage `json:"actions"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Claims
	if !doc.Verified || c.Issuer != "ci" || c.Person != "octocat" || !slices.Equal(c.Groups, []string{"ci-bots"}) ||
		c.Policy["environment"] != nil || c.Policy["repository"] == nil || *c.Policy["repository"] != "acme/api" {
		t.Errorf("claims: %+v\n%s", doc, out)
	}
	if len(doc.Actions) != 3 {
		t.Fatalf("%d actions, want 3:\n%s", len(doc.Actions), out)
	}
	for _, a := range doc.Actions {
		wantKeys(t, "action", a, "action", "allowed", "reason", "rule")
	}
	var prod struct {
		Action  string
		Allowed bool
		Rule    *struct {
			Index  int
			Issuer string
			Claims map[string]string
		}
		Reason string
	}
	b, _ := json.Marshal(doc.Actions[0])
	if err := json.Unmarshal(b, &prod); err != nil {
		t.Fatal(err)
	}
	if prod.Action != "deploy-prod" || !prod.Allowed || prod.Rule == nil || prod.Rule.Index != 1 || prod.Rule.Issuer != "ci" ||
		prod.Rule.Claims["repository"] != "acme/*" || !strings.HasPrefix(prod.Reason, "rule 1 matches") {
		t.Errorf("deploy-prod: %+v", prod)
	}
	if string(doc.Actions[2]["rule"]) != "null" || string(doc.Actions[2]["allowed"]) != "false" ||
		!strings.Contains(string(doc.Actions[2]["reason"]), `no rule names issuer \"ci\"`) {
		t.Errorf("rotate-keys: %s", b)
	}

	// Claims: "verified": false.
	code, out, _ = runCmd(t, "policy", "explain", "--config", cfg, "--claims", writeClaims(t, iss.claims(nil)), "--output", "json")
	if code != exitOK || !strings.Contains(out, `"verified": false`) || strings.Contains(out, `"approver"`) {
		t.Errorf("claims as JSON: exit %d\n%s", code, out)
	}
}

func wantKeys(t *testing.T, what string, m map[string]json.RawMessage, keys ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, keys) {
		t.Errorf("%s has the keys %v, want exactly %v", what, got, keys)
	}
}

// TestPolicyExplainApproverClaims: an approver's claims (not verified)
// say for each action whether they could approve and through which
// entry, with min_approvals and the self-approval rule applied to the
// requester given.
func TestPolicyExplainApproverClaims(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	// Dana: named by email for deploy-prod, in group dev for staging, and
	// octocat (the requester) through a person claim.
	dana := writeClaims(t, map[string]any{
		"sub": "00u-dana", "email": "Dana@Example.com", "email_verified": true, "preferred_username": "dana",
		"groups": []string{"dev"}, "github_login": "octocat",
	})
	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--token", iss.token(t, nil), "--approver-claims", dana)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, out,
		"Token VERIFIED against requester \"ci\" ("+iss.url+"): signature, issuer, audience and expiry checked as signoff serve checks them.",
		"deploy-prod: may request",
		"Approver claims from "+dana+", NOT VERIFIED: read from a file, not from a sign-in at the identity provider; a vote counts only through a linked identity the identity provider confirmed.",
		"  subject             00u-dana",
		"  groups              dev (claim groups)",
		"  person claim github_login: octocat",
		"deploy-prod: may approve",
		`  named in approvers.users as "dana@example.com" (their email)`,
		"  min_approvals 2; self-approval not allowed",
		`  the requester's person "octocat" is this approver (one of their idp.person_claims values): they could not approve this requester's request`,
		"deploy-staging: may approve",
		`  member of approver group "dev"`,
		"  min_approvals 1; self-approval allowed",
		`  the requester's person "octocat" is this approver (one of their idp.person_claims values), and this action allows self-approval`,
		"rotate-keys: may not approve",
		"  in none of the approver groups and not named in approvers.users",
	)

	// The same claims without email_verified: the email names no approver
	// (idp.email_verified: required), and the preview says why.
	unvouched := writeClaims(t, map[string]any{
		"sub": "00u-dana", "email": "Dana@Example.com", "preferred_username": "dana", "groups": []string{"dev"},
	})
	code, out, stderr = runCmd(t, "policy", "explain", "--config", cfg, "--approver-claims", unvouched, "--action", "deploy-prod")
	if code != exitOK {
		t.Fatalf("unvouched email: exit %d: %s", code, stderr)
	}
	wantLines(t, out,
		"deploy-prod: may not approve",
		`  in none of the approver groups; approvers.users names "dana@example.com", their email, but the identity provider does not mark it verified (see idp.email_verified)`,
	)

	// Without a requester: the approver alone; JSON under "approver".
	erin := writeClaims(t, map[string]any{"sub": "00u-erin", "preferred_username": "octocat", "groups": "sre"})
	code, out, stderr = runCmd(t, "policy", "explain", "--config", cfg, "--approver-claims", erin, "--action", "deploy-prod", "--output", "json")
	if code != exitOK {
		t.Fatalf("approver only: exit %d: %s", code, stderr)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "approver-only output", top, "approver")
	var doc struct {
		Approver struct {
			Verified bool
			Claims   struct{ Groups []string }
			Actions  []struct {
				Action, Via, Entry, Self, Reason string
				Allowed                          bool
				AllowSelfApproval                bool `json:"allow_self_approval"`
				MinApprovals                     int  `json:"min_approvals"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	a := doc.Approver
	if a.Verified || !slices.Equal(a.Claims.Groups, []string{"sre"}) || len(a.Actions) != 1 {
		t.Fatalf("approver: %+v\n%s", a, out)
	}
	if v := a.Actions[0]; v.Action != "deploy-prod" || !v.Allowed || v.Via != "group" || v.Entry != "sre" || v.MinApprovals != 2 || v.AllowSelfApproval || v.Self != "" {
		t.Errorf("deploy-prod for erin: %+v", v)
	}

	// With a requester: the self match shows in JSON too.
	code, out, _ = runCmd(t, "policy", "explain", "--config", cfg, "--claims", writeClaims(t, iss.claims(nil)), "--approver-claims", erin, "--action", "deploy-prod", "--output", "json")
	if code != exitOK || !strings.Contains(out, `"self": "preferred_username"`) || !strings.Contains(out, "they could not approve this requester's request") {
		t.Errorf("self-approval in JSON: exit %d\n%s", code, out)
	}

	// Not a claims object, or no sub: exit 2.
	for name, claims := range map[string]any{"a list": []string{"sre"}, "no sub": map[string]any{"email": "x@example.com"}} {
		code, _, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--approver-claims", writeClaims(t, claims))
		if code != exitUsage || !strings.Contains(stderr, "--approver-claims ") {
			t.Errorf("%s: exit %d, %s; want exit 2", name, code, stderr)
		}
	}
}

// TestPolicyExplainUsage: missing or conflicting flags, an unreadable
// file or a bad config exit 2 with what to do.
func TestPolicyExplainUsage(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := explainConfig(t, iss.url)
	claims := writeClaims(t, iss.claims(nil))
	noRequesters := writeConfig(t, `storage: {path: ./unused/signoff.db}
actions:
  x:
    requesters: [{issuer: ci, claims: {sub: "*"}}]
    approvers: {groups: [sre]}
    ttl: 1h
`)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--claims", claims}, "needs --config FILE"},
		{[]string{"--config", cfg}, "needs --token JWT or --claims FILE"},
		{[]string{"--config", cfg, "--token", "a.b.c", "--claims", claims}, "mutually exclusive"},
		{[]string{"--config", cfg, "--claims", claims, "--output", "yaml"}, `--output "yaml": use text or json`},
		{[]string{"--config", cfg, "--claims", filepath.Join(t.TempDir(), "none.json")}, "--claims: open"},
		{[]string{"--config", filepath.Join(t.TempDir(), "none.yaml"), "--claims", claims}, "does not exist"},
		{[]string{"--config", noRequesters, "--claims", claims}, "requesters"},
	}
	for _, c := range cases {
		code, out, stderr := runCmd(t, append([]string{"policy", "explain"}, c.args...)...)
		if code != exitUsage || out != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", c.args, code, out, stderr, c.want)
		}
	}
}

// TestPolicyExplainAgreesWithServer: for dev tokens with several claim
// sets, explain's verdict on each action is what the running server
// answers when the token asks for it (201 or 403).
func TestPolicyExplainAgreesWithServer(t *testing.T) {
	clearCIEnv(t)
	const cfgTemplate = `listen: 127.0.0.1:0
storage: {driver: bolt, path: ./unused/signoff.db}
requesters:
  - {name: dev, issuer: "ISSUER", audience: signoff, person_claim: sub}
actions:
  deploy:
    requesters: [{issuer: dev, claims: {repository: "acme/*", ref: refs/heads/main}}]
    approvers: {groups: [sre]}
    ttl: 1h
  restart:
    requesters:
      - {issuer: dev, claims: {sub: "ci-*"}}
      - {issuer: dev, claims: {environment: "prod*", repository: "*/ops"}}
    approvers: {groups: [sre]}
    ttl: 1h
dev:
  approvers: [{name: alice, email: alice@example.com, groups: [sre]}]
log: {level: warn}
`
	ts := startServeConfig(t, writeConfig(t, strings.Replace(cfgTemplate, "ISSUER", "http://127.0.0.1:8080/dev/oidc", 1)), true)
	ts.logOnFailure(t)
	// The explain config trusts the dev issuer where this server serves it.
	cfg := writeConfig(t, strings.Replace(cfgTemplate, "ISSUER", ts.base+"/dev/oidc", 1))

	tokens := map[string][]string{
		"both":         {"--sub", "ci-1", "--claim", "repository=acme/api", "--claim", "ref=refs/heads/main"},
		"neither":      {"--sub", "someone", "--claim", "repository=evil/api", "--claim", "ref=refs/heads/main"},
		"restart only": {"--sub", "ci-2", "--claim", "repository=evil/api"},
		"deploy only":  {"--sub", "someone", "--claim", "repository=acme/api", "--claim", "ref=refs/heads/main"},
		"second rule":  {"--sub", "someone", "--claim", "repository=acme/ops", "--claim", "environment=production"},
		"no claims":    {"--sub", "someone"},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	seen := map[bool]int{}
	for name, args := range tokens {
		tok := devToken(t, ts, args...)
		code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--token", tok, "--output", "json")
		if code != exitOK {
			t.Fatalf("%s: explain exit %d: %s", name, code, stderr)
		}
		var doc struct {
			Actions []struct {
				Action  string
				Allowed bool
				Reason  string
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		for _, a := range doc.Actions {
			req, _ := http.NewRequest(http.MethodPost, ts.base+"/v1/requests", strings.NewReader(`{"action":"`+a.Action+`"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			serverAllowed := resp.StatusCode == http.StatusCreated
			if !serverAllowed && resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s, %s: the server answered %d", name, a.Action, resp.StatusCode)
			}
			if serverAllowed != a.Allowed {
				t.Errorf("token %q, action %s: explain says allowed=%v (%s), the server answered %d", name, a.Action, a.Allowed, a.Reason, resp.StatusCode)
			}
			seen[a.Allowed]++
		}
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("verdicts seen: %v; the tokens must exercise both", seen)
	}
}

// TestPolicyExplainLoginToken: a `signoff login` ID token verifies (the
// API takes it on admin and auditor endpoints) but may request nothing,
// and the explanation says why.
func TestPolicyExplainLoginToken(t *testing.T) {
	iss := startExplainIssuer(t)
	base, err := os.ReadFile(explainConfig(t, iss.url))
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, strings.Replace(string(base), "idp: {", `public_url: "http://127.0.0.1:8080"
idp: {issuer: "`+iss.url+`", client_id: signoff, cli_client_id: signoff-cli, scopes: [openid, email, profile, groups], `, 1))
	tok := iss.token(t, map[string]any{"aud": "signoff-cli", "sub": "00u-dana", "email": "dana@example.com"})
	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--token", tok, "--action", "deploy-prod")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, out,
		"This is a 'signoff login' ID token (idp.cli_client_id): the API takes it on admin and auditor endpoints only, never to request an action.",
		"  issuer   idp:login ("+iss.url+")",
		"deploy-prod: may not request",
		`  no rule names issuer "idp:login" (the rules name "ci")`,
	)
}
