package audit

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// sweepTokens are the bytes and escapes plainEnd and canonString must
// classify right, canonical or not, valid or not.
var sweepTokens = []string{
	`"`, `\`, `\"`, `\\`, `\/`, `\n`, `\u0000`, `\u001f`, `\u001F`, `\u000a`, `\u0022`, `\u0041`,
	`\ud83d\ude00`, `\ud83d`, `","hash":"`, "\x00", "\x1f", "\x7f", "\x80", "\xc3", "\xc3\xb6",
	"\xc0\xaf", "\xed\xa0\x80", "\xef\xbf\xbd", "\xf4\x90\x80\x80", "\xf0\x9f\x98\x80",
}

// TestScanCanonicalLaneSweep puts each token at every offset of an
// eight-byte lane and at every distance from the end of the line, in
// member names and string values, at the top level and nested: the quick
// path accepts only what scanFull calls canonical, with the same members,
// also when it skips hash and prev. The mutation test and the fuzzer start
// from signoff's lines, whose last bytes are always a long type value.
func TestScanCanonicalLaneSweep(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	n := 0
	for _, tok := range sweepTokens {
		for pre := range 17 {
			for post := range 9 {
				s := strings.Repeat("x", pre) + tok + strings.Repeat("y", post)
				for _, l := range []string{
					`{"a":"` + s + `"}`,
					`{"a":"` + s + `","b":1}`,
					`{"` + s + `":1}`,
					`{"a":1,"` + s + `":2}`,
					`{"a":["` + s + `"]}`,
					`{"a":{"` + s + `":"` + s + `"}}`,
					`{"hash":"` + hex + `","prev":"` + hex + `","z":"` + s + `"}`,
					`{"a":"` + s + `","hash":"` + hex + `","prev":"` + hex + `"}`,
				} {
					checkQuickScan(t, []byte(l))
					checkSkipHex(t, []byte(l))
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no lines")
	}
}

// TestVerifyQuickPathSweep: records whose strings put each canonical
// escape and multi-byte character at every lane offset and distance from
// the end of the line verify, and every one of them on the quick path.
func TestVerifyQuickPathSweep(t *testing.T) {
	var lines [][]byte
	var end chainEnd
	for _, tok := range []string{"\"", "\\", "\n", "\x00", "\x1f", "\x7f", "ö", "\U0001F600", "\u2028"} {
		for pre := range 17 {
			s := strings.Repeat("x", pre) + tok
			r := Record{Time: FormatTime(testEpoch), Type: fmt.Sprintf("t.%s", s), Data: map[string]any{"s": s}}
			_, line := end.seal(t, r)
			lines = append(lines, line)
		}
	}
	v := NewVerifier(VerifyOptions{})
	for i, l := range lines {
		var f topFields
		if !scanQuick(l, &f, true) || !v.hashMatches(l, &f) || !v.prevMatches(l, &f) {
			t.Errorf("line %d is not taken on the quick path: %s", i+1, l)
		}
		if err := v.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}
