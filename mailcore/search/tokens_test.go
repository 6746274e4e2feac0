package search

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"two-character word", "通知", []string{"通", "通知", "知"}},
		{"one character", "年", []string{"年"}},
		{"sentence", "关于召开全省工作会议的通知", []string{
			"关", "关于", "于", "于召", "召", "召开", "开", "开全", "全", "全省", "省", "省工",
			"工", "工作", "作", "作会", "会", "会议", "议", "议的", "的", "的通", "通", "通知", "知",
		}},
		{"mixed", "2026年工作要点 report", []string{
			"2026", "年", "年工", "工", "工作", "作", "作要", "要", "要点", "点", "report",
		}},
		{"latin lower-cased", "Work REPORT, work-Report!", []string{"work", "report"}},
		{"punctuation splits cjk", "会议，通知", []string{"会", "会议", "议", "通", "通知", "知"}},
		{"full-width folded", "ＡＢＣ２０２６", []string{"abc2026"}},
		{"half-width katakana folded", "ﾒｰﾙ", []string{"メ", "メー", "ー", "ール", "ル"}},
		{"kana and hangul", "メール 한국", []string{"メ", "メー", "ー", "ール", "ル", "한", "한국", "국"}},
		{"accents kept, case folded", "Ünïcode café", []string{"ünïcode", "café"}},
		{"emoji and symbols dropped", "🙂 €100 ☆", []string{"100"}},
		{"empty", "", nil},
		{"long word cut", strings.Repeat("a", 100), []string{strings.Repeat("a", MaxTokenBytes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tokens(tt.in)
			// Tokens dedupes: compare against the wanted list deduplicated.
			var want []string
			seen := map[string]bool{}
			for _, w := range tt.want {
				if !seen[w] {
					seen[w] = true
					want = append(want, w)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Tokens(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

func TestQueryTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []QueryToken
	}{
		{"two-character word", "通知", []QueryToken{{Text: "通知"}}},
		{"one character", "通", []QueryToken{{Text: "通"}}},
		{"sentence: bigrams only", "工作会议", []QueryToken{{Text: "工作"}, {Text: "作会"}, {Text: "会议"}}},
		{"mixed", "2026年工作要点 report", []QueryToken{
			{Text: "2026", Prefix: true}, {Text: "年工"}, {Text: "工作"}, {Text: "作要"}, {Text: "要点"}, {Text: "report", Prefix: true},
		}},
		{"latin case-insensitive", "REPORT", []QueryToken{{Text: "report", Prefix: true}}},
		{"short word exact", "of it", []QueryToken{{Text: "of"}, {Text: "it"}}},
		{"digit and character", "2026年", []QueryToken{{Text: "2026", Prefix: true}, {Text: "年"}}},
		{"punctuation only", "!!! ...", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := QueryTokens(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("QueryTokens(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestQueryTokensIndexed: every token of a query for a substring of a text
// is among the text's index tokens (or, for a prefix token, a prefix of one)
// — the property that makes the index find what a substring scan would.
func TestQueryTokensIndexed(t *testing.T) {
	text := "各位同事：定于3月8日上午9时召开全省工作会议，请准时参加。Work report 2026年工作要点"
	idx := Tokens(text)
	rs := []rune(text)
	for i := range rs {
		for j := i + 1; j <= len(rs) && j <= i+8; j++ {
			sub := string(rs[i:j])
			for _, q := range QueryTokens(sub) {
				found := false
				for _, tok := range idx {
					if tok == q.Text || (q.Prefix && strings.HasPrefix(tok, q.Text)) {
						found = true
						break
					}
				}
				// A Latin word cut in the middle (substring "ork") is not a
				// word prefix; only CJK and whole/prefix words are promised.
				if !found && !isWordQuery(q, sub) {
					t.Errorf("substring %q: token %q not indexed", sub, q.Text)
				}
			}
		}
	}
}

func isWordQuery(q QueryToken, sub string) bool {
	for _, r := range q.Text {
		if isCJK(r) {
			return false
		}
	}
	return true
}

func FuzzTokens(f *testing.F) {
	f.Add("关于召开全省工作会议的通知 2026年 Report")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range Tokens(s) {
			if tok == "" || strings.ContainsAny(tok, " \t\n'\"*:#") || len(tok) > MaxTokenBytes {
				t.Fatalf("bad token %q from %q", tok, s)
			}
		}
		QueryTokens(s)
	})
}

// TestQueryTokensCapped: a huge term (an IMAP literal) yields a bounded
// query, keeping its first tokens.
func TestQueryTokensCapped(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "w%d 第%d号 ", i, i)
	}
	got := QueryTokens(b.String())
	if len(got) != MaxQueryTokens || got[0].Text != "w0" {
		t.Fatalf("%d tokens, first %+v; want %d starting with w0", len(got), got[0], MaxQueryTokens)
	}
}
