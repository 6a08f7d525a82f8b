package devconsole

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/executor"
)

// maxWebhookCalls is how many received calls the console remembers.
const maxWebhookCalls = 50

// WebhookCall is one delivery dev mode's built-in receiver got.
type WebhookCall struct {
	Time           time.Time `json:"time"`
	RequestID      string    `json:"request_id"`
	Action         string    `json:"action"`
	IdempotencyKey string    `json:"idempotency_key"`
	// SignatureValid says whether Signoff-Signature verified with the
	// action's webhook secret.
	SignatureValid bool   `json:"signature_valid"`
	Problem        string `json:"problem,omitempty"`
}

// webhookLog keeps the most recent calls, newest first.
type webhookLog struct {
	mu    sync.Mutex
	calls []WebhookCall
}

func (l *webhookLog) add(c WebhookCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append([]WebhookCall{c}, l.calls...)
	if len(l.calls) > maxWebhookCalls {
		l.calls = l.calls[:maxWebhookCalls]
	}
}

func (l *webhookLog) list() []WebhookCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]WebhookCall(nil), l.calls...)
}

// receiveWebhook is dev mode's stand-in for a deploy system: it checks the
// signature of an on_approve webhook call with the secret of the action the
// payload names, as a real receiver would (docs/webhooks.md), remembers the
// call for the console, and answers 200 when the signature holds, 401
// otherwise.
func (c *Console) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return
	}
	var p executor.Payload
	call := WebhookCall{Time: c.opts.Clock.Now().UTC(), IdempotencyKey: r.Header.Get(executor.HeaderIdempotencyKey)}
	if err := json.Unmarshal(body, &p); err != nil {
		call.Problem = "body is not a signoff webhook payload: " + err.Error()
		c.webhooks.add(call)
		http.Error(w, call.Problem, http.StatusBadRequest)
		return
	}
	call.RequestID, call.Action = p.ID, p.Action
	secret := ""
	if a, err := c.opts.Service.Policy().Action(p.Action); err == nil && a.OnApprove != nil && a.OnApprove.Webhook != nil {
		secret = a.OnApprove.Webhook.Secret
	}
	if err := executor.Verify(r.Header.Get(executor.HeaderSignature), []byte(secret), body, c.opts.Clock.Now(), executor.DefaultTolerance); err != nil {
		call.Problem = err.Error()
		c.webhooks.add(call)
		http.Error(w, "signature does not verify: "+err.Error(), http.StatusUnauthorized)
		return
	}
	call.SignatureValid = true
	c.webhooks.add(call)
	c.opts.Logger.Info("dev webhook receiver: signed call received", "request", p.ID, "action", p.Action)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok\n")
}

// listWebhooks answers GET /dev/webhook with the calls received, newest
// first, as JSON.
func (c *Console) listWebhooks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(c.webhooks.list())
}
