package main

import (
	"context"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/storage"
)

// `signoff request --break-glass` against dev mode with the example
// config, whose deploy-prod has break_glass for the oncall group.
func TestRequestBreakGlassDevMode(t *testing.T) {
	clearCIEnv(t)
	ts := startServeConfig(t, exampleConfig, true)
	ts.logOnFailure(t)
	args := func(token string, extra ...string) []string {
		return append([]string{"request", "--server", ts.base, "--token", token, "--action", "deploy-prod",
			"--param", "service=api", "--param", "version=1.4.2"}, extra...)
	}
	oncall := devToken(t, ts, "--sub", "octo", "--claim", `groups=["oncall"]`)

	// Without --reason: a usage error, nothing sent.
	if code, out, stderr := runCmd(t, args(oncall, "--break-glass")...); code != exitUsage || !strings.Contains(stderr, "--reason") {
		t.Fatalf("without --reason: exit %d\n%s%s", code, out, stderr)
	}
	// Not in break_glass.groups: refused.
	if code, out, stderr := runCmd(t, args(devToken(t, ts, "--sub", "dev-user"), "--break-glass", "--reason", "x")...); code != exitRefused || !strings.Contains(stderr, "oncall") {
		t.Fatalf("without the group: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr := runCmd(t, args(oncall, "--break-glass", "--reason", "x")...)
	if code != 0 || !strings.Contains(out, "approved by BREAK-GLASS: request ") || !strings.Contains(out, "review ") {
		t.Fatalf("break-glass: exit %d\n%s%s", code, out, stderr)
	}

	// The same person again, while the review is pending: exit 3.
	code, out, stderr = runCmd(t, args(oncall, "--break-glass", "--reason", "again")...)
	if code != exitRefused || !strings.Contains(stderr, "review_pending") {
		t.Fatalf("second break-glass: exit %d\n%s%s", code, out, stderr)
	}

	pending, err := ts.svc.List(context.Background(), storage.RequestFilter{States: []storage.State{storage.StatePending}})
	if err != nil || len(pending) != 1 || pending[0].Action != "deploy-prod:review" {
		t.Fatalf("pending after break-glass: %+v %v", pending, err)
	}

	// A reviewer denies it: the block stays until an admin lifts it.
	review := pending[0].ID
	vote(t, ts, review, storage.DecisionDeny)
	code, out, stderr = runCmd(t, args(oncall, "--break-glass", "--reason", "after the deny")...)
	if code != exitRefused || !strings.Contains(stderr, "was denied") || !strings.Contains(stderr, "requests lift-block "+review) {
		t.Fatalf("break-glass after a denied review: exit %d\n%s%s", code, out, stderr)
	}
	admin := adminDevToken(t, ts)
	lift := func(token string, extra ...string) (int, string, string) {
		return runCmd(t, append([]string{"requests", "lift-block", review, "--server", ts.base, "--token", token}, extra...)...)
	}
	if code, out, stderr := lift(admin); code != exitUsage || !strings.Contains(stderr, "--reason") {
		t.Fatalf("lift-block without --reason: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := lift(oncall, "--reason", "mine"); code != exitRefused || !strings.Contains(stderr, "admins.groups") {
		t.Fatalf("lift-block by the requester: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = lift(admin, "--reason", "postmortem: it was justified")
	if code != 0 || !strings.Contains(out, "lifted the block of denied review "+review) || !strings.Contains(out, "break_glass.lifted") {
		t.Fatalf("lift-block: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runCmd(t, args(oncall, "--break-glass", "--reason", "after the lift")...); code != 0 {
		t.Fatalf("break-glass after the lift: exit %d\n%s%s", code, out, stderr)
	}
}

// TestLiftedTextIsTerminalSafe: the requester's names in the lift's
// confirmation come from their CI token; an escape sequence or a direction
// control there reaches the admin's terminal quoted, not interpreted.
func TestLiftedTextIsTerminalSafe(t *testing.T) {
	r := api.Request{ID: "req_1", State: api.StateDenied, BreakGlass: &api.BreakGlass{Reviews: "req_0"},
		Requester: api.Requester{Issuer: "ci", Person: "octo\x1b[2J\u202eevil"}}
	got := liftedText(r)
	if strings.ContainsAny(got, "\x1b\u202e") || !strings.Contains(got, `ci:octo\x1b[2J\u202eevil may break glass again`) {
		t.Fatalf("lifted text %q", got)
	}
}
