package api_test

// The OpenAPI document against a maintained OpenAPI library and against
// this package's own source: the error codes and states it lists, and the
// fields of every wire type. The routes it lists are checked against the
// server's in package bot.

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/signoff-dev/signoff/api"
)

// openAPIModel parses the document and builds its OpenAPI 3.1 model,
// failing on any error the library reports.
func openAPIModel(t *testing.T) *v3.Document {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.OpenAPI())
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi version %q, want 3.1.x", v)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the v3 model: %v", err)
	}
	return &m.Model
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	if !json.Valid(api.OpenAPI()) {
		t.Fatal("the document is not valid JSON")
	}
	doc, err := libopenapi.NewDocument(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("build the v3 model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	// Against the OpenAPI 3.1 schema itself.
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s (line %d)", e.Message, e.Reason, e.SpecLine)
			for _, f := range e.SchemaValidationErrors {
				t.Errorf("  %s (line %d): %s", f.FieldPath, f.Line, f.Reason)
			}
		}
	}
}

func TestOpenAPIDocumentIsACopy(t *testing.T) {
	a := api.OpenAPI()
	a[0] = 'x'
	if b := api.OpenAPI(); b[0] != '{' {
		t.Fatal("changing the returned document changed the next one")
	}
}

// Every operation: a unique operationId, a summary, path parameters that
// are exactly the template's, and error answers that are ErrorBody.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	m := openAPIModel(t)
	if m.Paths == nil || m.Paths.PathItems.Len() == 0 {
		t.Fatal("no paths")
	}
	ids := map[string]string{}
	template := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range m.Paths.PathItems.FromOldest() {
		if !strings.HasPrefix(path, "/v1/") {
			t.Errorf("%s: every path is under /v1/", path)
		}
		var want []string
		for _, sub := range template.FindAllStringSubmatch(path, -1) {
			want = append(want, sub[1])
		}
		for method, op := range item.GetOperations().FromOldest() {
			name := strings.ToUpper(method) + " " + path
			if op.OperationId == "" || op.Summary == "" {
				t.Errorf("%s: operationId %q, summary %q: both are needed", name, op.OperationId, op.Summary)
			}
			if prev, dup := ids[op.OperationId]; dup {
				t.Errorf("%s: operationId %q is also %s's", name, op.OperationId, prev)
			}
			ids[op.OperationId] = name
			var got []string
			for _, p := range slices.Concat(item.Parameters, op.Parameters) {
				if p.In == "path" {
					got = append(got, p.Name)
					if p.Required == nil || !*p.Required {
						t.Errorf("%s: path parameter %s must be required", name, p.Name)
					}
				}
			}
			if !slices.Equal(sortedCopy(got), sortedCopy(want)) {
				t.Errorf("%s: path parameters %v, the template names %v", name, got, want)
			}
			if op.Responses == nil || op.Responses.Codes.Len() == 0 {
				t.Errorf("%s: no responses", name)
				continue
			}
			if op.Responses.Codes.GetOrZero("500") == nil {
				t.Errorf("%s: no 500 answer (any call may fail on the server's side)", name)
			}
			for code, resp := range op.Responses.Codes.FromOldest() {
				if code < "400" {
					continue
				}
				var mt *v3.MediaType
				if resp.Content != nil {
					mt = resp.Content.GetOrZero("application/json")
				}
				if mt == nil || mt.Schema == nil || mt.Schema.GetReference() != "#/components/schemas/ErrorBody" {
					t.Errorf("%s %s: an error answer must be application/json ErrorBody", name, code)
				}
			}
		}
	}
}

// apiSource type-checks this package's source (not its tests), for the
// constants and types the document must list.
func apiSource(t *testing.T) *types.Package {
	t.Helper()
	pkg, err := checkedSource()
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// checkedSource type-checks once for all the tests.
var checkedSource = sync.OnceValues(func() (*types.Package, error) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check("github.com/signoff-dev/signoff/api", fset, files, nil)
	if err != nil {
		return nil, fmt.Errorf("type-check package api: %w", err)
	}
	return pkg, nil
})

