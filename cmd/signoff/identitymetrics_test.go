package main

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
)

// scrapeMetrics returns GET /metrics of ts.
func scrapeMetrics(t *testing.T, ts *testServer) string {
	t.Helper()
	return string(testenv.GetOK(t, ts.base+"/metrics"))
}

// containsSample reports whether the scrape text has the sample line want
// (`name{label="value",…} value`), its labels in any order: client_golang
// writes them sorted by name.
func containsSample(text, want string) bool {
	want = sortedSample(want)
	for line := range strings.SplitSeq(text, "\n") {
		if sortedSample(line) == want {
			return true
		}
	}
	return false
}

// sortedSample is a sample line with its labels sorted. It splits labels at
// `",`, enough for the label values signoff's tests look for.
func sortedSample(line string) string {
	open := strings.IndexByte(line, '{')
	end := strings.LastIndex(line, "} ")
	if strings.HasPrefix(line, "#") || open < 0 || end < open {
		return line
	}
	labels := strings.Split(line[open+1:end], `",`)
	for i := range len(labels) - 1 {
		labels[i] += `"`
	}
	slices.Sort(labels)
	return line[:open+1] + strings.Join(labels, ",") + line[end:]
}

// TestServeRunsLinkSweep: with idp and a token encryption key, serve
// runs the link sweep (a first pass at start) and /metrics carries the
// identity families.
func TestServeRunsLinkSweep(t *testing.T) {
	op := testop.New(t, clock.Real{}, "")
	addr := freeLoopbackAddr(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	idp := "public_url: http://localhost:" + port + "\nidp: {issuer: \"" + op.Issuer + "\", client_id: " + testop.ClientID +
		", client_secret: " + testop.ClientSecret + ", scopes: [openid, email, profile, groups, offline_access]," +
		" token_encryption_key: \"0123456789abcdef0123456789abcdef-sweep\"}"
	ts := startDevLinkServer(t, addr, idp)
	var metrics string
	waitFor(t, 20*time.Second, "the first sweep pass", func() bool {
		metrics = scrapeMetrics(t, ts)
		return strings.Contains(metrics, `signoff_link_sweeps_total{result="completed"} 1`+"\n")
	})
	for _, want := range []string{
		"signoff_link_attempts_total 0\n",
		`signoff_links_total{outcome="linked"} 0` + "\n",
		`signoff_links_total{outcome="identity_mismatch"} 0` + "\n",
		`signoff_idp_refresh_failures_total{reason="unavailable"} 0` + "\n",
		`signoff_idp_refresh_failures_total{reason="refused"} 0` + "\n",
		"signoff_links_need_sign_in 0\n",
		`signoff_admin_actions_total{action="link_revoke"} 0` + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
}

// TestServeCountsLinksOnMetrics: a chat account linked through the dev
// console counts as a link attempt and a link on /metrics.
func TestServeCountsLinksOnMetrics(t *testing.T) {
	ts := startDevLinkServer(t, "127.0.0.1:0", "")
	b := newConsoleBrowser(t, ts.base)
	if body := b.link("bob", "bob"); !strings.Contains(body, `data-outcome="linked"`) {
		t.Fatalf("linking bob:\n%s", body)
	}
	metrics := scrapeMetrics(t, ts)
	for _, want := range []string{
		"signoff_link_attempts_total 1\n",
		`signoff_links_total{outcome="linked"} 1` + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	// No sweep in dev mode without an idp section.
	if !strings.Contains(metrics, `signoff_link_sweeps_total{result="completed"} 0`+"\n") {
		t.Errorf("a sweep ran without refresh tokens:\n%s", metrics)
	}
}
