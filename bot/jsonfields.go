package bot

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// unknownField returns the first object key in data, in document order,
// that the Go type t has no field for, looking into nested structs, slices
// and maps the way encoding/json decodes into them (a key matches a field
// by its json name, exactly or else without regard to case). It reports
// false when every key has a field, or data is not JSON.
//
// readJSON decodes with DisallowUnknownFields, whose refusal is an error
// without a type; this names the field from the body and the target
// instead of from that error's text.
func unknownField(data []byte, t reflect.Type) (string, bool) {
	name, found, _ := firstUnknownField(json.NewDecoder(bytes.NewReader(data)), t)
	return name, found
}

// firstUnknownField reads one JSON value from dec, meant for a Go value of
// type t (nil: anything goes), and returns its first unknown key.
func firstUnknownField(dec *json.Decoder, t reflect.Type) (string, bool, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return "", false, nil // a string, number, boolean or null
	}
	for dec.More() {
		var elem reflect.Type
		switch {
		case delim == '{':
			key, err := dec.Token()
			if err != nil {
				return "", false, err
			}
			name, _ := key.(string)
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				f, ok := jsonField(t, name)
				if !ok {
					return name, true, nil
				}
				elem = f.Type
			case t.Kind() == reflect.Map:
				elem = t.Elem()
			}
		case t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			elem = t.Elem()
		}
		if name, found, err := firstUnknownField(dec, elem); found || err != nil {
			return name, found, err
		}
	}
	_, err = dec.Token() // the closing '}' or ']'
	return "", false, err
}

// jsonField finds the exported field of struct t that encoding/json
// decodes the key name into: the one whose json name is name, else the
// first whose name equals it without regard to case.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	var folded *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch tag {
		case "-":
			continue
		case "":
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
		if folded == nil && strings.EqualFold(tag, name) {
			folded = &f
		}
	}
	if folded != nil {
		return *folded, true
	}
	return reflect.StructField{}, false
}
