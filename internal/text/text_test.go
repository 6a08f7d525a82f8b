package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// cutCase is s cut to n, and what the cut should give.
type cutCase struct {
	s    string
	n    int
	want string
}

// checkCuts calls cut, named name in the failures, on each case.
func checkCuts(t *testing.T, name string, cut func(s string, n int) string, cases []cutCase) {
	t.Helper()
	for _, tc := range cases {
		if got := cut(tc.s, tc.n); got != tc.want {
			t.Errorf("%s(%q, %d) = %q, want %q", name, tc.s, tc.n, got, tc.want)
		}
	}
}

func TestCut(t *testing.T) {
	checkCuts(t, "Cut", Cut, []cutCase{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abc", 5, "abc"},
		{"abcd", 3, "abc"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		// é is 2 bytes, 日 3, 🙂 4: a cut inside one drops all of it.
		{"aé", 2, "a"},
		{"aé", 3, "aé"},
		{"日本", 3, "日"},
		{"日本", 4, "日"},
		{"日本", 5, "日"},
		{"日本", 6, "日本"},
		{"x🙂y", 1, "x"},
		{"x🙂y", 2, "x"},
		{"x🙂y", 4, "x"},
		{"x🙂y", 5, "x🙂"},
		{"🙂", 3, ""},
		// Invalid UTF-8: each stray byte is a character of its own.
		{"\xff\xfe\xfd", 2, "\xff\xfe"},
		{strings.Repeat("\x80", 10), 4, "\x80\x80\x80\x80"},
		{"a\xe6\x97", 2, "a\xe6"},         // a sequence cut short is not valid: its bytes are single
		{"\x80\x80日", 3, "\x80\x80"},      // garbage before a valid character
		{"日\x80\x80\x80", 5, "日\x80\x80"}, // garbage after one
		{"\xf0\x9f\x99", 2, "\xf0\x9f"},   // an incomplete 4-byte sequence
		{"\xed\xa0\x80x", 2, "\xed\xa0"},  // a surrogate is not valid UTF-8
	})
}

func TestCutRunes(t *testing.T) {
	checkCuts(t, "CutRunes", CutRunes, []cutCase{
		{"", 2, ""},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
		{"abc", -2, ""},
		{"日本語", 2, "日本"},
		{"é🙂x", 2, "é🙂"},
		{"\xff\xfe日", 2, "\xff\xfe"},
		{"\xe6\x97x", 1, "\xe6"},
		{"a\xf0\x9f\x99b", 3, "a\xf0\x9f"},
	})
}

func TestTruncate(t *testing.T) {
	checkCuts(t, "Truncate", Truncate, []cutCase{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aé", 2, "a…"},
		{"日本", 4, "日…"},
		{"🙂", 2, "…"},
		{"\xff\xff\xff", 1, "\xff…"},
	})
}

func TestTruncateRunes(t *testing.T) {
	checkCuts(t, "TruncateRunes", TruncateRunes, []cutCase{
		{"日本", 2, "日本"},
		{"日本語", 2, "日本…"},
		{"abc", 0, "…"},
		{"", 0, ""},
		{"\xff\xfe\xfd", 2, "\xff\xfe…"},
	})
}

// boundaries lists where a for-range loop over s sees a character begin,
// and len(s): the only places a cut may fall.
func boundaries(s string) []int {
	var out []int
	for i := range s {
		out = append(out, i)
	}
	return append(out, len(s))
}

// checkCut checks Cut and CutRunes against the definition: the longest
// prefix within the limit that ends on a boundary.
func checkCut(t *testing.T, s string) {
	t.Helper()
	b := boundaries(s)
	for n := -1; n <= len(s)+1; n++ {
		want := ""
		for _, i := range b {
			if i <= n {
				want = s[:i]
			}
		}
		got := Cut(s, n)
		if got != want {
			t.Fatalf("Cut(%q, %d) = %q, want %q", s, n, got, want)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Cut(%q, %d) = %q: not valid UTF-8", s, n, got)
		}
	}
	for n := -1; n <= len(b); n++ {
		want := s
		if n < 0 {
			want = ""
		} else if n < len(b)-1 {
			want = s[:b[n]]
		}
		if got := CutRunes(s, n); got != want {
			t.Fatalf("CutRunes(%q, %d) = %q, want %q", s, n, got, want)
		}
	}
}

func TestCutEveryLimit(t *testing.T) {
	for _, s := range []string{
		"", "a", "héllo wörld", "日本語のテキスト", "🙂🙃x🙂", "é\u0301", // a combining mark is a character of its own
		"\xff", "\x80\x80\x80\x80\x80", "a\xc3", "\xe6\x97\xe6\x97\xa5", "\xf0\x9f\x99\x82\x82\x82",
		"日\xff本\xc3語", "\xc0\xaf", "\xf4\x90\x80\x80",
	} {
		checkCut(t, s)
	}
}

func FuzzCut(f *testing.F) {
	for _, s := range []string{"", "abc", "日本語", "🙂x", "\xff\xfe", "a\xe6\x97"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkCut(t, s)
	})
}
