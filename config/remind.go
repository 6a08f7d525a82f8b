package config

import (
	"slices"
	"time"

	"github.com/signoff-dev/signoff/policy"
)

// MinTimerInterval is the shortest remind.every and escalate.after.
const MinTimerInterval = time.Second

// RemindConfig reminds the conversations a pending request's card was
// posted to (notify), in the card's thread: every Every from the request's
// creation, at most Max times, until it is decided.
type RemindConfig struct {
	// Every is the interval between reminders, the first one Every after
	// the request was created; at least MinTimerInterval.
	Every time.Duration `mapstructure:"every"`
	// Max is how many reminders a card gets at most; at least 1.
	Max int `mapstructure:"max"`
}

// EscalateConfig posts a pending request's card to more conversations
// After its creation; the cards posted there are updated like the others
// until the request is decided.
type EscalateConfig struct {
	// After is how long after its creation a pending request is
	// escalated; at least MinTimerInterval.
	After time.Duration `mapstructure:"after"`
	// Notify names the conversations escalated to.
	Notify EscalateNotifyConfig `mapstructure:"notify"`
}

// EscalateNotifyConfig names the conversations a request is escalated to,
// as notify names them.
type EscalateNotifyConfig struct {
	// Slack channel ids.
	Slack []string `mapstructure:"slack"`
	// Teams conversation ids.
	Teams []string `mapstructure:"teams"`
}

// validateRemind checks the action's remind and escalate.
func validateRemind(ps *problems, key string, a *ActionConfig) {
	if r := a.Remind; r != nil {
		if r.Every < MinTimerInterval {
			ps.add(key+".remind.every", "must be at least %s (how often to remind, e.g. 1h), got %s", FormatDuration(MinTimerInterval), FormatDuration(r.Every))
		}
		if r.Max < 1 {
			ps.add(key+".remind.max", "must be >= 1 (how many reminders at most), got %d", r.Max)
		}
	}
	if e := a.Escalate; e != nil {
		if e.After < MinTimerInterval {
			ps.add(key+".escalate.after", "must be at least %s (how long a request waits before it is escalated, e.g. 2h), got %s", FormatDuration(MinTimerInterval), FormatDuration(e.After))
		}
		checkNonEmpty(ps, key+".escalate.notify.slack", e.Notify.Slack)
		checkNonEmpty(ps, key+".escalate.notify.teams", e.Notify.Teams)
		if len(e.Notify.Slack) == 0 && len(e.Notify.Teams) == 0 {
			ps.add(key+".escalate.notify", "names no conversation to escalate to; add slack or teams ids")
		}
	}
}

// remindWarnings are the action's remind and escalate settings that
// cannot take effect.
func (c *Config) remindWarnings(key string, a ActionConfig) []Problem {
	var ws problems
	if r := a.Remind; r != nil {
		if len(a.Notify.Slack) == 0 && len(a.Notify.Teams) == 0 {
			ws.add(key+".remind", "no channel is notified, so no card has a thread to remind in")
		} else if a.TTL > 0 && r.Every >= a.TTL {
			ws.add(key+".remind.every", "%s is not shorter than the ttl (%s): a request expires before its first reminder", FormatDuration(r.Every), FormatDuration(a.TTL))
		}
	}
	if e := a.Escalate; e != nil {
		if len(e.Notify.Slack) > 0 && !c.Slack.Configured() {
			ws.add(key+".escalate.notify.slack", "slack is not configured; these channels will not be escalated to")
		}
		if len(e.Notify.Teams) > 0 && !c.Teams.Configured() {
			ws.add(key+".escalate.notify.teams", "teams is not configured; these conversations will not be escalated to")
		}
		if a.TTL > 0 && e.After >= a.TTL {
			ws.add(key+".escalate.after", "%s is not shorter than the ttl (%s): a request expires before it is escalated", FormatDuration(e.After), FormatDuration(a.TTL))
		}
	}
	return ws
}

// buildRemind sets the policy's remind, escalate and notify.requester
// from a.
func buildRemind(out *policy.Action, a ActionConfig) {
	out.NotifyRequester = a.Notify.Requester == nil || *a.Notify.Requester
	if r := a.Remind; r != nil {
		out.Remind = &policy.Remind{Every: r.Every, Max: r.Max}
	}
	if e := a.Escalate; e != nil {
		out.Escalate = &policy.Escalate{After: e.After, Notify: policy.Notify{
			Slack: slices.Clone(e.Notify.Slack),
			Teams: slices.Clone(e.Notify.Teams),
		}}
	}
}
