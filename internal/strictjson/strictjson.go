// Package strictjson refuses JSON that encoding/json reads otherwise than
// a strict reader would: invalid UTF-8 (which encoding/json turns into
// U+FFFD), an object holding one key twice or in two spellings that differ
// only in case (encoding/json keeps the last), and an object key that
// matches a struct field only when case is ignored (encoding/json matches
// "Action" to the field "action").
//
// Each is a way to send a body that a gateway, a log or a person reads one
// way and the server another: {"action":"nothing-risky", "Action":"deploy"}
// asks for what a case-sensitive reader does not see. Syntax errors are
// left to the decoder that reads the body, which names them better.
package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Error says what is wrong and where: Offset is the byte offset in the
// document at or just before the problem.
type Error struct {
	Offset int64
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Check checks data, a JSON document to be decoded into a value of type t
// (nil: no struct fields to compare keys with). It returns nil for a
// document that is not valid JSON: the decoder reports that.
func Check(data []byte, t reflect.Type) *Error {
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return &Error{Offset: int64(off), Msg: "the body is not valid UTF-8: send text encoded as UTF-8"}
	}
	var names *fieldNames
	if t != nil {
		names = namesOf(t)
	}
	suspect, err := checkKeys(data, names)
	if err != nil {
		return err
	}
	if !suspect {
		// No key is a struct field's name in another case: nothing for
		// the slower, path-aware walk below to find.
		return nil
	}
	var v any
	if json.Unmarshal(data, &v) != nil {
		return nil
	}
	if msg := checkFields(v, t, ""); msg != "" {
		return &Error{Msg: msg}
	}
	return nil
}

// frame is an open object or array while checkKeys reads the tokens.
type frame struct {
	object bool
	// keys maps each key of the object, folded, to its spelling.
	keys map[string]string
	// wantKey is set when the object's next string is a key.
	wantKey bool
}

// fieldNames are the JSON names of the struct fields anywhere in a type:
// as they are spelt, and folded.
type fieldNames struct {
	exact, folded map[string]bool
}

// namesByType caches fieldNames by reflect.Type: a body's type is one of
// a few, and checked on every call.
var namesByType sync.Map

// namesOf returns the fieldNames of t, the struct, slice, array, map and
// pointer types it is made of included.
func namesOf(t reflect.Type) *fieldNames {
	if n, ok := namesByType.Load(t); ok {
		return n.(*fieldNames)
	}
	n := &fieldNames{exact: map[string]bool{}, folded: map[string]bool{}}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for name, ft := range jsonFields(t) {
			n.exact[name] = true
			n.folded[fold(name)] = true
			walk(ft)
		}
	}
	walk(t)
	namesByType.Store(t, n)
	return n
}

// suspect reports whether key could name a field of names only when case
// is ignored.
func (n *fieldNames) suspect(key string) bool {
	return n != nil && !n.exact[key] && n.folded[fold(key)]
}

// checkKeys refuses an object with a key twice, or in two spellings that
// encoding/json would match to the same struct field. It reports whether
// any key is suspect in names (a field's name in another case).
func checkKeys(data []byte, names *fieldNames) (suspect bool, _ *Error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return suspect, nil
		}
		if err != nil {
			return false, nil // the decoder names syntax errors
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, keys: map[string]string{}, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			top := (*frame)(nil)
			if n := len(stack); n > 0 {
				top = stack[n-1]
			}
			if top == nil || !top.object || !top.wantKey {
				valueDone()
				continue
			}
			f := fold(v)
			if prev, dup := top.keys[f]; dup {
				if prev == v {
					return false, &Error{Offset: off, Msg: fmt.Sprintf("the key %q appears twice in one object; send it once", v)}
				}
				return false, &Error{Offset: off, Msg: fmt.Sprintf("the keys %q and %q differ only in case, and both are read as one; send one of them", prev, v)}
			}
			top.keys[f] = v
			top.wantKey = false
			suspect = suspect || names.suspect(v)
		default:
			valueDone()
		}
	}
}

// fold maps every letter of s to one rune of its case-folding orbit, so
// that keys encoding/json would match to one field (K, k and the Kelvin
// sign; s, S and the long s) fold alike: the orbit's ASCII lower-case
// letter where it has one, else its smallest rune. A key of ASCII
// lower-case letters, digits and punctuation, the usual kind, is its own
// fold.
func fold(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] < utf8.RuneSelf && (s[i] < 'A' || s[i] > 'Z')
	}
	if plain {
		return s
	}
	return strings.Map(func(r rune) rune {
		best := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < best {
				best = f
			}
		}
		if best < utf8.RuneSelf {
			return unicode.ToLower(best)
		}
		return best
	}, s)
}

// checkFields walks v, the document decoded generically, along t and
// returns what is wrong with the first object key that names a struct
// field of t only when case is ignored; "" when there is none. path names
// where the object is ("" for the top level).
func checkFields(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			val := m[k]
			ft, ok := fields[k]
			if !ok {
				for name := range fields {
					if fold(name) == fold(k) {
						return fmt.Sprintf("the field %q%s is spelled %q: send it in that spelling", k, where(path), name)
					}
				}
				continue // an unknown field: the decoder refuses it
			}
			if msg := checkFields(val, ft, path+"."+k); msg != "" {
				return msg
			}
		}
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			return ""
		}
		for i, e := range list {
			if msg := checkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); msg != "" {
				return msg
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if msg := checkFields(m[k], t.Elem(), path+"."+k); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func where(path string) string {
	if path == "" {
		return ""
	}
	return " (in " + strings.TrimPrefix(path, ".") + ")"
}

// jsonFields maps the JSON names of t's exported fields to their types,
// as encoding/json names them (the json tag's name, else the field name;
// "-" left out; embedded structs' fields promoted).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					if _, taken := out[n]; !taken {
						out[n] = typ
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
