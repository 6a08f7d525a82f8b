// Package teams holds signoff's Microsoft Teams app package: the manifest
// template and its two icons, embedded so that `signoff teams package` can
// write a ready-to-upload zip without a checkout. docs/teams.md explains
// the package and how to sideload it.
package teams

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// AppIDPlaceholder stands for the bot's Microsoft app id in Manifest (as
// the app's id and as the bot's botId).
const AppIDPlaceholder = "{{BOT_ID}}"

// Manifest is manifest.json, with AppIDPlaceholder where the app id goes.
//
//go:embed manifest.json
var Manifest []byte

// ColorIcon is color.png: the 192×192 full-colour icon.
//
//go:embed color.png
var ColorIcon []byte

// OutlineIcon is outline.png: the 32×32 white-on-transparent icon.
//
//go:embed outline.png
var OutlineIcon []byte

// appIDPattern is a Microsoft app id: a GUID.
var appIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// RenderManifest returns Manifest with appID (the Azure Bot resource's
// Microsoft app id, a GUID) in place of the placeholder.
func RenderManifest(appID string) ([]byte, error) {
	appID = strings.TrimSpace(appID)
	if !appIDPattern.MatchString(appID) {
		return nil, fmt.Errorf("app id %q is not a GUID: use the Microsoft App ID of the Azure Bot resource (teams.app_id), e.g. 00000000-0000-0000-0000-000000000000", appID)
	}
	out := bytes.ReplaceAll(Manifest, []byte(AppIDPlaceholder), []byte(strings.ToLower(appID)))
	if !json.Valid(out) {
		return nil, fmt.Errorf("the manifest template is not valid JSON")
	}
	return out, nil
}
