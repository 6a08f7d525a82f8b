package executor

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBackoffIsCappedAndJittered(t *testing.T) {
	base, ceiling := 2*time.Second, 5*time.Minute
	for attempt := 1; attempt <= 200; attempt++ {
		nominal := ceiling
		if attempt <= 8 { // 2s·2^7 = 256s < 5m
			nominal = base << (attempt - 1)
		}
		for range 20 {
			d := backoff(attempt, base, ceiling)
			if d < nominal/2 || d > nominal {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, nominal/2, nominal)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999999", maxDuration, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestSanitize(t *testing.T) {
	got := sanitize("key=s3cret\n\x1b[31mred\u202e \xff"+strings.Repeat("é", 300), "s3cret", 200)
	if strings.Contains(got, "s3cret") || strings.ContainsAny(got, "\n\x1b\u202e") || !utf8.ValidString(got) {
		t.Fatalf("sanitize left %q", got)
	}
	if !strings.HasPrefix(got, "key=[redacted] [31mred ") || len(got) > 200+len("…") {
		t.Fatalf("sanitize = %q (%d bytes)", got, len(got))
	}
	// A secret with a space, split by a newline in the body, is caught too.
	if got := sanitize("a\nb", "a b", 100); got != "[redacted]" {
		t.Fatalf("sanitize = %q", got)
	}
	// Text read up to a limit that ends inside the secret keeps none of it;
	// three characters that merely look like its start are kept.
	if got := sanitize("denied: whsec-7f3a9c", "whsec-7f3a9c-do-not-leak", 100); got != "denied: [redacted]" {
		t.Fatalf("sanitize of a cut-off secret = %q", got)
	}
	if got := sanitize("denied: whs", "whsec-7f3a9c-do-not-leak", 100); got != "denied: whs" {
		t.Fatalf("sanitize = %q", got)
	}
}