// constantsOf returns the values of the package's string constants that
// match: of a named type, or untyped with a name prefix.
func constantsOf(pkg *types.Package, match func(c *types.Const) bool) []string {
	var out []string
	for _, name := range pkg.Scope().Names() {
		c, ok := pkg.Scope().Lookup(name).(*types.Const)
		if ok && c.Val().Kind() == constant.String && match(c) {
			out = append(out, constant.StringVal(c.Val()))
		}
	}
	slices.Sort(out)
	return out
}

func enumOf(t *testing.T, m *v3.Document, schema string) []string {
	t.Helper()
	proxy := m.Components.Schemas.GetOrZero(schema)
	if proxy == nil {
		t.Fatalf("no schema %s", schema)
	}
	var out []string
	for _, n := range proxy.Schema().Enum {
		out = append(out, n.Value)
	}
	slices.Sort(out)
	return out
}

// The error code enum is exactly api's Code constants, and so for the
// states, votes, execution states and the reasons a request was decided.
func TestOpenAPIEnumsAreTheConstants(t *testing.T) {
	m := openAPIModel(t)
	pkg := apiSource(t)
	ofType := func(name string) func(*types.Const) bool {
		return func(c *types.Const) bool {
			n, ok := c.Type().(*types.Named)
			return ok && n.Obj().Pkg() == pkg && n.Obj().Name() == name
		}
	}
	for _, tc := range []struct {
		schema string
		match  func(*types.Const) bool
	}{
		{"Code", ofType("Code")},
		{"State", ofType("State")},
		{"Decision", ofType("Decision")},
		{"ExecutionStatus", ofType("ExecutionStatus")},
		{"DecidedBy", func(c *types.Const) bool { return strings.HasPrefix(c.Name(), "DecidedBy") }},
	} {
		want := constantsOf(pkg, tc.match)
		if len(want) == 0 {
			t.Errorf("%s: no constants found in package api", tc.schema)
		}
		if got := enumOf(t, m, tc.schema); !slices.Equal(got, want) {
			t.Errorf("schema %s enum %v; package api has %v", tc.schema, got, want)
		}
	}
}

// wireTypes are the types whose JSON the API sends or takes, by schema
// name. TestOpenAPISchemasAreTheWireTypes checks that this is every
// exported struct of the package with JSON tags.
var wireTypes = map[string]reflect.Type{
	"ErrorBody":      reflect.TypeFor[api.ErrorBody](),
	"ErrorDetail":    reflect.TypeFor[api.ErrorDetail](),
	"Request":        reflect.TypeFor[api.Request](),
	"Requester":      reflect.TypeFor[api.Requester](),
	"Vote":           reflect.TypeFor[api.Vote](),
	"Execution":      reflect.TypeFor[api.Execution](),
	"Link":           reflect.TypeFor[api.Link](),
	"CreateRequest":  reflect.TypeFor[api.CreateRequest](),
	"ReasonBody":     reflect.TypeFor[api.ReasonBody](),
	"RequestList":    reflect.TypeFor[api.RequestList](),
	"LinkedAccount":  reflect.TypeFor[api.LinkedAccount](),
	"LinkedAccounts": reflect.TypeFor[api.LinkedAccounts](),
	"Revoked":        reflect.TypeFor[api.Revoked](),
	"LoginConfig":    reflect.TypeFor[api.LoginConfig](),
	"Attestation":    reflect.TypeFor[api.Attestation](),
	"Rule":           reflect.TypeFor[api.Rule](),
	"BreakGlass":     reflect.TypeFor[api.BreakGlass](),
}

// requestBodies are sent by clients only: the server refuses unknown
// fields in them, and decides itself which are required.
var requestBodies = map[string]bool{"CreateRequest": true, "ReasonBody": true}

