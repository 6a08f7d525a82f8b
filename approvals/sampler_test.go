package approvals_test

import (
	"context"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
)

// Each Service samples its own rejected callbacks: a flood against one
// leaves another's budget alone.
func TestRejectedCallbackSamplingIsPerService(t *testing.T) {
	ctx := context.Background()
	flooded, other := newHarness(t, approvals.Options{}), newHarness(t, approvals.Options{})
	for range approvals.CallbackRejectedPerMinute + 3 {
		if err := flooded.svc.RecordRejectedCallback(ctx, "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.svc.RecordRejectedCallback(ctx, "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
		t.Fatal(err)
	}
	if got := len(flooded.records()); got != approvals.CallbackRejectedPerMinute {
		t.Errorf("flooded service wrote %d records, want %d", got, approvals.CallbackRejectedPerMinute)
	}
	recs := other.records()
	if len(recs) != 1 {
		t.Fatalf("other service wrote %d records, want 1", len(recs))
	}
	if _, ok := recs[0].Data["dropped"]; ok {
		t.Errorf("other service's record counts drops it never had: %v", recs[0].Data)
	}
}
