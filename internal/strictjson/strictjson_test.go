package strictjson

import (
	"reflect"
	"strings"
	"testing"
)

type link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

type body struct {
	Action string            `json:"action"`
	Params map[string]string `json:"params"`
	Links  []link            `json:"links"`
	Secret string            `json:"-"`
}

func TestCheck(t *testing.T) {
	typ := reflect.TypeOf(body{})
	for doc, want := range map[string]string{
		// What a strict reader and encoding/json read alike.
		`{"action":"deploy","params":{"service":"api","Service":"x"}}`:                     "keys \"service\" and \"Service\" differ only in case",
		`{"action":"deploy","params":{"a":"1","b":"2"},"links":[{"title":"t","url":"u"}]}`: "",
		`{"action":"a"} trailing`:                          "", // syntax: the decoder's to report
		`{"action":`:                                       "",
		`{"params":{"x":{"y":1}},"action":"a"}`:            "",
		`[{"a":1},{"a":2}]`:                                "",
		`{"a":{"b":1},"b":{"a":1}}`:                        "",
		`{"action":"nothing","action":"deploy"}`:           `the key "action" appears twice`,
		`{"params":{"service":"api","service":"billing"}}`: `the key "service" appears twice`,
		`{"links":[{"url":"a","url":"b"}]}`:                `the key "url" appears twice`,
		`{"action":"nothing","Action":"deploy"}`:           `"action" and "Action" differ only in case`,
		`{"action":"a","ACTION":"b"}`:                      `differ only in case`,
		"{\"links\":[],\"lin\u212as\":[]}":                 "differ only in case", // the Kelvin sign folds to k
		`{"Action":"deploy"}`:                              `the field "Action" is spelled "action"`,
		`{"links":[{"TITLE":"t"}]}`:                        `the field "TITLE" (in links[0]) is spelled "title"`,
		`{"unknown":1}`:                                    "", // DisallowUnknownFields refuses it
		"{\"action\":\"1.4.2\xff\"}":                       "not valid UTF-8",
	} {
		err := Check([]byte(doc), typ)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", doc, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err %v, want one saying %q", doc, err, want)
		}
	}
}

func TestCheckOffsets(t *testing.T) {
	doc := `{"action":"a", "action":"b"}`
	err := Check([]byte(doc), nil)
	if err == nil || err.Offset < int64(strings.Index(doc, ", ")) || err.Offset > int64(strings.LastIndex(doc, `"action"`)) {
		t.Fatalf("duplicate key at offset %v", err)
	}
	bad := "{\"a\":\"x\xffy\"}"
	if err := Check([]byte(bad), nil); err == nil || err.Offset != int64(strings.IndexByte(bad, 0xff)) {
		t.Fatalf("invalid UTF-8 at offset %v, want %d", err, strings.IndexByte(bad, 0xff))
	}
}
