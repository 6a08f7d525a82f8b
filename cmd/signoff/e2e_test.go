package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signoff-dev/signoff/internal/browsertest"
)

// TestDevModeEndToEnd walks the newcomer's path with the real binary: in a
// folder holding only config.example.yaml, `signoff serve --dev` starts; the
// command it prints creates a request and waits; a click in the dev console
// (headless Chromium) approves it; the waiting command exits 0; the dev
// webhook receiver got exactly one signed call; after a graceful stop the
// audit log verifies.
func TestDevModeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds the binary and drives a browser")
	}
	browser := browsertest.New(t, 3*time.Minute)
	bin := buildSignoff(t)
	dir := t.TempDir()
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.example.yaml"), example, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)

	server := exec.Command(bin, "serve", "--dev")
	server.Dir = dir
	server.Env = append(os.Environ(), "SIGNOFF_LISTEN="+addr)
	var serverLog bytes.Buffer
	server.Stderr = &serverLog
	out, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	serverDone := make(chan error, 1)
	go func() { serverDone <- server.Wait() }()
	t.Cleanup(func() {
		_ = server.Process.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	})

	printed := readBanner(t, out)
	console := regexp.MustCompile(`console:\s+(\S+)`).FindStringSubmatch(printed["banner"])
	if console == nil {
		t.Fatalf("banner names no console URL:\n%s", printed["banner"])
	}
	command := printed["command"]
	if !strings.Contains(command, " request ") || !strings.Contains(command, "--wait") {
		t.Fatalf("printed command %q", command)
	}

	// Run the printed command exactly as a person would paste it.
	req := exec.Command("sh", "-c", command)
	req.Dir = dir
	var reqOut bytes.Buffer
	req.Stdout, req.Stderr = &reqOut, &reqOut
	if err := req.Start(); err != nil {
		t.Fatal(err)
	}
	reqDone := make(chan error, 1)
	go func() { reqDone <- req.Wait() }()

	// Wait for the request to show up, then approve it in the browser.
	waitFor(t, 60*time.Second, "the request in the console", func() bool {
		body := httpGet(t, console[1])
		return strings.Contains(body, `data-state="pending"`)
	})
	if err := chromedp.Do(browser,
		chromedp.Navigate(console[1]),
		chromedp.WaitVisible(chromedp.CSS(`section.card[data-state="pending"]`)),
		chromedp.SetValue(chromedp.CSS(`section.card[data-state="pending"] select[name=approver]`), "alice"),
		chromedp.Click(chromedp.CSS(`section.card[data-state="pending"] button.approve`)),
		chromedp.WaitVisible(chromedp.CSS(`section.card[data-state="approved"]`)),
	); err != nil {
		t.Fatalf("approve in the console: %v\ncommand output:\n%s", err, reqOut.String())
	}

	select {
	case err := <-reqDone:
		if err != nil {
			t.Fatalf("the waiting command failed (%v):\n%s", err, reqOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the waiting command did not finish after the approval:\n%s", reqOut.String())
	}
	if !strings.Contains(reqOut.String(), "approved") {
		t.Fatalf("command output does not say approved:\n%s", reqOut.String())
	}

	// The executor delivers the signed webhook to the dev receiver.
	base := strings.TrimSuffix(console[1], "/dev")
	var calls []struct {
		RequestID      string `json:"request_id"`
		SignatureValid bool   `json:"signature_valid"`
	}
	waitFor(t, 60*time.Second, "the webhook call", func() bool {
		calls = nil
		if err := json.Unmarshal([]byte(httpGet(t, base+"/dev/webhook")), &calls); err != nil {
			t.Fatal(err)
		}
		return len(calls) > 0
	})
	if len(calls) != 1 || !calls[0].SignatureValid || calls[0].RequestID == "" {
		t.Fatalf("webhook calls %+v, want one with a valid signature", calls)
	}

	// Graceful stop, then the auditor's check.
	if err := server.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-serverDone:
		if err != nil {
			t.Fatalf("server exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop within 15s of SIGTERM")
	}
	verify := exec.Command(bin, "audit", "verify", "--db", filepath.Join(dir, "signoff-data", "signoff.db"))
	res, err := verify.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "intact") {
		t.Fatalf("audit verify: %v\n%s", err, res)
	}
	// Exactly one execution, and it succeeded.
	export, err := exec.Command(bin, "audit", "export", "--db", filepath.Join(dir, "signoff-data", "signoff.db")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(export), `"type":"execution.succeeded"`); n != 1 {
		t.Fatalf("%d execution.succeeded records, want 1:\n%s", n, export)
	}
}

// buildSignoff compiles the signoff binary once per test run.
func buildSignoff(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "signoff")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// readBanner reads the dev-mode start banner: everything up to the
// "Ask for an approval" line, and the command on the line after it.
func readBanner(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var banner strings.Builder
	deadline := time.After(60 * time.Second)
	wantCommand := false
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("server stdout ended before the banner was complete:\n%s", banner.String())
			}
			if wantCommand {
				go func() {
					for range lines { // keep draining so the server never blocks
					}
				}()
				return map[string]string{"banner": banner.String(), "command": strings.TrimSpace(line)}
			}
			banner.WriteString(line + "\n")
			if strings.HasPrefix(line, "Ask for an approval") {
				wantCommand = true
			}
		case <-deadline:
			t.Fatalf("no start banner within 60s; got:\n%s", banner.String())
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
