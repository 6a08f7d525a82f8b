package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/policy"
)

// PublishConfig names the witnesses of the audit log (audit.publish):
// every signed checkpoint is sent to each of them as it is made, so that a
// log cut short or rewritten no longer matches what they hold (`signoff
// audit verify --anchor`; docs/auditors.md, "Witnesses"). The chat lists
// are written like an action's notify, the webhook like its
// on_approve.webhook.
type PublishConfig struct {
	// Slack channel ids (C… or G…) the checkpoints are posted to.
	Slack []string `mapstructure:"slack"`
	// Teams conversation ids (19:…@thread.tacv2 for a channel).
	Teams []string `mapstructure:"teams"`
	// Webhook receives every checkpoint record as a signed POST; its
	// secret is required. A value, not a pointer (see OnApproveConfig).
	Webhook WebhookConfig `mapstructure:"webhook"`
}

// Configured reports whether any witness is named.
func (p PublishConfig) Configured() bool {
	return len(p.Slack) > 0 || len(p.Teams) > 0 || p.Webhook.Configured()
}

// Chat returns the chat witnesses, by platform.
func (p PublishConfig) Chat() policy.Notify {
	return policy.Notify{Slack: append([]string(nil), p.Slack...), Teams: append([]string(nil), p.Teams...)}
}

// PolicyWebhook returns the webhook witness as the executor takes it, or
// nil when there is none.
func (p PublishConfig) PolicyWebhook() *policy.Webhook {
	if !p.Webhook.Configured() {
		return nil
	}
	return &policy.Webhook{URL: p.Webhook.URL, Secret: p.Webhook.Secret.Reveal(), Timeout: p.Webhook.Timeout}
}

// publishWebhookTimeoutKey is defaulted by Load, as actions' webhook
// timeouts are, when the webhook is configured without one.
const publishWebhookTimeoutKey = "audit.publish.webhook.timeout"

// slackChannelID is what a Slack channel id looks like: C (a channel) or G
// (an older private channel) and capitals and digits.
var slackChannelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)

// maxTeamsConversationID bounds a Teams conversation id (Teams' ids are
// far shorter).
const maxTeamsConversationID = 512

// validatePublish checks audit.publish: witnesses only of signed
// checkpoints, conversations named by their ids on a platform that is
// configured, each once, and a webhook checked like an action's and signed.
func (c *Config) validatePublish(ps *problems) {
	p := c.Audit.Publish
	if !p.Configured() {
		return
	}
	const key = "audit.publish"
	if c.Audit.SigningKey == "" && c.Audit.SigningKeyFile == "" {
		ps.add(key, "requires audit.signing_key_file: only signed checkpoints are published, since a witness's copy proves something only when it is signed; make a key with `signoff audit keygen` and set audit.signing_key_file, or remove audit.publish")
	}

	checkNonEmpty(ps, key+".slack", p.Slack)
	checkUnique(ps, key+".slack", p.Slack, "channel")
	for i, id := range p.Slack {
		if strings.TrimSpace(id) != "" && !slackChannelID.MatchString(id) {
			ps.add(fmt.Sprintf("%s.slack[%d]", key, i), "%q is not a Slack channel id (C or G followed by capitals and digits, e.g. C0123ABCD, shown at the bottom of the channel's details); name a witness by its id, which stays the same when the channel is renamed", id)
		}
	}
	if len(p.Slack) > 0 && !c.Slack.Configured() {
		ps.add(key+".slack", "the slack section is not configured, so nothing would post these checkpoints; configure slack or remove audit.publish.slack")
	}

	checkNonEmpty(ps, key+".teams", p.Teams)
	checkUnique(ps, key+".teams", p.Teams, "conversation")
	for i, id := range p.Teams {
		if strings.TrimSpace(id) != "" && !teamsConversationID(id) {
			ps.add(fmt.Sprintf("%s.teams[%d]", key, i), "%q is not a Teams conversation id (e.g. 19:…@thread.tacv2 for a channel: a type prefix and a colon, no spaces, at most %d bytes)", id, maxTeamsConversationID)
		}
	}
	if len(p.Teams) > 0 && !c.Teams.Configured() {
		ps.add(key+".teams", "the teams section is not configured, so nothing would post these checkpoints; configure teams or remove audit.publish.teams")
	}

	if p.Webhook.Configured() {
		validateWebhook(ps, key+".webhook", p.Webhook, "the endpoint that keeps the checkpoints")
		if p.Webhook.Secret == "" {
			ps.add(key+".webhook.secret", "required: the witness must verify that a checkpoint comes from signoff, or a forged line could take a real one's place; set audit.publish.webhook.secret_file")
		}
	}
}

// teamsConversationID reports whether id looks like a Teams conversation
// id: valid UTF-8 with a type prefix ("19:", "a:"), no white space or
// control characters, not too long.
func teamsConversationID(id string) bool {
	prefix, rest, ok := strings.Cut(id, ":")
	if !ok || prefix == "" || rest == "" || len(id) > maxTeamsConversationID || !utf8.ValidString(id) {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// checkUnique reports entries listed twice.
func checkUnique(ps *problems, key string, list []string, what string) {
	seen := map[string]int{}
	for i, s := range list {
		if j, dup := seen[s]; dup && strings.TrimSpace(s) != "" {
			ps.add(fmt.Sprintf("%s[%d]", key, i), "%q is also %s[%d]; list each %s once", s, key, j, what)
			continue
		}
		seen[s] = i
	}
}

// publishSummary describes the witnesses for `signoff config check`.
func (w *summaryWriter) publishSummary(c *Config) {
	p := c.Audit.Publish
	switch {
	case !p.Configured() && c.Audit.SigningKey == "":
		return
	case !p.Configured():
		w.more("witnesses: none (set audit.publish to send every signed checkpoint elsewhere as it is made)")
		return
	}
	var where []string
	if len(p.Slack) > 0 {
		where = append(where, "Slack "+strings.Join(p.Slack, ", "))
	}
	if len(p.Teams) > 0 {
		where = append(where, "Teams "+strings.Join(p.Teams, ", "))
	}
	if wh := p.Webhook; wh.Configured() {
		where = append(where, fmt.Sprintf("webhook %s (timeout %s, secret %s)", RedactURL(wh.URL), FormatDuration(wh.Timeout), secretSource(wh.Secret, wh.SecretFile)))
	}
	w.more("witnesses: %s", strings.Join(where, "; "))
}
