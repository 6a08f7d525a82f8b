package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	teamsapp "github.com/signoff-dev/signoff/deploy/teams"
)

func runTeams(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newTeamsCommand()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestTeamsPackage(t *testing.T) {
	const appID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	path := filepath.Join(t.TempDir(), "app.zip")
	out, err := runTeams(t, "package", "--app-id", appID, "-o", path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "wrote "+path) || !strings.Contains(out, "Upload an app") {
		t.Errorf("output: %q", out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if len(files) != 3 || !bytes.Equal(files["color.png"], teamsapp.ColorIcon) || !bytes.Equal(files["outline.png"], teamsapp.OutlineIcon) {
		t.Fatalf("zip holds %d files", len(files))
	}
	var m struct {
		ID   string `json:"id"`
		Bots []struct {
			BotID string `json:"botId"`
		} `json:"bots"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != appID || m.Bots[0].BotID != appID {
		t.Errorf("manifest ids: %+v", m)
	}

	// The same app id gives the same bytes.
	again := filepath.Join(t.TempDir(), "again.zip")
	if _, err := runTeams(t, "package", "--app-id", appID, "-o", again); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := os.ReadFile(again); !bytes.Equal(raw, raw2) {
		t.Error("the package is not reproducible")
	}

	// -o - writes to standard output.
	stdout, err := runTeams(t, "package", "--app-id", appID, "-o", "-")
	if err != nil || !bytes.Equal([]byte(stdout), raw) {
		t.Errorf("stdout package: %v", err)
	}
}

func TestTeamsPackageUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"package", "-o", filepath.Join(dir, "x.zip")},
		{"package", "--app-id", "not-a-guid", "-o", filepath.Join(dir, "x.zip")},
	} {
		_, err := runTeams(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "app") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}
