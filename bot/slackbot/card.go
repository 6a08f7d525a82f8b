package slackbot

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/policy"
)

// Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
// Lengths are counted the way Slack counts them at worst (UTF-16 code
// units), so a card that fits here fits there.
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxFields          = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxButtonValue     = 2000
	maxContextElements = 10
	maxModalTitle      = 24
	maxModalMetadata   = 3000
	// maxParamSections caps the sections of parameter fields, so the card
	// stays well under maxBlocks whatever the policy declares.
	maxParamSections = 5
	// maxReasonInput caps the reason typed into the dialog.
	maxReasonInput = 2000
)

// slackLen is s's length as Slack may count it: UTF-16 code units.
func slackLen(s string) int {
	n := 0
	for _, r := range s {
		n += max(utf16.RuneLen(r), 1)
	}
	return n
}

// escapeText makes requester-supplied text inert in Slack mrkdwn: "&",
// "<" and ">" become entities, so "<!channel>" or
// "<https://evil|https://good>" show as typed instead of pinging a channel
// or disguising a link.
func escapeText(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escapeURL makes a URL safe inside "<url|title>": the mrkdwn entities and
// a "|", which would end the URL early, percent-encoded.
func escapeURL(u string) string {
	return strings.ReplaceAll(escapeText(u), "|", "%7C")
}

// fitEscaped escapes raw for mrkdwn and, when the result is longer than
// limit, cuts it (never inside an entity) and appends marker, so that the
// result is at most limit long.
func fitEscaped(raw string, limit int, marker string) string {
	esc := escapeText(raw)
	if slackLen(esc) <= limit {
		return esc
	}
	budget := limit - slackLen(marker)
	var b strings.Builder
	n := 0
	for _, r := range raw {
		piece := escapeText(string(r))
		l := slackLen(piece)
		if n+l > budget {
			break
		}
		b.WriteString(piece)
		n += l
	}
	return strings.TrimRight(b.String(), " \n") + marker
}

// fitPlain cuts plain text to limit with an ellipsis.
func fitPlain(s string, limit int) string {
	if slackLen(s) <= limit {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		l := slackLen(string(r))
		if n+l > limit-1 {
			break
		}
		b.WriteRune(r)
		n += l
	}
	return b.String() + "…"
}

// truncMarker is the visible marker appended to cut text.
func truncMarker(requestURL string) string {
	return cards.TruncMarker(requestURL, func(u string) string { return "<" + escapeURL(u) + ">" })
}

// mrkdwn is a mrkdwn text object with verbatim set, so Slack does not
// auto-link channel names or parse mentions in it.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// slackDate renders t as a Slack date token, shown in the reader's time
// zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// cardInput is what a card is rendered from.
type cardInput struct {
	Request approvals.Request
	// Action is the request's policy action; nil when it is no longer
	// declared.
	Action *policy.Action
	// RequestURL is where the request can be read in full, or "".
	RequestURL string
}

// renderCard returns the notification text and the Block Kit blocks of a
// request as it stands: what is asked, by whom, the votes so far and, once
// decided, the outcome without buttons. Every requester-supplied string is
// escaped, and every Block Kit limit respected.
func renderCard(in cardInput) (string, []slack.Block) {
	r := in.Request
	marker := truncMarker(in.RequestURL)
	var blocks []slack.Block

	blocks = append(blocks, slack.NewHeaderBlock(plain(fitPlain(cards.OneLine(cards.Title(r)), maxHeaderText))))

	// Who asks for what.
	var summary strings.Builder
	if in.Action != nil && in.Action.Description != "" {
		summary.WriteString("*" + escapeText(cards.OneLine(fitPlain(in.Action.Description, 300))) + "*\n")
	}
	summary.WriteString("Requested by *" + escapeText(cards.OneLine(fitPlain(cards.RequesterName(r.Requester), 200))) + "*")
	summary.WriteString(" (issuer " + escapeText(cards.OneLine(fitPlain(r.Requester.Issuer, 100))) + ")")
	if r.Requester.Subject != "" {
		summary.WriteString("\nSubject: " + escapeText(cards.OneLine(fitPlain(r.Requester.Subject, 500))))
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(fitEscapedMrkdwn(summary.String(), maxSectionText, marker)), nil, nil, slack.SectionBlockOptionBlockID("requester")))

	blocks = append(blocks, paramSections(r.Params, marker)...)

	if r.Reason != "" {
		const label = "*Reason*\n"
		text := label + fitEscaped(r.Reason, maxSectionText-slackLen(label), marker)
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID("reason")))
	}

	if len(r.Links) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(linksText(r.Links, marker)), nil, nil, slack.SectionBlockOptionBlockID("links")))
	}

	meta := []slack.MixedElement{
		mrkdwn(fmt.Sprintf("Needs %d approval%s", r.MinApprovals, cards.Plural(r.MinApprovals))),
		mrkdwn("Expires " + slackDate(r.ExpiresAt)),
		mrkdwn("Request `" + escapeText(fitPlain(r.ID, 200)) + "`"),
	}
	blocks = append(blocks, slack.NewContextBlock("meta", meta...))

	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(statusText(r, marker, approvals.Progress(in.Action, r).Rules)), nil, nil, slack.SectionBlockOptionBlockID("status")))

	if r.State == approvals.StatePending {
		approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve")).WithStyle(slack.StylePrimary)
		deny := slack.NewButtonBlockElement(ActionDeny, r.ID, plain("Deny")).WithStyle(slack.StyleDanger).
			WithConfirm(slack.NewConfirmationBlockObject(
				plain("Deny this request?"),
				plain(fitPlain("The request for "+r.Action+" will be denied at once. This cannot be undone.", 300)),
				plain("Deny"), plain("Cancel"),
			).WithStyle(slack.StyleDanger))
		blocks = append(blocks, slack.NewActionBlock("actions", approve, deny))
	}
	if len(blocks) > maxBlocks { // cannot happen with the caps above; stay safe
		blocks = blocks[:maxBlocks]
	}

	text := fitPlain(escapeText(cards.OneLine(cards.Title(r)))+" ("+cards.StateLabel(r)+")", 1000)
	return text, blocks
}

