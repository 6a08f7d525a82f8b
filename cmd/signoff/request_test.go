package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
)

// devRequestersYAML is the requesters section of the test configs: the
// dev issuer's tokens, with the person in sub.
const devRequestersYAML = `requesters:
  - {name: dev, issuer: "http://127.0.0.1:8080/dev/oidc", audience: signoff, person_claim: sub}
`

// devStoreYAML is what the dev-mode test configs hold between listen and
// actions: a bbolt store, the dev requesters and auditors in group audit.
const devStoreYAML = `storage: {driver: bolt, path: ./unused/signoff.db}
` + devRequestersYAML + `auditors: {groups: [audit]}
`

// deployYAML begins the test configs' deploy action (under actions:): any
// dev token may ask to deploy a service, named by a required parameter,
// within an hour. Its approvers and notify follow it.
const deployYAML = `  deploy:
    description: Deploy a service
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    params: {service: {required: true, pattern: "^[a-z-]+$"}}
    ttl: 1h
`

// quickYAML is an action (under actions:) any dev token may ask for, which
// expires two seconds after it is created.
const quickYAML = `  quick:
    description: Expires almost at once
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    approvers: {groups: [sre]}
    ttl: 2s
`

const requestTestConfig = `listen: 127.0.0.1:0
` + devStoreYAML + `actions:
` + deployYAML + `    approvers: {groups: [sre], min_approvals: 1}
` + quickYAML + `dev:
  approvers: [{name: alice, email: alice@example.com, groups: [sre]}]
log: {level: warn}
`

// testServer is `signoff serve` running in-process.
type testServer struct {
	addr string
	base string
	svc  *approvals.Service
	log  *testenv.LogBuffer
	stop func() error
}

// startTestServer runs serve with the request test config on listen
// (127.0.0.1:0 for a free port) and the database db.
func startTestServer(t *testing.T, dev bool, listen, db string) *testServer {
	t.Helper()
	cfgPath := writeConfig(t, requestTestConfig)
	return startServeConfig(t, cfgPath, dev, func(cfg *config.Config) { cfg.Listen, cfg.Storage.Path = listen, db })
}

// logOnFailure prints the server's log when t ends, if t failed.
func (ts *testServer) logOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", ts.log)
		}
	})
}

// startServeConfig runs serve in-process with the config file at cfgPath,
// adjusted by each of adjust; without an adjustment of storage.path the
// database goes to a fresh temporary folder.
func startServeConfig(t *testing.T, cfgPath string, dev bool, adjust ...func(*config.Config)) *testServer {
	t.Helper()
	return startServeWith(t, cfgPath, serveOptions{dev: dev}, adjust...)
}

// startServeWith is startServeConfig with serve's options (dev and
// replicaPoll are taken from o; its outputs and hooks are the test
// server's).
func startServeWith(t *testing.T, cfgPath string, o serveOptions, adjust ...func(*config.Config)) *testServer {
	t.Helper()
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = filepath.Join(t.TempDir(), "data", "signoff.db")
	for _, a := range adjust {
		a(cfg)
	}
	ts := &testServer{log: &testenv.LogBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, serveOptions{
			dev: o.dev, replicaPoll: o.replicaPoll, stdout: ts.log, stderr: ts.log, ready: ready,
			onService: func(s *approvals.Service) { ts.svc = s },
		})
	}()
	select {
	case ts.addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited at start: %v\n%s", err, ts.log)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	ts.base = "http://" + ts.addr
	var once sync.Once
	var stopErr error
	ts.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(15 * time.Second):
				stopErr = errors.New("serve did not stop within 15s of its signal")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = ts.stop() })
	return ts
}

func startDevServer(t *testing.T) *testServer {
	t.Helper()
	ts, _ := startDevServerWithDB(t)
	return ts
}

// startDevServerWithDB is startDevServer also returning the path of the
// server's bbolt database, for tests that read it or start a server on it
// again.
func startDevServerWithDB(t *testing.T) (*testServer, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "data", "signoff.db")
	return startTestServer(t, true, "127.0.0.1:0", db), db
}

