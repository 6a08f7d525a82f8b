package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
)

// ciTestConfig is the server the drop-ins talk to in these tests: the dev
// issuer's tokens may ask for deploy, whose note parameter takes any text.
const ciTestConfig = `listen: 127.0.0.1:0
storage: {driver: bolt, path: ./unused/signoff.db}
` + devRequestersYAML + `actions:
  deploy:
    description: Deploy a service
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    params: {service: {required: true, pattern: "^[a-z-]+$"}, note: {}}
    approvers: {groups: [sre], min_approvals: 1}
    ttl: 1h
dev:
  approvers: [{name: alice, email: alice@example.com, groups: [sre]}]
log: {level: warn}
`

// Text that runs a command if a shell ever reads it as code rather than
// data: a closed quote, command substitution (both spellings), and a line
// forging a workflow command.
const (
	injectQuote    = `"; touch PWNED; echo "`
	injectSingle   = `'; touch PWNED; echo '`
	injectSubst    = `$(touch PWNED)`
	injectBacktick = "`touch PWNED`"
)

// ciWorld is a dev-mode signoff and, for GitHub, its OIDC token endpoint
// stood in on loopback.
type ciWorld struct {
	ts *testServer
	// tokenURL and requestToken are ACTIONS_ID_TOKEN_REQUEST_URL and
	// ACTIONS_ID_TOKEN_REQUEST_TOKEN.
	tokenURL, requestToken string

	mu        sync.Mutex
	audiences []string // asked of the token endpoint
	tokens    []string // handed out
}

func newCIWorld(t *testing.T) *ciWorld {
	t.Helper()
	clearCIEnv(t)
	w := &ciWorld{ts: startServeConfig(t, writeConfig(t, ciTestConfig), true), requestToken: "gh-request-" + ciRandomName()}
	w.ts.logOnFailure(t)
	// GitHub's token endpoint: a bearer request token, the audience in the
	// query, the token as {"value": …}. The token is a real one, minted by
	// the dev server through `signoff dev token`.
	gh := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+w.requestToken || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(rw, `{"message":"bad request token"}`, http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		var out, errOut bytes.Buffer
		if code := run(r.Context(), []string{"dev", "token", "--server", w.ts.base, "--audience", aud}, strings.NewReader(""), &out, &errOut); code != 0 {
			http.Error(rw, errOut.String(), http.StatusInternalServerError)
			return
		}
		tok := strings.TrimSpace(out.String())
		w.mu.Lock()
		w.audiences = append(w.audiences, aud)
		w.tokens = append(w.tokens, tok)
		w.mu.Unlock()
		_ = json.NewEncoder(rw).Encode(map[string]any{"count": 1, "value": tok})
	}))
	t.Cleanup(gh.Close)
	w.tokenURL = gh.URL + "/_apis/token?api-version=2.0"
	return w
}

// tokensGiven returns the audiences asked for and the tokens handed out.
func (w *ciWorld) tokensGiven() ([]string, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.audiences), slices.Clone(w.tokens)
}

// githubRunIDs keeps GitHub run ids apart, so no two runs share an idempotency key.
var githubRunIDs atomic.Int64

// githubJob is a job using the action: its runner's environment and
// folders.
type githubJob struct {
	action    *compositeAction
	env       map[string]string
	workspace string
	temp      string
	repoRoot  string
}

// readActionFile reads action.yml and parses it, failing the test on
// error; it returns the file's bytes too.
func readActionFile(t testing.TB) (*compositeAction, []byte) {
	t.Helper()
	data, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseCompositeAction(data)
	if err != nil {
		t.Fatal(err)
	}
	return a, data
}

// newGitHubJobWithGo is newGitHubJob with Go, and no signoff, on PATH; it
// skips t when this machine has no Go.
func newGitHubJobWithGo(t *testing.T, w *ciWorld) *githubJob {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	return newGitHubJob(t, w, filepath.Dir(goBin)+":"+ciSystemPath)
}

// newGitHubJob sets up a job on a runner: GITHUB_* variables, the OIDC
// token endpoint (when w is not nil: the job has id-token: write), and
// path as PATH.
func newGitHubJob(t *testing.T, w *ciWorld, path string) *githubJob {
	t.Helper()
	a, _ := readActionFile(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	j := &githubJob{action: a, workspace: t.TempDir(), temp: t.TempDir(), repoRoot: root}
	j.env = map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true",
		"GITHUB_SERVER_URL": "https://github.example.com", "GITHUB_REPOSITORY": "acme/api",
		"GITHUB_RUN_ID": fmt.Sprint(9000 + githubRunIDs.Add(1)), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "approve",
		"GITHUB_WORKSPACE": j.workspace, "RUNNER_TEMP": j.temp,
		"PATH": path, "HOME": os.Getenv("HOME"),
	}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GO") || k == "TMPDIR" {
			j.env[k] = v
		}
	}
	if w != nil {
		j.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = w.tokenURL
		j.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = w.requestToken
	}
	return j
}

