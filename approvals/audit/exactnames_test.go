package audit

import (
	"strings"
	"testing"
)

// A forged line may carry a member whose name folds to a real one ("ſeq",
// with a long s, reads as seq in encoding/json, and the later member wins).
// The verifier checks the exact names, so ParseRecord must not return the
// folded member's value: it refuses the record instead.
func TestParseRecordRefusesFoldedNames(t *testing.T) {
	const head = `{"action":"deploy","hash":"h","prev":"p","request_id":"req_1","seq":5,"time":"2026-03-01T12:00:00Z","type":"request.created"`
	for _, tc := range []struct{ name, line, want string }{
		{"long s seq", head + `,"ſeq":999}`, `"ſeq" is not "seq"`},
		{"long s source", head + `,"ſource":"forged"}`, `"ſource" is not "source"`},
		{"upper case", head + `,"SEQ":9}`, `"SEQ" is not "seq"`},
		{"in actor", `{"action":"deploy","actor":{"issuer":"https://idp","subject":"alice","ſubject":"mallory"},"hash":"h","prev":"p","seq":5,"time":"t","type":"vote.approve"}`,
			`actor."ſubject" is not actor."subject"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tc.line))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseRecord(%s) = %+v, %v; want an error containing %s", tc.line, r, err, tc.want)
			}
		})
	}
	// Unknown names that fold to nothing known are kept as before.
	if r, err := ParseRecord([]byte(head + `,"zz_future":1}`)); err != nil || r.Seq != 5 {
		t.Fatalf("a record with an unknown member: %+v, %v", r, err)
	}
}
