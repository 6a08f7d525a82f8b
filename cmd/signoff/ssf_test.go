package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/bot/ssf/ssftest"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage"
)

// TestServeReceivesSharedSignals: with an ssf section, serve mounts POST
// /ssf/events; a session-revoked SET from the configured transmitter makes
// the person's link stale, a forged one is refused, and both show in
// /metrics.
func TestServeReceivesSharedSignals(t *testing.T) {
	tr := ssftest.New(t, "https://idp.example.com")
	token := strings.Repeat("b", 40)
	cfgPath := writeConfig(t, requestTestConfig)
	ts := startServeConfig(t, cfgPath, true, func(cfg *config.Config) {
		cfg.Listen = "127.0.0.1:0"
		cfg.SSF = config.SSFConfig{Issuer: tr.Issuer, JWKSURL: tr.JWKSURL(), Audience: "signoff-test", BearerToken: config.Secret(token)}
	})
	ctx := context.Background()
	now := time.Now()
	if err := ts.svc.SaveLink(ctx, storage.IdentityLink{
		Platform: "dev", Workspace: "dev", PlatformUser: "alice", Issuer: "https://idp.example.com", Subject: "alice",
		Email: "alice@example.com", Groups: []string{"sre"}, LinkedAt: now.Add(-time.Hour), VerifiedAt: now,
	}, ""); err != nil {
		t.Fatal(err)
	}
	url := ts.base + ssf.Path

	claims := tr.Claims("signoff-test", now, ssf.EventSessionRevoked, nil)
	claims["sub_id"] = ssftest.Email("alice@example.com")
	if status, body := ssftest.Push(t, url, tr.Sign(t, claims), token); status != http.StatusAccepted {
		t.Fatalf("push: %d %s", status, body)
	}
	l, err := ts.svc.Link(ctx, "dev", "dev", "alice")
	if err != nil || !l.Stale {
		t.Fatalf("after the SET: stale=%v err=%v", l.Stale, err)
	}

	forged := ssftest.NewKey(t, tr.Key.KID, "ES256").Sign(t, tr.Claims("signoff-test", now, ssf.EventAccountPurged, nil))
	if status, body := ssftest.Push(t, url, forged, token); status != http.StatusBadRequest || !strings.Contains(string(body), `"err":"invalid_key"`) {
		t.Fatalf("forged SET: %d %s", status, body)
	}
	if status, _ := ssftest.Push(t, url, tr.Sign(t, claims), ""); status != http.StatusBadRequest {
		t.Fatalf("push without the bearer token: %d", status)
	}

	metrics := httpGet(t, ts.base+"/metrics")
	for _, want := range []string{
		`signoff_ssf_events_total{type="session-revoked",outcome="stale"} 1`,
		`signoff_ssf_events_total{type="unverified",outcome="invalid_key"} 1`,
		`signoff_ssf_events_total{type="unverified",outcome="authentication_failed"} 1`,
		`signoff_ssf_refusals_total{err="invalid_key",reason="bad_signature"} 1`,
		`signoff_ssf_refusals_total{err="authentication_failed",reason="no_bearer_token"} 1`,
		`signoff_ssf_links_stale_total 1`,
	} {
		if !containsSample(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, token) {
		t.Error("/metrics shows the bearer token")
	}
}
