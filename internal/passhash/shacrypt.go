package passhash

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt as specified by Ulrich Drepper, "Unix crypt using SHA-256 and
// SHA-512" (https://www.akkadia.org/drepper/SHA-crypt.txt). Step numbers in
// the comments below are those of the algorithm section of that text.

const (
	shaSaltMax       = 16        // spec: salt is truncated to 16 characters
	shaRoundsDefault = 5000      // spec: rounds when no rounds=N$ is given
	shaRoundsMin     = 1000      // spec: smaller values are clamped up
	shaRoundsMax     = 999999999 // spec: larger values are clamped down
)

// shaVariant is one of the two SHA-crypt functions.
type shaVariant struct {
	name    string // scheme name reported by Scheme
	id      string // "$5$" or "$6$"
	newHash func() hash.Hash
	size    int      // digest length in bytes
	block   int      // compression block length in bytes
	pad     int      // minimum padding the hash appends (0x80 and the length)
	encLen  int      // length of the encoded digest
	perm    [][3]int // byte order of the final encoding, three bytes per four characters
	tail    []int    // the bytes left over after perm, most significant first
}

var (
	sha256Crypt = &shaVariant{
		name: "sha256-crypt", id: "$5$", newHash: sha256.New, size: 32, block: 64, pad: 9, encLen: 43,
		perm: [][3]int{
			{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
			{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
		},
		tail: []int{31, 30},
	}
	sha512Crypt = &shaVariant{
		name: "sha512-crypt", id: "$6$", newHash: sha512.New, size: 64, block: 128, pad: 17, encLen: 86,
		perm: [][3]int{
			{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
			{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
			{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
			{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
			{62, 20, 41},
		},
		tail: []int{63},
	}
)

// shaParams is a parsed SHA-crypt string.
type shaParams struct {
	v      *shaVariant
	rounds int    // after clamping to [shaRoundsMin, shaRoundsMax]
	custom bool   // rounds=N$ was present
	salt   string // as written in a setting; at most shaSaltMax bytes in a stored hash
	sum    string // encoded digest; empty in a setting
}

// parseShaSetting reads "$5$[rounds=N$]salt[$rest]" the way the spec's
// reference code does: N is clamped into [1000, 999999999] and the salt ends
// at the next '$'. The salt is returned as written; shaCrypt truncates it to
// 16 bytes as the spec does when generating, parseSha (the strict reader for
// stored hashes) refuses a longer one.
func parseShaSetting(s string) (p shaParams, rest string, err error) {
	switch {
	case strings.HasPrefix(s, sha256Crypt.id):
		p.v = sha256Crypt
	case strings.HasPrefix(s, sha512Crypt.id):
		p.v = sha512Crypt
	default:
		return p, "", fmt.Errorf("%w: not a SHA-crypt string", ErrMalformed)
	}
	s = s[len(p.v.id):]
	p.rounds = shaRoundsDefault
	if r, ok := strings.CutPrefix(s, "rounds="); ok {
		digits, after, found := strings.Cut(r, "$")
		n, valid := parseDecimal(digits)
		if !found || !valid {
			return p, "", fmt.Errorf("%w: %s: bad rounds field", ErrMalformed, p.v.name)
		}
		p.rounds = int(min(max(n, shaRoundsMin), shaRoundsMax))
		p.custom = true
		s = after
	}
	p.salt, rest, _ = strings.Cut(s, "$")
	return p, rest, nil
}

// parseSha reads a stored SHA-crypt hash strictly: the salt must be at most
// 16 printable bytes and the digest must have its exact encoded length.
// Rounds are clamped as the spec requires, and then refused above
// maxShaRounds.
func parseSha(s string) (shaParams, error) {
	p, rest, err := parseShaSetting(s)
	if err != nil {
		return p, err
	}
	if len(p.salt) > shaSaltMax {
		return p, fmt.Errorf("%w: %s: salt longer than %d characters", ErrMalformed, p.v.name, shaSaltMax)
	}
	for i := 0; i < len(p.salt); i++ {
		if c := p.salt[i]; c < 0x21 || c == 0x7f {
			return p, fmt.Errorf("%w: %s: control or space character in salt", ErrMalformed, p.v.name)
		}
	}
	if len(rest) != p.v.encLen || !isCrypt64(rest) {
		return p, fmt.Errorf("%w: %s: digest is not %d characters of [./0-9A-Za-z]", ErrMalformed, p.v.name, p.v.encLen)
	}
	p.sum = rest
	if p.rounds > maxShaRounds {
		return p, fmt.Errorf("%w: %s rounds=%d above %d", ErrLimit, p.v.name, p.rounds, maxShaRounds)
	}
	return p, nil
}

// work estimates the compression-function calls of the rounds loop (step
// 21) for a password of n bytes: each round hashes at most two copies of
// the password sequence, the salt sequence and one digest.
func (p shaParams) work(n int) int64 {
	return int64(p.rounds) * int64(p.v.blocks(2*n+len(p.salt)+p.v.size))
}

func (v *shaVariant) blocks(n int) int {
	return (n + v.pad + v.block - 1) / v.block
}

// maxWork is the budget of one verification: the work of maxShaRounds
// rounds for a password of up to 64 bytes and a 16-byte salt. Without it a
// 4 KiB password against a rounds=10000000 hash would hash some 80 GB.
func (v *shaVariant) maxWork() int64 {
	return shaParams{v: v, rounds: maxShaRounds, salt: strings.Repeat("s", shaSaltMax)}.work(64)
}

// string formats p the way the spec's reference code does.
func (p shaParams) string() string {
	var b strings.Builder
	b.WriteString(p.v.id)
	if p.custom {
		b.WriteString("rounds=")
		b.WriteString(strconv.Itoa(p.rounds))
		b.WriteByte('$')
	}
	b.WriteString(p.salt)
	b.WriteByte('$')
	b.WriteString(p.sum)
	return b.String()
}

// shaCrypt computes the spec's crypt(key, setting): setting is
// "$5$[rounds=N$]salt" or "$6$..."; anything after the salt is ignored.
func shaCrypt(setting string, key []byte) (string, error) {
	p, _, err := parseShaSetting(setting)
	if err != nil {
		return "", err
	}
	if len(p.salt) > shaSaltMax {
		p.salt = p.salt[:shaSaltMax]
	}
	p.sum = p.v.encode(p.v.sum(key, []byte(p.salt), p.rounds))
	return p.string(), nil
}

// verifySha reports whether key matches the parsed hash p, in constant time
// with respect to the digest.
func verifySha(p shaParams, key []byte) (bool, error) {
	if p.work(len(key)) > p.v.maxWork() {
		return false, fmt.Errorf("%w: %s rounds=%d with a %d-byte password", ErrLimit, p.v.name, p.rounds, len(key))
	}
	got := p.v.encode(p.v.sum(key, []byte(p.salt), p.rounds))
	return subtle.ConstantTimeCompare([]byte(got), []byte(p.sum)) == 1, nil
}

// sum is steps 1 to 21 of the algorithm: it returns the final digest C.
func (v *shaVariant) sum(key, salt []byte, rounds int) []byte {
	// Steps 4-8: digest B = H(key salt key).
	h := v.newHash()
	h.Write(key)
	h.Write(salt)
	h.Write(key)
	b := h.Sum(nil)

	// Steps 1-3 and 9-12: digest A.
	h.Reset()
	h.Write(key)
	h.Write(salt)
	n := len(key)
	for ; n > v.size; n -= v.size {
		h.Write(b)
	}
	h.Write(b[:n])
	for n := len(key); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(key)
		}
	}
	a := h.Sum(nil)

	// Steps 13-16: byte sequence P, len(key) bytes of DP = H(key^len(key)).
	h.Reset()
	for range len(key) {
		h.Write(key)
	}
	dp := h.Sum(nil)
	pseq := make([]byte, len(key))
	for i := 0; i < len(pseq); i += v.size {
		copy(pseq[i:], dp)
	}

	// Steps 17-20: byte sequence S, len(salt) bytes of DS = H(salt^(16+A[0])).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	ds := h.Sum(nil)
	sseq := make([]byte, len(salt))
	for i := 0; i < len(sseq); i += v.size {
		copy(sseq[i:], ds)
	}

	// Step 21: the rounds loop, starting from C = A.
	c := a
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pseq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(pseq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pseq)
		}
		c = h.Sum(c[:0])
	}
	return c
}

// encode is the base-64 part of step 22: the digest's bytes, reordered by v.perm, in the
// crypt base-64 alphabet, least significant six bits first.
func (v *shaVariant) encode(c []byte) string {
	out := make([]byte, 0, v.encLen)
	for _, g := range v.perm {
		out = b64From24(out, c[g[0]], c[g[1]], c[g[2]], 4)
	}
	switch len(v.tail) {
	case 2:
		out = b64From24(out, 0, c[v.tail[0]], c[v.tail[1]], 3)
	case 1:
		out = b64From24(out, 0, 0, c[v.tail[0]], 2)
	}
	return string(out)
}

func b64From24(dst []byte, b2, b1, b0 byte, n int) []byte {
	w := uint32(b2)<<16 | uint32(b1)<<8 | uint32(b0)
	for ; n > 0; n-- {
		dst = append(dst, crypt64[w&0x3f])
		w >>= 6
	}
	return dst
}

// crypt64 is the alphabet of crypt(3) hashes (DES, MD5, SHA-crypt).
const crypt64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func isCrypt64(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(crypt64, s[i]) < 0 {
			return false
		}
	}
	return true
}

func (p shaParams) verify(password []byte) (bool, error) {
	return verifySha(p, password)
}
