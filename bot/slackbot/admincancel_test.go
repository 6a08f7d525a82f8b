package slackbot

import (
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// TestCardNamesWhoCancelled: a request an admin cancelled does not claim
// its requester did.
func TestCardNamesWhoCancelled(t *testing.T) {
	r := storage.Request{ID: "req_1", Action: "deploy", State: storage.StateCancelled, MinApprovals: 1, DecidedAt: time.Now(), DecidedBy: "requester"}
	if got := statusText(r, ""); !strings.Contains(got, "by the requester") {
		t.Errorf("requester's cancel: %q", got)
	}
	r.DecidedBy = "admin"
	if got := statusText(r, ""); !strings.Contains(got, "by a signoff admin") || strings.Contains(got, "requester") {
		t.Errorf("admin's cancel: %q", got)
	}
}
