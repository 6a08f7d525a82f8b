package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSlackRemindAndEscalateEndToEnd: a pending request is reminded in its
// card's thread in C1 (thread_ts = the card's ts) and its card is posted to
// the escalation channel C9; once approved, both cards show it.
func TestSlackRemindAndEscalateEndToEnd(t *testing.T) {
	clearCIEnv(t)
	slack := newSlackStandIn(t)
	cfg := strings.ReplaceAll(slackE2EConfig, "%API%", slack.URL())
	cfg = strings.Replace(cfg, "    notify: {slack: [C1]}\n", `    notify: {slack: [C1]}
    remind: {every: 1s, max: 2}
    escalate: {after: 1s, notify: {slack: [C9]}}
`, 1)
	ts := startServeConfig(t, writeConfig(t, cfg), true)
	ts.logOnFailure(t)

	linkSlackUser(t, ts, slack, "U0ALICE", "alice")
	linkSlackUser(t, ts, slack, "U0BOB", "bob")

	tok := devToken(t, ts)
	_, result := runAsync(requestArgs(ts, tok, "--reason", "release", "--wait", "--timeout", "2m")...)
	var id, cardTS string
	waitFor(t, 30*time.Second, "the card in C1", func() bool {
		id, cardTS = slack.cardPost("C1")
		return id != ""
	})
	waitFor(t, 30*time.Second, "a reminder in the card's thread", func() bool {
		for _, p := range slack.find("chat.postMessage", "Reminder") {
			if p.Get("channel") == "C1" && p.Get("thread_ts") == cardTS && strings.Contains(p.Get("text"), "members of sre") {
				return true
			}
		}
		return false
	})
	waitFor(t, 30*time.Second, "the card in the escalation channel", func() bool {
		for _, p := range slack.find("chat.postMessage", id) {
			if p.Get("channel") == "C9" && p.Get("thread_ts") == "" && p.Get("blocks") != "" {
				return true
			}
		}
		return false
	})

	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "111"))
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "222"))
	if res := awaitCommand(t, result); res.code != 0 {
		t.Fatalf("request --wait exited %d:\n%s", res.code, res.stderr)
	}
	waitFor(t, 30*time.Second, "both cards approved", func() bool {
		done := map[string]bool{}
		for _, u := range slack.find("chat.update", id) {
			if strings.Contains(strings.ToLower(u.Encode()), "approved") && !strings.Contains(u.Get("blocks"), "signoff_approve") {
				done[u.Get("channel")] = true
			}
		}
		return done["C1"] && done["C9"]
	})
	if n := len(slack.find("chat.postMessage", "Reminder")); n > 2 {
		t.Fatalf("%d reminders, at most 2 allowed", n)
	}
}

// cardPost returns the request id and ts of the first card posted to
// channel (a chat.postMessage outside any thread), as the stand-in
// answered it (its ts counts the calls it answered), or "".
func (s *slackStandIn) cardPost(channel string) (id, ts string) {
	for i, c := range s.Calls() {
		if c.Method == "chat.postMessage" && c.Form.Get("channel") == channel && c.Form.Get("thread_ts") == "" {
			if id = regexp.MustCompile(`req_[a-z0-9]+`).FindString(c.Form.Encode()); id != "" {
				return id, fmt.Sprintf("1772366400.%06d", i+1)
			}
		}
	}
	return "", ""
}
