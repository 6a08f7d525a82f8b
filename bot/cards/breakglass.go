package cards

import (
	"fmt"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// MaxBreakGlassReason caps the break-glass reason on a card's status line.
const MaxBreakGlassReason = 300

// breakGlassHead is the status line of a request approved by break-glass
// ("BREAK-GLASS by …: reason", with its review) and of a pending review
// (naming the request it reviews, and whether it is overdue); false for
// every other request.
func breakGlassHead(r storage.Request, m Markup) (string, bool) {
	bg := r.BreakGlass
	switch {
	case r.State == storage.StateApproved && r.DecidedBy == approvals.DecidedByBreakGlass:
		line := m.Approved + " " + m.bold("BREAK-GLASS") + " by " + m.Name(requesterName(r.Requester), 200) + " " + m.Date(r.DecidedAt) +
			": " + m.Text(r.Reason, MaxBreakGlassReason)
		if bg != nil && bg.Review != "" {
			if bg.Unreviewed.IsZero() {
				line += " (approved without votes; review " + m.escape(bg.Review) + " due " + m.Date(bg.Due) + ")"
			} else {
				line += " (approved without votes; review " + m.escape(bg.Review) + " was not done by " + m.Date(bg.Due) + ")"
			}
		}
		return line, true
	case r.State == storage.StatePending && approvals.IsBreakGlassReview(r):
		approved := Approvals(r)
		line := m.bold("Status:") + " review of the BREAK-GLASS request " + m.escape(bg.Reviews) + " by " + m.Name(requesterName(r.Requester), 200) +
			fmt.Sprintf(" pending: %d of %d approval%s, %d more needed", approved, r.MinApprovals, Plural(r.MinApprovals), max(r.MinApprovals-approved, 0))
		if !bg.Unreviewed.IsZero() {
			line += "; " + m.bold("UNREVIEWED") + ", due " + m.Date(bg.Due)
		} else {
			line += "; due " + m.Date(bg.Due)
		}
		return line, true
	}
	return "", false
}

func requesterName(q storage.Requester) string {
	for _, v := range []string{q.Name, q.Person, q.Email} {
		if v != "" {
			return v
		}
	}
	return q.Subject
}