// run uses the action with inputs and returns what it left.
func (j *githubJob) run(t *testing.T, inputs map[string]string) actionResult {
	t.Helper()
	res, err := j.start(inputs).wait()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runningAction is a use of the action in progress.
type runningAction struct {
	log  *testenv.LogBuffer
	done chan struct{}
	res  actionResult
	err  error
}

func (j *githubJob) start(inputs map[string]string) *runningAction {
	ra := &runningAction{log: &testenv.LogBuffer{}, done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ra.res, ra.err = runCompositeAction(ctx, j.action, actionRun{
			inputs: inputs, env: j.env, workspace: j.workspace, runnerTemp: j.temp, actionPath: j.repoRoot,
		}, ra.log)
	}()
	return ra
}

func (ra *runningAction) wait() (actionResult, error) {
	<-ra.done
	return ra.res, ra.err
}

// noPwned fails t if a PWNED file appeared in one of dirs: where a step
// could have run `touch PWNED` (its working directory, the workspace; the
// runner's temp folder; the action's folder, where it builds).
func noPwned(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		p := filepath.Join(d, "PWNED")
		if _, err := os.Stat(p); err == nil {
			_ = os.Remove(p)
			t.Errorf("an input ran as shell code: PWNED created in %s", d)
		}
	}
}

// commandsNamed returns the data of the log's workflow commands named name.
func commandsNamed(log, name string) []string {
	var out []string
	for _, c := range workflowCommands(log) {
		if c.name == name {
			out = append(out, c.data)
		}
	}
	return out
}

// checkLogCommands fails t unless the log's workflow commands are only
// groups (balanced), notices, errors and masks (of the attestation).
func checkLogCommands(t *testing.T, log string) {
	t.Helper()
	open := false
	for _, c := range workflowCommands(log) {
		switch c.name {
		case "group":
			if open {
				t.Errorf("a group opened inside another:\n%s", log)
			}
			open = true
		case "endgroup":
			if !open {
				t.Errorf("endgroup without a group:\n%s", log)
			}
			open = false
		case "error", "notice", "add-mask":
		default:
			t.Errorf("unexpected workflow command ::%s %s::%s in the log:\n%s", c.name, c.props, c.data, log)
		}
	}
	if open {
		t.Errorf("a group was left open:\n%s", log)
	}
}

// ciSystemPath is a PATH for steps with the system's tools and no signoff.
const ciSystemPath = "/usr/bin:/bin"

