package main

import (
	"context"
	"strings"
	"testing"

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
}
