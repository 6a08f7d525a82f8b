package teamsbot

import (
	"encoding/json"
	"testing"

	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/storage"
)

// TestCardNamesWhoCancelled: a request an admin cancelled does not claim
// its requester did.
func TestCardNamesWhoCancelled(t *testing.T) {
	status := func(r storage.Request) string {
		b, err := json.Marshal(statusContainer(r, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	chattest.CheckCancelNames(t, status, "Cancelled by the requester", "Cancelled by a signoff admin")
}
