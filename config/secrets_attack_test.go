package config_test

// Attacks on "secrets stay secret" and "a config error names the key"
// (docs/architecture.md, invariants).

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/config"
	"go.yaml.in/yaml/v3"
)

// reviewExample returns config.example.yaml's text.
func reviewExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reviewProblems loads text with env, validates it, and returns every
// problem's text (empty when valid).
func reviewProblems(t *testing.T, text string, env map[string]string) (string, *config.ValidationError) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signoff.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadAndValidate(config.LoadOptions{Path: path, LookupEnv: config.EnvMap(env)})
	if err == nil {
		return "", nil
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("not a *ValidationError: %v", err)
	}
	return err.Error(), ve
}

// TestAttackURLCredentialsNotQuotedInConfigErrors: a URL with credentials
// (or a token in its query) that also fails another check (http instead of
// https, a foreign scheme) is named in the problem without them: problems
// reach `signoff config check` (text and --output json) and serve's and
// migrate's start-up errors.
func TestAttackURLCredentialsNotQuotedInConfigErrors(t *testing.T) {
	const pw = "Sup3rS3cretAppPw"
	cases := []struct{ env, value string }{
		// Teams' token endpoint gets the app password; an operator
		// pasting a URL with credentials in it is exactly who needs a
		// message without them.
		{"SIGNOFF_TEAMS_TOKEN_URL", "http://app:" + pw + "@login.example.com/token"},
		{"SIGNOFF_TEAMS_OPENID_METADATA_URL", "ftp://app:" + pw + "@login.example.com/md"},
		{"SIGNOFF_SLACK_API_URL", "http://bot:" + pw + "@slack.example.com/api/"},
		{"SIGNOFF_SSF_JWKS_URL", "http://ssf:" + pw + "@idp.example.com/jwks"},
		{"SIGNOFF_IDP_ISSUER", "https://u:" + pw + "@idp.example.com/?x=1"},
		{"SIGNOFF_PUBLIC_URL", "https://signoff.example.com/?token=" + pw},
	}
	base := reviewExample(t)
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			text, ve := reviewProblems(t, base, map[string]string{c.env: c.value})
			if ve == nil {
				t.Fatalf("%s=%s was accepted", c.env, c.value)
			}
			if strings.Contains(text, pw) {
				t.Errorf("a config problem prints the credential in %s:\n%s", c.env, text)
			}
		})
	}
}

// TestAttackSecretTypeErrorsHideValue: a value of the wrong type headed for a Secret is never echoed
// (describeDecodeError), in the YAML or in actions, and the problem names
// the key.
func TestAttackSecretTypeErrorsHideValue(t *testing.T) {
	const s = "xoxb-111-222-LeakMe"
	for name, text := range map[string]string{
		"list":    "slack:\n  bot_token: [" + s + "]\n",
		"mapping": "slack:\n  bot_token: {v: " + s + "}\n",
		"section": "slack: " + s + "\n",
		"storage": "storage: postgres://u:" + s + "@db/x\n",
		"dsnlist": "storage: {driver: postgres, dsn: [postgres://u:" + s + "@db/x]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, text, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "LeakMe") {
				t.Errorf("the secret shows:\n%v", err)
			}
		})
	}
	base := reviewExample(t)
	// An action's webhook secret of the wrong type.
	text := strings.Replace(base, "actions:\n", "actions:\n  review-x:\n    on_approve: {webhook: {url: https://h.example/x, secret: ["+s+"]}}\n", 1)
	msg, ve := reviewProblems(t, text, nil)
	if ve == nil {
		t.Fatal("action webhook secret list accepted")
	}
	if strings.Contains(msg, s) {
		t.Errorf("the webhook secret shows:\n%s", msg)
	}
	if !strings.Contains(msg, "actions.review-x.on_approve.webhook.secret") {
		t.Errorf("the problem does not name the key:\n%s", msg)
	}
}

// YAML syntax errors next to a secret do not echo it.
func TestAttackYAMLSyntaxErrorsHideSecret(t *testing.T) {
	const s = "xoxb-999-LeakMe"
	for _, text := range []string{
		"slack:\n  bot_token: \"" + s + "\n",
		"slack:\n  bot_token: " + s + ": x\n",
		"slack:\n  bot_token: \"" + s + "\\q\"\n",
		"slack:\n\tbot_token: " + s + "\n",
		"slack:\n  bot_token: " + s + "\n  bot_token: " + s + "\n",
		"slack:\n  bot_token: !!binary " + s + "\n",
		"slack:\n  bot_token: &a " + s + "\n  x: *b\n",
	} {
		_, err := load(t, text, nil)
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "LeakMe") {
			t.Errorf("%q: the error echoes the secret: %v", text, err)
		}
	}
}

