package config_test

import (
	"strings"
	"testing"
)

func TestCLIClientID(t *testing.T) {
	const idp = `
public_url: "https://signoff.example.com"
idp: {issuer: "https://login.example.com", client_id: signoff, cli_client_id: signoff-cli, token_encryption_key: "0123456789abcdef0123456789abcdef"}`
	for _, tc := range []struct{ name, yaml, key, msg string }{
		{"with issuer", idp, "", ""},
		{"without issuer", `
idp: {cli_client_id: signoff-cli}`, "idp.cli_client_id", "needs idp.issuer"},
		{"spaces", `
public_url: "https://signoff.example.com"
idp: {issuer: "https://login.example.com", client_id: signoff, scopes: [openid], cli_client_id: " signoff-cli"}`, "idp.cli_client_id", "spaces"},
		{"a requester with the same issuer and audience", idp + `
requesters: [{name: sso, issuer: "https://login.example.com", audience: signoff-cli}]`, "requesters[0].audience", "idp.cli_client_id"},
		{"a requester of the same issuer, another audience", idp + `
requesters: [{name: sso, issuer: "https://login.example.com", audience: signoff}]`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, mustLoad(t, tc.yaml, nil), tc.key, tc.msg)
		})
	}

	// The environment sets it like any key.
	c := mustLoad(t, idp, map[string]string{"SIGNOFF_IDP_CLI_CLIENT_ID": "from-env"})
	if c.IdP.CLIClientID != "from-env" {
		t.Errorf("SIGNOFF_IDP_CLI_CLIENT_ID: got %q", c.IdP.CLIClientID)
	}
	if s := c.Summary(); !strings.Contains(s, "signoff login: public client from-env") {
		t.Errorf("summary does not mention signoff login:\n%s", s)
	}
}
