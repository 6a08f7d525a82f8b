package chatflow

import (
	"encoding/json"
	"net/http"
)

// RejectReason is why a chat platform's callback was refused before
// anything in it was trusted: a signature or token that does not verify,
// a stale timestamp, a workspace or tenant signoff does not serve, …
// The adapters write it to the callback.rejected audit record
// (approvals.Service.RecordRejectedCallback, which also counts it in
// /metrics), to their log and, as the error code, to the HTTP answer.
// The values are stable. Those every adapter uses are declared here,
// once; each adapter declares its platform's own beside its checks.
type RejectReason string

// Reasons a callback is refused on every platform.
const (
	// RejectBadSignature: the callback's signature does not verify.
	RejectBadSignature RejectReason = "bad_signature"
	// RejectBodyTooLarge: the body is larger than the adapter reads, so
	// it cannot be verified.
	RejectBodyTooLarge RejectReason = "body_too_large"
	// RejectUnreadableBody: the body could not be read.
	RejectUnreadableBody RejectReason = "unreadable_body"
)

// WriteError answers a refused callback with a small JSON error,
// {"error": {"code": code, "message": message}}, and the given status.
// The platforms ignore the body; it helps whoever debugs with curl.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
