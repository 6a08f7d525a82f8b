package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/storage"
)

// requesterNoticeConfig is slackE2EConfig with two more people to sign in
// as at the dev issuer: carol, who asks for deploys, and carol.ops, whose
// Slack account looks like hers.
func requesterNoticeConfig(slack *slackStandIn) string {
	cfg := strings.ReplaceAll(slackE2EConfig, "%API%", slack.URL())
	return strings.Replace(cfg, "    - {name: bob, email: bob@example.com, groups: [sre]}\n", `    - {name: bob, email: bob@example.com, groups: [sre]}
    - {name: carol, email: carol@example.com, groups: [dev]}
    - {name: carol.ops, email: carol.ops@example.com, groups: [dev]}
`, 1)
}

// startRequesterNotice runs serve with cfg against slack, links alice and
// bob (the approvers), carol's Slack account U0CAROL to carol and the
// look-alike U0CAROLX (Slack name carol, real name Carol) to carol.ops.
func startRequesterNotice(t *testing.T, slack *slackStandIn, cfg string) *testServer {
	t.Helper()
	slack.addUser(slackAccount{ID: "U0CAROL", Team: "T0E2E", Name: "carol", RealName: "Carol", Email: "carol@example.com"})
	slack.addUser(slackAccount{ID: "U0CAROLX", Team: "T0E2E", Name: "carol", RealName: "Carol", Email: "carol.ops@example.com"})
	ts := startServeConfig(t, writeConfig(t, cfg), true)
	ts.logOnFailure(t)
	linkSlackUser(t, ts, slack, "U0ALICE", "alice")
	linkSlackUser(t, ts, slack, "U0BOB", "bob")
	linkSlackUser(t, ts, slack, "U0CAROL", "carol")
	linkSlackUser(t, ts, slack, "U0CAROLX", "carol.ops")
	links, err := ts.svc.Links(context.Background(), storage.LinkFilter{})
	if err != nil || len(links) != 4 {
		t.Fatalf("links: %d %v", len(links), err)
	}
	return ts
}

// carolRequests asks for a deploy as carol (her person claim is her
// subject) and returns the request id from its card in C1; skip is how
// many cards were posted there before.
func carolRequests(t *testing.T, ts *testServer, slack *slackStandIn) string {
	t.Helper()
	tok := devToken(t, ts, "--sub", "carol")
	code, out, stderr := runCmd(t, requestArgs(ts, tok, "--reason", "release", "--output", "json")...)
	var v api.Request
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.ID == "" {
		t.Fatalf("request: exit %d\n%s\n%s", code, out, stderr)
	}
	id := v.ID
	waitFor(t, 30*time.Second, "the card of "+id, func() bool { return len(slack.find("chat.postMessage", id)) > 0 })
	return id
}

// dms returns the texts of the direct messages (chat.postMessage to a
// user id) sent to user about a request (not those about its link).
func (s *slackStandIn) dms(user string) []string {
	var out []string
	for _, p := range s.find("chat.postMessage", user) {
		if p.Get("channel") == user && strings.Contains(p.Get("text"), "signoff request req_") {
			out = append(out, p.Get("text"))
		}
	}
	return out
}

// TestSlackRequesterToldOutcome: the requester's linked Slack account
// (the link's person is the requester's person claim) gets a direct
// message with the decision once the approvers decide; an account that
// only looks like hers (same Slack name and real name, linked to another
// person) gets nothing.
func TestSlackRequesterToldOutcome(t *testing.T) {
	clearCIEnv(t)
	slack := newSlackStandIn(t)
	ts := startRequesterNotice(t, slack, requesterNoticeConfig(slack))

	id := carolRequests(t, ts, slack)
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "111"))
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "222"))
	want := "Your signoff request " + id + " (deploy) was approved."
	waitFor(t, 30*time.Second, "carol's notice", func() bool { return len(slack.dms("U0CAROL")) > 0 })
	if got := slack.dms("U0CAROL"); len(got) != 1 || got[0] != want {
		t.Fatalf("carol's direct messages: %q, want %q", got, want)
	}

	// A later decision's notice is queued after the first one's: once it
	// is delivered, so is every notice of the first decision.
	second := carolRequests(t, ts, slack)
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", second, "signoff_deny", "333"))
	waitFor(t, 30*time.Second, "carol's second notice", func() bool { return len(slack.dms("U0CAROL")) == 2 })
	if got := slack.dms("U0CAROL")[1]; got != "Your signoff request "+second+" (deploy) was denied." {
		t.Fatalf("carol's second notice: %q", got)
	}
	if got := slack.dms("U0CAROLX"); len(got) != 0 {
		t.Fatalf("the look-alike account got %q", got)
	}
}

// TestSlackRequesterNotToldWhenOff: with notify.requester false the
// requester's linked account gets no message about the decision.
func TestSlackRequesterNotToldWhenOff(t *testing.T) {
	clearCIEnv(t)
	slack := newSlackStandIn(t)
	cfg := strings.Replace(requesterNoticeConfig(slack), "    notify: {slack: [C1]}\n", "    notify: {slack: [C1], requester: false}\n", 1)
	ts := startRequesterNotice(t, slack, cfg)

	id := carolRequests(t, ts, slack)
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "111"))
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "222"))
	slack.waitApprovedCard(t, id, "the approved card")
	// The decision committed before its card was updated, with any
	// notice it queued: none is waiting, and none was sent.
	b, err := ts.svc.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := b.OutboxDue["notice.slack"]; n != 0 {
		t.Fatalf("%d notices queued", n)
	}
	if got := append(slack.dms("U0CAROL"), slack.dms("U0CAROLX")...); len(got) != 0 {
		t.Fatalf("direct messages with notify.requester false: %q", got)
	}
}
