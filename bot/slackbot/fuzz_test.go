package slackbot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// FuzzVerifySignature: no header or body makes the verifier panic, and it
// accepts only the signature computed from the secret, timestamp and body.
func FuzzVerifySignature(f *testing.F) {
	f.Add(kaTimestamp, kaSignature, kaBody)
	f.Add("", "", "")
	f.Add("99999999999999999999", "v0=zz", "payload=x")
	f.Add("-1", "v0="+strings.Repeat("a", 64), "")
	f.Fuzz(func(t *testing.T, ts, sig, body string) {
		h := http.Header{}
		h.Set("X-Slack-Request-Timestamp", ts)
		h.Set("X-Slack-Signature", sig)
		at := time.Unix(1531420618, 0)
		if verifySignature(h, []byte(body), kaSecret, at) != nil {
			return
		}
		mac := hmac.New(sha256.New, []byte(kaSecret))
		mac.Write([]byte("v0:" + ts + ":" + body))
		if sig != "v0="+hex.EncodeToString(mac.Sum(nil)) && !strings.EqualFold(sig, "v0="+hex.EncodeToString(mac.Sum(nil))) {
			t.Fatalf("accepted a wrong signature %q", sig)
		}
	})
}

// FuzzCardEscaping: whatever the requester writes, the card keeps within
// Block Kit's limits and the reason and parameters hold no live mrkdwn.
func FuzzCardEscaping(f *testing.F) {
	f.Add("<!channel>", "<https://evil|https://good>", "x")
	f.Add(strings.Repeat("&<>", 2000), "\xff\xfe", "\n\t")
	f.Fuzz(func(t *testing.T, reason, value, key string) {
		r := storage.Request{
			ID: "req_fuzz", Action: "deploy", Reason: reason, Params: map[string]string{key: value, "k2": reason},
			State: storage.StatePending, MinApprovals: 1, Requester: storage.Requester{Name: value, Issuer: key},
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
		}
		_, blocks := renderCard(cardInput{Request: r})
		js := blocksJSON(t, blocks)
		checkBlockKitLimits(t, js)
		for _, id := range []string{"reason", "requester"} {
			if s := sectionText(blockByID(js, id)); strings.ContainsAny(s, "<>") {
				t.Fatalf("%s section holds live mrkdwn: %q", id, s)
			}
		}
		for _, fl := range blockByID(js, "params-0")["fields"].([]any) {
			if s := fl.(map[string]any)["text"].(string); strings.ContainsAny(s, "<>") {
				t.Fatalf("param field holds live mrkdwn: %q", s)
			}
		}
	})
}
