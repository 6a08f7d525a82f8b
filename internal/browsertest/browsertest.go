// Package browsertest starts headless Chromium for end-to-end tests of
// signoff's browser pages (the dev console, the account-link flow).
//
// It looks for Debian's chromium (or $SIGNOFF_CHROMIUM). When none is
// installed the test is skipped with a message saying how to get it, except
// under CI=true, where a missing browser fails the test: CI must run every
// suite. scripts/test installs chromium when it may.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Binary returns the Chromium executable to use, or "" when none is found.
func Binary() string {
	if p := os.Getenv("SIGNOFF_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless browser for t and returns a chromedp context bound
// to it; it is closed when the test ends. timeout bounds the whole test's
// browser use.
func New(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found and CI=true: install Debian's chromium package (scripts/test does so as root) or set SIGNOFF_CHROMIUM")
		}
		t.Skip("no Chromium found: install Debian's chromium package (scripts/test does so as root) or set SIGNOFF_CHROMIUM to run browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now, on a context without a deadline (the first Run's
	// context owns the browser's life), so a broken install fails here.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start Chromium %s: %v", bin, err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, timeout)
	t.Cleanup(cancel)
	return ctx
}

// SignIn fills in and submits the sign-in form of the test IdP
// (internal/testop) as username, then waits for the result page signoff
// answers the IdP's redirect with (main[data-outcome]).
func SignIn(username, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), username),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`main[data-outcome]`)),
	)
}

// ResultPage is the signoff result page the browser is on: main's
// data-outcome and the text of #result.
func ResultPage(ctx context.Context, t *testing.T) (outcome, text string) {
	t.Helper()
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`main`), "data-outcome"))
	if err != nil {
		t.Fatalf("read the page's outcome: %v", err)
	}
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
	if err != nil {
		t.Fatalf("read the page's result: %v", err)
	}
	return attr.Value, text
}
