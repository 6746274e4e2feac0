package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// MaxTokenBytes bounds one word token. Longer words are cut (at a character
// boundary) on both the indexing and the query side, so they still match.
const MaxTokenBytes = 64

// prefixMinRunes: a Latin query word of at least this many characters also
// matches longer indexed words that start with it ("meet" finds "meeting");
// shorter ones match whole words only, because a one- or two-letter prefix
// walks a large part of the term dictionary.
const prefixMinRunes = 3

// Token kinds.
const (
	kindWord = iota // letters and digits of non-CJK scripts, lower-cased
	kindCJK1        // one Han, kana or Hangul character
	kindCJK2        // two adjacent CJK characters
)

// isCJK reports whether r is written without spaces between words and is
// therefore indexed by character bigrams: Han (Chinese characters, kanji,
// hanja), Hiragana, Katakana (with the prolonged sound mark), Hangul.
func isCJK(r rune) bool {
	if r < 0x2E80 {
		return false
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r) || r == 0x30FC
}

// isWord reports whether r belongs to a word of a space-separated script:
// letters, digits, and the combining marks inside them.
func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc)
}

// fold maps full-width forms (ＡＢＣ, ２０２６, common in Chinese mail) to
// their ASCII counterparts and half-width katakana to full width, so either
// spelling finds the other.
func fold(r rune) rune {
	if r >= 0xFF00 && r <= 0xFFEF {
		if f := width.LookupRune(r).Folded(); f != 0 {
			return f
		}
	}
	return r
}

// tokenize splits text into index tokens and calls emit for each, in text
// order, duplicates included:
//
//   - a run of word characters is one token, lower-cased (unicode.ToLower)
//     and cut to MaxTokenBytes;
//   - a run of CJK characters yields, when query is false, every character
//     alone and every pair of adjacent characters ("通知会" → 通, 通知, 知,
//     知会, 会). When query is true a run of two or more characters yields only
//     its pairs (every character of the run is inside one of them), and a run
//     of one character yields that character;
//   - everything else (spaces, punctuation, symbols, emoji) separates tokens
//     and is not indexed.
//
// A bigram never spans a separator or a script change: "会议，通知" has no
// 议通 token, and neither has "2026年".
func tokenize(text string, query bool, emit func(tok string, kind int)) {
	var word strings.Builder
	var cjk []rune
	flushWord := func() {
		if word.Len() == 0 {
			return
		}
		emit(word.String(), kindWord)
		word.Reset()
	}
	flushCJK := func() {
		switch {
		case len(cjk) == 0:
		case len(cjk) == 1:
			emit(string(cjk), kindCJK1)
		default:
			for i := range cjk {
				if !query {
					emit(string(cjk[i:i+1]), kindCJK1)
				}
				if i+1 < len(cjk) {
					emit(string(cjk[i:i+2]), kindCJK2)
				}
			}
		}
		cjk = cjk[:0]
	}
	for _, r := range text {
		r = fold(r)
		switch {
		case isCJK(r):
			flushWord()
			cjk = append(cjk, r)
		case isWord(r):
			flushCJK()
			r = unicode.ToLower(r)
			if word.Len()+utf8.RuneLen(r) <= MaxTokenBytes {
				word.WriteRune(r)
			}
		default:
			flushWord()
			flushCJK()
		}
	}
	flushWord()
	flushCJK()
}

// Tokens returns the distinct index tokens of text (see tokenize), in order
// of first appearance. It is what a body or a header is indexed as.
func Tokens(text string) []string {
	seen := map[string]struct{}{}
	var out []string
	tokenize(text, false, func(tok string, _ int) {
		if _, ok := seen[tok]; ok {
			return
		}
		seen[tok] = struct{}{}
		out = append(out, tok)
	})
	return out
}

// QueryToken is one token a match must contain.
type QueryToken struct {
	Text string
	// Prefix: indexed tokens that start with Text match too (Latin words
	// of at least three characters).
	Prefix bool
}

// MaxQueryTokens bounds the tokens of one search term: an IMAP literal may
// carry megabytes, and each token is one term of the index query. Tokens
// past it are dropped, so a very long term can only match more, never
// fewer, messages than it would in full.
const MaxQueryTokens = 32

// QueryTokens tokenises a search term the way bodies are indexed. A message
// matches when it contains every returned token; their order and adjacency
// are not checked (see the package comment).
func QueryTokens(term string) []QueryToken {
	seen := map[string]struct{}{}
	var out []QueryToken
	tokenize(term, true, func(tok string, kind int) {
		if _, ok := seen[tok]; ok || len(out) >= MaxQueryTokens {
			return
		}
		seen[tok] = struct{}{}
		out = append(out, QueryToken{Text: tok, Prefix: kind == kindWord && utf8.RuneCountInString(tok) >= prefixMinRunes})
	})
	return out
}
