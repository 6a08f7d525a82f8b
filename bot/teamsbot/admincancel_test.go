package teamsbot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// TestCardNamesWhoCancelled: a request an admin cancelled does not claim
// its requester did.
func TestCardNamesWhoCancelled(t *testing.T) {
	r := storage.Request{ID: "req_1", Action: "deploy", State: storage.StateCancelled, MinApprovals: 1, DecidedAt: time.Now(), DecidedBy: "requester"}
	text := func() string {
		b, err := json.Marshal(statusContainer(r, ""))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := text(); !strings.Contains(got, "Cancelled by the requester") {
		t.Errorf("requester's cancel: %s", got)
	}
	r.DecidedBy = "admin"
	if got := text(); !strings.Contains(got, "Cancelled by a signoff admin") || strings.Contains(got, "requester") {
		t.Errorf("admin's cancel: %s", got)
	}
}