// clearCIEnv makes sure no token or CI run leaks in from the environment
// the tests run in.
func clearCIEnv(t *testing.T) {
	for _, k := range []string{"SIGNOFF_TOKEN", "SIGNOFF_ID_TOKEN", "SIGNOFF_SERVER", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
		"GITHUB_ACTIONS", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB", "GITLAB_CI", "CI_JOB_ID"} {
		t.Setenv(k, "")
	}
}

// devToken mints a token with `signoff dev token`.
func devToken(t *testing.T, ts *testServer, args ...string) string {
	t.Helper()
	code, out, stderr := runCmd(t, append([]string{"dev", "token", "--server", ts.base}, args...)...)
	if code != 0 {
		t.Fatalf("dev token: exit %d: %s", code, stderr)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("dev token printed %q", out)
	}
	return tok
}

type runResult struct {
	code           int
	stdout, stderr string
}

// runAsync runs a command line in the background; stderr is readable while
// it runs.
func runAsync(args ...string) (stderr *testenv.LogBuffer, result <-chan runResult) {
	stderr = &testenv.LogBuffer{}
	ch := make(chan runResult, 1)
	go func() {
		var out bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, stderr)
		ch <- runResult{code: code, stdout: out.String(), stderr: stderr.String()}
	}()
	return stderr, ch
}

// startWaiting runs `signoff request … --wait` against ts with token tok
// and extra arguments in the background, and returns once ts holds the
// pending request and the command waits for a decision.
func startWaiting(t *testing.T, ts *testServer, tok string, extra ...string) (storage.Request, *testenv.LogBuffer, <-chan runResult) {
	t.Helper()
	stderr, res := runAsync(requestArgs(ts, tok, append([]string{"--wait"}, extra...)...)...)
	r := pendingRequest(t, ts.svc)
	waitFor(t, 20*time.Second, "the wait to begin", func() bool { return strings.Contains(stderr.String(), "waiting for a decision") })
	return r, stderr, res
}

// pendingRequest waits until svc holds a pending request and returns it.
func pendingRequest(t *testing.T, svc *approvals.Service) storage.Request {
	t.Helper()
	var got storage.Request
	waitFor(t, 20*time.Second, "a pending request", func() bool {
		rs, err := svc.List(context.Background(), storage.RequestFilter{States: []storage.State{storage.StatePending}, Limit: 1})
		if err != nil || len(rs) == 0 {
			return false
		}
		got = rs[0]
		return true
	})
	return got
}

func vote(t *testing.T, ts *testServer, id string, d storage.Decision) {
	t.Helper()
	_, err := ts.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: id, Decision: d, Reason: "not today",
		Source:   approvals.Source{Platform: "dev", PlatformUser: "alice"},
		Approver: oidc.Identity{Issuer: ts.base + "/dev/oidc", Subject: "alice", Name: "Alice", Email: "alice@example.com", Groups: []string{"sre"}, VerifiedAt: time.Now()},
	})
	if err != nil {
		t.Fatalf("vote %s: %v", d, err)
	}
}

// deployArgs is the command line asking ts for a deploy of service api,
// followed by extra.
func deployArgs(ts *testServer, extra ...string) []string {
	return append([]string{"request", "--server", ts.base, "--action", "deploy", "--param", "service=api"}, extra...)
}

// requestArgs is deployArgs with --token token.
func requestArgs(ts *testServer, token string, extra ...string) []string {
	return deployArgs(ts, append([]string{"--token", token}, extra...)...)
}

