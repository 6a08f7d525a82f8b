package slackbot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

func TestEscapeText(t *testing.T) {
	cases := map[string]string{
		"plain":                         "plain",
		"<!channel>":                    "&lt;!channel&gt;",
		"<https://evil|https://good>":   "&lt;https://evil|https://good&gt;",
		"a & b":                         "a &amp; b",
		"&lt; already":                  "&amp;lt; already",
		"<@U123> <#C1> <!subteam^S1|x>": "&lt;@U123&gt; &lt;#C1&gt; &lt;!subteam^S1|x&gt;",
	}
	for in, want := range cases {
		if got := escapeText(in); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := escapeURL("https://x.example/?a=1&b=<2>|y"); got != "https://x.example/?a=1&amp;b=&lt;2&gt;%7Cy" {
		t.Errorf("escapeURL: %q", got)
	}
}

func TestFitEscapedNeverSplitsAnEntity(t *testing.T) {
	raw := strings.Repeat("<&>", 2000)
	for limit := 40; limit < 60; limit++ {
		got := fitEscaped(raw, limit, "…")
		if slackLen(got) > limit {
			t.Fatalf("limit %d: got %d", limit, slackLen(got))
		}
		body := strings.TrimSuffix(got, "…")
		if strings.NewReplacer("&lt;", "", "&amp;", "", "&gt;", "").Replace(body) != "" {
			t.Fatalf("limit %d: an entity was cut: %q", limit, got)
		}
	}
}

// renderedStrings decodes the blocks a call sent and re-encodes them
// without Go's HTML escaping, so the text reads as Slack sees it.
func renderedStrings(t *testing.T, c apiCall) string {
	t.Helper()
	blocks := blocksOf(t, c)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(blocks); err != nil {
		t.Fatal(err)
	}
	return b.String() + "\n" + c.Form.Get("text")
}

func TestRequesterTextIsInert(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod",
		map[string]string{"service": "api", "version": "1.4.2 <!here>", "note": "<@U0BOSS> ping <https://evil.example|https://good.example> & co"},
		"urgent <!channel> see <https://evil.example/login|https://sso.acme.example>",
		storage.Link{Title: "<!subteam^S0ADMINS> CI run", URL: "https://ci.example/run?a=1&b=<2>|x"},
	)
	e.Deliver()
	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	got := renderedStrings(t, posts[0])
	for _, bad := range []string{"<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example", "<!subteam"} {
		if strings.Contains(got, bad) {
			t.Errorf("card contains live mrkdwn %q", bad)
		}
	}
	for _, want := range []string{
		"urgent &lt;!channel&gt; see &lt;https://evil.example/login|https://sso.acme.example&gt;",
		"1.4.2 &lt;!here&gt;",
		"&lt;@U0BOSS&gt; ping &lt;https://evil.example|https://good.example&gt; &amp; co",
		"• <https://ci.example/run?a=1&amp;b=&lt;2&gt;%7Cx|&lt;!subteam^S0ADMINS&gt; CI run>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("card lacks %q\n%s", want, got)
		}
	}
	// Requester text is rendered verbatim: no auto-linking or mention
	// parsing of what the escaping leaves.
	for _, b := range blocksOf(t, posts[0]) {
		if b["block_id"] == "reason" || b["block_id"] == "requester" || b["block_id"] == "links" {
			if txt := b["text"].(map[string]any); txt["verbatim"] != true {
				t.Errorf("block %v is not verbatim", b["block_id"])
			}
		}
	}
	_ = r
}

// checkBlockKitLimits fails when blocks break a Block Kit limit.
func checkBlockKitLimits(t *testing.T, blocks []map[string]any) {
	t.Helper()
	if len(blocks) > maxBlocks {
		t.Errorf("%d blocks (max %d)", len(blocks), maxBlocks)
	}
	text := func(v any) string {
		m, _ := v.(map[string]any)
		s, _ := m["text"].(string)
		return s
	}
	for i, b := range blocks {
		switch b["type"] {
		case "header":
			if n := slackLen(text(b["text"])); n > maxHeaderText || n == 0 {
				t.Errorf("block %d: header text %d long", i, n)
			}
		case "section":
			fields, _ := b["fields"].([]any)
			if b["text"] == nil && len(fields) == 0 {
				t.Errorf("block %d: empty section", i)
			}
			if n := slackLen(text(b["text"])); n > maxSectionText {
				t.Errorf("block %d: section text %d long", i, n)
			}
			if len(fields) > maxFields {
				t.Errorf("block %d: %d fields", i, len(fields))
			}
			for j, f := range fields {
				if n := slackLen(text(f)); n > maxFieldText || n == 0 {
					t.Errorf("block %d field %d: %d long", i, j, n)
				}
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) > maxContextElements {
				t.Errorf("block %d: %d context elements", i, len(els))
			}
			for _, el := range els {
				if n := slackLen(text(el)); n > maxSectionText {
					t.Errorf("block %d: context element %d long", i, n)
				}
			}
		case "actions":
			els, _ := b["elements"].([]any)
			for _, el := range els {
				m := el.(map[string]any)
				if v, _ := m["value"].(string); slackLen(v) > maxButtonValue {
					t.Errorf("button value %d long", slackLen(v))
				}
				if n := slackLen(text(m["text"])); n > 75 {
					t.Errorf("button text %d long", n)
				}
				if c, ok := m["confirm"].(map[string]any); ok {
					if slackLen(text(c["title"])) > 100 || slackLen(text(c["text"])) > 300 {
						t.Errorf("confirm dialog too long: %v", c)
					}
				}
			}
		}
	}
}

