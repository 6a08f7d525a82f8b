package policy

import (
	"slices"
	"testing"

	"github.com/signoff-dev/signoff/internal/platform"
)

func TestNotifyTargets(t *testing.T) {
	n := Notify{Slack: []string{"C1", "C2"}, Teams: []string{"19:a"}}
	for _, tc := range []struct {
		platform string
		want     []string
	}{
		{platform.Slack, []string{"C1", "C2"}},
		{platform.Teams, []string{"19:a"}},
		{platform.Dev, nil},
		{"other", nil},
	} {
		if got := n.Targets(tc.platform); !slices.Equal(got, tc.want) {
			t.Errorf("Targets(%q) = %q, want %q", tc.platform, got, tc.want)
		}
	}
}
