package main

// Attacks on "secrets stay secret" through the CLI an operator runs:
// `config check` (text and --output json), `migrate`, `storage copy`.
//

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const reviewSecret = "REVIEWSECRET0123456789abcdefABCDEF"

// reviewSecretEnv sets every secret of a production config inline through
// the environment, on top of config.example.yaml.
func reviewSecretEnv(t *testing.T) {
	t.Helper()
	clearCIEnv(t)
	for k, v := range map[string]string{
		"SIGNOFF_PUBLIC_URL":               "https://signoff.example.com",
		"SIGNOFF_STORAGE_DRIVER":           "postgres",
		"SIGNOFF_STORAGE_PATH":             "",
		"SIGNOFF_STORAGE_DSN":              "postgres://signoff:" + reviewSecret + "@db.example.com/signoff",
		"SIGNOFF_SLACK_BOT_TOKEN":          "xoxb-" + reviewSecret,
		"SIGNOFF_SLACK_SIGNING_SECRET":     reviewSecret,
		"SIGNOFF_SLACK_TEAM_ID":            "T0123ABCD",
		"SIGNOFF_TEAMS_APP_ID":             "00000000-0000-0000-0000-000000000001",
		"SIGNOFF_TEAMS_APP_PASSWORD":       reviewSecret,
		"SIGNOFF_TEAMS_TENANT_IDS":         "00000000-0000-0000-0000-000000000002",
		"SIGNOFF_IDP_ISSUER":               "https://idp.example.com",
		"SIGNOFF_IDP_CLIENT_ID":            "signoff",
		"SIGNOFF_IDP_CLIENT_SECRET":        reviewSecret,
		"SIGNOFF_IDP_TOKEN_ENCRYPTION_KEY": reviewSecret,
		"SIGNOFF_SSF_ISSUER":               "https://idp.example.com",
		"SIGNOFF_SSF_JWKS_URL":             "https://idp.example.com/jwks",
		"SIGNOFF_SSF_AUDIENCE":             "signoff",
		"SIGNOFF_SSF_BEARER_TOKEN":         reviewSecret,
	} {
		t.Setenv(k, v)
	}
}

// TestAttackConfigCheckPrintsNoSecret: `config check`, text and --output json, prints none of the
// secrets of a production config (it says "set inline" instead).
func TestAttackConfigCheckPrintsNoSecret(t *testing.T) {
	reviewSecretEnv(t)
	for _, args := range [][]string{
		{"config", "check", "--dev", "--config", exampleConfig},
		{"config", "check", "--dev", "--config", exampleConfig, "--output", "json"},
	} {
		code, out, errOut := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if strings.Contains(out+errOut, reviewSecret) {
			t.Errorf("%v prints a secret:\n%s%s", args, out, errOut)
		}
	}
}

// TestAttackConfigCheckPrintsNoURLCredentials: the same production
// config, with one URL that carries credentials and fails another check
// (http), does not make `config check` print the credential, in text or in
// --output json's problems.
func TestAttackConfigCheckPrintsNoURLCredentials(t *testing.T) {
	reviewSecretEnv(t)
	t.Setenv("SIGNOFF_TEAMS_TOKEN_URL", "http://app:"+reviewSecret+"@login.example.com/token")
	for _, args := range [][]string{
		{"config", "check", "--dev", "--config", exampleConfig},
		{"config", "check", "--dev", "--config", exampleConfig, "--output", "json"},
	} {
		code, out, errOut := runCmd(t, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
		if strings.Contains(out+errOut, reviewSecret) {
			t.Errorf("%v prints the credential:\n%s%s", args, out, errOut)
		}
	}
}

// TestAttackPasswordOnlyDSNFile: storage.dsn_file holding only the
// database password (what Docker and Kubernetes secrets usually hold) is
// refused by `config check`, naming storage.dsn_file, and neither it nor
// `signoff migrate` echoes it (pgx quotes a DSN it cannot parse).
func TestAttackPasswordOnlyDSNFile(t *testing.T) {
	clearCIEnv(t)
	path := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(path, []byte(reviewSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNOFF_STORAGE_DRIVER", "postgres")
	t.Setenv("SIGNOFF_STORAGE_PATH", "")
	t.Setenv("SIGNOFF_STORAGE_DSN_FILE", path)

	code, out, errOut := runCmd(t, "config", "check", "--dev", "--config", exampleConfig, "--output", "json")
	if code == 0 {
		t.Errorf("config check calls a storage.dsn_file that holds no DSN valid")
	}
	if strings.Contains(out+errOut, reviewSecret) {
		t.Errorf("config check prints it:\n%s%s", out, errOut)
	}
	code, out, errOut = runCmd(t, "migrate", "--config", exampleConfig)
	if code == 0 {
		t.Fatalf("migrate succeeded")
	}
	if strings.Contains(out+errOut, reviewSecret) {
		t.Errorf("migrate prints the password from storage.dsn_file:\n%s%s", out, errOut)
	}
}

// TestAttackStorageCopyPrintsNoDSNPassword: `storage copy` hides the spec
// in its usage error (TestStorageCopyUsageHidesDSN), and a well-formed
// postgres:/postgres-file: spec whose DSN pgx cannot parse (a keyword DSN
// with spaces around '=', a password-only file) is not echoed either.
func TestAttackStorageCopyPrintsNoDSNPassword(t *testing.T) {
	clearCIEnv(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(reviewSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{
		"postgres:host=db user=signoff password = " + reviewSecret + " sslmode=bogus",
		"postgres-file:" + pwFile,
	} {
		dst := "bolt:" + filepath.Join(t.TempDir(), "copy.db")
		code, out, errOut := runCmd(t, "storage", "copy", "--from", from, "--to", dst)
		if code == 0 {
			t.Fatalf("%q: copy succeeded", from)
		}
		if strings.Contains(out+errOut, reviewSecret) {
			t.Errorf("%q: storage copy prints the password:\n%s%s", from, out, errOut)
		}
		code, out, errOut = runCmd(t, "audit", "export", "--dsn-file", pwFile)
		if code == 0 {
			t.Fatalf("audit export succeeded")
		}
		if strings.Contains(out+errOut, reviewSecret) {
			t.Errorf("audit export --dsn-file prints the password:\n%s%s", out, errOut)
		}
	}
}

// TestAttackConfigCheckRefusesBadAuditSigningKey: `config check` reports
// every problem serve would refuse the config for: an audit.signing_key_file
// that holds no key, naming audit.signing_key.
func TestAttackConfigCheckRefusesBadAuditSigningKey(t *testing.T) {
	clearCIEnv(t)
	path := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(path, []byte("not a PEM key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNOFF_AUDIT_SIGNING_KEY_FILE", path)
	code, out, errOut := runCmd(t, "config", "check", "--dev", "--config", exampleConfig)
	if code == 0 {
		t.Errorf("config check accepts an audit.signing_key_file that serve refuses:\n%s", out)
	}
	if code != 0 && !strings.Contains(out+errOut, "audit.signing_key") {
		t.Errorf("the problem does not name audit.signing_key(_file):\n%s%s", out, errOut)
	}
}