// TestGitHubAction runs action.yml the way GitHub's runner runs a composite
// action, against a real dev-mode signoff whose tokens reach the action
// through a stand-in of GitHub's OIDC token endpoint.
func TestGitHubAction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the signoff binary")
	}
	bin := buildSignoff(t)

	t.Run("approved", func(t *testing.T) {
		w := newCIWorld(t)
		j := newGitHubJob(t, w, ciSystemPath)
		ra := j.start(map[string]string{
			"server": w.ts.base, "action": "deploy", "cli": bin,
			"params": "service=api\n\nnote=release 1.4.2\r\n", "reason": "release 1.4.2",
			"links": "Diff=https://example.com/diff/1",
		})
		r := pendingRequest(t, w.ts.svc)
		waitFor(t, 30*time.Second, "the action to wait", func() bool { return strings.Contains(ra.log.String(), "waiting for a decision") })
		vote(t, w.ts, r.ID, storage.DecisionApprove)
		res, err := ra.wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.exitCode != 0 {
			t.Fatalf("exit %d:\n%s", res.exitCode, res.log)
		}
		stored, err := w.ts.svc.Get(context.Background(), r.ID)
		if err != nil || stored.Attestation == "" {
			t.Fatalf("the approved request has no attestation (%v)", err)
		}
		// The attestation output is the stored token, masked in the log
		// and shown nowhere else.
		want := map[string]string{"request-id": r.ID, "state": "approved", "approvers": "alice@example.com", "attestation": stored.Attestation}
		if !maps.Equal(res.outputs, want) {
			t.Errorf("outputs %q, want %q", res.outputs, want)
		}
		if m := commandsNamed(res.log, "add-mask"); len(m) != 1 || m[0] != stored.Attestation || strings.Count(res.log, stored.Attestation) != 1 {
			t.Errorf("masks %q; want the attestation masked once and printed nowhere else:\n%s", m, res.log)
		}
		checkLogCommands(t, res.log)
		if g := commandsNamed(res.log, "group"); len(g) != 1 || !strings.Contains(g[0], "deploy") {
			t.Errorf("groups %q:\n%s", g, res.log)
		}
		if n := commandsNamed(res.log, "notice"); len(n) != 1 || !strings.HasPrefix(n[0], "approved: request "+r.ID) || !strings.Contains(n[0], "by Alice") {
			t.Errorf("notices %q:\n%s", n, res.log)
		}
		if e := commandsNamed(res.log, "error"); len(e) != 0 {
			t.Errorf("errors %q", e)
		}
		// The stored request: params line by line (blank lines and \r
		// dropped), the links given and the run's URL.
		got, err := w.ts.svc.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got.Params, map[string]string{"service": "api", "note": "release 1.4.2"}) || got.Reason != "release 1.4.2" {
			t.Errorf("stored params %q, reason %q", got.Params, got.Reason)
		}
		runURL := "https://github.example.com/acme/api/actions/runs/" + j.env["GITHUB_RUN_ID"]
		if len(got.Links) != 2 || got.Links[0].URL != "https://example.com/diff/1" || got.Links[1].URL != runURL || got.Links[1].Title != "GitHub Actions run" {
			t.Errorf("stored links %+v", got.Links)
		}
		// The token came from the job's endpoint, for the default audience,
		// and was never printed.
		auds, toks := w.tokensGiven()
		if !slices.Equal(auds, []string{"signoff"}) {
			t.Errorf("audiences asked %q, want [signoff]", auds)
		}
		for _, tok := range toks {
			if strings.Contains(res.log, tok) {
				t.Error("the OIDC token is in the step's log")
			}
		}
		if strings.Contains(res.log, w.requestToken) {
			t.Error("the token request token is in the step's log")
		}
	})

	t.Run("denied", func(t *testing.T) {
		w := newCIWorld(t)
		j := newGitHubJob(t, w, ciSystemPath)
		ra := j.start(map[string]string{"server": w.ts.base, "action": "deploy", "cli": bin, "params": "service=api"})
		r := pendingRequest(t, w.ts.svc)
		// The approver's reason tries to forge workflow commands on lines
		// of their own.
		_, err := w.ts.svc.Vote(context.Background(), approvals.VoteInput{
			RequestID: r.ID, Decision: storage.DecisionDeny,
			Reason:   "not today\n::notice::forged\n::set-output name=state::approved\r\n::add-mask::x",
			Source:   approvals.Source{Platform: "dev", PlatformUser: "alice"},
			Approver: oidc.Identity{Issuer: w.ts.base + "/dev/oidc", Subject: "alice", Name: "Alice", Email: "alice@example.com", Groups: []string{"sre"}, VerifiedAt: time.Now()},
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := ra.wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.exitCode != exitDenied {
			t.Fatalf("exit %d, want %d:\n%s", res.exitCode, exitDenied, res.log)
		}
		if res.outputs["state"] != "denied" || res.outputs["request-id"] != r.ID || res.outputs["approvers"] != "" {
			t.Errorf("outputs %q", res.outputs)
		}
		checkLogCommands(t, res.log)
		e := commandsNamed(res.log, "error")
		if len(e) != 1 || !strings.HasPrefix(e[0], "denied: request "+r.ID+" (deploy) by Alice: not today") || strings.Contains(e[0], "\n") {
			t.Errorf("errors %q:\n%s", e, res.log)
		}
		if n := commandsNamed(res.log, "notice"); len(n) != 0 {
			t.Errorf("the approver's text became a notice: %q", n)
		}
	})

	t.Run("timed out", func(t *testing.T) {
		w := newCIWorld(t)
		res := newGitHubJob(t, w, ciSystemPath).run(t, map[string]string{"server": w.ts.base, "action": "deploy", "cli": bin, "params": "service=api", "timeout": "1s"})
		if res.exitCode != exitPending || res.outputs["state"] != "pending" || res.outputs["request-id"] == "" {
			t.Fatalf("exit %d, outputs %q:\n%s", res.exitCode, res.outputs, res.log)
		}
		if e := commandsNamed(res.log, "error"); len(e) != 1 || !strings.HasPrefix(e[0], "still pending: request") {
			t.Errorf("errors %q", e)
		}
	})

	t.Run("wait false", func(t *testing.T) {
		w := newCIWorld(t)
		res := newGitHubJob(t, w, ciSystemPath).run(t, map[string]string{"server": w.ts.base, "action": "deploy", "cli": bin, "params": "service=api", "wait": "false"})
		r := pendingRequest(t, w.ts.svc)
		if res.exitCode != 0 || res.outputs["state"] != "pending" || res.outputs["request-id"] != r.ID {
			t.Fatalf("exit %d, outputs %q:\n%s", res.exitCode, res.outputs, res.log)
		}
		checkLogCommands(t, res.log)
		if n := commandsNamed(res.log, "notice"); len(n) != 1 || !strings.Contains(n[0], "not waiting") {
			t.Errorf("notices %q", n)
		}
	})

	t.Run("refused", func(t *testing.T) {
		w := newCIWorld(t)
		cases := []struct {
			name    string
			inputs  map[string]string
			noToken bool
			code    int
			state   string
			want    string
		}{
			// The audience input reaches the token request: a token for
			// another audience is refused by the server.
			{"wrong audience", map[string]string{"audience": "someone-else", "params": "service=api"}, false, exitRefused, "refused", "refused the token"},
			{"bad param", map[string]string{"params": "service=API"}, false, exitRefused, "refused", "invalid_params"},
			{"unknown action", map[string]string{"action": "drop-db", "params": "service=api"}, false, exitRefused, "refused", "unknown_action"},
			{"param without =", map[string]string{"params": "service"}, false, exitUsage, "error", "NAME=VALUE"},
			{"no server", map[string]string{"server": "", "params": "service=api"}, false, exitUsage, "error", "--server is required"},
			{"wait neither true nor false", map[string]string{"wait": "yes", "params": "service=api"}, false, exitUsage, "error", "wait input must be true or false"},
			{"cli not executable", map[string]string{"cli": "/nonexistent/signoff", "params": "service=api"}, false, exitUsage, "error", "the cli input names no executable"},
			{"job without id-token: write", map[string]string{"params": "service=api"}, true, exitUsage, "error", "id-token: write"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				cw := w
				if tc.noToken {
					cw = nil
				}
				inputs := map[string]string{"server": w.ts.base, "action": "deploy", "cli": bin}
				for k, v := range tc.inputs {
					inputs[k] = v
				}
				res := newGitHubJob(t, cw, ciSystemPath).run(t, inputs)
				if res.exitCode != tc.code || res.outputs["state"] != tc.state || res.outputs["request-id"] != "" {
					t.Fatalf("exit %d (want %d), outputs %q:\n%s", res.exitCode, tc.code, res.outputs, res.log)
				}
				checkLogCommands(t, res.log)
				if e := commandsNamed(res.log, "error"); len(e) != 1 || !strings.Contains(e[0], tc.want) {
					t.Errorf("errors %q, want one with %q:\n%s", e, tc.want, res.log)
				}
			})
		}
		if auds, _ := w.tokensGiven(); !slices.Contains(auds, "someone-else") {
			t.Errorf("audiences asked %q: the audience input was not used", auds)
		}
	})

	// Inputs are data: quotes, command substitution, backticks and
	// newlines in any input run nothing and arrive as written.
	t.Run("injection", func(t *testing.T) {
		w := newCIWorld(t)
		j := newGitHubJob(t, w, ciSystemPath)
		reason := strings.Join([]string{injectQuote, injectSubst, injectBacktick, injectSingle, "::error::forged", "${HOME} $GITHUB_RUN_ID"}, "\n")
		note := injectQuote + " " + injectSubst + " " + injectBacktick + " " + injectSingle + " ${HOME}"
		res := j.run(t, map[string]string{
			"server": w.ts.base, "action": "deploy", "cli": bin, "wait": "false",
			"reason": reason,
			"params": "service=api\nnote=" + note,
			"links":  "Diff " + injectSubst + "=https://example.com/diff?x=" + injectSubst,
		})
		noPwned(t, j.workspace, j.temp, j.repoRoot)
		if res.exitCode != 0 {
			t.Fatalf("exit %d:\n%s", res.exitCode, res.log)
		}
		checkLogCommands(t, res.log)
		got, err := w.ts.svc.Get(context.Background(), res.outputs["request-id"])
		if err != nil {
			t.Fatal(err)
		}
		if got.Reason != reason {
			t.Errorf("stored reason %q, want %q", got.Reason, reason)
		}
		if got.Params["note"] != note {
			t.Errorf("stored note %q, want %q", got.Params["note"], note)
		}
		if len(got.Links) == 0 || got.Links[0].Title != "Diff "+injectSubst || got.Links[0].URL != "https://example.com/diff?x="+injectSubst {
			t.Errorf("stored links %+v", got.Links)
		}

		// The same text in each other input runs nothing either; each
		// such run fails.
		for _, input := range []string{"server", "action", "timeout", "audience", "wait", "cli"} {
			for _, payload := range []string{injectQuote, injectSubst, injectBacktick, "x\n" + injectQuote} {
				inputs := map[string]string{"server": w.ts.base, "action": "deploy", "cli": bin, "params": "service=api", "wait": "false"}
				inputs[input] += payload
				j := newGitHubJob(t, w, ciSystemPath)
				res := j.run(t, inputs)
				noPwned(t, j.workspace, j.temp, j.repoRoot)
				if res.exitCode == 0 || len(commandsNamed(res.log, "error")) != 1 {
					t.Errorf("%s %q: exit %d:\n%s", input, payload, res.exitCode, res.log)
				}
			}
		}
	})

	t.Run("signoff on PATH", func(t *testing.T) {
		w := newCIWorld(t)
		res := newGitHubJob(t, w, filepath.Dir(bin)+":"+ciSystemPath).run(t, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api", "wait": "false"})
		if res.exitCode != 0 || res.outputs["state"] != "pending" {
			t.Fatalf("exit %d, outputs %q:\n%s", res.exitCode, res.outputs, res.log)
		}
		if strings.Contains(res.log, "Building") {
			t.Errorf("built although signoff was on PATH:\n%s", res.log)
		}
	})

	t.Run("built from the action's source", func(t *testing.T) {
		w := newCIWorld(t)
		j := newGitHubJobWithGo(t, w)
		res := j.run(t, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api", "wait": "false"})
		if res.exitCode != 0 || res.outputs["state"] != "pending" {
			t.Fatalf("exit %d, outputs %q:\n%s", res.exitCode, res.outputs, res.log)
		}
		checkLogCommands(t, res.log)
		if g := commandsNamed(res.log, "group"); len(g) != 2 || !strings.Contains(g[0], "Building the signoff CLI") {
			t.Errorf("groups %q", g)
		}
		if _, err := os.Stat(filepath.Join(j.temp, "signoff-action", "signoff")); err != nil {
			t.Errorf("the built CLI is not under RUNNER_TEMP: %v", err)
		}
	})

	t.Run("no CLI and no Go", func(t *testing.T) {
		w := newCIWorld(t)
		res := newGitHubJob(t, w, t.TempDir()).run(t, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api"})
		if e := commandsNamed(res.log, "error"); res.exitCode != exitUsage || res.outputs["state"] != "error" || len(e) != 1 || !strings.Contains(e[0], "set the cli input, put signoff on PATH, or set up Go") {
			t.Fatalf("exit %d, outputs %q:\n%s", res.exitCode, res.outputs, res.log)
		}
	})

	t.Run("build fails", func(t *testing.T) {
		w := newCIWorld(t)
		j := newGitHubJobWithGo(t, w)
		j.repoRoot = t.TempDir() // an action folder without signoff's source
		res := j.run(t, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api"})
		checkLogCommands(t, res.log)
		if e := commandsNamed(res.log, "error"); res.exitCode != exitUsage || res.outputs["state"] != "error" || len(e) != 1 || !strings.Contains(e[0], "building the signoff CLI failed") {
			t.Fatalf("exit %d, outputs %q:\n%s", res.exitCode, res.outputs, res.log)
		}
	})
}

// TestActionFile checks action.yml against the contract (docs/ci.md) and
// the runner stand-in's own refusals: an expression outside env:, or one
// it does not evaluate, fails.
func TestActionFile(t *testing.T) {
	a, data := readActionFile(t)
	defaults := map[string]string{}
	var required []string
	for name, in := range a.Inputs {
		if in.Required {
			required = append(required, name)
		}
		if in.Default != nil {
			defaults[name] = *in.Default
		}
	}
	slices.Sort(required)
	wantDefaults := map[string]string{"params": "", "reason": "", "links": "", "wait": "true", "timeout": "1h", "audience": "signoff", "cli": ""}
	if len(a.Inputs) != 9 || !slices.Equal(required, []string{"action", "server"}) || !maps.Equal(defaults, wantDefaults) {
		t.Errorf("inputs: required %q, defaults %q", required, defaults)
	}
	var outputs []string
	for name := range a.Outputs {
		outputs = append(outputs, name)
	}
	slices.Sort(outputs)
	if !slices.Equal(outputs, []string{"approvers", "attestation", "request-id", "state"}) {
		t.Errorf("outputs %q", outputs)
	}

	// Every ${{ }} the action holds is one the stand-in evaluates.
	ec := exprContext{inputs: map[string]string{}, steps: map[string]map[string]string{}}
	for name := range a.Inputs {
		ec.inputs[name] = ""
	}
	for _, s := range a.Runs.Steps {
		ec.stepIDs = append(ec.stepIDs, s.ID)
		for k, v := range s.Env {
			if _, err := ec.eval(v); err != nil {
				t.Errorf("env %s: %v", k, err)
			}
		}
	}

	// What the checks refuse.
	vulnerable := strings.Replace(string(data), "case $INPUT_WAIT in", `echo "${{ inputs.reason }}"`+"\n        case $INPUT_WAIT in", 1)
	if _, err := parseCompositeAction([]byte(vulnerable)); err == nil || !strings.Contains(err.Error(), "run") {
		t.Errorf("an expression in run: was accepted (%v)", err)
	}
	if _, err := parseCompositeAction([]byte(strings.Replace(string(data), "name: Ask signoff for approval", "name: Ask for ${{ inputs.action }}", 1))); err == nil {
		t.Error("an expression in a step's name was accepted")
	}
	for _, expr := range []string{"${{ github.event.issue.title }}", "${{ inputs.nope }}", "${{ toJSON(inputs) }}", "${{ steps.other.outputs.x }}", "${{ inputs.server"} {
		if _, err := ec.eval(expr); err == nil {
			t.Errorf("%s was evaluated", expr)
		}
	}
	if _, err := parseCompositeAction([]byte(strings.Replace(string(data), "shell: bash", "shell: bash\n      if: always()", 1))); err == nil {
		t.Error("a step key the stand-in does not implement was accepted")
	}
}

// TestGitHubOutputsFile: the outputs file holds each value whole, even one
// that tries to close its block and set another output.
func TestGitHubOutputsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(path, []byte("earlier=kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v := apiRequestWithVotes("req_1", "approved", "alice@example.com", "bob\nghadelimiter_x\nstate=forged")
	if err := writeGitHubOutputs(path, v, "", nil); err != nil {
		t.Fatal(err)
	}
	got, err := readFileCommand(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"earlier": "kept", "request-id": "req_1", "state": "approved", "approvers": "alice@example.com,bob ghadelimiter_x state=forged", "attestation": ""}
	if !maps.Equal(got, want) {
		t.Errorf("outputs %q, want %q", got, want)
	}
	// A value holding a would-be delimiter line still reads back whole:
	// the delimiter is random and checked against the value.
	d1, _ := outputDelimiter("")
	d2, _ := outputDelimiter("")
	if d1 == d2 || !strings.HasPrefix(d1, "ghadelimiter_") {
		t.Errorf("delimiters %q %q", d1, d2)
	}
	// No request made: refused (exit 3) or error.
	for _, tc := range []struct {
		err  error
		want string
	}{{withCode(exitRefused, fmt.Errorf("no")), "refused"}, {fmt.Errorf("unreachable"), "error"}} {
		p := filepath.Join(t.TempDir(), "out")
		if err := writeGitHubOutputs(p, apiRequestWithVotes("", "", ""), "", tc.err); err != nil {
			t.Fatal(err)
		}
		if got, _ := readFileCommand(p); got["state"] != tc.want || got["request-id"] != "" {
			t.Errorf("%v: outputs %q", tc.err, got)
		}
	}
	if err := writeGitHubOutputs(filepath.Join(t.TempDir(), "missing", "out"), v, "", nil); err == nil || !strings.Contains(err.Error(), "GITHUB_OUTPUT") {
		t.Errorf("unwritable file: %v", err)
	}
}

// TestGitHubExampleLints runs actionlint on the sample workflow: as
// published, and with the action taken from this checkout (uses: ./), so
// actionlint also checks the inputs and outputs it uses against action.yml.
// Variants that break those rules must be reported.
func TestGitHubExampleLints(t *testing.T) {
	data, err := os.ReadFile(githubExampleFile)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	project, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	lint := func(content string) []string {
		t.Helper()
		var out bytes.Buffer
		l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{WorkingDir: root})
		if err != nil {
			t.Fatal(err)
		}
		errs, err := l.Lint(filepath.Join(root, "examples", "github-actions", "deploy.yml"), []byte(content), project)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s [%s]", e.Line, e.Column, e.Message, e.Kind))
		}
		return msgs
	}
	const published = "uses: signoff-dev/signoff@v1"
	if !strings.Contains(string(data), published) {
		t.Fatalf("the sample does not use %s", published)
	}
	local := strings.Replace(string(data), published, "uses: ./", 1)
	for name, content := range map[string]string{"published": string(data), "local": local} {
		if msgs := lint(content); len(msgs) != 0 {
			t.Errorf("%s: actionlint:\n%s", name, strings.Join(msgs, "\n"))
		}
	}
	if !strings.Contains(string(data), "id-token: write") {
		t.Error("the sample does not grant id-token: write")
	}
	bad := map[string]struct{ content, want string }{
		"unknown input":     {strings.Replace(local, "action: deploy-prod", "action: deploy-prod\n          actoin: typo", 1), "actoin"},
		"missing required":  {strings.Replace(local, "          server: https://signoff.example.com\n", "", 1), "server"},
		"unknown output":    {strings.Replace(local, "steps.signoff.outputs.approvers", "steps.signoff.outputs.approver", 1), "approver"},
		"untrusted in run:": {strings.Replace(local, `echo "Deploying`, `echo "${{ github.event.head_commit.message }}"; echo "Deploying`, 1), "untrusted"},
	}
	for name, tc := range bad {
		if tc.content == local {
			t.Fatalf("%s: the variant changed nothing", name)
		}
		msgs := lint(tc.content)
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.want) }) {
			t.Errorf("%s: actionlint reported %q, want a finding naming %q", name, msgs, tc.want)
		}
	}
}

