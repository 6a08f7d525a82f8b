package bot_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestChatAdaptersImportNoStorage: the chat adapters reach state only
// through approvals, whose view types they render, and import neither the
// front door nor each other (docs/architecture.md, the package map).
func TestChatAdaptersImportNoStorage(t *testing.T) {
	const mod = "github.com/signoff-dev/signoff/"
	for dir, banned := range map[string][]string{
		"slackbot": {mod + "storage", mod + "bot", mod + "bot/teamsbot"},
		"teamsbot": {mod + "storage", mod + "bot", mod + "bot/slackbot"},
	} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkg.GoFiles) == 0 {
			t.Fatalf("bot/%s: no Go files found", dir)
		}
		for _, imp := range pkg.Imports {
			for _, b := range banned {
				if imp == b || (b == mod+"storage" && strings.HasPrefix(imp, b+"/")) {
					t.Errorf("bot/%s imports %s", dir, imp)
				}
			}
		}
	}
}