// TestAttackSecretInlineAndFileRefused: a secret set twice (inline and _file, in any mix of file and
// environment) is refused, naming both keys and where they came from.
func TestAttackSecretInlineAndFileRefused(t *testing.T) {
	file := writeFile(t, "bot", "xoxb-from-file\n")
	cases := []struct {
		name string
		yaml string
		env  map[string]string
	}{
		{"yaml+yaml", "slack:\n  bot_token: xoxb-inline\n  bot_token_file: " + file + "\n", nil},
		{"env+yamlfile", "slack:\n  bot_token_file: " + file + "\n", map[string]string{"SIGNOFF_SLACK_BOT_TOKEN": "xoxb-env"}},
		{"yaml+envfile", "slack:\n  bot_token: xoxb-inline\n", map[string]string{"SIGNOFF_SLACK_BOT_TOKEN_FILE": file}},
		{"env+envfile", "", map[string]string{"SIGNOFF_SLACK_BOT_TOKEN": "xoxb-env", "SIGNOFF_SLACK_BOT_TOKEN_FILE": file}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, c.env)
			if err == nil {
				t.Fatal("a secret set both inline and as a file was accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, "slack.bot_token") || !strings.Contains(msg, "slack.bot_token_file") {
				t.Errorf("does not name both keys: %v", err)
			}
			for _, v := range []string{"xoxb-inline", "xoxb-env", "xoxb-from-file"} {
				if strings.Contains(msg, v) {
					t.Errorf("echoes %q: %v", v, err)
				}
			}
		})
	}
	// The same for an action's webhook secret.
	text := "actions:\n  a:\n    on_approve: {webhook: {url: https://h.example/x, secret: inline-wh, secret_file: " + file + "}}\n"
	_, err := load(t, text, nil)
	if err == nil || !strings.Contains(err.Error(), "actions.a.on_approve.webhook.secret") || strings.Contains(err.Error(), "inline-wh") {
		t.Errorf("action webhook secret inline + file: %v", err)
	}
}

// TestAttackConfigPrintingRedacts: a Secret reaches no output by any of the ways a Config is printed
// or encoded (fmt verbs, JSON, YAML, slog text and JSON).
func TestAttackConfigPrintingRedacts(t *testing.T) {
	const s = "SECRETVALUE-abcdef0123456789-REVIEW"
	env := map[string]string{
		"SIGNOFF_SLACK_BOT_TOKEN":           "xoxb-" + s,
		"SIGNOFF_SLACK_SIGNING_SECRET":      s,
		"SIGNOFF_TEAMS_APP_PASSWORD":        s,
		"SIGNOFF_IDP_CLIENT_SECRET":         s,
		"SIGNOFF_IDP_TOKEN_ENCRYPTION_KEY":  s,
		"SIGNOFF_SSF_BEARER_TOKEN":          s,
		"SIGNOFF_AUDIT_SIGNING_KEY":         s,
		"SIGNOFF_STORAGE_DSN":               "postgres://u:" + s + "@db/x",
		"SIGNOFF_AUDIT_PUBLISH_WEBHOOK_URL": "https://h.example/x",
	}
	c, _ := load(t, reviewExample(t), env)
	if c == nil {
		t.Fatal("no config")
	}
	var outs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outs = append(outs, fmt.Sprintf(f, c), fmt.Sprintf(f, *c), fmt.Sprintf(f, c.Slack), fmt.Sprintf(f, c.Storage))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j), string(y))
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("cfg", "cfg", c, "slack", c.Slack, "tok", c.Slack.BotToken)
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("cfg", "cfg", c, "slack", c.Slack, "tok", c.Slack.BotToken)
	outs = append(outs, sb.String(), c.Summary())
	for _, o := range outs {
		if strings.Contains(o, "SECRETVALUE") || strings.Contains(strings.ToLower(o), strings.ToLower(fmt.Sprintf("%x", "SECRETVALUE"))) {
			t.Fatalf("a secret shows:\n%.2000s", o)
		}
	}
}

// TestAttackWorldWritableSecretFileRefused: a world-writable secret file
// (any local user could put their own audit key, Slack signing secret or
// webhook secret in it) is refused, naming the key. (Readable by others is
// left alone: Kubernetes mounts Secrets 0644 by default.)
func TestAttackWorldWritableSecretFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing-secret")
	if err := os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, "slack:\n  signing_secret_file: "+path+"\n", nil)
	if err != nil {
		if strings.Contains(err.Error(), "slack.signing_secret_file") {
			return // refused, naming the key: the property holds
		}
		t.Fatalf("refused without naming the key: %v", err)
	}
	for _, w := range c.Warnings() {
		if w.Key == "slack.signing_secret_file" {
			return // warned: acceptable
		}
	}
	t.Errorf("a world-writable (0666) slack.signing_secret_file %s was accepted with no problem or warning", path)
}
