package teamsbot

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/internal/text"
	"github.com/signoff-dev/signoff/policy"
)

// Card limits. Teams refuses messages over about 28 KB; these caps keep a
// card well under that whatever the requester sends (approvals already
// bounds the reason to 4000 bytes and the links to 10).
const (
	cardVersion   = "1.5"
	cardSchema    = "http://adaptivecards.io/schemas/adaptive-card.json"
	maxParamFacts = 30
	maxFactValue  = 500
	maxFactTitle  = 100
	maxReasonText = 2000
	maxLinkTitle  = 100
	// maxLinkActions: Teams shows at most six actions in a set; five links
	// and a note leave room.
	maxLinkActions = 5
	maxVoteLines   = 20
	// maxCommentInput caps the reason typed into the card.
	maxCommentInput = 2000
	// commentInputID is the id of the card's reason input; its value
	// arrives in the action's data under this key.
	commentInputID = "comment"
)

// voteData is the data an Approve or Deny button carries (Action.Execute's
// data, and its Action.Submit fallback's).
type voteData struct {
	// Kind is always "signoff.vote", to tell signoff's buttons from
	// anything else a client submits.
	Kind      string `json:"signoff"`
	RequestID string `json:"requestId"`
	// Decision is the verb: the Action.Submit fallback carries no verb.
	Decision string `json:"decision"`
	// Comment is the reason input's value, merged in by the client.
	Comment string `json:"comment,omitempty"`
}

const voteKind = "signoff.vote"

// cardInput is what renderCard renders.
type cardInput struct {
	Request approvals.Request
	// Action is the request's action; nil when no longer declared.
	Action *policy.Action
	// RequestURL is where the request can be read in full, or "".
	RequestURL string
}