func blocksJSON(t *testing.T, blocks []slack.Block) []map[string]any {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCardWithinBlockKitLimits(t *testing.T) {
	huge := func(n int, unit string) string {
		return strings.Repeat(unit, n/len([]rune(unit)))
	}
	params := map[string]string{}
	for i := range 30 {
		params[fmt.Sprintf("p%02d", i)] = huge(5000, "<ü&>")
	}
	var links []storage.Link
	for i := range 10 {
		links = append(links, storage.Link{Title: huge(200, "t<"), URL: "https://ci.example/" + huge(1980, "a&") + fmt.Sprint(i)})
	}
	var votes []storage.Vote
	for i := range 40 {
		votes = append(votes, storage.Vote{
			Approver: storage.Approver{Email: fmt.Sprintf("approver%02d@example.com", i)}, Decision: storage.DecisionApprove,
			Time: t0, Reason: huge(1000, "why<"),
		})
	}
	r := storage.Request{
		ID: "req_limits", Action: "wide" + huge(300, "x"), Params: params, Reason: huge(10000, "<!channel> é 😀 "),
		Links: links, Votes: votes, State: storage.StatePending, MinApprovals: 50,
		Requester: storage.Requester{Issuer: "github", Subject: huge(3000, "s"), Name: huge(500, "<n>")},
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}
	const url = "https://signoff.example.com/v1/requests/req_limits"
	text, blocks := renderCard(cardInput{Request: r, RequestURL: url})
	js := blocksJSON(t, blocks)
	checkBlockKitLimits(t, js)
	if len(text) > 40000 {
		t.Errorf("text %d long", len(text))
	}
	marker := "… (truncated; full request: <" + url + ">)"
	reason := sectionText(blockByID(js, "reason"))
	if !strings.HasSuffix(reason, marker) {
		t.Errorf("reason lacks the truncation marker: …%q", reason[max(0, len(reason)-120):])
	}
	if strings.Contains(reason, "<!channel>") {
		t.Error("truncated reason not escaped")
	}
	if n := len(blockByID(js, "params-2")["fields"].([]any)); n != 10 || blockByID(js, "params-3") != nil {
		t.Errorf("30 params should fill three sections of ten fields")
	}
	f := blockByID(js, "params-0")["fields"].([]any)[0].(map[string]any)["text"].(string)
	if !strings.HasSuffix(f, marker) {
		t.Errorf("long param lacks the marker")
	}
	if !strings.Contains(sectionText(blockByID(js, "links")), "more link") {
		t.Errorf("links not summed up: %d long", slackLen(sectionText(blockByID(js, "links"))))
	}

	// More parameters than a card shows.
	for i := 30; i < 75; i++ {
		params[fmt.Sprintf("p%02d", i)] = "v"
	}
	_, blocks = renderCard(cardInput{Request: r, RequestURL: url})
	js = blocksJSON(t, blocks)
	checkBlockKitLimits(t, js)
	last := blockByID(js, fmt.Sprintf("params-%d", maxParamSections-1))["fields"].([]any)
	if s := last[len(last)-1].(map[string]any)["text"].(string); !strings.Contains(s, "26 more parameters") || !strings.Contains(s, marker) {
		t.Errorf("last param field: %q", s)
	}
}

// A real request at the service's input limits, posted through the
// stand-in, stays within Block Kit's limits.
func TestPostedCardWithinLimits(t *testing.T) {
	e := newEnv(t)
	params := map[string]string{}
	for i := range 30 {
		params[fmt.Sprintf("p%02d", i)] = strings.Repeat("<é>", 1200)
	}
	e.Create("wide", params, strings.Repeat("<!", 2000))
	e.Deliver()
	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	checkBlockKitLimits(t, blocksOf(t, posts[0]))
}

func TestReasonModal(t *testing.T) {
	r := storage.Request{ID: "req_1", Action: "restart", Reason: "<!channel>", Requester: storage.Requester{Name: "octocat"}}
	v, err := renderReasonModal(r, storage.DecisionDeny, "C2", "")
	if err != nil {
		t.Fatal(err)
	}
	if v.CallbackID != ReasonCallbackID || slackLen(v.Title.Text) > maxModalTitle || v.Submit.Text != "Deny" {
		t.Errorf("modal: %+v", v)
	}
	var meta reasonMetadata
	if err := json.Unmarshal([]byte(v.PrivateMetadata), &meta); err != nil || meta != (reasonMetadata{RequestID: "req_1", Decision: "deny", Channel: "C2"}) {
		t.Errorf("metadata %q: %v", v.PrivateMetadata, err)
	}
	raw, _ := json.Marshal(v)
	if strings.Contains(strings.ReplaceAll(string(raw), `\u003c`, "<"), "<!channel>") {
		t.Error("modal shows live mrkdwn")
	}
}

// TestLinkNamesItsHostInASCII: a link on the card is followed by the host
// it leads to, so its title cannot disguise where it goes, and a host
// spelt with a look-alike letter from another script shows in its ASCII
// (xn--) form, not as the name it imitates.
func TestLinkNamesItsHostInASCII(t *testing.T) {
	got := linksText([]approvals.Link{
		{Title: "github.com/acme/api/pull/1", URL: "https://g\u0456thub.com/acme/api/pull/1"}, // Cyrillic і
		{Title: "CI run", URL: "https://ci.example/run/7"},
	}, "")
	want := "*Links*\n• <https://g\u0456thub.com/acme/api/pull/1|github.com/acme/api/pull/1> (xn--gthub-n2e.com)\n• <https://ci.example/run/7|CI run> (ci.example)"
	if got != want {
		t.Fatalf("links:\n%q\nwant\n%q", got, want)
	}
}
