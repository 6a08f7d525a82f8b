package bot_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryApprovalsReasonHasACode keeps bot.Server.serviceError's mapping
// of approvals refusal reasons to API codes exhaustive: each constant of
// type approvals.Reason is named in one of its cases.
func TestEveryApprovalsReasonHasACode(t *testing.T) {
	reasons := approvalsReasons(t)
	if len(reasons) == 0 {
		t.Fatal("found no approvals.Reason constants")
	}
	mapped := serviceErrorCases(t)
	for _, name := range reasons {
		if !mapped[name] {
			t.Errorf("approvals.%s has no case in serviceError (bot/api.go): give it an API code", name)
		}
	}
}

// approvalsReasons lists the names of the constants declared with type
// Reason in package approvals.
func approvalsReasons(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "approvals", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Reason" {
					for _, n := range vs.Names {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}

// serviceErrorCases returns the approvals.… names listed in the case
// clauses of serviceError in api.go.
func serviceErrorCases(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "api.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "serviceError" {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				if sel, ok := e.(*ast.SelectorExpr); ok {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "approvals" {
						cases[sel.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	if len(cases) == 0 {
		t.Fatal("found no approvals cases in serviceError")
	}
	return cases
}
