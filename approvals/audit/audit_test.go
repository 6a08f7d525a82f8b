package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// RFC 8785 section 3.2.2: the published example, through the canonicalizer
// signoff uses. The expected output is also given as the hex dump of its
// UTF-8 bytes from section 3.2.4.
func TestRFC8785Example(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	wantHex := strings.Join(strings.Fields(`
		7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
		75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
		5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
		65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
		5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
		30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d`), "")
	got, err := jcs.Transform([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("canonical form\n got %s\nwant %s", got, want)
	}
	if hex.EncodeToString(got) != wantHex {
		t.Errorf("canonical bytes\n got %x\nwant %s", got, wantHex)
	}
	// Our scanner accepts both, and only calls the output canonical if it
	// can prove it (floats are left to jcs).
	var f topFields
	if err := scanTop([]byte(in), &f); err != nil || f.canonical {
		t.Errorf("scan input: err %v canonical %v", err, f.canonical)
	}
	if err := scanTop(got, &f); err != nil {
		t.Errorf("scan output: %v", err)
	}
}

// RFC 8785 section 3.2.3: members sort by UTF-16 code units, which puts
// U+1F600 (surrogates D83D DE00) before U+FB33, unlike code-point order.
func TestRFC8785Sorting(t *testing.T) {
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	want := "{" +
		`"\r":"Carriage Return",` +
		`"1":"One",` +
		"\"\u0080\":\"Control\"," +
		"\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
		"\"\u20ac\":\"Euro Sign\"," +
		"\"\U0001F600\":\"Emoji: Grinning Face\"," +
		"\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"" +
		"}"
	got, err := jcs.Transform([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("canonical form\n got %q\nwant %q", got, want)
	}
	// The fast path's own ordering test agrees: the output is canonical
	// and strictly sorted, the input is not.
	var f topFields
	if err := scanTop(got, &f); err != nil || !f.canonical {
		t.Errorf("scan output: err %v canonical %v, want canonical", err, f.canonical)
	}
	if err := scanTop([]byte(in), &f); err != nil || f.canonical {
		t.Errorf("scan input: err %v canonical %v, want not canonical", err, f.canonical)
	}
}

// knownRecord holds the characters Go's encoding/json escapes by default
// (<, >, &, U+2028, U+2029), a control character, DEL, non-ASCII text, an
// astral-plane emoji and nested data.
func knownRecord() Record {
	return Record{
		Time:      "2024-05-01T12:34:56.789Z",
		Type:      TypeRequestCreated,
		RequestID: "req_01HXAMPLE",
		Action:    "deploy-prod",
		Actor: &Actor{
			Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/api:ref:refs/heads/main",
			Name: "Zoë Ñúñez", Email: "zoe@example.com", Platform: "slack", Workspace: "T0123", PlatformUser: "U0456",
		},
		Source: "api",
		Data: map[string]any{
			"reason": "ship <fix> & \"verify\"\u2028line\u2029para\ttab\x01ctl\x7f\\",
			"params": map[string]any{"service": "api", "version": "1.4.2", "note": "naïve café ☕ 日本 \U0001F600"},
			"links":  []any{map[string]any{"title": "PR #42", "url": "https://example.com/pr/42?a=1&b=2"}},
			"count":  3, "dry_run": false, "ticket": nil, "big": int64(9007199254740991), "neg": -42,
		},
	}
}

// The expected bytes and hash were computed independently with Python's
// json module, which for float-free records with ASCII keys produces the
// RFC 8785 form:
//
//	python3 -c 'import json,hashlib
//	o={"seq":1,"time":"2024-05-01T12:34:56.789Z","type":"request.created","request_id":"req_01HXAMPLE","action":"deploy-prod",
//	 "actor":{"issuer":"https://token.actions.githubusercontent.com","subject":"repo:acme/api:ref:refs/heads/main","name":"Zo\u00eb \u00d1\u00fa\u00f1ez","email":"zoe@example.com","platform":"slack","workspace":"T0123","platform_user":"U0456"},
//	 "source":"api",
//	 "data":{"reason":"ship <fix> & \"verify\"\u2028line\u2029para\ttab\x01ctl\x7f\\","params":{"service":"api","version":"1.4.2","note":"na\u00efve caf\u00e9 \u2615 \u65e5\u672c \U0001F600"},
//	   "links":[{"title":"PR #42","url":"https://example.com/pr/42?a=1&b=2"}],"count":3,"dry_run":False,"ticket":None,"big":9007199254740991,"neg":-42},
//	 "prev":"0"*64}
//	s=json.dumps(o,sort_keys=True,separators=(",",":"),ensure_ascii=False)
//	print(s); print(hashlib.sha256(s.encode()).hexdigest())'
const (
	knownCanonical = `{"action":"deploy-prod","actor":{"email":"zoe@example.com","issuer":"https://token.actions.githubusercontent.com","name":"Zoë Ñúñez","platform":"slack","platform_user":"U0456","subject":"repo:acme/api:ref:refs/heads/main","workspace":"T0123"},"data":{"big":9007199254740991,"count":3,"dry_run":false,"links":[{"title":"PR #42","url":"https://example.com/pr/42?a=1&b=2"}],"neg":-42,"params":{"note":"naïve café ☕ 日本 ` + "\U0001F600" + `","service":"api","version":"1.4.2"},"reason":"ship <fix> & \"verify\"` + "\u2028line\u2029para" + `\ttab\u0001ctl` + "\x7f" + `\\","ticket":null},"prev":"0000000000000000000000000000000000000000000000000000000000000000","request_id":"req_01HXAMPLE","seq":1,"source":"api","time":"2024-05-01T12:34:56.789Z","type":"request.created"}`
	knownHash      = "7ac2d143696909f9a546f39dec36174692e4b60520f14a80baff77bcc1ef29b3"
)

func TestKnownAnswer(t *testing.T) {
	r, line, err := Seal(knownRecord(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || r.Prev != GenesisPrev {
		t.Fatalf("sealed seq %d prev %s", r.Seq, r.Prev)
	}
	unsealed := r
	unsealed.Hash = ""
	c, err := Canonical(unsealed)
	if err != nil {
		t.Fatal(err)
	}
	if string(c) != knownCanonical {
		t.Errorf("canonical form\n got %s\nwant %s", c, knownCanonical)
	}
	if sum := sha256.Sum256([]byte(knownCanonical)); hex.EncodeToString(sum[:]) != knownHash {
		t.Fatalf("test constants disagree: sha256 of knownCanonical is %x", sum)
	}
	if r.Hash != knownHash {
		t.Errorf("hash %s, want %s", r.Hash, knownHash)
	}
	if h, _ := ComputeHash(r); h != knownHash {
		t.Errorf("ComputeHash %s, want %s", h, knownHash)
	}
	wantLine := strings.Replace(knownCanonical, `"prev":`, `"hash":"`+knownHash+`","prev":`, 1)
	if string(line) != wantLine {
		t.Errorf("sealed line\n got %s\nwant %s", line, wantLine)
	}
	if sum, err := VerifyJSONL(strings.NewReader(wantLine+"\n"), VerifyOptions{}); err != nil || sum.Recanonicalized != 0 {
		t.Errorf("verify known line: %+v %v", sum, err)
	}

	// Go's encoding/json is not an RFC 8785 serializer: with its default
	// HTML escaping it writes \u003c, \u003e, \u0026, \u2028 and \u2029,
	// and the hash changes. (Its map keys are sorted, so that is the only
	// difference here.)
	m := mustParse(t, c)
	goJSON, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`} {
		if !bytes.Contains(goJSON, []byte(esc)) {
			t.Errorf("encoding/json output lacks %s", esc)
		}
	}
	if sum := sha256.Sum256(goJSON); hex.EncodeToString(sum[:]) == knownHash {
		t.Error("encoding/json's bytes gave the same hash; the test proves nothing")
	}
	if again, _ := jcs.Transform(goJSON); string(again) != knownCanonical {
		t.Errorf("jcs of encoding/json output\n got %s\nwant %s", again, knownCanonical)
	}
}

// Seal inserts the hash member into the canonical form instead of
// canonicalizing twice; the bytes must equal Canonical of the sealed record.
func TestSealMatchesCanonical(t *testing.T) {
	recs := []Record{knownRecord(), {Type: TypeIdentityLinked, Time: "2025-01-01T00:00:00Z"}}
	for i := range 60 {
		recs = append(recs, sampleRecord(i))
	}
	var end chainEnd
	for i, r := range recs {
		sealed, line := end.seal(t, r)
		want, err := Canonical(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(line, want) {
			t.Fatalf("record %d: Seal line\n %s\nCanonical\n %s", i, line, want)
		}
	}
	// insertHash places the member last when nothing sorts after "hash",
	// and alone in an empty object.
	for in, want := range map[string]string{
		`{"action":"a"}`: `{"action":"a","hash":"h"}`,
		`{}`:             `{"hash":"h"}`,
		`{"prev":"p"}`:   `{"hash":"h","prev":"p"}`,
	} {
		got, ok := insertHash([]byte(in), "h")
		if !ok || string(got) != want {
			t.Errorf("insertHash(%s) = %s, %v; want %s", in, got, ok, want)
		}
	}
}

func TestParseRecordRoundTrip(t *testing.T) {
	lines := buildChain(t, 12, testKey(1), 5)
	for _, line := range lines {
		r, err := ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Canonical(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, line) {
			t.Fatalf("round trip changed the line\n got %s\nwant %s", again, line)
		}
		if r.Type == TypeCheckpoint {
			if _, ok := r.Data["seq"].(json.Number); !ok {
				t.Errorf("checkpoint data.seq decoded as %T, want json.Number", r.Data["seq"])
			}
		}
	}
	if _, err := ParseRecord([]byte(`{"seq":1,"type":"a","seq":2}`)); err == nil {
		t.Error("ParseRecord accepted a repeated member")
	}
	if _, err := ParseRecord([]byte(`{"seq":1, "data":{"a":1,"b":2,"a":3}}`)); err == nil {
		t.Error("ParseRecord accepted a repeated nested member")
	}
}

func TestFormatTime(t *testing.T) {
	if got := FormatTime(testEpoch.Add(5 * 1e6)); got != "2025-03-14T09:26:53.005Z" {
		t.Errorf("FormatTime = %s", got)
	}
}
