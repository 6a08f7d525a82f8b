package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/signoff-dev/signoff/api"
)

// TestUnknownFieldAgreesWithEncodingJSON: unknownField names the key that
// encoding/json's strict decoder refuses, for the create body.
func TestUnknownFieldAgreesWithEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"action":"deploy","approvers":["me"]}`,
		`{"ACTION":"deploy","Params":{"x":"y"},"extra":1}`,
		`{"zzz":1,"aaa":2}`,
		`{"links":[{"title":"t","url":"u"},{"title":"t","note":"x"}]}`,
		`{"params":{"anything":"x","links":"y"},"reason":"r","later":{"nested":true}}`,
		`{"action":"deploy","params":{"service":"api"},"links":[{"Title":"t","URL":"u"}]}`,
		`{"action":"deploy"}`,
		`{"links":null,"params":null}`,
	}
	for _, body := range bodies {
		var v api.CreateRequest
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.DisallowUnknownFields()
		want := ""
		if err := dec.Decode(&v); err != nil {
			want = err.Error()
		}
		got := ""
		if name, ok := unknownField([]byte(body), reflect.TypeOf(&v)); ok {
			got = fmt.Sprintf("json: unknown field %q", name)
		}
		if got != want {
			t.Errorf("%s: unknownField says %q, encoding/json %q", body, got, want)
		}
	}
	if _, ok := unknownField([]byte(`{"action":`), reflect.TypeOf(api.CreateRequest{})); ok {
		t.Error("a truncated body has an unknown field")
	}
}