// TestGitLabComponent runs the component's job as a GitLab runner with a
// POSIX shell would, with the job's ID token (minted by the dev server for
// the aud in id_tokens) in SIGNOFF_ID_TOKEN.
func TestGitLabComponent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the signoff binary")
	}
	bin := buildSignoff(t)
	data, err := os.ReadFile(gitlabTemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	var jobIDs atomic.Int64
	// job interpolates the component with inputs and starts its job.
	job := func(t *testing.T, w *ciWorld, inputs map[string]string) (dir string, log *testenv.LogBuffer, done <-chan int) {
		t.Helper()
		jobs, err := interpolateGitLabComponent(data, inputs)
		if err != nil {
			t.Fatal(err)
		}
		j, ok := jobs["signoff-approval"]
		if len(jobs) != 1 || !ok {
			t.Fatalf("jobs %v, want signoff-approval", jobs)
		}
		if j.Stage != inputs["stage"] && !(inputs["stage"] == "" && j.Stage == "deploy") {
			t.Errorf("stage %q", j.Stage)
		}
		idTokens := map[string]string{}
		for name, spec := range j.IDTokens {
			idTokens[name] = devToken(t, w.ts, "--audience", spec.Aud)
		}
		id := 500 + jobIDs.Add(1)
		predefined := map[string]string{
			"CI": "true", "GITLAB_CI": "true", "CI_JOB_ID": fmt.Sprint(id),
			"CI_JOB_URL":    fmt.Sprintf("https://gitlab.example.com/acme/api/-/jobs/%d", id),
			"CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
			"PATH":          filepath.Dir(bin) + ":" + ciSystemPath, "HOME": os.Getenv("HOME"),
		}
		dir, log = t.TempDir(), &testenv.LogBuffer{}
		ch := make(chan int, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			code, err := runGitLabJob(ctx, j, predefined, idTokens, dir, log)
			if err != nil {
				log.Write([]byte("runner: " + err.Error()))
				code = -1
			}
			ch <- code
		}()
		return dir, log, ch
	}

	t.Run("approved", func(t *testing.T) {
		w := newCIWorld(t)
		_, log, done := job(t, w, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api\nnote=$CI_COMMIT_SHA\n", "reason": "release"})
		r := pendingRequest(t, w.ts.svc)
		vote(t, w.ts, r.ID, storage.DecisionApprove)
		if code := <-done; code != 0 {
			t.Fatalf("exit %d:\n%s", code, log)
		}
		got, err := w.ts.svc.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got.Params, map[string]string{"service": "api", "note": "0123456789abcdef0123456789abcdef01234567"}) || got.Reason != "release" {
			t.Errorf("stored params %q, reason %q", got.Params, got.Reason)
		}
		if len(got.Links) != 1 || !strings.HasPrefix(got.Links[0].URL, "https://gitlab.example.com/acme/api/-/jobs/") {
			t.Errorf("stored links %+v", got.Links)
		}
	})

	t.Run("denied", func(t *testing.T) {
		w := newCIWorld(t)
		_, log, done := job(t, w, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api"})
		r := pendingRequest(t, w.ts.svc)
		vote(t, w.ts, r.ID, storage.DecisionDeny)
		if code := <-done; code != exitDenied || !strings.Contains(log.String(), "denied: request "+r.ID) {
			t.Fatalf("exit %d, want %d:\n%s", code, exitDenied, log)
		}
	})

	t.Run("audience", func(t *testing.T) {
		// The aud input reaches id_tokens: a token for another audience is
		// refused.
		w := newCIWorld(t)
		_, log, done := job(t, w, map[string]string{"server": w.ts.base, "action": "deploy", "params": "service=api", "audience": "someone-else"})
		if code := <-done; code != exitRefused || !strings.Contains(log.String(), "refused the token") {
			t.Fatalf("exit %d, want %d:\n%s", code, exitRefused, log)
		}
	})

	t.Run("injection", func(t *testing.T) {
		w := newCIWorld(t)
		reason := strings.Join([]string{injectQuote, injectSubst, injectBacktick, injectSingle, "EOF", "done"}, "\n")
		note := injectQuote + " " + injectSubst + " " + injectBacktick + " " + injectSingle
		dir, log, done := job(t, w, map[string]string{"server": w.ts.base, "action": "deploy", "reason": reason, "params": "service=api\nnote=" + note + "\nEOF"})
		// "EOF" alone on a params line is a param without "=": the here
		// document did not end early, so the job fails on it, exit 2.
		if code := <-done; code != exitUsage || !strings.Contains(log.String(), `"EOF"`) {
			t.Fatalf("exit %d:\n%s", code, log)
		}
		noPwned(t, dir)
		dir, log, done = job(t, w, map[string]string{"server": w.ts.base, "action": "deploy", "reason": reason, "params": "service=api\nnote=" + note})
		r := pendingRequest(t, w.ts.svc)
		vote(t, w.ts, r.ID, storage.DecisionApprove)
		if code := <-done; code != 0 {
			t.Fatalf("exit %d:\n%s", code, log)
		}
		noPwned(t, dir)
		got, err := w.ts.svc.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Reason != reason || got.Params["note"] != note {
			t.Errorf("stored reason %q, note %q; want %q, %q", got.Reason, got.Params["note"], reason, note)
		}
	})

	t.Run("the pipeline refuses", func(t *testing.T) {
		for name, tc := range map[string]struct {
			inputs map[string]string
			want   string
		}{
			"missing server":     {map[string]string{"action": "deploy"}, "`server` input"},
			"action not a name":  {map[string]string{"server": "https://x", "action": "deploy" + injectQuote}, "RegEx"},
			"unknown input":      {map[string]string{"server": "https://x", "action": "deploy", "actoin": "x"}, "actoin"},
			"template in script": {nil, "script text"},
		} {
			src := data
			if tc.inputs == nil {
				src = []byte(strings.Replace(string(data), `signoff "$@"`, `signoff "$@" --reason "$[[ inputs.reason ]]"`, 1))
				tc.inputs = map[string]string{"server": "https://x", "action": "deploy"}
			}
			if _, err := interpolateGitLabComponent(src, tc.inputs); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
			}
		}
	})
}

