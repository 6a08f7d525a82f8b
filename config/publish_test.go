package config_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// chatSections configure Slack and Teams, so that witnesses may be named
// on both.
const chatSections = `
slack: {bot_token: xoxb-test, signing_secret: test-signing-secret, team_id: T0123ABCD}
teams: {app_id: 00000000-0000-0000-0000-000000000001, app_password: test-password, tenant_ids: [tenant-1]}
`

const witnessSecret = "witness-secret-0123456789abcdef"

// TestPublishKeys: audit.publish from the file and the environment, its
// webhook's default timeout and secret file twin, and how the summary
// shows it.
func TestPublishKeys(t *testing.T) {
	c := mustLoad(t, base, nil)
	if c.Audit.Publish.Configured() {
		t.Errorf("witnesses by default: %+v", c.Audit.Publish)
	}

	secretFile := writeFile(t, "witness-secret", witnessSecret+"\n")
	c = mustLoad(t, base+chatSections+`
audit:
  signing_key: `+testAuditKey+`
  publish:
    slack: [C0AUDIT01, G0AUDIT02]
    teams: ["19:audit@thread.tacv2"]
    webhook: {url: "https://witness.example.com/checkpoints", secret_file: `+secretFile+`}
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("a complete audit.publish does not validate: %v", err)
	}
	p := c.Audit.Publish
	if n := p.Chat(); !slices.Equal(n.Slack, []string{"C0AUDIT01", "G0AUDIT02"}) || !slices.Equal(n.Teams, []string{"19:audit@thread.tacv2"}) {
		t.Errorf("chat witnesses %+v", n)
	}
	wh := p.PolicyWebhook()
	if wh == nil || wh.URL != "https://witness.example.com/checkpoints" || wh.Secret != witnessSecret || wh.Timeout != config.DefaultWebhookTimeout {
		t.Errorf("webhook witness %+v", wh)
	}
	s := c.Summary()
	if !strings.Contains(s, "witnesses: Slack C0AUDIT01, G0AUDIT02; Teams 19:audit@thread.tacv2; webhook https://witness.example.com/… (timeout 10s") || strings.Contains(s, witnessSecret) {
		t.Errorf("summary does not describe the witnesses, or shows the secret:\n%s", s)
	}

	c = mustLoad(t, base+chatSections+"audit: {signing_key: "+testAuditKey+"}\n", map[string]string{
		"SIGNOFF_AUDIT_PUBLISH_SLACK":           "C0AUDIT01, C0AUDIT02",
		"SIGNOFF_AUDIT_PUBLISH_WEBHOOK_URL":     "https://witness.example.com/cp",
		"SIGNOFF_AUDIT_PUBLISH_WEBHOOK_SECRET":  witnessSecret,
		"SIGNOFF_AUDIT_PUBLISH_WEBHOOK_TIMEOUT": "3s",
	})
	if err := c.Validate(); err != nil {
		t.Fatalf("witnesses from the environment do not validate: %v", err)
	}
	if p := c.Audit.Publish; !slices.Equal(p.Slack, []string{"C0AUDIT01", "C0AUDIT02"}) || p.Webhook.Timeout != 3*time.Second || p.Webhook.Secret.Reveal() != witnessSecret {
		t.Errorf("from the environment: %+v", p)
	}
	wantEnvKeys(t, "audit.publish.slack", "audit.publish.teams", "audit.publish.webhook.url",
		"audit.publish.webhook.secret", "audit.publish.webhook.secret_file", "audit.publish.webhook.timeout")
	if s := mustLoad(t, base+"audit: {signing_key: "+testAuditKey+"}\n", nil).Summary(); !strings.Contains(s, "witnesses: none") {
		t.Errorf("summary with a key and no witness:\n%s", s)
	}
}

// TestPublishRefusals: every way audit.publish can be wrong is refused,
// each naming its key.
func TestPublishRefusals(t *testing.T) {
	hook := `webhook: {url: "https://witness.example.com/cp", secret: ` + witnessSecret + `}`
	for _, tc := range []struct {
		name, yaml string
		want       []string
		msg        string
	}{
		{"without a signing key", chatSections + "audit: {publish: {slack: [C0AUDIT01]}}", []string{"audit.publish"}, "requires audit.signing_key_file"},
		{"a webhook without a signing key", "audit: {publish: {" + hook + "}}", []string{"audit.publish"}, "audit.signing_key_file"},
		{"a channel name", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {slack: ["#audit"]}}`, []string{"audit.publish.slack[0]"}, "not a Slack channel id"},
		{"a user id", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {slack: [U0123ABCD]}}`, []string{"audit.publish.slack[0]"}, "not a Slack channel id"},
		{"a lower-case id", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {slack: [c0123abcd]}}`, []string{"audit.publish.slack[0]"}, "not a Slack channel id"},
		{"an empty channel", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {slack: [""]}}`, []string{"audit.publish.slack[0]"}, "is empty"},
		{"a channel twice", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {slack: [C0AUDIT01, C0AUDIT01]}}`, []string{"audit.publish.slack[1]"}, "list each channel once"},
		{"slack not configured", `audit: {signing_key: ` + testAuditKey + `, publish: {slack: [C0AUDIT01]}}`, []string{"audit.publish.slack"}, "slack section is not configured"},
		{"a conversation name", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {teams: [General]}}`, []string{"audit.publish.teams[0]"}, "not a Teams conversation id"},
		{"a conversation id with a space", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {teams: ["19:a b@thread.tacv2"]}}`, []string{"audit.publish.teams[0]"}, "not a Teams conversation id"},
		{"a conversation twice", chatSections + `audit: {signing_key: ` + testAuditKey + `, publish: {teams: ["19:a@thread.tacv2", "19:a@thread.tacv2"]}}`, []string{"audit.publish.teams[1]"}, "list each conversation once"},
		{"teams not configured", `audit: {signing_key: ` + testAuditKey + `, publish: {teams: ["19:a@thread.tacv2"]}}`, []string{"audit.publish.teams"}, "teams section is not configured"},
		{"a webhook without a URL", `audit: {signing_key: ` + testAuditKey + `, publish: {webhook: {secret: ` + witnessSecret + `}}}`, []string{"audit.publish.webhook.url"}, "required"},
		{"a webhook URL that is not http", `audit: {signing_key: ` + testAuditKey + `, publish: {webhook: {url: "ftp://witness.example.com/cp", secret: ` + witnessSecret + `}}}`, []string{"audit.publish.webhook.url"}, "scheme"},
		{"a relative webhook URL", `audit: {signing_key: ` + testAuditKey + `, publish: {webhook: {url: "/cp", secret: ` + witnessSecret + `}}}`, []string{"audit.publish.webhook.url"}, "absolute"},
		{"an unsigned webhook", `audit: {signing_key: ` + testAuditKey + `, publish: {webhook: {url: "https://witness.example.com/cp"}}}`, []string{"audit.publish.webhook.secret"}, "secret_file"},
		{"a zero timeout", `audit: {signing_key: ` + testAuditKey + `, publish: {webhook: {url: "https://witness.example.com/cp", secret: ` + witnessSecret + `, timeout: 0s}}}`, []string{"audit.publish.webhook.timeout"}, "must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, base+tc.yaml+"\n", nil)
			err := c.Validate()
			wantProblemKeys(t, err, tc.want, tc.msg)
			if strings.Contains(err.Error(), witnessSecret) {
				t.Error("a problem shows the webhook secret")
			}
		})
	}

	// An unknown key under audit.publish is refused like any other.
	if _, err := config.Load(config.LoadOptions{Data: []byte(base + "audit: {publish: {slak: [C0AUDIT01]}}\n"), LookupEnv: config.EnvMap(nil)}); err == nil || !strings.Contains(err.Error(), `audit.publish.slak: unknown key; did you mean "slack"?`) {
		t.Errorf("unknown key: %v", err)
	}
}

// testAuditKey is an Ed25519 checkpoint key as audit.signing_key takes it,
// written as a double-quoted YAML string (its line breaks escaped).
var testAuditKey = strconv.Quote(testenv.SecretFileContent("audit.signing_key"))
