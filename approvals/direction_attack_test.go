package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// TestDirectionControlsAreRefused is the attack on "approvers see what
// they approve": a requester puts a Unicode direction control into the
// text a card shows (a parameter, the reason, a link's title or URL), so
// that the card shows it reordered, e.g. "1.4.2" followed by U+202E
// RIGHT-TO-LEFT OVERRIDE and "0.0.1-reverted" reads as another version.
// Such a request is refused with what is wrong and where; nothing is
// stored or audited. Text in other scripts is not refused.
func TestDirectionControlsAreRefused(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	base := func() approvals.CreateInput {
		return approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams()}
	}
	for name, tc := range map[string]struct {
		edit func(*approvals.CreateInput)
		want string
	}{
		"param value override": {func(in *approvals.CreateInput) { in.Params["version"] = "1.4.2\u202e0.0.1" }, `param "version" holds U+202E`},
		"param value isolate":  {func(in *approvals.CreateInput) { in.Params["version"] = "1\u20662\u2069" }, `param "version" holds U+2066`},
		"reason mark":          {func(in *approvals.CreateInput) { in.Reason = "routine \u200fdeploy" }, "reason holds U+200F"},
		"reason arabic mark":   {func(in *approvals.CreateInput) { in.Reason = "x\u061cy" }, "reason holds U+061C"},
		"link title": {func(in *approvals.CreateInput) {
			in.Links = []storage.Link{{Title: "Build log\u202e", URL: "https://ci.example/run/7"}}
		}, "links[0].title holds U+202E"},
		"link url": {func(in *approvals.CreateInput) {
			in.Links = []storage.Link{{Title: "log", URL: "https://ci.example\u202e.evil.example/run/7"}}
		}, "links[0].url holds U+202E"},
	} {
		t.Run(name, func(t *testing.T) {
			in := base()
			tc.edit(&in)
			_, _, err := h.svc.Create(ctx, in)
			if !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "remove it") {
				t.Fatalf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
	if n := len(h.records()); n != 0 {
		t.Fatalf("refused creates wrote %d audit records", n)
	}

	in := base()
	in.Reason = "פריסה שגרתית — نشر روتيني"
	if _, _, err := h.svc.Create(ctx, in); err != nil {
		t.Fatalf("a reason in Hebrew and Arabic is refused: %v", err)
	}
}