// fitEscapedMrkdwn cuts already-escaped mrkdwn to limit at a line break
// when it is too long.
func fitEscapedMrkdwn(s string, limit int, marker string) string {
	if slackLen(s) <= limit {
		return s
	}
	lines := strings.Split(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if slackLen(b.String())+slackLen(l)+1+slackLen(marker) > limit {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return b.String() + marker
}

// paramSections renders params as section fields, ten to a section and at
// most maxParamSections sections; the rest is summed up with the marker.
func paramSections(params map[string]string, marker string) []slack.Block {
	if len(params) == 0 {
		return nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	capacity := maxParamSections * maxFields
	var fields []*slack.TextBlockObject
	for i, k := range keys {
		if len(keys) > capacity && i == capacity-1 {
			rest := len(keys) - i
			fields = append(fields, mrkdwn(fmt.Sprintf("*%d more parameters*\n%s", rest, marker)))
			break
		}
		label := "*" + escapeText(cards.OneLine(fitPlain(k, 200))) + "*\n"
		fields = append(fields, mrkdwn(label+fitEscaped(params[k], maxFieldText-slackLen(label), marker)))
	}
	var out []slack.Block
	for i := 0; i < len(fields); i += maxFields {
		end := min(i+maxFields, len(fields))
		out = append(out, slack.NewSectionBlock(nil, fields[i:end], nil, slack.SectionBlockOptionBlockID(fmt.Sprintf("params-%d", i/maxFields))))
	}
	return out
}

// linksText renders the requester's links as mrkdwn links with escaped
// URL and title, each followed by the host it leads to (cards.LinkHost),
// so a title cannot disguise where it leads; links that do not fit are
// summed up with the marker.
func linksText(links []approvals.Link, marker string) string {
	const label = "*Links*"
	var b strings.Builder
	b.WriteString(label)
	for i, l := range links {
		u, err := url.Parse(l.URL)
		if err != nil || u.Host == "" {
			continue // approvals refuses these; never render one
		}
		title := l.Title
		if title == "" {
			title = l.URL
		}
		line := "\n• <" + escapeURL(cards.OneLine(l.URL)) + "|" + escapeText(cards.OneLine(fitPlain(title, 200))) + "> (" + escapeText(cards.LinkHost(u)) + ")"
		rest := len(links) - i - 1
		reserve := 0
		if rest > 0 {
			reserve = slackLen(marker) + 40
		}
		if slackLen(b.String())+slackLen(line)+reserve > maxSectionText {
			b.WriteString(fmt.Sprintf("\n%d more link%s%s", len(links)-i, cards.Plural(len(links)-i), marker))
			return b.String()
		}
		b.WriteString(line)
	}
	return b.String()
}

// statusText is the card's status section: the state, the votes with who
// and when, the approvals and approvers.require rules still needed and the
// execution result.
func statusText(r approvals.Request, marker string, rules []approvals.RuleProgress) string {
	lines := []string{cards.StatusHead(r, statusMarkup)}
	if r.State == approvals.StatePending {
		if line := cards.RulesLine(rules, statusMarkup); line != "" {
			lines = append(lines, line)
		}
	}
	for _, v := range r.Votes {
		lines = append(lines, cards.VoteLine(v, statusMarkup))
	}
	if e := r.Execution; e != nil {
		if line := cards.ExecutionLine(*e, statusMarkup); line != "" {
			lines = append(lines, line)
		}
	}
	return fitEscapedMrkdwn(strings.Join(lines, "\n"), maxSectionText, marker)
}

// statusMarkup is the mrkdwn of a card's status section.
var statusMarkup = cards.Markup{
	Bold:   func(s string) string { return "*" + s + "*" },
	Escape: escapeText,
	Date:   slackDate,
	Name:   func(s string, limit int) string { return escapeText(cards.OneLine(fitPlain(s, limit))) },
	Text:   func(s string, limit int) string { return fitEscaped(cards.OneLine(s), limit, "…") },

	Approved: ":white_check_mark:", Denied: ":no_entry:", Expired: ":hourglass:",
	Cancelled: ":heavy_multiplication_x:", Succeeded: ":rocket:", Failed: ":x:",
}

// reasonMetadata is the reason dialog's private_metadata: which vote the
// typed reason completes and where to answer.
type reasonMetadata struct {
	RequestID string `json:"r"`
	Decision  string `json:"d"`
	Channel   string `json:"c,omitempty"`
}

// renderReasonModal returns the dialog asking for the reason a vote
// requires.
func renderReasonModal(r approvals.Request, decision approvals.Decision, channel, requestURL string) (slack.ModalViewRequest, error) {
	meta, err := json.Marshal(reasonMetadata{RequestID: r.ID, Decision: string(decision), Channel: channel})
	if err != nil {
		return slack.ModalViewRequest{}, fmt.Errorf("encode dialog metadata: %w", err)
	}
	if len(meta) > maxModalMetadata {
		return slack.ModalViewRequest{}, fmt.Errorf("dialog metadata for %s is %d bytes, over Slack's %d", r.ID, len(meta), maxModalMetadata)
	}
	verb, title := "Approve", "Approve request"
	if decision == approvals.DecisionDeny {
		verb, title = "Deny", "Deny request"
	}
	summary := "*" + escapeText(cards.OneLine(fitPlain(r.Action, 200))) + "* requested by *" + escapeText(cards.OneLine(fitPlain(cards.RequesterName(r.Requester), 200))) + "*"
	if r.Reason != "" {
		summary += "\n" + fitEscaped(r.Reason, 1500, truncMarker(requestURL))
	}
	input := slack.NewPlainTextInputBlockElement(plain("Why?"), reasonBlockID)
	input.Multiline = true
	input.MinLength = 1
	input.MaxLength = maxReasonInput
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      ReasonCallbackID,
		Title:           plain(fitPlain(title, maxModalTitle)),
		Submit:          plain(verb),
		Close:           plain("Cancel"),
		PrivateMetadata: string(meta),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(fitEscapedMrkdwn(summary, maxSectionText, "")), nil, nil),
			slack.NewInputBlock(reasonBlockID, plain("Reason (required; it is shown on the card and kept in the audit log)"), nil, input),
		}},
	}, nil
}
