package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/attesttest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

const attestWebhookSecret = "attest-e2e-webhook-secret-0123456789"

// attestTestConfig is a dev-mode config whose deploy action's approvals
// are attested for deploy.example.com and delivered to receiverURL.
func attestTestConfig(receiverURL string) string {
	return `listen: 127.0.0.1:0
` + devStoreYAML + `actions:
  deploy:
    description: Deploy a service
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    params: {service: {required: true, pattern: "^[a-z-]+$"}, version: {max_length: 64}}
    approvers: {groups: [sre], min_approvals: 1}
    ttl: 1h
    on_approve: {webhook: {url: "` + receiverURL + `", secret: ` + attestWebhookSecret + `}}
    attestation: {audience: deploy.example.com}
dev:
  approvers: [{name: alice, email: alice@example.com, groups: [sre]}]
log: {level: warn}
`
}

// deployReceiver is a deploy system's webhook endpoint on loopback: it
// checks signoff's signature and keeps each body.
type deployReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []executor.Payload
	bad    []string
}

func newDeployReceiver(t *testing.T) *deployReceiver {
	t.Helper()
	rc := &deployReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err := executor.Verify(r.Header.Get(executor.HeaderSignature), []byte(attestWebhookSecret), body, time.Now(), 5*time.Minute); err != nil {
			rc.bad = append(rc.bad, err.Error())
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p executor.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			rc.bad = append(rc.bad, err.Error())
		}
		rc.bodies = append(rc.bodies, p)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *deployReceiver) payloads() ([]executor.Payload, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]executor.Payload(nil), rc.bodies...), append([]string(nil), rc.bad...)
}

