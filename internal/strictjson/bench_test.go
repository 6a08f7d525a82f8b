package strictjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

// bbody is the shape of a create body.
type bbody struct {
	Action string            `json:"action"`
	Params map[string]string `json:"params"`
	Reason string            `json:"reason"`
	Links  []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"links"`
}

// doc is a typical create body.
var doc = []byte(`{"action":"deploy","params":{"service":"api","version":"1.4.2"},"reason":"benchmark"}`)

// BenchmarkCheck is Check on a typical create body; BenchmarkDecode, the
// decode the API does anyway, is its baseline.
func BenchmarkCheck(b *testing.B) {
	t := reflect.TypeOf(&bbody{})
	for b.Loop() {
		if err := Check(doc, t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for b.Loop() {
		var v bbody
		if err := json.Unmarshal(doc, &v); err != nil {
			b.Fatal(err)
		}
	}
}
