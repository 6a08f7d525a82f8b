package bot_test

import (
	"bytes"
	"crypto/ed25519"
	"log/slog"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
)

// TestMetricsUnpublishedCheckpoints: the witness gauges count the signed
// checkpoints a witness has not received yet, and how long the oldest has
// waited, so an alert can fire when a witness falls behind.
func TestMetricsUnpublishedCheckpoints(t *testing.T) {
	st := testenv.OpenStore(t)
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	logger := slog.New(slog.DiscardHandler)
	svc := approvals.New(st, &policy.Policy{}, approvals.Options{
		Clock: clk, Logger: logger, SigningKey: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)), CheckpointEvery: 2,
		Witnesses: approvals.Witnesses{Chat: policy.Notify{Slack: []string{"C0AUDIT"}}, Webhook: true},
	})
	front := bot.New(bot.Options{Service: svc, Store: st, Logger: logger})
	wantLines(t, scrapeMetrics(t, front),
		`# TYPE signoff_audit_unpublished_checkpoints gauge`,
		`signoff_audit_unpublished_checkpoints{witness="slack"} 0`,
		`signoff_audit_unpublished_checkpoints{witness="teams"} 0`,
		`signoff_audit_unpublished_checkpoints{witness="webhook"} 0`,
		`signoff_audit_unpublished_oldest_seconds{witness="webhook"} 0`,
	)
	for range 3 { // checkpoints at seq 3 and 5
		if err := svc.RecordBackup(t.Context(), audit.Actor{Issuer: "https://idp.example", Subject: "admin"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(90 * time.Second)
	wantLines(t, scrapeMetrics(t, front),
		`signoff_audit_unpublished_checkpoints{witness="slack"} 2`,
		`signoff_audit_unpublished_checkpoints{witness="teams"} 0`,
		`signoff_audit_unpublished_checkpoints{witness="webhook"} 2`,
		`signoff_audit_unpublished_oldest_seconds{witness="slack"} 90`,
		`signoff_audit_unpublished_oldest_seconds{witness="teams"} 0`,
		`signoff_audit_unpublished_oldest_seconds{witness="webhook"} 90`,
	)
}
