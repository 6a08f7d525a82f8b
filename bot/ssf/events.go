package ssf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/text"
	"github.com/signoff-dev/signoff/oidc"
)

// The event types that make links stale (CAEP 1.0, RISC 1.0), and SSF's own
// stream verification event, which is accepted and ignored like every
// other type.
const (
	EventSessionRevoked   = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventCredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	EventAccountDisabled  = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	EventAccountPurged    = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	EventVerification     = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// Subject identifier formats (RFC 9493, SSF 1.0 §3) the receiver reads.
const (
	FormatIssSub  = "iss_sub"
	FormatEmail   = "email"
	FormatComplex = "complex"
	FormatAliases = "aliases"
)

// staleEvent is an event type that makes the links of its subject stale.
type staleEvent struct {
	uri string
	// label is the event's type label in /metrics.
	label string
	// reason is shown to the person when their next click asks them to
	// sign in again, and audited.
	reason string
}

// staleEvents in order of precedence: when one SET carries several (SSF
// allows it only for alternative URIs of the same event), the first listed
// names the record.
var staleEvents = []staleEvent{
	{EventAccountPurged, "account-purged", "your account was deleted at your identity provider"},
	{EventAccountDisabled, "account-disabled", "your account was disabled at your identity provider"},
	{EventCredentialChange, "credential-change", "your sign-in credentials changed at your identity provider"},
	{EventSessionRevoked, "session-revoked", "your identity provider ended your sessions"},
}

// Type labels of events that change nothing, and of SETs refused before
// their events could be trusted.
const (
	labelVerification = "verification"
	labelOther        = "other"
	labelUnverified   = "unverified"
)

// maxShown bounds how much of a value from a SET a message repeats.
const maxShown = 80

// plan is what a verified SET asks for.
type plan struct {
	// label is the SET's type label in /metrics.
	label string
	// event is the acted-on event (nil: the SET concerns no link).
	event *staleEvent
	// subjects select the identities whose links go stale.
	subjects []approvals.IdentityMatch
	// formats are the subject formats that produced them, for the audit.
	formats []string
	// eventTime is when the event happened, as the transmitter says.
	eventTime time.Time
}

// planFor reads the events and subjects of a verified SET. A SET with no
// event signoff acts on gives a plan with no event; one that has such an
// event but no subject signoff can match is refused (invalid_request).
func planFor(set *oidc.SET) (plan, *refusal) {
	var p plan
	for i := range staleEvents {
		if _, ok := set.Events[staleEvents[i].uri]; ok {
			p.event = &staleEvents[i]
			break
		}
	}
	if p.event == nil {
		p.label = labelOther
		if _, ok := set.Events[EventVerification]; ok && len(set.Events) == 1 {
			p.label = labelVerification
		}
		return p, nil
	}
	p.label = p.event.label

	// Every acted-on event's subject, and the SET's sub_id: SSF 1.0 puts
	// the subject in sub_id, CAEP and RISC events may carry their own. All
	// name the same person, possibly in different formats.
	var raws []json.RawMessage
	var firstSubject []byte // the first event's own subject, compacted
	firstLabel := ""
	for _, e := range staleEvents {
		ev, ok := set.Events[e.uri]
		if !ok {
			continue
		}
		fields, err := objectOf(ev)
		if err != nil {
			return p, refuse(oidc.SETErrInvalidRequest, ReasonBadEvent, "the %s event is not a JSON object", e.label)
		}
		if s, ok := fields["subject"]; ok {
			// Events of one SET are applied as one, under one reason and
			// time: they must be about one person. Two events naming
			// their subjects differently might not be (formats cannot be
			// compared without a lookup), so such a SET is refused.
			var c bytes.Buffer
			if json.Compact(&c, s) == nil {
				if firstSubject == nil {
					firstSubject, firstLabel = c.Bytes(), e.label
				} else if !bytes.Equal(firstSubject, c.Bytes()) {
					return p, refuse(oidc.SETErrInvalidRequest, ReasonBadEvent, "the %s and %s events name different subjects: send one SET per subject", firstLabel, e.label)
				}
			}
			raws = append(raws, s)
		}
		if e.uri == p.event.uri {
			p.eventTime = eventTime(fields, set)
		}
	}
	if set.SubID != nil {
		raws = append(raws, set.SubID)
	}
	if len(raws) == 0 {
		return p, refuse(oidc.SETErrInvalidRequest, ReasonNoSubject, "the %s event names no subject: the SET has neither sub_id nor a subject in the event", p.event.label)
	}
	var problems []string
	for _, raw := range raws {
		ms, formats, problem := readSubject(raw, 0)
		p.subjects = append(p.subjects, ms...)
		for _, f := range formats {
			if !slices.Contains(p.formats, f) {
				p.formats = append(p.formats, f)
			}
		}
		if problem != "" {
			problems = append(problems, problem)
		}
	}
	if len(p.subjects) == 0 {
		return p, refuse(oidc.SETErrInvalidRequest, ReasonUnsupportedSubject,
			"the %s event's subject cannot be matched to an identity (%s): signoff matches subjects of format iss_sub (the issuer and subject of the approvers' sign-in) and email, alone or inside complex (user) or aliases; configure the stream to send one of them",
			p.event.label, strings.Join(problems, "; "))
	}
	return p, nil
}

// readSubject reads an RFC 9493 subject identifier: iss_sub and email give
// a match; complex (SSF 1.0) gives its user member's, aliases (RFC 9493)
// each of its identifiers'. Anything else gives a problem to report.
func readSubject(raw json.RawMessage, depth int) (ms []approvals.IdentityMatch, formats []string, problem string) {
	fields, err := objectOf(raw)
	if err != nil {
		return nil, nil, "a subject is not a JSON object"
	}
	format, _ := stringField(fields, "format")
	switch format {
	case FormatIssSub:
		iss, _ := stringField(fields, "iss")
		sub, _ := stringField(fields, "sub")
		if iss == "" || sub == "" {
			return nil, nil, "an iss_sub subject lacks iss or sub"
		}
		return []approvals.IdentityMatch{{Issuer: iss, Subject: sub}}, []string{FormatIssSub}, ""
	case FormatEmail:
		email, _ := stringField(fields, "email")
		if !strings.Contains(email, "@") {
			return nil, nil, "an email subject has no address"
		}
		return []approvals.IdentityMatch{{Email: email}}, []string{FormatEmail}, ""
	case FormatComplex:
		user, ok := fields["user"]
		if depth > 0 || !ok {
			return nil, nil, "a complex subject has no user member"
		}
		return readSubject(user, depth+1)
	case FormatAliases:
		var ids []json.RawMessage
		if depth > 0 || json.Unmarshal(fields["identifiers"], &ids) != nil || len(ids) == 0 {
			return nil, nil, "an aliases subject has no identifiers"
		}
		var problems []string
		for _, id := range ids {
			m, f, pr := readSubject(id, depth+1)
			ms = append(ms, m...)
			formats = append(formats, f...)
			if pr != "" {
				problems = append(problems, pr)
			}
		}
		if len(ms) == 0 {
			return nil, nil, strings.Join(problems, "; ")
		}
		return ms, formats, ""
	case "":
		return nil, nil, "a subject has no format"
	default:
		return nil, nil, "a subject has format " + shown(format)
	}
}

// eventTime is when the event happened: the event's event_timestamp
// (CAEP), else the SET's toe, else its iat; never later than iat.
func eventTime(fields map[string]json.RawMessage, set *oidc.SET) time.Time {
	t := set.IssuedAt
	if ts, ok := numericDate(fields["event_timestamp"]); ok {
		t = ts
	} else if !set.TOE.IsZero() {
		t = set.TOE
	}
	if t.After(set.IssuedAt) {
		t = set.IssuedAt
	}
	return t
}

// numericDate reads a NumericDate (seconds since 1970, maybe fractional).
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// objectOf decodes a JSON object into its members, whose names are
// matched exactly (unlike encoding/json's struct fields).
func objectOf(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not an object")
	}
	return m, nil
}

// stringField returns a member that is a JSON string.
func stringField(m map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := m[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// shown quotes a value from a SET for a message, cut short.
func shown(s string) string {
	if len(s) > maxShown {
		return strconv.Quote(text.Cut(s, maxShown)) + text.Ellipsis
	}
	return strconv.Quote(s)
}
