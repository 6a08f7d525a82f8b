package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	teamsapp "github.com/signoff-dev/signoff/deploy/teams"
)

// defaultTeamsPackage is where `signoff teams package` writes by default.
const defaultTeamsPackage = "signoff-teams.zip"

// teamsPackageTime dates the files in the zip, so that one app id always
// gives the same bytes.
var teamsPackageTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newTeamsCommand is `signoff teams`: helpers for the Microsoft Teams bot.
func newTeamsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "teams",
		Short: "Microsoft Teams helpers (the app package to upload to Teams)",
		Long: `signoff's Teams bot is an Azure Bot resource whose messaging endpoint is
public_url + /teams/messages. 'teams package' writes the Teams app package that
puts that bot into Teams; docs/teams.md walks through the whole set-up.`,
	}
	cmd.AddCommand(newTeamsPackageCommand())
	return cmd
}

func newTeamsPackageCommand() *cobra.Command {
	var appID, out string
	cmd := &cobra.Command{
		Use:   "package --app-id ID [-o FILE]",
		Short: "Write the Teams app package (manifest and icons) for your bot's app id",
		Long: `Write a Teams app package: a zip holding manifest.json, with --app-id as the
app's and the bot's id, and the two icons (color.png, outline.png). Upload it in
Teams (Apps, Manage your apps, Upload an app), or have an administrator publish
it to your organisation's app catalog; then add the app to the teams and chats
listed in the actions' notify.teams. See docs/teams.md.

--app-id is the Microsoft App ID of the Azure Bot resource: the same value as
teams.app_id. -o - writes the zip to standard output.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if appID == "" {
				return usageErrorf("teams package needs --app-id: the Microsoft App ID of the Azure Bot resource (teams.app_id)")
			}
			manifest, err := teamsapp.RenderManifest(appID)
			if err != nil {
				return withCode(exitUsage, err)
			}
			zipped, err := teamsPackage(manifest)
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := cmd.OutOrStdout().Write(zipped)
				return err
			}
			if err := writeTeamsPackage(out, zipped); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s for app id %s: upload it in Teams (Apps > Manage your apps > Upload an app), then add the app to the channels in notify.teams\n", out, appID)
			return nil
		},
	}
	cmd.Flags().StringVar(&appID, "app-id", "", "the Microsoft App ID of the Azure Bot resource (teams.app_id)")
	cmd.Flags().StringVarP(&out, "output", "o", defaultTeamsPackage, "where to write the zip (- for standard output)")
	return cmd
}

// teamsPackage zips the manifest and the icons at the root of the archive,
// where Teams looks for them.
func teamsPackage(manifest []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"manifest.json", manifest},
		{"color.png", teamsapp.ColorIcon},
		{"outline.png", teamsapp.OutlineIcon},
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: teamsPackageTime})
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", f.name, err)
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, fmt.Errorf("zip %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("finish the zip: %w", err)
	}
	return buf.Bytes(), nil
}

// writeTeamsPackage writes data to path through a temporary file in the same
// directory, so a failed write never leaves half a package behind.
func writeTeamsPackage(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signoff-teams-*.zip")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