// bearerCall sends a request to the API with token as its bearer token and
// body, if not empty, as its JSON body; it returns the answer's status and
// body.
func bearerCall(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startDevRequester clears the CI environment, starts a dev-mode server
// and mints a dev token for it.
func startDevRequester(t *testing.T) (*testServer, string) {
	t.Helper()
	clearCIEnv(t)
	ts := startDevServer(t)
	return ts, devToken(t, ts)
}

func TestRequestCreatesWithoutWaiting(t *testing.T) {
	ts, tok := startDevRequester(t)
	code, out, stderr := runCmd(t, requestArgs(ts, tok, "--reason", "release", "--link", "CI run=https://ci.example/run?id=1")...)
	if code != 0 || !strings.Contains(out, "created request req_") || !strings.Contains(out, ts.base+"/dev") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	r := pendingRequest(t, ts.svc)
	if r.Reason != "release" || len(r.Links) != 1 || r.Links[0].URL != "https://ci.example/run?id=1" || r.Requester.Subject != "dev-user" {
		t.Errorf("stored: %+v", r)
	}
	if strings.Contains(out+stderr+ts.log.String(), tok) {
		t.Error("the token was printed or logged")
	}
	// JSON output is the API's view.
	code, out, _ = runCmd(t, requestArgs(ts, tok, "--output", "json")...)
	var v api.Request
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.State != api.StatePending || v.Action != "deploy" {
		t.Fatalf("json: exit %d, %v: %s", code, err, out)
	}
}

func TestRequestWaitOutcomes(t *testing.T) {
	ts, tok := startDevRequester(t)

	t.Run("approved", func(t *testing.T) {
		r, _, res := startWaiting(t, ts, tok, "--timeout", "60s", "--idempotency-key", "approve-1")
		vote(t, ts, r.ID, storage.DecisionApprove)
		got := <-res
		if got.code != 0 || !strings.Contains(got.stdout, "approved: request "+r.ID) || !strings.Contains(got.stdout, "by Alice") {
			t.Fatalf("exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
		}
	})
	t.Run("denied", func(t *testing.T) {
		_, res := runAsync(requestArgs(ts, tok, "--wait", "--timeout", "60s", "--output", "json", "--idempotency-key", "deny-1")...)
		r := pendingRequest(t, ts.svc)
		vote(t, ts, r.ID, storage.DecisionDeny)
		got := <-res
		var v api.Request
		if err := json.Unmarshal([]byte(got.stdout), &v); err != nil || got.code != exitDenied || v.State != api.StateDenied {
			t.Fatalf("exit %d, %v\n%s\n%s", got.code, err, got.stdout, got.stderr)
		}
		if !strings.Contains(got.stderr, "denied: request "+r.ID+" (deploy) by Alice: not today") || strings.Contains(got.stderr, "signoff: ") {
			t.Errorf("stderr: %s", got.stderr)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		_, res := runAsync(requestArgs(ts, tok, "--wait", "--timeout", "60s", "--idempotency-key", "cancel-1")...)
		r := pendingRequest(t, ts.svc)
		if status, _ := bearerCall(t, http.MethodPost, ts.base+"/v1/requests/"+r.ID+"/cancel", tok, ""); status != http.StatusOK {
			t.Fatalf("cancel: %d", status)
		}
		if got := <-res; got.code != exitCancelled || !strings.Contains(got.stdout, "cancelled: request "+r.ID) {
			t.Fatalf("exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
		}
	})
	t.Run("expired", func(t *testing.T) {
		code, out, stderr := runCmd(t, "request", "--server", ts.base, "--action", "quick", "--token", tok, "--wait", "--timeout", "60s")
		if code != exitExpired || !strings.Contains(out, "expired: request") {
			t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
		}
	})
	t.Run("pending at timeout", func(t *testing.T) {
		code, out, stderr := runCmd(t, requestArgs(ts, tok, "--wait", "--timeout", "1s", "--idempotency-key", "pending-1")...)
		if code != exitPending || !strings.Contains(out, "still pending") || !strings.Contains(stderr, "waiting for a decision") {
			t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
		}
	})
	t.Run("already decided, without waiting", func(t *testing.T) {
		// The idempotency key of "denied" finds the denied request again.
		code, out, stderr := runCmd(t, requestArgs(ts, tok, "--idempotency-key", "deny-1")...)
		if code != exitDenied || !strings.Contains(stderr, "already existed") || !strings.Contains(out, "denied:") {
			t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
		}
	})
}

func TestRequestRefusalsExit3(t *testing.T) {
	ts, tok := startDevRequester(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown action", []string{"request", "--server", ts.base, "--action", "drop-db", "--token", tok}, "unknown_action"},
		{"bad param", []string{"request", "--server", ts.base, "--action", "deploy", "--param", "service=API", "--token", tok}, "invalid_params"},
		{"garbage token", requestArgs(ts, "not-a-token"), "refused the token (from --token)"},
		{"idempotency conflict", requestArgs(ts, tok, "--idempotency-key", "k", "--reason", "other"), "conflict"},
	}
	if code, _, stderr := runCmd(t, requestArgs(ts, tok, "--idempotency-key", "k")...); code != 0 {
		t.Fatalf("first use of the key: %d %s", code, stderr)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tc.args...)
			if code != exitRefused || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d: %s", code, stderr)
			}
		})
	}
	// A token from $SIGNOFF_TOKEN works like --token.
	t.Setenv("SIGNOFF_TOKEN", tok)
	if code, _, stderr := runCmd(t, deployArgs(ts)...); code != 0 {
		t.Fatalf("$SIGNOFF_TOKEN: %d %s", code, stderr)
	}
}

