package devconsole_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signoff-dev/signoff/internal/browsertest"
	"github.com/signoff-dev/signoff/storage"
)

// TestConsoleInBrowser approves a request the way a person does: open the
// console, pick an approver, click Approve.
func TestConsoleInBrowser(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "<img src=x onerror=alert(1)>")
	ctx := browsertest.New(t, 60*time.Second)

	card := chromedp.CSS(`section.card[id="` + r.ID + `"]`)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/dev"),
		chromedp.WaitVisible(card),
		chromedp.SetValue(chromedp.CSS(`section[id="`+r.ID+`"] select[name=approver]`), "alice"),
		chromedp.Click(chromedp.CSS(`section[id="`+r.ID+`"] button.approve`)),
		chromedp.WaitVisible(chromedp.CSS(`section.card[data-state="approved"]`)),
	); err != nil {
		t.Fatalf("approve in the browser: %v", err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.flash`)))
	if err != nil || !strings.Contains(flash, "alice voted approve") {
		t.Fatalf("flash %q (%v)", flash, err)
	}
	// The requester's markup stayed text: no <img> element was created.
	imgs, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS(`img`), chromedp.AtLeast(0)))
	if err != nil || len(imgs) != 0 {
		t.Fatalf("requester markup became %d elements (%v)", len(imgs), err)
	}
	got, _ := f.svc.Get(context.Background(), r.ID)
	if got.State != storage.StateApproved {
		t.Fatalf("state %s after the click", got.State)
	}
}
