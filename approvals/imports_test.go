package approvals_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestApprovalsImportsNoEdge: the lifecycle knows people through the core's
// identity package, never through the oidc package that verifies them, the
// front door or a chat SDK (docs/architecture.md, "One process, one
// direction of dependencies").
func TestApprovalsImportsNoEdge(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		for _, banned := range []string{"signoff/oidc", "signoff/bot", "slack-go", "msbotbuilder"} {
			if strings.Contains(imp, banned) {
				t.Errorf("approvals imports %s", imp)
			}
		}
	}
}