// TestAttestationEndToEnd: a request approved in dev mode yields one
// attestation, the same in the file `signoff request --attestation-out`
// writes and in the webhook body; a deploy receiver verifies with a stock
// JWT library and nothing but signoff's published keys that alice approved
// exactly this action with these params within the last 15 minutes; and
// `signoff attest verify` accepts it, and refuses it tampered, expired,
// for another audience, action or params, or against unknown keys.
func TestAttestationEndToEnd(t *testing.T) {
	clearCIEnv(t)
	rc := newDeployReceiver(t)
	var dataDir string
	ts := startServeConfig(t, writeConfig(t, attestTestConfig(rc.srv.URL+"/deploy")), true,
		func(c *config.Config) { dataDir = filepath.Dir(c.Storage.Path) })
	ts.logOnFailure(t)
	tok := devToken(t, ts)
	out := filepath.Join(t.TempDir(), "attestation.jwt")

	r, _, res := startWaiting(t, ts, tok, "--param", "version=1.4.2", "--attestation-out", out, "--timeout", "60s")
	vote(t, ts, r.ID, storage.DecisionApprove)
	got := <-res
	if got.code != 0 || !strings.Contains(got.stderr, "wrote the attestation of request "+r.ID+" to "+out) {
		t.Fatalf("request: exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(data))
	if fi, _ := os.Stat(out); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", out, fi.Mode().Perm())
	}
	if strings.Contains(got.stdout+got.stderr+ts.log.String(), token) {
		t.Error("the attestation was printed or logged")
	}

	// One token everywhere: the file, the stored request, the webhook body.
	stored, err := ts.svc.Get(context.Background(), r.ID)
	if err != nil || stored.Attestation != token {
		t.Fatalf("the file's token is not the stored one (%v)", err)
	}
	var p executor.Payload
	waitFor(t, 20*time.Second, "the webhook", func() bool {
		ps, bad := rc.payloads()
		if len(bad) > 0 {
			t.Fatalf("the receiver refused a delivery: %v", bad)
		}
		if len(ps) == 0 {
			return false
		}
		p = ps[0]
		return true
	})
	if p.ID != r.ID || p.Attestation != token {
		t.Fatalf("webhook body %s carries attestation %q; want the file's token", p.ID, p.Attestation)
	}

	// The receiver: discovery, then the JWKS it names, then a stock JWT
	// library; nothing of signoff's own.
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	testenv.GetJSON(t, ts.base+"/.well-known/openid-configuration", &disco)
	if disco.Issuer != ts.base || disco.JWKSURI != ts.base+"/.well-known/jwks.json" {
		t.Fatalf("discovery %+v; want issuer %s", disco, ts.base)
	}
	jwks := testenv.GetJSON(t, disco.JWKSURI, nil)
	attesttest.CheckPublicOnly(t, jwks)
	claims := attesttest.Claims(t, token, jwks, disco.Issuer, "deploy.example.com", time.Now())
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if age := time.Since(iat.Time); age < -time.Minute || age > 15*time.Minute || exp.Sub(iat.Time) != 15*time.Minute {
		t.Errorf("issued %s ago, valid for %s; want an approval of the last 15 minutes, valid 15 minutes", age, exp.Sub(iat.Time))
	}
	approvers, _ := claims["approvers"].([]any)
	first, _ := approvers[0].(map[string]any)
	params, _ := claims["params"].(map[string]any)
	if claims["sub"] != r.ID || claims["action"] != "deploy" || len(approvers) != 1 ||
		first["subject"] != "alice" || first["email"] != "alice@example.com" || first["issuer"] != ts.base+"/dev/oidc" ||
		len(params) != 2 || params["service"] != "api" || params["version"] != "1.4.2" {
		t.Errorf("claims %v", claims)
	}

	// signoff attest verify, against the running server.
	verify := func(extra ...string) (int, string, string) {
		return runCmd(t, append([]string{"attest", "verify", "--server", ts.base, "--audience", "deploy.example.com"}, extra...)...)
	}
	code, stdout, stderr := verify("--action", "deploy", "--param", "service=api", "--param", "version=1.4.2", "--exact-params", out)
	var printed map[string]any
	if err := json.Unmarshal([]byte(stdout), &printed); code != 0 || err != nil || printed["sub"] != r.ID || printed["aud"] != "deploy.example.com" {
		t.Fatalf("attest verify: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if !strings.Contains(stderr, "valid: request "+r.ID+" (deploy) approved by alice@example.com") {
		t.Errorf("summary line: %s", stderr)
	}
	// Offline, from a saved key set, and from standard input.
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	in.WriteString(token)
	var so, se bytes.Buffer
	if code := run(context.Background(), []string{"attest", "verify", "--jwks", jwksFile, "--issuer", ts.base, "--audience", "deploy.example.com", "-"}, &in, &so, &se); code != 0 {
		t.Errorf("attest verify --jwks from stdin: exit %d: %s", code, se.String())
	}

	// Refusals name the check.
	tampered := filepath.Join(t.TempDir(), "tampered.jwt")
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = bytes.Replace(payload, []byte(`"service":"api"`), []byte(`"service":"billing"`), 1)
	writeFileT(t, tampered, parts[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+parts[2])
	expired := filepath.Join(t.TempDir(), "expired.jwt")
	writeFileT(t, expired, signedWithDevKey(t, dataDir, ts.base, time.Now().Add(-time.Hour)))
	otherKeys := filepath.Join(t.TempDir(), "other-jwks.json")
	writeFileT(t, otherKeys, string(testenv.AttestSigner(t, "https://other.example.com").JWKS()))
	for _, tc := range []struct {
		name  string
		args  []string
		check string
	}{
		{"other params", []string{"--param", "service=billing", out}, "params"},
		{"a param not approved", []string{"--param", "region=eu", out}, "params"},
		{"more params than pinned, exactly", []string{"--param", "service=api", "--exact-params", out}, "params"},
		{"another action", []string{"--action", "restart", out}, "action"},
		{"tampered", []string{tampered}, "signature"},
		{"expired", []string{expired}, "expired"},
	} {
		code, stdout, stderr := verify(tc.args...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, "attestation refused: "+tc.check+":") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 naming %s", tc.name, code, stdout, stderr, tc.check)
		}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		check string
	}{
		{"another audience", []string{"attest", "verify", "--server", ts.base, out}, "audience"},
		{"unknown keys", []string{"attest", "verify", "--jwks", otherKeys, "--audience", "deploy.example.com", out}, "unknown_key"},
		{"another issuer", []string{"attest", "verify", "--jwks", jwksFile, "--issuer", "https://signoff.example.org", "--audience", "deploy.example.com", out}, "issuer"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, "attestation refused: "+tc.check+":") {
			t.Errorf("%s: exit %d, %q; want 1 naming %s", tc.name, code, stderr, tc.check)
		}
	}
	for _, args := range [][]string{
		{"attest", "verify", out},
		{"attest", "verify", "--server", ts.base, "--jwks", jwksFile, out},
		{"attest", "verify", "--server", ts.base, "--param", "nonsense", out},
		{"attest", "verify", "--server", ts.base, "--audience", "", out},
		{"attest", "verify", "--server", ts.base, filepath.Join(t.TempDir(), "missing.jwt")},
	} {
		if code, _, _ := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func writeFileT(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// signedWithDevKey signs an attestation, decided at decided, with dev
// mode's key in dataDir, as the server at issuer would have.
func signedWithDevKey(t *testing.T, dataDir, issuer string, decided time.Time) string {
	t.Helper()
	_, key := readSigningKeyFile(t, filepath.Join(dataDir, devAttestKeyName))
	s, err := attest.NewSigner(attest.SignerOptions{Issuer: issuer, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s.Sign(attest.Claims{
		Subject: "req_old", Audience: "deploy.example.com", Action: "deploy", DecidedAt: decided,
		Params: map[string]string{"service": "api", "version": "1.4.2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return signed.Token
}

// A request that is not approved has no attestation: --attestation-out
// writes nothing, and the API answers 409 not_approved (404 to another
// requester).
func TestNoAttestationForADeniedRequest(t *testing.T) {
	clearCIEnv(t)
	rc := newDeployReceiver(t)
	ts := startServeConfig(t, writeConfig(t, attestTestConfig(rc.srv.URL+"/deploy")), true)
	ts.logOnFailure(t)
	tok := devToken(t, ts)
	out := filepath.Join(t.TempDir(), "attestation.jwt")
	r, _, res := startWaiting(t, ts, tok, "--attestation-out", out, "--timeout", "60s")
	vote(t, ts, r.ID, storage.DecisionDeny)
	if got := <-res; got.code != exitDenied {
		t.Fatalf("denied: exit %d\n%s", got.code, got.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a denied request left %s (%v)", out, err)
	}
	status, body := bearerCall(t, "GET", ts.base+"/v1/requests/"+r.ID+"/attestation", tok, "")
	var eb api.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if status != http.StatusConflict || eb.Error.Code != api.CodeNotApproved {
		t.Errorf("GET attestation of a denied request: %d %s", status, body)
	}
	if status, _ := bearerCall(t, "GET", ts.base+"/v1/requests/"+r.ID+"/attestation", devToken(t, ts, "--sub", "mallory"), ""); status != http.StatusNotFound {
		t.Errorf("another requester: %d, want 404", status)
	}
	// --attestation-out without --wait is a usage error.
	if code, _, stderr := runCmd(t, requestArgs(ts, tok, "--attestation-out", out)...); code != exitUsage || !strings.Contains(stderr, "--wait") {
		t.Errorf("--attestation-out without --wait: exit %d %s", code, stderr)
	}
}

// signoff attest keygen: a private key (0600) and its public key, never
// over an existing file; ES256 by default, RS256 with --rsa.
func TestAttestKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file, alg string
		args      []string
	}{
		{"ec.key", "ES256", nil},
		{"rsa.key", "RS256", []string{"--rsa"}},
	} {
		path := filepath.Join(dir, tc.file)
		code, stdout, stderr := runCmd(t, append([]string{"attest", "keygen", "-o", path}, tc.args...)...)
		if code != 0 || !strings.Contains(stdout, tc.alg) {
			t.Fatalf("keygen %v: exit %d %s %s", tc.args, code, stdout, stderr)
		}
		data, key := readSigningKeyFile(t, path)
		if alg, _ := attest.Algorithm(key.Public()); alg != tc.alg {
			t.Errorf("%s: %s key, want %s", tc.file, alg, tc.alg)
		}
		if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o", path, fi.Mode().Perm())
		}
		pubData, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		pub, err := attest.ParsePublicKeyPEM(pubData)
		if err != nil || !strings.Contains(string(pubData), "PUBLIC KEY") || strings.Contains(string(pubData), "PRIVATE") {
			t.Fatalf("%s.pub: %v", path, err)
		}
		kid, _ := attest.KeyID(pub)
		if !strings.Contains(stdout, kid) {
			t.Errorf("keygen did not name the key id %s: %s", kid, stdout)
		}
		if code, _, _ := runCmd(t, "attest", "keygen", "-o", path); code != exitUsage {
			t.Errorf("keygen over an existing key: exit %d", code)
		}
		if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
			t.Error("an existing key was overwritten")
		}
	}
	if code, _, _ := runCmd(t, "attest", "keygen"); code != exitUsage {
		t.Errorf("keygen without -o: exit %d", code)
	}
}

// The signer serve builds: the configured key and the previous ones
// published beside it (a retired key as its public half), each problem
// naming its key; dev mode's key made once and kept.
func TestAttestSignerFromConfig(t *testing.T) {
	dir := t.TempDir()
	current, previous := filepath.Join(dir, "current.key"), filepath.Join(dir, "previous.key")
	for _, p := range []string{current, previous} {
		if code, _, stderr := runCmd(t, "attest", "keygen", "-o", p); code != 0 {
			t.Fatal(stderr)
		}
	}
	load := func(yaml string) *config.Config {
		t.Helper()
		c, err := loadConfig(writeConfig(t, yaml))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	logger := testenv.DiscardLogger()
	base := "public_url: https://signoff.example.com/\nattest:\n  signing_key_file: " + current + "\n"
	s, err := attestSigner(load(base+"  previous_key_files: ["+previous+".pub]\n  ttl: 5m\n"), false, "127.0.0.1:1", logger)
	if err != nil {
		t.Fatal(err)
	}
	curKID, prevKID := keyIDOfFile(t, current), keyIDOfFile(t, previous)
	if s.Issuer() != "https://signoff.example.com" || s.KeyID() != curKID || s.TTL() != 5*time.Minute ||
		strings.Join(s.Keys().KeyIDs(), ",") != curKID+","+prevKID {
		t.Errorf("signer: issuer %s, kid %s, ttl %s, published %v", s.Issuer(), s.KeyID(), s.TTL(), s.Keys().KeyIDs())
	}
	attesttest.CheckPublicOnly(t, s.JWKS())

	bad := filepath.Join(dir, "bad.pub")
	writeFileT(t, bad, "not a key")
	_, err = attestSigner(load(base+"  previous_key_files: ["+previous+".pub, "+bad+"]\n"), false, "127.0.0.1:1", logger)
	if err == nil || !strings.Contains(err.Error(), "attest.previous_key_files[1]") || exitCodeOf(err) != exitUsage {
		t.Errorf("a bad previous key: %v", err)
	}
	_, err = attestSigner(load(base+"  previous_key_files: ["+filepath.Join(dir, "missing.pub")+"]\n"), false, "127.0.0.1:1", logger)
	if err == nil || !strings.Contains(err.Error(), "attest.previous_key_files[0]") {
		t.Errorf("a missing previous key: %v", err)
	}
	if s, err := attestSigner(load("listen: 127.0.0.1:0\n"), false, "127.0.0.1:1", logger); s != nil || err != nil {
		t.Errorf("without a key outside dev mode: %v, %v; want none", s, err)
	}

	// Dev mode: a key next to the database, made once, then reused.
	devCfg := load("storage: {path: " + filepath.Join(dir, "data", "signoff.db") + "}\n")
	first, err := attestSigner(devCfg, true, "127.0.0.1:4321", logger)
	if err != nil {
		t.Fatal(err)
	}
	again, err := attestSigner(devCfg, true, "127.0.0.1:4321", logger)
	if err != nil || again.KeyID() != first.KeyID() || first.Issuer() != "http://127.0.0.1:4321" {
		t.Errorf("dev key: kid %s then %s (%v), issuer %s", first.KeyID(), again.KeyID(), err, first.Issuer())
	}
	keyFile := filepath.Join(dir, "data", devAttestKeyName)
	if fi, err := os.Stat(keyFile); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("dev key file: %v", err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(keyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := attestSigner(devCfg, true, "127.0.0.1:4321", logger); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("a dev key others may read: %v", err)
		}
	}
}

// readSigningKeyFile returns the PEM file at path and the attestation
// signing key it holds, failing the test when it cannot.
func readSigningKeyFile(t *testing.T, path string) ([]byte, crypto.Signer) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := attest.ParsePrivateKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return data, key
}

func keyIDOfFile(t *testing.T, path string) string {
	t.Helper()
	_, key := readSigningKeyFile(t, path)
	kid, err := attest.KeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// Dev mode's issuer may not sit at the root: the root's discovery
// document is the attestation issuer's.
func TestDevIssuerAtTheRootIsRefused(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, strings.Replace(requestTestConfig, "http://127.0.0.1:8080/dev/oidc", "http://127.0.0.1:8080", 1)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = filepath.Join(t.TempDir(), "data", "signoff.db")
	var log bytes.Buffer
	err = serve(context.Background(), cfg, serveOptions{dev: true, stdout: &log, stderr: &log})
	if err == nil || exitCodeOf(err) != exitUsage || !strings.Contains(err.Error(), "needs a path") {
		t.Fatalf("serve with the dev issuer at the root: %v", err)
	}
}