func TestRequestUsageErrorsExit2(t *testing.T) {
	clearCIEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"request", "--server", "http://127.0.0.1:1", "--action", "deploy"}, "no token"},
		{[]string{"request", "--action", "deploy", "--token", "x"}, "--server is required"},
		{[]string{"request", "--server", "ftp://x", "--action", "deploy", "--token", "x"}, "--server"},
		{[]string{"request", "--server", "http://127.0.0.1:1", "--token", "x"}, "--action is required"},
		{[]string{"request", "--server", "http://127.0.0.1:1", "--action", "d", "--param", "novalue", "--token", "x"}, "NAME=VALUE"},
		{[]string{"request", "--server", "http://127.0.0.1:1", "--action", "d", "--link", "no-url", "--token", "x"}, "TITLE=URL"},
		{[]string{"request", "--server", "http://127.0.0.1:1", "--action", "d", "--output", "xml", "--token", "x"}, "--output"},
		{[]string{"request", "--server", "http://127.0.0.1:1", "--action", "d", "--timeout", "0s", "--token", "x"}, "--timeout"},
		{[]string{"request", "--server", "http://127.0.0.1:1", "--action", "d", "--token-env", "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"},
	}
	for _, tc := range cases {
		code, _, stderr := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, code, stderr)
		}
	}
	// The no-token message lists the ways to give one.
	_, _, stderr := runCmd(t, "request", "--server", "http://127.0.0.1:1", "--action", "deploy")
	for _, want := range []string{"--token", "$SIGNOFF_TOKEN", "id-token: write", "id_tokens", "--token-env", "signoff dev token"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the no-token message lacks %q:\n%s", want, stderr)
		}
	}
}

func TestRequestServerUnreachableExit1(t *testing.T) {
	clearCIEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	code, _, stderr := runCmd(t, "request", "--server", closed, "--action", "deploy", "--token", "x.y.z")
	if code != exitFailure || !strings.Contains(stderr, "cannot reach signoff at "+closed) || !strings.Contains(stderr, "gave up after 5 attempts") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Something that is not signoff.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	code, _, stderr = runCmd(t, "request", "--server", other.URL, "--action", "deploy", "--token", "x.y.z")
	if code != exitFailure || !strings.Contains(stderr, "does not serve the signoff API") {
		t.Fatalf("not signoff: exit %d: %s", code, stderr)
	}
}

