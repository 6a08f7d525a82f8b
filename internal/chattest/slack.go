package chattest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack/slacktest"

	"github.com/signoff-dev/signoff/internal/testenv"
)

// SlackHeaders returns the headers Slack sends with a callback body at
// Unix time ts: the timestamp, the v0 signature (an HMAC-SHA256 with the
// signing secret over "v0:{ts}:{body}") and the form content type.
func SlackHeaders(secret string, ts int64, body string) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

// SlackCall is one Web API call a SlackAPI answered.
type SlackCall struct {
	Method string
	// Form is the call's form body; JSON its body when it sent JSON.
	Form url.Values
	JSON map[string]any
	// OK: the call was answered with success, not with an answer queued
	// by Fail.
	OK bool
}

// SlackAPI is slack-go's slacktest server answering the Slack Web API
// methods that post, update and delete messages (chat.postMessage,
// chat.update, chat.delete, chat.postEphemeral) and open dialogs
// (views.open) with success, and recording every call. A message is
// answered with its channel and its ts, or a new ts of a sequence shared
// by all successful calls (1772366400.000001 first).
type SlackAPI struct {
	srv        *slacktest.Server
	answers    map[string]func(http.ResponseWriter, SlackCall)
	dmChannels bool

	mu     sync.Mutex
	calls  []SlackCall
	nextTS int
	script map[string][]func(w http.ResponseWriter)
	// ephemeral holds the successful chat.postEphemeral calls
	// NextEphemeral has not returned yet, oldest first.
	ephemeral []SlackCall
}

// SlackOption changes how a SlackAPI answers.
type SlackOption func(*SlackAPI)

// DirectMessageChannels makes a SlackAPI answer a chat.postMessage to a
// user id (U…) as Slack does: with the id of the app's direct message
// channel with that user (D and the rest of the user id), not the id the
// message was sent to.
func DirectMessageChannels() SlackOption {
	return func(f *SlackAPI) { f.dmChannels = true }
}

// NewSlackAPI starts a SlackAPI, stopped when tb ends. answers serve more
// methods (users.info, auth.test, …): each writes the answer to a call not
// answered by Fail. The others are slacktest's.
func NewSlackAPI(tb testing.TB, answers map[string]func(w http.ResponseWriter, call SlackCall), opts ...SlackOption) *SlackAPI {
	f := &SlackAPI{answers: answers, script: map[string][]func(http.ResponseWriter){}}
	for _, opt := range opts {
		opt(f)
	}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		for _, m := range []string{"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "chat.delete"} {
			c.Handle("/"+m, f.handler(m))
		}
		for m := range answers {
			c.Handle("/"+m, f.handler(m))
		}
	})
	f.srv.Start()
	tb.Cleanup(f.srv.Stop)
	return f
}

// URL is the Web API's base URL (it ends with "/").
func (f *SlackAPI) URL() string { return f.srv.GetAPIURL() }

// Fail queues answers for the next calls of method.
func (f *SlackAPI) Fail(method string, answers ...func(w http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[method] = append(f.script[method], answers...)
}

func (f *SlackAPI) handler(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		call := SlackCall{Method: method}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			_ = json.Unmarshal(body, &call.JSON)
		} else {
			call.Form, _ = url.ParseQuery(string(body))
		}
		f.mu.Lock()
		if q := f.script[method]; len(q) > 0 {
			answer := q[0]
			f.script[method] = q[1:]
			f.calls = append(f.calls, call)
			f.mu.Unlock()
			answer(w)
			return
		}
		call.OK = true
		f.calls = append(f.calls, call)
		f.nextTS++
		ts := fmt.Sprintf("1772366400.%06d", f.nextTS)
		f.mu.Unlock()

		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "chat.postMessage", "chat.update", "chat.delete":
			if call.Form.Get("ts") != "" {
				ts = call.Form.Get("ts")
			}
			channel := call.Form.Get("channel")
			if f.dmChannels && method == "chat.postMessage" && strings.HasPrefix(channel, "U") {
				channel = "D" + strings.TrimPrefix(channel, "U")
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": channel, "ts": ts})
		case "chat.postEphemeral":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "message_ts": ts})
			f.mu.Lock()
			f.ephemeral = append(f.ephemeral, call)
			f.mu.Unlock()
		case "views.open":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "view": map[string]any{"id": "V1"}})
		default:
			f.answers[method](w, call)
		}
	}
}

// Calls returns every call, in order.
func (f *SlackAPI) Calls() []SlackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SlackCall(nil), f.calls...)
}

// All returns every call of method, failed or not, in order.
func (f *SlackAPI) All(method string) []SlackCall {
	return slices.DeleteFunc(f.Calls(), func(c SlackCall) bool { return c.Method != method })
}

// OK returns the successful calls of method, in order.
func (f *SlackAPI) OK(method string) []SlackCall {
	return slices.DeleteFunc(f.Calls(), func(c SlackCall) bool { return c.Method != method || !c.OK })
}

// NextEphemeral waits for the next successful chat.postEphemeral.
func (f *SlackAPI) NextEphemeral(t testing.TB) SlackCall {
	t.Helper()
	var c SlackCall
	testenv.Eventually(t, "an ephemeral Slack message", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.ephemeral) == 0 {
			return false
		}
		c, f.ephemeral = f.ephemeral[0], f.ephemeral[1:]
		return true
	})
	return c
}

// NoEphemeral checks that no chat.postEphemeral is waiting to be read.
func (f *SlackAPI) NoEphemeral(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ephemeral) > 0 {
		t.Fatalf("unexpected ephemeral message: %q", f.ephemeral[0].Form.Get("text"))
	}
}
