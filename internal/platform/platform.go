// Package platform names the chat platforms signoff talks to. The names are
// stored (links, votes, cards, conversations, audit records), are part of
// outbox kinds ("notify.slack") and label metrics, so they never change:
// every package spells them with these constants.
package platform

const (
	// Slack is the Slack adapter (bot/slackbot).
	Slack = "slack"
	// Teams is the Microsoft Teams adapter (bot/teamsbot).
	Teams = "teams"
	// Dev is the local console of dev mode (bot/devconsole): its votes and
	// links carry this platform, but it posts no cards and gets no notices.
	Dev = "dev"
)

// Chat returns the platforms that post cards and receive notices through
// the outbox, in the order their entries are queued. The slice is the
// caller's.
func Chat() []string { return []string{Slack, Teams} }
