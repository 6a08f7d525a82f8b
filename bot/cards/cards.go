// Package cards is what signoff's chat adapters (bot/slackbot and
// bot/teamsbot) share about approval cards: the words every card uses,
// whatever the platform, and the engine that delivers the cards. An adapter
// renders the card in its platform's format and makes the platform's calls
// (Chat); everything else about delivery is here.
//
// # Delivery
//
// A Deliverer claims a platform's "notify.<platform>" outbox entries
// (approvals.KindNotifyPrefix + platform) through approvals.Service.Claim
// and delivers them one by one. For an entry of event "created" it posts
// the card (Chat.Post) and stores where it landed (a storage.Card) on the
// request in the same transaction that completes the entry
// (approvals.Service.RecordCardPosted); for any other event it updates
// that card (Chat.Update) to the request as it stands.
//
// # Ordering
//
// Entries of one request and conversation are delivered in commit order:
// an update waits until the card is posted and never overtakes the post or
// an earlier update. The oldest entry of a card that could not be delivered
// yet (including one that waits out a rate limit) blocks the younger ones
// until it is delivered, or until it has not come back for a lease past
// its due time (another replica delivered it). An update whose card was
// never posted (e.g. the conversation was added to the policy's notify
// list after the request was created) posts the card itself once it has
// waited OrphanAfter.
//
// What a Deliverer remembers between batches (the blockers, the deliveries
// awaiting completion) is per process: ordering and de-duplication across
// replicas rest on the outbox lease and on updates always rendering the
// current state. What it remembers about an entry that has not come back
// for a day is dropped.
//
// # Failures
//
// A failed delivery (a platform error, a rate limit with its Retry-After, a
// timeout, a conversation the adapter cannot reach yet) is rescheduled
// through approvals.Service.Retry, with the error recorded on the entry,
// never dropped: with capped exponential backoff (Backoff), or after the
// platform's Retry-After on a rate limit, which the rest of the batch waits
// out too. The one exception is an update of a card that no longer exists
// on the platform (deleted, or too old to edit): it is completed and logged.
//
// # At least once
//
// Delivery is at least once in one narrow window: when the platform
// accepted a post but signoff crashed (or the network failed after the
// platform acted, e.g. a timeout or 5xx after the message was created)
// before the completion committed, the retry posts the card again. A failed
// completion without a crash is not such a window: the posted card is kept
// in memory and the retry completes without calling the platform again (no
// second post, no second update). When two replicas race to post the same
// card, the loser deletes its message (Chat.Delete).
//
// # Checkpoints for witnesses
//
// The same Deliverer posts the audit log's signed checkpoints to the
// platform's witnesses (audit.publish; "publish.<platform>(…)" entries,
// see approvals.PublishKind) through Chat.Publish. Each witness gets them
// in seq order: approvals.Service.ClaimPublications hands out a witness's
// oldest checkpoint only, so a later one never overtakes an earlier one
// that failed. A failure of any kind is retried with backoff (after a rate
// limit's Retry-After), never dropped: a channel the app cannot post to is
// logged as an error until an operator fixes it.
package cards

import (
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// Title is the headline of a request's card.
func Title(r storage.Request) string {
	return "Approval requested: " + r.Action
}

// StateLabel is the request's state as a card's summary shows it, with the
// execution's once an approved request has one ("approved, execution
// pending").
func StateLabel(r storage.Request) string {
	if r.Execution != nil && r.State == storage.StateApproved {
		return string(r.State) + ", execution " + string(r.Execution.Status)
	}
	return string(r.State)
}

// RequesterName is how a card names the requester: the name, else the
// person, the email or the subject; "unknown" when all are empty.
func RequesterName(q storage.Requester) string {
	for _, v := range []string{q.Name, q.Person, q.Email, q.Subject} {
		if v != "" {
			return v
		}
	}
	return "unknown"
}

// VoterName is how a card names an approver: the email, else the name or
// the preferred username; the subject when all are empty.
func VoterName(a storage.Approver) string {
	for _, v := range []string{a.Email, a.Name, a.PreferredUsername} {
		if v != "" {
			return v
		}
	}
	return a.Subject
}

// Find returns the request's card of platform in conversation.
func Find(r storage.Request, platform, conversation string) (storage.Card, bool) {
	return approvals.FindCard(r, platform, conversation)
}
