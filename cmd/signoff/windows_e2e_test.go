package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/config"
)

// TestRequestOutsideWindowOrFrozenExits3: a request the action's windows or
// freeze refuse is answered 403 outside_window / frozen, and `signoff
// request` exits 3 with the server's message, which says when to ask again.
func TestRequestOutsideWindowOrFrozenExits3(t *testing.T) {
	clearCIEnv(t)
	// A weekday two days from today (UTC): not today, not the day a
	// window of yesterday could run into, so closed whenever the test runs.
	day := strings.ToLower(time.Now().UTC().AddDate(0, 0, 2).Weekday().String()[:3])
	cases := []struct {
		name   string
		adjust func(*config.ActionConfig)
		want   []string
	}{
		{"outside every window", func(a *config.ActionConfig) {
			a.Windows = []config.WindowConfig{{Days: []string{day}, From: "00:00", To: "01:00", TZ: "Europe/Berlin"}}
		}, []string{"403 outside_window", "may be requested only in its windows (" + day + " 00:00-01:00 Europe/Berlin)", "the next opens"}},
		{"in a freeze", func(a *config.ActionConfig) {
			a.Freeze = []config.FreezeConfig{{From: "2000-01-01T00:00:00Z", To: "2999-01-01T00:00:00Z", Reason: "test freeze"}}
		}, []string{"403 frozen", "frozen until 2999-01-01T00:00:00Z (test freeze)", "requested again from 2999-01-01T00:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath := writeConfig(t, requestTestConfig)
			ts := startServeConfig(t, cfgPath, true, func(cfg *config.Config) {
				cfg.Listen, cfg.Storage.Path = "127.0.0.1:0", filepath.Join(t.TempDir(), "data", "signoff.db")
				a := cfg.Actions["deploy"]
				tc.adjust(&a)
				cfg.Actions["deploy"] = a
			})
			tok := devToken(t, ts)
			code, _, stderr := runCmd(t, requestArgs(ts, tok)...)
			if code != exitRefused {
				t.Fatalf("exit %d, want %d: %s", code, exitRefused, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}
