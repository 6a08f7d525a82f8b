package linkflow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signoff-dev/signoff/internal/browsertest"
)

// TestLinkFlowInBrowser links a chat account the way a person does, in
// headless Chromium: open the link from the chat, sign in at the IdP's
// form, land on signoff's page. The browser carries the link cookie from
// signoff (localhost) through the IdP (127.0.0.1) and back.
func TestLinkFlowInBrowser(t *testing.T) {
	e := newEnv(t)
	u := e.begin(slackU1)
	ctx := browsertest.New(t, 60*time.Second)

	// The link first names the chat account it is for; Continue goes on
	// to the IdP (the page's form-action policy must allow that redirect).
	if err := chromedp.Do(ctx,
		chromedp.Navigate(u),
		chromedp.WaitVisible(chromedp.CSS(`main[data-outcome="confirm"]`)),
	); err != nil {
		t.Fatalf("confirmation page: %v", err)
	}
	confirm, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
	if err != nil || !strings.Contains(confirm, "Alice (@alice, U1)") || !strings.Contains(confirm, "T1") {
		t.Fatalf("confirmation page does not name the chat account (%v):\n%s", err, confirm)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#continue`)),
		browsertest.SignIn(alice.Username, alice.Password),
	); err != nil {
		t.Fatalf("link flow in the browser: %v", err)
	}
	outcome, text := browsertest.ResultPage(ctx, t)
	if outcome != "linked" || !strings.Contains(text, "alice@example.com") || !strings.Contains(text, "U1") {
		t.Fatalf("landing page (outcome %q):\n%s", outcome, text)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasPrefix(loc, e.baseURL+"/link/callback?") {
		t.Fatalf("landed on %q (%v)", loc, err)
	}

	l := e.mustLink(slackU1)
	if l.Subject != "sub-alice" || !slices.Equal(l.Groups, []string{"sre"}) {
		t.Fatalf("stored link = %+v", l)
	}
	if _, err := e.resolve(slackU1); err != nil {
		t.Fatalf("Resolve after the browser link: %v", err)
	}

	// Reloading the landing page does not link again: the answer was
	// single use.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`main[data-outcome="error"]`))); err != nil {
		t.Fatalf("reload: %v", err)
	}
}
