package cards

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/storage"
	"golang.org/x/net/idna"
)

// MaxVoteReason caps one vote's reason on a card.
const MaxVoteReason = 300

// Markup is how a platform marks up the words of a card's status: the
// words are the same everywhere (StatusHead, VoteLine, ExecutionLine), the
// markup, escaping and dates are the platform's.
type Markup struct {
	// Bold marks a label up as bold; nil leaves it as it is.
	Bold func(string) string
	// Escape makes a word signoff does not choose (an unknown state)
	// inert; nil leaves it as it is.
	Escape func(string) string
	// Date renders a time.
	Date func(time.Time) string
	// Name renders an approver's name on one line, cut to limit.
	Name func(s string, limit int) string
	// Text renders free text (a vote's reason, an execution's error) on
	// one line, cut to limit and escaped as the platform needs.
	Text func(s string, limit int) string
	// The icons of an approval, a denial, an expiry, a cancellation, a
	// successful and a failed execution.
	Approved, Denied, Expired, Cancelled, Succeeded, Failed string
}

func (m Markup) bold(s string) string {
	if m.Bold == nil {
		return s
	}
	return m.Bold(s)
}

func (m Markup) escape(s string) string {
	if m.Escape == nil {
		return s
	}
	return m.Escape(s)
}

// Approvals counts r's approve votes.
func Approvals(r storage.Request) int {
	n := 0
	for _, v := range r.Votes {
		if v.Decision == storage.DecisionApprove {
			n++
		}
	}
	return n
}

// CountedLine tells an approver that their vote of decision d was counted
// and what it did to r, the request after the vote, on which approvals
// approve votes stand. what names the request in the platform's markup;
// the icons are m's.
func CountedLine(r storage.Request, approvals int, d storage.Decision, what string, m Markup) string {
	switch {
	case d == storage.DecisionDeny:
		return m.Denied + " Your deny of " + what + " was counted; the request is denied."
	case r.State == storage.StateApproved:
		return m.Approved + fmt.Sprintf(" Your approval of %s was counted (%d of %d); the request is approved.", what, approvals, r.MinApprovals)
	default:
		return m.Approved + fmt.Sprintf(" Your approval of %s was counted (%d of %d); %d more needed.", what, approvals, r.MinApprovals, max(r.MinApprovals-approvals, 0))
	}
}

// StatusHead is the first line of a card's status: the state, with the
// approvals counted while pending and once approved, and when it was
// decided.
func StatusHead(r storage.Request, m Markup) string {
	if head, ok := breakGlassHead(r, m); ok {
		return head // breakglass.go
	}
	approved := Approvals(r)
	switch r.State {
	case storage.StatePending:
		return m.bold("Status:") + fmt.Sprintf(" pending: %d of %d approval%s, %d more needed", approved, r.MinApprovals, Plural(r.MinApprovals), max(r.MinApprovals-approved, 0))
	case storage.StateApproved:
		return m.Approved + " " + m.bold("Approved") + " " + m.Date(r.DecidedAt) + fmt.Sprintf(" (%d of %d approval%s)", approved, r.MinApprovals, Plural(r.MinApprovals))
	case storage.StateDenied:
		return m.Denied + " " + m.bold("Denied") + " " + m.Date(r.DecidedAt)
	case storage.StateExpired:
		return m.Expired + " " + m.bold("Expired") + " " + m.Date(r.DecidedAt) + ": nobody decided in time"
	case storage.StateCancelled:
		by := "the requester"
		if r.DecidedBy == "admin" {
			by = "a signoff admin"
		}
		return m.Cancelled + " " + m.bold("Cancelled") + " by " + by + " " + m.Date(r.DecidedAt)
	default:
		return m.bold("Status:") + " " + m.escape(string(r.State))
	}
}

// VoteLine is one vote on a card: who, how, when and why.
func VoteLine(v storage.Vote, m Markup) string {
	verb, icon := "approved", m.Approved
	if v.Decision == storage.DecisionDeny {
		verb, icon = "denied", m.Denied
	}
	line := icon + " " + m.Name(VoterName(v.Approver), 200) + " " + verb + " " + m.Date(v.Time)
	if v.Reason != "" {
		line += ": " + m.Text(v.Reason, MaxVoteReason)
	}
	return line
}

// ExecutionLine is a card's line about the execution of an approved
// request, or "" when there is nothing to say.
func ExecutionLine(e storage.Execution, m Markup) string {
	label := m.bold("Execution:")
	switch e.Status {
	case storage.ExecutionPending:
		if e.Attempts > 0 {
			return label + fmt.Sprintf(" retrying (attempt %d failed: %s)", e.Attempts, m.Text(e.LastError, 300))
		}
		return label + " pending"
	case storage.ExecutionSucceeded:
		return label + " " + m.Succeeded + fmt.Sprintf(" succeeded (attempt %d)", e.Attempts)
	case storage.ExecutionFailed:
		return label + " " + m.Failed + fmt.Sprintf(" failed after %d attempt%s: %s", e.Attempts, Plural(e.Attempts), m.Text(e.LastError, 300))
	}
	return ""
}

// TruncMarker is the visible marker appended to cut text, naming where
// the request can be read in full (requestURL, rendered by link; nil
// leaves it as it is) when there is such a place.
func TruncMarker(requestURL string, link func(string) string) string {
	if requestURL == "" {
		return "… (truncated)"
	}
	if link != nil {
		requestURL = link(requestURL)
	}
	return "… (truncated; full request: " + requestURL + ")"
}

// LinkHost is the host a requester's link leads to, as cards name it
// beside the link's title (so a title cannot disguise where it leads): in
// ASCII, an internationalised name in its xn-- form, so a look-alike
// letter from another script ("gіthub.com" with a Cyrillic "і") shows as
// what it is. A host that is no valid name shows with its non-ASCII
// characters as \u escapes.
func LinkHost(u *url.URL) string {
	host := u.Hostname()
	if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		return ascii
	}
	q := strconv.QuoteToASCII(host)
	return q[1 : len(q)-1]
}

// OneLine folds line breaks and tabs into spaces.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

// Plural is the "s" of a count other than one.
func Plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