func TestRequestGitHubActionsToken(t *testing.T) {
	ts, tok := startDevRequester(t)

	var mu sync.Mutex
	var calls int
	var refuse bool
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if refuse {
			http.Error(w, `{"message":"no permission"}`, http.StatusForbidden)
			return
		}
		if r.Header.Get("Authorization") != "bearer gh-request-token" || r.URL.Query().Get("audience") != "signoff" || r.URL.Query().Get("api-version") != "2.0" {
			t.Errorf("token request: auth %q, query %q", r.Header.Get("Authorization"), r.URL.RawQuery)
			http.Error(w, "bad", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": tok})
	}))
	defer gh.Close()
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", gh.URL+"/token?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token")
	t.Setenv("GITHUB_RUN_ID", "9001")
	t.Setenv("GITHUB_RUN_ATTEMPT", "1")
	t.Setenv("GITHUB_JOB", "deploy")
	args := deployArgs(ts, "--output", "json")

	id := func(out string) string {
		var v api.Request
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return v.ID
	}
	code, out, stderr := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	first := id(out)
	// The same step again in the same run attempt finds the same request.
	code, out, stderr = runCmd(t, args...)
	if code != 0 || id(out) != first || !strings.Contains(stderr, "already existed") {
		t.Fatalf("retried step: exit %d, %s\n%s", code, out, stderr)
	}
	// Other params in the same job (a matrix leg) ask anew, as does a new
	// attempt.
	code, out, _ = runCmd(t, "request", "--server", ts.base, "--action", "deploy", "--param", "service=web", "--output", "json")
	if code != 0 || id(out) == first {
		t.Fatalf("other params: exit %d, %s", code, out)
	}
	t.Setenv("GITHUB_RUN_ATTEMPT", "2")
	code, out, _ = runCmd(t, args...)
	if code != 0 || id(out) == first {
		t.Fatalf("new attempt: exit %d, %s", code, out)
	}
	mu.Lock()
	if calls != 4 {
		t.Errorf("token endpoint called %d times, want 4", calls)
	}
	refuse = true
	mu.Unlock()
	code, _, stderr = runCmd(t, args...)
	if code != exitRefused || !strings.Contains(stderr, "id-token: write") {
		t.Fatalf("refused by GitHub: exit %d: %s", code, stderr)
	}
}

func TestRequestGitLabIDToken(t *testing.T) {
	ts, tok := startDevRequester(t)
	t.Setenv("SIGNOFF_ID_TOKEN", tok)
	if code, _, stderr := runCmd(t, deployArgs(ts)...); code != 0 {
		t.Fatalf("$SIGNOFF_ID_TOKEN: %d %s", code, stderr)
	}
	t.Setenv("SIGNOFF_ID_TOKEN", "")
	t.Setenv("MY_ID_TOKEN", tok)
	if code, _, stderr := runCmd(t, deployArgs(ts, "--token-env", "MY_ID_TOKEN")...); code != 0 {
		t.Fatalf("--token-env: %d %s", code, stderr)
	}
}