// Every exported struct with JSON tags has a schema of its name whose
// properties are its JSON fields; a field the server always sends (no
// omitempty) is required; each property's JSON type is the field's.
func TestOpenAPISchemasAreTheWireTypes(t *testing.T) {
	m := openAPIModel(t)
	pkg := apiSource(t)
	var tagged []string
	for _, name := range pkg.Scope().Names() {
		tn, ok := pkg.Scope().Lookup(name).(*types.TypeName)
		if !ok || !tn.Exported() {
			continue
		}
		st, ok := tn.Type().Underlying().(*types.Struct)
		if !ok {
			continue
		}
		for i := range st.NumFields() {
			if _, ok := reflect.StructTag(st.Tag(i)).Lookup("json"); ok {
				tagged = append(tagged, name)
				break
			}
		}
	}
	var listed []string
	for name := range wireTypes {
		listed = append(listed, name)
	}
	if slices.Sort(tagged); !slices.Equal(tagged, sortedCopy(listed)) {
		t.Fatalf("package api's structs with JSON tags are %v; the test's wireTypes list %v: add the new type's schema to openapi.json and to wireTypes", tagged, sortedCopy(listed))
	}
	for name, typ := range wireTypes {
		proxy := m.Components.Schemas.GetOrZero(name)
		if proxy == nil {
			t.Errorf("no schema %s for api.%s", name, typ.Name())
			continue
		}
		s := proxy.Schema()
		fields := jsonFields(typ)
		var props, always []string
		for _, f := range fields {
			props = append(props, f.name)
			if !f.omitempty {
				always = append(always, f.name)
			}
		}
		var got []string
		if s.Properties != nil {
			for k := range s.Properties.KeysFromOldest() {
				got = append(got, k)
			}
		}
		if !slices.Equal(sortedCopy(got), sortedCopy(props)) {
			t.Errorf("schema %s has properties %v; api.%s's JSON fields are %v", name, sortedCopy(got), typ.Name(), sortedCopy(props))
		}
		if requestBodies[name] {
			if s.AdditionalProperties == nil || !s.AdditionalProperties.IsB() || s.AdditionalProperties.B {
				t.Errorf("schema %s: the server refuses unknown fields in it: additionalProperties must be false", name)
			}
		} else if !slices.Equal(sortedCopy(s.Required), sortedCopy(always)) {
			t.Errorf("schema %s requires %v; api.%s always has %v (its fields without omitempty)", name, sortedCopy(s.Required), typ.Name(), sortedCopy(always))
		}
		for _, f := range fields {
			if p := s.Properties.GetOrZero(f.name); p != nil {
				checkJSONType(t, name+"."+f.name, f.typ, p)
			}
		}
	}
}

type jsonField struct {
	name      string
	omitempty bool
	typ       reflect.Type
}

func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty"), typ: f.Type})
	}
	return out
}

var timeType = reflect.TypeFor[time.Time]()

// checkJSONType checks that the schema p describes the JSON encoding/json
// writes for a value of type t.
func checkJSONType(t *testing.T, where string, typ reflect.Type, p *base.SchemaProxy) {
	t.Helper()
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	s := p.Schema()
	ref := strings.TrimPrefix(p.GetReference(), "#/components/schemas/")
	want := ""
	switch {
	case typ == timeType:
		if !slices.Equal(s.Type, []string{"string"}) || s.Format != "date-time" {
			t.Errorf("%s: a time is a string of format date-time, not %v %q", where, s.Type, s.Format)
		}
		return
	case typ.Kind() == reflect.Struct:
		if ref != typ.Name() {
			t.Errorf("%s: want a $ref to schema %s, have %q", where, typ.Name(), p.GetReference())
		}
		return
	case typ.Kind() == reflect.String:
		want = "string"
		if typ.PkgPath() == reflect.TypeFor[api.Code]().PkgPath() && ref != typ.Name() {
			t.Errorf("%s: api.%s's values are schema %s's enum; want a $ref to it, have %q", where, typ.Name(), typ.Name(), p.GetReference())
		}
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Slice:
		want = "array"
		if s.Items == nil || !s.Items.IsA() {
			t.Errorf("%s: an array needs an items schema", where)
		} else {
			checkJSONType(t, where+"[]", typ.Elem(), s.Items.A)
		}
	case typ.Kind() == reflect.Map:
		want = "object"
		if typ.Elem().Kind() == reflect.String {
			if s.AdditionalProperties == nil || !s.AdditionalProperties.IsA() {
				t.Errorf("%s: a map of strings needs additionalProperties: {type: string}", where)
			} else {
				checkJSONType(t, where+"{}", typ.Elem(), s.AdditionalProperties.A)
			}
		}
	default:
		t.Errorf("%s: no JSON type known for Go type %s", where, typ)
		return
	}
	if !slices.Equal(s.Type, []string{want}) {
		t.Errorf("%s: schema type %v, the Go field (%s) is written as %s", where, s.Type, typ, want)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
