package slackbot

import (
	"testing"

	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/storage"
)

// TestCardNamesWhoCancelled: a request an admin cancelled does not claim
// its requester did.
func TestCardNamesWhoCancelled(t *testing.T) {
	status := func(r storage.Request) string { return statusText(r, "", nil) }
	chattest.CheckCancelNames(t, status, "by the requester", "by a signoff admin")
}
