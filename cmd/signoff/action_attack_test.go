package main

// Attacks on the GitHub Action (action.yml) as GitHub's runner runs it
// (cirunner_test.go's stand-in), against a real dev-mode signoff.

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestAttackActionPlainHTTPServerGetsNoToken: a plain-http server input on a
// host that is not this machine is refused before the job's OIDC token
// (audience "signoff", accepted by any signoff that trusts GitHub's issuer
// for this repository) is sent: anyone on the path (runner network,
// corporate proxy, a typo'd http:// in a workflow) would get a replayable
// bearer token.
func TestAttackActionPlainHTTPServerGetsNoToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the signoff binary")
	}
	bin := buildSignoff(t)
	w := newCIWorld(t)

	// A plain-http "signoff" standing for anything on the network path.
	// It listens on loopback, and the server is named 0.0.0.0, which is
	// no loopback name but which Linux connects to this machine: nothing
	// leaves it even if the refusal were gone.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	server := "http://0.0.0.0:" + port
	var mu sync.Mutex
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusUnauthorized)
		_, _ = rw.Write([]byte(`{"error":{"code":"unauthorized","message":"no"}}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	j := newGitHubJob(t, w, ciSystemPath)
	res := j.run(t, map[string]string{
		"server": server, "action": "deploy", "cli": bin,
		"params": "service=api", "wait": "false",
	})
	_, toks := w.tokensGiven()
	if res.exitCode != exitUsage || !strings.Contains(res.log, "plain http") {
		t.Errorf("the action with a plain-http server: exit %d, want %d saying why\n%s", res.exitCode, exitUsage, res.log)
	}

	// Asked for by name, the CLI sends it (and says so).
	code, _, errOut := runCmd(t, "request", "--server", server, "--insecure-http", "--token", "opted-in-token", "--action", "deploy")
	if code == exitUsage || !strings.Contains(errOut, "--insecure-http") {
		t.Errorf("--insecure-http: exit %d\n%s", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(seen, func(a string) bool { return strings.Contains(a, "opted-in-token") }) {
		t.Errorf("--insecure-http did not send the token: %q", seen)
	}
	for _, auth := range seen {
		for _, tok := range toks {
			if strings.Contains(auth, tok) {
				t.Errorf("the job's OIDC token was sent in clear text to the non-loopback http server %s "+
					"(exit %d; the only trace is a warning inside the log group, no ::warning:: / ::error:: annotation). "+
					"The action should refuse a plain-http server that is not loopback.\nlog:\n%s",
					ln.Addr(), res.exitCode, res.log)
				return
			}
		}
	}
}

// TestAttackActionFlagLikeInputsAreData: inputs that look like the CLI's
// own flags (--break-glass, --token=…, --github-output=…, --server=…) are
// consumed as the values of the flags the script passes them to, never
// parsed as flags of their own: no break-glass, no other token, no other
// server, no other outputs file. (Holds.)
func TestAttackActionFlagLikeInputsAreData(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the signoff binary")
	}
	bin := buildSignoff(t)
	w := newCIWorld(t)
	j := newGitHubJob(t, w, ciSystemPath)
	stray := filepath.Join(j.temp, "stray-outputs")
	note := "--github-output=" + stray
	res := j.run(t, map[string]string{
		"server": w.ts.base, "action": "deploy", "cli": bin, "wait": "false",
		"reason": "--break-glass",
		"params": "service=api\nnote=" + note,
		"links":  "--server=http://evil.example=https://example.com/x",
	})
	if res.exitCode != 0 {
		t.Fatalf("exit %d:\n%s", res.exitCode, res.log)
	}
	got, err := w.ts.svc.Get(context.Background(), res.outputs["request-id"])
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != "--break-glass" || got.BreakGlass != nil || got.State != "pending" {
		t.Errorf("reason %q, break glass %+v, state %q: a flag-like reason changed the request", got.Reason, got.BreakGlass, got.State)
	}
	if got.Params["note"] != note {
		t.Errorf("note %q, want %q", got.Params["note"], note)
	}
	if _, err := os.Stat(stray); err == nil {
		t.Error("a param value named another --github-output file and the CLI wrote to it")
	}
	if len(got.Links) == 0 || got.Links[0].Title != "--server=http://evil.example" {
		t.Errorf("links %+v", got.Links)
	}
}

// TestAttackActionIgnoresForeignTokens: a SIGNOFF_TOKEN or SIGNOFF_ID_TOKEN
// that an earlier step (or the workflow's env:) put in the job's
// environment is not presented; the request is made with the job's own
// OIDC token, and no token reaches the outputs. (Holds.)
func TestAttackActionIgnoresForeignTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the signoff binary")
	}
	bin := buildSignoff(t)
	w := newCIWorld(t)
	j := newGitHubJob(t, w, ciSystemPath)
	foreign := devToken(t, w.ts, "--sub", "mallory")
	j.env["SIGNOFF_TOKEN"] = foreign
	j.env["SIGNOFF_ID_TOKEN"] = foreign
	res := j.run(t, map[string]string{"server": w.ts.base, "action": "deploy", "cli": bin, "params": "service=api", "wait": "false"})
	if res.exitCode != 0 {
		t.Fatalf("exit %d:\n%s", res.exitCode, res.log)
	}
	got, err := w.ts.svc.Get(context.Background(), res.outputs["request-id"])
	if err != nil {
		t.Fatal(err)
	}
	if got.Requester.Subject == "mallory" {
		t.Errorf("the request was made with the foreign SIGNOFF_TOKEN (requester %+v)", got.Requester)
	}
	_, toks := w.tokensGiven()
	for name, v := range res.outputs {
		for _, tok := range append(toks, foreign) {
			if strings.Contains(v, tok) {
				t.Errorf("output %s holds a bearer token", name)
			}
		}
	}
}
