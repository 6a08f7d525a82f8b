package platform

import (
	"slices"
	"testing"
)

func TestChat(t *testing.T) {
	if got, want := Chat(), []string{"slack", "teams"}; !slices.Equal(got, want) {
		t.Errorf("Chat() = %q, want %q", got, want)
	}
	Chat()[0] = "changed"
	if Chat()[0] != Slack {
		t.Error("Chat() shares its slice between callers")
	}
}
