package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/bot/ssf/ssftest"
	"github.com/signoff-dev/signoff/config"
)

// TestSessionRevokedStopsTheNextClick is the operations guide's promise
// end to end: an IdP pushes session-revoked for bob while signoff serves
// Slack; bob's next click gets a sign-in link and counts nothing, alice's
// still counts, and nothing was restarted.
func TestSessionRevokedStopsTheNextClick(t *testing.T) {
	slack := newSlackStandIn(t)
	tr := ssftest.New(t, "https://idp.example.com")
	token := strings.Repeat("s", 40)
	cfgPath := writeConfig(t, strings.ReplaceAll(slackE2EConfig, "%API%", slack.URL()))
	ts := startServeConfig(t, cfgPath, true, func(c *config.Config) {
		c.SSF = config.SSFConfig{Issuer: tr.Issuer, JWKSURL: tr.JWKSURL(), Audience: "signoff-e2e", BearerToken: config.Secret(token)}
	})
	ts.logOnFailure(t)
	linkSlackUser(t, ts, slack, "U0ALICE", "alice")
	linkSlackUser(t, ts, slack, "U0BOB", "bob")
	id := apiCreate(http.DefaultClient, ts.base, devToken(t, ts), "ssf-e2e")
	if id == "" {
		t.Fatal("create failed")
	}

	claims := tr.Claims("signoff-e2e", time.Now(), ssf.EventSessionRevoked, nil)
	claims["sub_id"] = ssftest.Email("bob@example.com")
	if status, body := ssftest.Push(t, ts.base+ssf.Path, tr.Sign(t, claims), token); status != http.StatusAccepted {
		t.Fatalf("session-revoked push: %d %s", status, body)
	}

	linksBefore := len(repliesWith(slack, "U0BOB", "/link/start?id="))
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "951"))
	waitFor(t, 20*time.Second, "a fresh sign-in link for bob", func() bool {
		return len(repliesWith(slack, "U0BOB", "/link/start?id=")) > linksBefore
	})
	if votedBy(t, ts, id, "U0BOB") {
		t.Fatal("bob's click counted after the IdP revoked his session")
	}
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "952"))
	waitFor(t, 20*time.Second, "alice's vote", func() bool { return votedBy(t, ts, id, "U0ALICE") })

	var stale bool
	for _, r := range serverAudit(t, ts) {
		if r.Type == "identity.stale" && r.Actor != nil && r.Actor.PlatformUser == "U0BOB" && r.Data["jti"] == claims["jti"] {
			stale = true
		}
	}
	if !stale {
		t.Fatal("no identity.stale record for bob naming the SET's jti")
	}
}
