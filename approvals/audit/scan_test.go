package audit

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gowebpki/jcs"
)

func TestScannerCanonical(t *testing.T) {
	const (
		canon = "canonical"
		not   = "not canonical"
		bad   = "error"
		dup   = "duplicate"
	)
	for _, tc := range []struct{ in, want string }{
		{`{"a":"\u001f"}`, canon},
		{`{"a":"\u001F"}`, not},
		{`{"a":"\u0041"}`, not},
		{`{"a":"\/"}`, not},
		{`{"a":"\n\r\t\b\f\"\\"}`, canon},
		{`{"a":"\u000a"}`, not},
		{`{"a":"\ud83d\ude00"}`, not},
		{`{"a":"` + "\U0001F600" + `"}`, canon},
		{`{"a":"\ud83d"}`, bad},
		{`{"a":"\ud83dx"}`, bad},
		{`{"a":"\ud83d\u0041"}`, bad},
		{`{"a":"\ude00"}`, bad},
		{`{"a":"\x"}`, bad},
		{`{"a":"\u12"}`, bad},
		{"{\"a\":\"\x01\"}", bad},
		{"{\"a\":\"\xc3\"}", bad},
		{"{\"a\":\"\xed\xa0\x80\"}", bad}, // a surrogate in UTF-8
		{"{\"a\":\"\x7f\u2028\"}", canon},
		{`{"a":"unterminated}`, bad},
		{`{"a":0,"b":-1,"c":123456789012345}`, canon},
		{`{"a":-0}`, not},
		{`{"a":1234567890123456}`, not},
		{`{"a":1.0}`, not},
		{`{"a":1e2}`, not},
		{`{"a":1E+2}`, not},
		{`{"a":01}`, bad},
		{`{"a":1.}`, bad},
		{`{"a":1e}`, bad},
		{`{"a":-}`, bad},
		{`{"a":.5}`, bad},
		{`{"a":+1}`, bad},
		{`{"a":true,"b":false,"c":null}`, canon},
		{`{"a":tru}`, bad},
		{`{"a":nul}`, bad},
		{`{"b":1,"a":2}`, not},
		{`{"a":1,"a":2}`, dup},
		{`{"a":{"c":1,"b":2}}`, not},
		{`{"a":{"b":1,"b":2}}`, dup},
		{`{"a":[{"b":1,"b":2}]}`, dup},
		{`{"a":[],"b":{},"c":[1,[2],{"d":3}]}`, canon},
		{`{"a":[1,2,]}`, bad},
		{`{"a":[,]}`, bad},
		{`{"a":[1 2]}`, bad},
		{`{"a":1,}`, bad},
		{`{"a" 1}`, bad},
		{`{a:1}`, bad},
		{`{"a":1} `, not},
		{` {"a":1}`, not},
		{`{ "a" : 1 }`, not},
		{`{"a":1}x`, bad},
		{`{"a":1`, bad},
		{`[]`, bad},
		{`"a"`, bad},
		{``, bad},
		{"{\"\u00f6\":1,\"\u20ac\":2}", canon},
		{"{\"\u20ac\":1,\"\U0001F600\":2,\"\ufb33\":3}", canon}, // UTF-16 order, not code points
		{"{\"\ufb33\":1,\"\U0001F600\":2}", not},
		{`{"\n":1,"a":2}`, canon},
		{`{"a":1,"\n":2}`, not},
		{`{"a":1,"\u0061":2}`, dup},
		{`{}`, canon},
	} {
		var f topFields
		err := scanTop([]byte(tc.in), &f)
		var got string
		var de *duplicateKeyError
		switch {
		case errors.As(err, &de):
			got = dup
		case err != nil:
			got = bad
		case f.canonical:
			got = canon
		default:
			got = not
		}
		if got != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.in, got, err, tc.want)
		}
		out, jerr := jcs.Transform([]byte(tc.in))
		if got == canon && (jerr != nil || !bytes.Equal(out, []byte(tc.in))) {
			t.Errorf("%s: jcs gives %s (%v)", tc.in, out, jerr)
		}
		if (got == bad || got == dup) && jerr == nil && len(tc.in) > 0 && tc.in[0] == '{' {
			t.Errorf("%s: the scanner refuses it, jcs accepts it as %s", tc.in, out)
		}
	}
}

func TestScannerFields(t *testing.T) {
	line := []byte(`{"data":{"hash":"nested","seq":9},"hash":"h","prev":"p","s\u0065q":7,"type":"t","x":[1]}`)
	var f topFields
	if err := scanTop(line, &f); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[field]string{fSeq: "7", fType: `"t"`, fHash: `"h"`, fPrev: `"p"`, fData: `{"hash":"nested","seq":9}`} {
		if sp := f.val[k]; string(line[sp.s:sp.e]) != want {
			t.Errorf("%s = %s, want %s", fieldNames[k], line[sp.s:sp.e], want)
		}
	}
	if f.val[fTime].ok() || f.unknown.len() != 1 {
		t.Errorf("time %v, unknown %d", f.val[fTime], f.unknown.len())
	}
	// The hash member removed: the top-level one, not data's.
	canonLine := []byte(`{"data":{"hash":"nested"},"hash":"h","prev":"p"}`)
	if err := scanTop(canonLine, &f); err != nil || !f.canonical {
		t.Fatal(err)
	}
	a, b := hashlessParts(canonLine, &f)
	if got := string(a) + string(b); got != `{"data":{"hash":"nested"},"prev":"p"}` {
		t.Errorf("without hash: %s", got)
	}
	for in, want := range map[string]string{
		`{"hash":"h","prev":"p"}`: `{"prev":"p"}`,
		`{"a":1,"hash":"h"}`:      `{"a":1}`,
		`{"hash":"h"}`:            `{}`,
	} {
		if err := scanTop([]byte(in), &f); err != nil {
			t.Fatal(err)
		}
		a, b := hashlessParts([]byte(in), &f)
		if got := string(a) + string(b); got != want {
			t.Errorf("%s without hash: %s, want %s", in, got, want)
		}
	}
}