// TestGitLabExample: the sample pipeline includes the component with the
// inputs it declares.
func TestGitLabExample(t *testing.T) {
	example, err := os.ReadFile(gitlabExampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var pipeline struct {
		Include []struct {
			Component string            `yaml:"component"`
			Inputs    map[string]string `yaml:"inputs"`
		} `yaml:"include"`
		Rest map[string]any `yaml:",inline"`
	}
	if err := yamlUnmarshalStrict(example, &pipeline); err != nil {
		t.Fatal(err)
	}
	if len(pipeline.Include) != 1 || !strings.Contains(pipeline.Include[0].Component, "/signoff@") {
		t.Fatalf("include %+v", pipeline.Include)
	}
	data, err := os.ReadFile(gitlabTemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := interpolateGitLabComponent(data, pipeline.Include[0].Inputs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := jobs["signoff-approval"]; !ok {
		t.Fatalf("jobs %v", jobs)
	}
	deploy, _ := pipeline.Rest["deploy"].(map[string]any)
	if needs, _ := deploy["needs"].([]any); !slices.Contains(needs, any("signoff-approval")) {
		t.Errorf("the deploy job does not need signoff-approval: %v", deploy)
	}
}

// apiRequestWithVotes is a request as the API shows it, in state, with an
// approve vote by each of approvers (an email when it holds "@", else a
// subject).
func apiRequestWithVotes(id, state string, approvers ...string) api.Request {
	v := api.Request{ID: id, Action: "deploy", State: api.State(state)}
	for _, a := range approvers {
		vote := api.Vote{Decision: api.DecisionApprove, Subject: a}
		if strings.Contains(a, "@") {
			vote = api.Vote{Decision: api.DecisionApprove, Email: a, Subject: "sub-" + a}
		}
		v.Votes = append(v.Votes, vote)
	}
	return v
}

// yamlUnmarshalStrict decodes data into v, refusing keys v does not have.
func yamlUnmarshalStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}
