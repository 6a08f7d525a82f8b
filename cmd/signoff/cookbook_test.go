package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// yamlBlocks returns the fenced ```yaml blocks of a Markdown file, with
// the line each starts on (indented fences, inside list items, included).
func yamlBlocks(t *testing.T, path string) (blocks []string, lines []int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Split(string(data), "\n")
	for i := 0; i < len(all); i++ {
		if strings.TrimSpace(all[i]) != "```yaml" {
			continue
		}
		start := i + 1
		var b []string
		for i++; i < len(all) && strings.TrimSpace(all[i]) != "```"; i++ {
			b = append(b, all[i])
		}
		blocks, lines = append(blocks, strings.Join(b, "\n")+"\n"), append(lines, start)
	}
	return blocks, lines
}

var secretPathRE = regexp.MustCompile(`/run/secrets/[A-Za-z0-9._-]+`)

// TestPolicyCookbookRecipesPassConfigCheck: every YAML block of
// docs/policy-cookbook.md is a config `signoff config check` accepts
// (exit 0) without warnings, given its secret files.
func TestPolicyCookbookRecipesPassConfigCheck(t *testing.T) {
	blocks, lines := yamlBlocks(t, filepath.Join("..", "..", "docs", "policy-cookbook.md"))
	if len(blocks) < 5 {
		t.Fatalf("found %d YAML blocks in the cookbook, want at least one per recipe", len(blocks))
	}
	dir := t.TempDir()
	for i, b := range blocks {
		// The recipes name secret files at /run/secrets; give them
		// files holding a secret long enough for any key.
		b = secretPathRE.ReplaceAllStringFunc(b, func(p string) string {
			local := filepath.Join(dir, filepath.Base(p))
			secret := make([]byte, 24)
			if _, err := rand.Read(secret); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(local, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return local
		})
		path := filepath.Join(dir, fmt.Sprintf("recipe-%d.yaml", i))
		if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, stderr := runCmd(t, "config", "check", "--config", path)
		if code != 0 || strings.Contains(out, "\nWarnings\n") {
			t.Errorf("docs/policy-cookbook.md:%d: config check exit %d\n%s%s", lines[i], code, out, stderr)
		}
	}
}
