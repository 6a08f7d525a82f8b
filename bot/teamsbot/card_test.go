package teamsbot

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/storage"
)

func TestCardPostedOnCreate(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "ship the fix for INC-42", storage.Link{Title: "CI run", URL: "https://ci.example/run/7"})
	e.Deliver()

	posts := e.bf.Posted()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	p := posts[0]
	if p.Conversation != chanOps || p.Body["type"] != "message" {
		t.Errorf("posted %v to %q", p.Body["type"], p.Conversation)
	}
	if !strings.HasPrefix(p.Authorization, "Bearer bot-access-token-") {
		t.Errorf("post not authorized with the bot's token: %q", p.Authorization)
	}
	if _, ok := p.Body["expiration"]; ok {
		t.Error("the activity carries an expiration")
	}
	card := p.Card()
	if card["type"] != "AdaptiveCard" || card["version"] != "1.5" {
		t.Errorf("card type %v version %v", card["type"], card["version"])
	}
	if tb := element(card, "title"); tb["text"] != "Approval requested: deploy-prod" {
		t.Errorf("title: %v", tb["text"])
	}
	if d := element(card, "description"); d["text"] != "Deploy a service to production" {
		t.Errorf("description: %v", d["text"])
	}
	if got := facts(card, "requester"); !slices.Equal(got, []string{"Requested by=octocat", "Issuer=github", "Subject=repo:acme/api:ref:refs/heads/main"}) {
		t.Errorf("requester facts: %q", got)
	}
	if got := facts(card, "params"); !slices.Equal(got, []string{"service=api", "version=1.4.2"}) {
		t.Errorf("param facts: %q", got)
	}
	if rb := element(card, "reason"); rb["type"] != "RichTextBlock" || runText(rb) != "ship the fix for INC-42" {
		t.Errorf("reason: %v", rb)
	}
	links := element(card, "links")
	la, _ := links["actions"].([]any)
	if len(la) != 1 {
		t.Fatalf("links: %v", links)
	}
	if l := la[0].(map[string]any); l["type"] != "Action.OpenUrl" || l["title"] != "CI run (ci.example)" || l["url"] != "https://ci.example/run/7" {
		t.Errorf("link: %v", l)
	}
	if got := facts(card, "meta"); !slices.Equal(got, []string{"Approvals needed=2", "Expires=2026-03-01 13:00 UTC", "Request=" + r.ID}) {
		t.Errorf("meta facts: %q", got)
	}
	if s := statusText(card); !strings.Contains(s, "0 of 2 approvals, 2 more needed") {
		t.Errorf("status: %q", s)
	}
	actions, _ := card["actions"].([]any)
	if len(actions) != 2 {
		t.Fatalf("actions: %v", card["actions"])
	}
	for i, want := range []struct{ verb, title, style string }{{"approve", "Approve", "positive"}, {"deny", "Deny", "destructive"}} {
		a := actions[i].(map[string]any)
		data, _ := a["data"].(map[string]any)
		if a["type"] != "Action.Execute" || a["verb"] != want.verb || a["title"] != want.title || a["style"] != want.style ||
			data["requestId"] != r.ID || data["decision"] != want.verb {
			t.Errorf("button %d: %v", i, a)
		}
		fb, _ := a["fallback"].(map[string]any)
		fbData, _ := fb["data"].(map[string]any)
		if fb["type"] != "Action.Submit" || fb["title"] != want.title || fbData["requestId"] != r.ID || fbData["decision"] != want.verb {
			t.Errorf("button %d fallback: %v", i, fb)
		}
	}
	if element(card, commentInputID) != nil {
		t.Error("a reason input on a card whose action needs no reason")
	}

	got := e.Get(r.ID)
	want := storage.Card{Platform: "teams", Conversation: chanOps, MessageID: p.ActivityID, ServiceURL: e.bf.ServiceURL()}
	if len(got.Cards) != 1 || got.Cards[0] != want {
		t.Errorf("cards: %+v, want %+v", got.Cards, want)
	}
	if n := e.bf.TokenRequests(); n != 1 {
		t.Errorf("%d token requests", n)
	}
	// A second post reuses the cached token.
	e.Create("restart", nil, "")
	e.Deliver()
	if n := e.bf.TokenRequests(); n != 1 {
		t.Errorf("token not cached: %d token requests", n)
	}
	if strings.Contains(e.logs.String(), e.bf.AppPassword()) {
		t.Error("the app password was logged")
	}
}

func TestReasonInputOnActionsThatNeedOne(t *testing.T) {
	e := newEnv(t)
	e.Create("restart", nil, "")
	e.Deliver()
	in := element(e.lastCard(), commentInputID)
	if in == nil || in["type"] != "Input.Text" || !strings.Contains(in["label"].(string), "required to deny") {
		t.Fatalf("reason input: %v", in)
	}
}