// TestRequestWaitSurvivesServerRestart stops the server while a client
// waits, starts it again on the same address and database, and approves:
// the client rides out the outage and exits 0.
func TestRequestWaitSurvivesServerRestart(t *testing.T) {
	clearCIEnv(t)
	first, db := startDevServerWithDB(t)
	tok := devToken(t, first)
	r, stderr, res := startWaiting(t, first, tok, "--timeout", "2m")
	if err := first.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitFor(t, 20*time.Second, "the client to notice the outage", func() bool { return strings.Contains(stderr.String(), "cannot reach signoff") })

	second := startTestServer(t, true, first.addr, db)
	vote(t, second, r.ID, storage.DecisionApprove)
	got := <-res
	if got.code != 0 || !strings.Contains(got.stdout, "approved: request "+r.ID) || !strings.Contains(got.stderr, "again") {
		t.Fatalf("exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
	}
}

// TestDevTokensOnlyInDevMode: a server without --dev has no /dev/token, and
// a dev token is refused by it (it cannot even be configured to trust the
// dev issuer: TestServeRefusesDevIssuerWithoutDev).
func TestDevTokensOnlyInDevMode(t *testing.T) {
	clearCIEnv(t)
	dev := startDevServer(t)
	tok := devToken(t, dev, "--sub", "someone", "--claim", "repository=acme/api", "--claim", `groups=["audit"]`)
	prod := startProdServer(t)

	code, _, stderr := runCmd(t, "dev", "token", "--server", prod.base)
	if code != exitFailure || !strings.Contains(stderr, "no dev token endpoint") {
		t.Fatalf("dev token outside dev mode: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCmd(t, requestArgs(prod, tok)...)
	if code != exitRefused || !strings.Contains(stderr, "refused the token") {
		t.Fatalf("dev token at a server without --dev: exit %d: %s", code, stderr)
	}
	// The dev server itself accepts it, with the claims asked for: the
	// groups claim makes an auditor.
	if status, _ := bearerCall(t, http.MethodGet, dev.base+"/v1/audit", tok, ""); status != http.StatusOK {
		t.Fatalf("auditor dev token: %d", status)
	}
	// Nobody runs at this address.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if code, _, stderr := runCmd(t, "dev", "token", "--server", "http://"+addr); code != exitFailure || !strings.Contains(stderr, "is `signoff serve --dev` running") {
		t.Fatalf("no server: exit %d: %s", code, stderr)
	}
}

func TestDeriveIdempotencyKey(t *testing.T) {
	body := api.CreateRequest{Action: "deploy", Params: map[string]string{"service": "api"}}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	gh := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "deploy"}
	k1, _ := deriveIdempotencyKey(env(gh), body)
	k2, _ := deriveIdempotencyKey(env(gh), body)
	if k1 != k2 || !strings.HasPrefix(k1, "github-42-1-") || len(k1) > approvals.MaxIdempotencyKeyBytes {
		t.Fatalf("github keys %q %q", k1, k2)
	}
	gh["GITHUB_JOB"] = "other-job"
	if k, _ := deriveIdempotencyKey(env(gh), body); k == k1 {
		t.Error("another job shares the key")
	}
	gl := map[string]string{"GITLAB_CI": "true", "CI_JOB_ID": "777"}
	if k, _ := deriveIdempotencyKey(env(gl), body); !strings.HasPrefix(k, "gitlab-777-") {
		t.Errorf("gitlab key %q", k)
	}
	a, _ := deriveIdempotencyKey(env(nil), body)
	b, _ := deriveIdempotencyKey(env(nil), body)
	if a == b || !strings.HasPrefix(a, "cli-") {
		t.Errorf("outside CI: %q %q", a, b)
	}
}

// TestAuditExportFromServer reads a running server's log over GET
// /v1/audit with an auditor's token; the export verifies offline.
func TestAuditExportFromServer(t *testing.T) {
	ts, tok := startDevRequester(t)
	if code, _, stderr := runCmd(t, requestArgs(ts, tok)...); code != 0 {
		t.Fatalf("request: %s", stderr)
	}
	auditor := devToken(t, ts, "--sub", "auditor", "--claim", `groups=["audit"]`)
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	code, _, stderr := runCmd(t, "audit", "export", "--server", ts.base, "--token", auditor, "-o", out)
	if code != 0 {
		t.Fatalf("export --server: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCmd(t, "audit", "verify", out); code != 0 || !strings.Contains(stdout, "1 records") {
		t.Fatalf("verify the server export: %d %s %s", code, stdout, stderr)
	}
	code, csv, _ := runCmd(t, "audit", "export", "--server", ts.base, "--token", auditor, "--format", "csv")
	if code != 0 || !strings.Contains(csv, "request.created") {
		t.Fatalf("csv over the API: %d %s", code, csv)
	}
	// A requester's token is not an auditor's.
	if code, _, stderr := runCmd(t, "audit", "export", "--server", ts.base, "--token", tok); code != 3 || !strings.Contains(stderr, "403") {
		t.Fatalf("non-auditor export: exit %d: %s", code, stderr)
	}
}

// TestDevTokenEndpointRefusesBrowsers: /dev/token answers only a loopback
// Host name (a DNS-rebinding page cannot read a token: 421, see
// TestDevRoutesRefuseForeignHost) and only a JSON body (a cross-site form
// cannot post one).
func TestDevTokenEndpointRefusesBrowsers(t *testing.T) {
	ts := startDevServer(t)
	post := func(host, contentType string) int {
		req, _ := http.NewRequest(http.MethodPost, ts.base+"/dev/token", strings.NewReader(`{}`))
		req.Host = host
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("attacker.example:80", "application/json"); code != http.StatusMisdirectedRequest {
		t.Fatalf("rebound Host: %d, want 421", code)
	}
	if code := post(ts.addr, "application/x-www-form-urlencoded"); code != http.StatusBadRequest {
		t.Fatalf("form body: %d, want 400", code)
	}
	if code := post(ts.addr, "application/json"); code != http.StatusOK {
		t.Fatalf("loopback JSON: %d, want 200", code)
	}
}