// escapeMarkdown makes requester-supplied text inert where an Adaptive Card
// interprets markdown (TextBlock text, Fact titles and values). Teams
// renders a CommonMark subset: emphasis, lists and [title](url) links, and
// turns <at>…</at> into a mention when the card declares one (signoff
// never does). The escaping has two layers, so the text stays inert
// whether or not a client honours CommonMark's backslash escapes:
//
//  1. the inline syntax characters \ ` * _ ~ [ ] ( ) < > are always
//     backslash-escaped, and so are the block markers at the start of a
//     line: "#", a "-" or "+" list marker or thematic break, and the "." or
//     ")" of an ordered list item ("1. ");
//  2. a zero-width space (U+200B) follows every "]", "<", "&" and "{", so
//     "](" (a link), "<at>" or "<https://…>" (a mention, an autolink),
//     "&lt;" (an entity) and "{{DATE(…)}}" (a date function) can never
//     form, even for a client that shows backslashes literally.
//
// Line breaks are kept (callers fold them where a value must be one line).
// Free text that needs no formatting goes into a RichTextBlock instead
// (plainText), which clients never parse as markdown at all.
func escapeMarkdown(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	lineStart := true
	for i, r := range s {
		switch r {
		case '\\', '`', '*', '_', '~', '[', '(', ')', '>':
			b.WriteByte('\\')
			b.WriteRune(r)
		case ']', '<':
			b.WriteByte('\\')
			b.WriteRune(r)
			b.WriteRune('\u200b')
		case '&', '{':
			b.WriteRune(r)
			b.WriteRune('\u200b')
		case '#':
			if lineStart {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case '-', '+':
			if lineStart && (followedBySpace(s, i+1) || s[i+1:] != "" && s[i+1] == s[i]) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case '.':
			if followedBySpace(s, i+1) && startsWithDigitsOnly(s, i) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
		switch r {
		case '\n', '\r':
			lineStart = true
		case ' ', '\t':
		default:
			lineStart = false
		}
	}
	return b.String()
}

// followedBySpace reports whether s[i:] is empty or starts with a space,
// tab or line break.
func followedBySpace(s string, i int) bool {
	return i >= len(s) || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'
}

// startsWithDigitsOnly reports whether s[:i] since the last line break is
// made of (optional spaces and) digits only: a "." at i would then make an
// ordered list item.
func startsWithDigitsOnly(s string, i int) bool {
	j := i
	for j > 0 && s[j-1] >= '0' && s[j-1] <= '9' {
		j--
	}
	if j == i {
		return false
	}
	for j > 0 && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return j == 0 || s[j-1] == '\n' || s[j-1] == '\r'
}

// fit cuts s to at most limit runes, ending with marker when cut.
func fit(s string, limit int, marker string) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return strings.TrimRight(text.CutRunes(s, limit-utf8.RuneCountInString(marker)), " \n") + marker
}

// truncMarker is the visible marker appended to cut text.
func truncMarker(requestURL string) string {
	return cards.TruncMarker(requestURL, nil)
}

// textBlock is a TextBlock of markdown text the caller has escaped.
func textBlock(id, text string, extra map[string]any) map[string]any {
	tb := map[string]any{"type": "TextBlock", "text": text, "wrap": true}
	if id != "" {
		tb["id"] = id
	}
	for k, v := range extra {
		tb[k] = v
	}
	return tb
}

// plainText is a RichTextBlock of one TextRun: clients show its text as
// is, never as markdown, so it needs no escaping.
func plainText(id, text string, extra map[string]any) map[string]any {
	run := map[string]any{"type": "TextRun", "text": text}
	for k, v := range extra {
		run[k] = v
	}
	rb := map[string]any{"type": "RichTextBlock", "inlines": []any{run}}
	if id != "" {
		rb["id"] = id
	}
	return rb
}

// fact is a FactSet entry; both parts are escaped here.
func fact(title, value string) map[string]any {
	return map[string]any{
		"title": escapeMarkdown(cards.OneLine(fit(title, maxFactTitle, "…"))),
		"value": escapeMarkdown(cards.OneLine(value)),
	}
}

// trustedFact is a FactSet entry of signoff's own text (numbers, times),
// which holds no markdown and is not escaped.
func trustedFact(title, value string) map[string]any {
	return map[string]any{"title": title, "value": value}
}

// renderCard renders a request as an Adaptive Card (version 1.5): what is
// asked, by whom, the parameters as a FactSet, the reason, links, the
// approvals needed, the expiry, the votes so far and, while pending, the
// Approve and Deny buttons (Action.Execute, each with an Action.Submit
// fallback for clients without Universal Actions). Requester-supplied text
// is either in RichTextBlocks (never markdown) or escaped.
func renderCard(in cardInput) map[string]any {
	r := in.Request
	marker := truncMarker(in.RequestURL)
	body := []any{
		textBlock("title", escapeMarkdown(cards.OneLine(cards.Title(r))), map[string]any{"size": "Medium", "weight": "Bolder"}),
	}
	if in.Action != nil && in.Action.Description != "" {
		body = append(body, textBlock("description", escapeMarkdown(cards.OneLine(fit(in.Action.Description, 300, "…"))), map[string]any{"isSubtle": true}))
	}

	requester := []any{
		fact("Requested by", fit(cards.RequesterName(r.Requester), 200, "…")),
		fact("Issuer", fit(r.Requester.Issuer, 100, "…")),
	}
	if r.Requester.Subject != "" {
		requester = append(requester, fact("Subject", fit(r.Requester.Subject, maxFactValue, "…")))
	}
	body = append(body, map[string]any{"type": "FactSet", "id": "requester", "facts": requester})

	if facts := paramFacts(r.Params, marker); len(facts) > 0 {
		body = append(body,
			textBlock("params-label", "Parameters", map[string]any{"weight": "Bolder", "spacing": "Medium"}),
			map[string]any{"type": "FactSet", "id": "params", "facts": facts})
	}

	if r.Reason != "" {
		body = append(body,
			textBlock("reason-label", "Reason", map[string]any{"weight": "Bolder", "spacing": "Medium"}),
			plainText("reason", fit(r.Reason, maxReasonText, marker), nil))
	}

	if len(r.Links) > 0 {
		body = append(body, textBlock("links-label", "Links", map[string]any{"weight": "Bolder", "spacing": "Medium"}))
		body = append(body, linkElements(r.Links, marker)...)
	}

	body = append(body, map[string]any{"type": "FactSet", "id": "meta", "spacing": "Medium", "facts": []any{
		trustedFact("Approvals needed", strconv.Itoa(r.MinApprovals)),
		trustedFact("Expires", cardTime(r.ExpiresAt)),
		trustedFact("Request", r.ID), // generated by approvals
	}})

	body = append(body, statusContainer(r, marker, approvals.Progress(in.Action, r).Rules))

	card := map[string]any{
		"type":         "AdaptiveCard",
		"$schema":      cardSchema,
		"version":      cardVersion,
		"fallbackText": escapeMarkdown(cards.OneLine(cards.Title(r))) + " (" + cards.StateLabel(r) + ")",
		"msteams":      map[string]any{"width": "Full"},
	}
	if r.State == approvals.StatePending {
		if in.Action != nil && (in.Action.RequireApproveReason || in.Action.RequireDenyReason) {
			label := "Reason (required to " + reasonVerbs(in.Action) + "; shown on the card and kept in the audit log)"
			body = append(body, map[string]any{
				"type": "Input.Text", "id": commentInputID, "label": label,
				"isMultiline": true, "maxLength": maxCommentInput, "placeholder": "Why?",
			})
		}
		card["actions"] = []any{
			voteButton(r.ID, VerbApprove, "Approve", "positive"),
			voteButton(r.ID, VerbDeny, "Deny", "destructive"),
		}
	}
	card["body"] = body
	return card
}

func reasonVerbs(a *policy.Action) string {
	switch {
	case a.RequireApproveReason && a.RequireDenyReason:
		return "approve or deny"
	case a.RequireApproveReason:
		return "approve"
	default:
		return "deny"
	}
}

// voteButton is an Action.Execute with an Action.Submit fallback carrying
// the same data (older clients send it as a message activity).
func voteButton(requestID, verb, title, style string) map[string]any {
	data := map[string]any{"signoff": voteKind, "requestId": requestID, "decision": verb}
	return map[string]any{
		"type":     "Action.Execute",
		"id":       verb,
		"title":    title,
		"verb":     verb,
		"style":    style,
		"data":     data,
		"fallback": map[string]any{"type": "Action.Submit", "title": title, "style": style, "data": data},
	}
}

// paramFacts renders params sorted by name, at most maxParamFacts; the
// rest are summed up with the marker.
func paramFacts(params map[string]string, marker string) []any {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var facts []any
	for i, k := range keys {
		if len(keys) > maxParamFacts && i == maxParamFacts-1 {
			facts = append(facts, fact(fmt.Sprintf("%d more parameters", len(keys)-i), marker))
			break
		}
		facts = append(facts, fact(k, fit(params[k], maxFactValue, marker)))
	}
	return facts
}

// linkElements renders the requester's links as Action.OpenUrl buttons
// whose title names the link's host, so a title cannot disguise where it
// leads; links beyond maxLinkActions are summed up with the marker.
func linkElements(links []approvals.Link, marker string) []any {
	var actions []any
	rest := 0
	for i, l := range links {
		u, err := url.Parse(l.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			continue // approvals refuses these; never render one
		}
		if len(actions) == maxLinkActions {
			rest = len(links) - i
			break
		}
		title := cards.OneLine(l.Title)
		if title == "" {
			title = cards.LinkHost(u)
		}
		actions = append(actions, map[string]any{
			"type":  "Action.OpenUrl",
			"title": fit(title, maxLinkTitle, "…") + " (" + cards.LinkHost(u) + ")",
			"url":   u.String(),
		})
	}
	var out []any
	if len(actions) > 0 {
		out = append(out, map[string]any{"type": "ActionSet", "id": "links", "actions": actions})
	}
	if rest > 0 {
		out = append(out, plainText("links-more", fmt.Sprintf("%d more link%s%s", rest, cards.Plural(rest), marker), map[string]any{"isSubtle": true}))
	}
	return out
}

// statusContainer shows the state, the votes with who and when, the
// approvals and approvers.require rules still needed and the execution
// result.
func statusContainer(r approvals.Request, marker string, rules []approvals.RuleProgress) map[string]any {
	color := "Default"
	switch r.State {
	case approvals.StateApproved:
		color = "Good"
	case approvals.StateDenied:
		color = "Attention"
	case approvals.StateExpired, approvals.StateCancelled:
		color = "Warning"
	}
	items := []any{textBlock("status-head", escapeMarkdown(cards.StatusHead(r, statusMarkup)), map[string]any{"weight": "Bolder", "color": color})}
	if r.State == approvals.StatePending {
		if line := cards.RulesLine(rules, statusMarkup); line != "" {
			items = append(items, plainText("status-rules", line, nil))
		}
	}
	for i, v := range r.Votes {
		if i == maxVoteLines {
			items = append(items, plainText("", fmt.Sprintf("%d more vote%s%s", len(r.Votes)-i, cards.Plural(len(r.Votes)-i), marker), map[string]any{"isSubtle": true}))
			break
		}
		items = append(items, plainText(fmt.Sprintf("vote-%d", i), cards.VoteLine(v, statusMarkup), nil))
	}
	if e := r.Execution; e != nil {
		if line := cards.ExecutionLine(*e, statusMarkup); line != "" {
			items = append(items, plainText("execution", line, nil))
		}
	}
	return map[string]any{"type": "Container", "id": "status", "spacing": "Medium", "separator": true, "items": items}
}

// statusMarkup is the plain text of a card's status: the head is escaped
// as a whole, the votes and the execution go into RichTextBlocks.
var statusMarkup = cards.Markup{
	Date: cardTime,
	Name: oneLineFit,
	Text: oneLineFit,

	Approved: "✅", Denied: "⛔", Expired: "⌛",
	Cancelled: "✖️", Succeeded: "🚀", Failed: "❌",
}

// oneLineFit cuts s to limit runes with an ellipsis, on one line.
func oneLineFit(s string, limit int) string { return cards.OneLine(fit(s, limit, "…")) }

// cardTime formats t in UTC to the minute; zero is "-".
func cardTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