func TestEscapeMarkdown(t *testing.T) {
	const zw = "\u200b"
	cases := map[string]string{
		"plain text":                  "plain text",
		"1.4.2":                       "1.4.2",
		"[click](https://evil)":       `\[click\]` + zw + `\(https://evil\)`,
		"<at>everyone</at>":           `\<` + zw + `at\>everyone\<` + zw + `/at\>`,
		"**bold** _it_ `code` ~x~":    `\*\*bold\*\* \_it\_ \` + "`code\\`" + ` \~x\~`,
		"<https://evil>":              `\<` + zw + `https://evil\>`,
		"&lt;at&gt;":                  "&" + zw + "lt;at&" + zw + "gt;",
		"{{DATE(2026-01-01T00:00Z)}}": "{" + zw + "{" + zw + `DATE\(2026-01-01T00:00Z\)}}`,
		"# heading":                   `\# heading`,
		"PR #42":                      "PR #42",
		"- item\n+ item\n1. item":     "\\- item\n\\+ item\n1\\. item",
		"---":                         `\---`,
		"--force":                     `\--force`,
		"a-b":                         "a-b",
		"[x]: https://evil":           `\[x\]` + zw + ": https://evil",
		`\[`:                          `\\\[`,
	}
	for in, want := range cases {
		if got := escapeMarkdown(in); got != want {
			t.Errorf("escapeMarkdown(%q) = %q, want %q", in, got, want)
		}
	}
}

// markdownTexts returns every string an Adaptive Card client interprets
// as markdown: TextBlock text, fact titles and values, fallbackText.
func markdownTexts(card map[string]any) []string {
	var out []string
	if s, ok := card["fallbackText"].(string); ok {
		out = append(out, s)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			switch x["type"] {
			case "TextBlock":
				out = append(out, x["text"].(string))
			case "FactSet":
				for _, f := range x["facts"].([]any) {
					m := f.(map[string]any)
					out = append(out, m["title"].(string), m["value"].(string))
				}
			}
			for _, sub := range x {
				walk(sub)
			}
		case []any:
			for _, sub := range x {
				walk(sub)
			}
		}
	}
	walk(card["body"])
	return out
}

func TestRequesterTextRenderedInert(t *testing.T) {
	e := newEnv(t)
	evil := "[click](https://evil) <at>everyone</at> **bold**\n# heading"
	r := e.Create("deploy-prod",
		map[string]string{"service": "api", "version": "[click](https://evil)", "note": "<at>everyone</at>"},
		evil, storage.Link{Title: "[docs](https://evil)", URL: "https://ci.example/run/7"})
	e.Deliver()
	card := e.lastCard()

	for _, s := range markdownTexts(card) {
		for _, bad := range []string{"](", "<at", "<http", "**", "\n#"} {
			if strings.Contains(s, bad) {
				t.Errorf("markdown text %q contains %q", s, bad)
			}
		}
	}
	// The reason is shown as typed, in a block clients never parse as
	// markdown.
	if rb := element(card, "reason"); rb["type"] != "RichTextBlock" || runText(rb) != evil {
		t.Errorf("reason block: %v", rb)
	}
	params := facts(card, "params")
	if !slices.Contains(params, "note=\\<\u200bat\\>everyone\\<\u200b/at\\>") || !slices.Contains(params, "version=\\[click\\]\u200b\\(https://evil\\)") {
		t.Errorf("params: %q", params)
	}
	// A link's title cannot hide where it leads.
	l := element(card, "links")["actions"].([]any)[0].(map[string]any)
	if l["title"] != "[docs](https://evil) (ci.example)" || l["url"] != "https://ci.example/run/7" {
		t.Errorf("link: %v", l)
	}
	// No mention entities: nothing in the card can notify anyone.
	raw, _ := json.Marshal(card)
	if strings.Contains(string(raw), `"entities"`) || strings.Contains(string(raw), `"mention"`) {
		t.Error("the card declares mention entities")
	}

	// The invoke answer's card is escaped the same way.
	alice := e.linked("alice", "sre")
	ans := e.vote(alice, r.ID, VerbApprove)
	for _, s := range markdownTexts(ans.card()) {
		if strings.Contains(s, "](") || strings.Contains(s, "<at") {
			t.Errorf("invoke card text %q is not inert", s)
		}
	}
	if ans.StatusCode != http.StatusOK {
		t.Errorf("invoke status %d", ans.StatusCode)
	}
}

func TestCardLimits(t *testing.T) {
	r := storage.Request{ID: "req_x", Action: "wide", State: storage.StatePending, MinApprovals: 1, Params: map[string]string{}}
	for i := range 40 {
		r.Params[string(rune('a'+i%26))+strings.Repeat("x", i)] = strings.Repeat("v", 900)
	}
	for range 12 {
		r.Links = append(r.Links, storage.Link{Title: strings.Repeat("t", 300), URL: "https://ci.example/x"})
	}
	r.Reason = strings.Repeat("r", 4000)
	card := renderCard(cardInput{Request: r, RequestURL: "https://signoff.example.com/v1/requests/req_x"})
	if n := len(element(card, "params")["facts"].([]any)); n != maxParamFacts {
		t.Errorf("%d param facts", n)
	}
	if n := len(element(card, "links")["actions"].([]any)); n != maxLinkActions {
		t.Errorf("%d link actions", n)
	}
	if txt := runText(element(card, "reason")); len([]rune(txt)) > maxReasonText || !strings.Contains(txt, "full request: https://signoff.example.com/v1/requests/req_x") {
		t.Errorf("reason not cut with a marker (%d runes)", len([]rune(txt)))
	}
	raw, _ := json.Marshal(card)
	if len(raw) > 28_000 {
		t.Errorf("card is %d bytes; Teams refuses messages over about 28 KB", len(raw))
	}
}
