package passhash

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const benchPassword = "correct horse battery staple"

func BenchmarkHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash(benchPassword); err != nil {
			b.Fatal(err)
		}
	}
}

// benchHashes are hashes of benchPassword in each supported scheme, at the
// parameters met in practice.
func benchHashes(b *testing.B) []struct{ name, hash string } {
	b.Helper()
	h, err := Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	argon2i := argon2Params{memory: 4096, time: 3, threads: 2}.hash([]byte(benchPassword), []byte("0123456789abcdef"), 32)
	hashes := []struct{ name, hash string }{
		{"argon2id-m19456-t2-p1", h},
		{"argon2i-m4096-t3-p2", argon2i},
	}
	for _, cost := range []int{10, 12} {
		h, err := bcrypt.GenerateFromPassword([]byte(benchPassword), cost)
		if err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, struct{ name, hash string }{"bcrypt-" + string(h[4:6]), string(h)})
	}
	for _, s := range []struct{ name, setting string }{
		{"sha256-crypt-5000", "$5$saltstring"},
		{"sha512-crypt-5000", "$6$saltstring"},
		{"sha512-crypt-656000", "$6$rounds=656000$saltstring"},
	} {
		h, err := shaCrypt(s.setting, []byte(benchPassword))
		if err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, struct{ name, hash string }{s.name, h})
	}
	return hashes
}

func BenchmarkVerify(b *testing.B) {
	for _, h := range benchHashes(b) {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := Verify(h.hash, benchPassword); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// BenchmarkVerifyAtLimit is the most one imported hash can make a login
// cost: each scheme at the largest parameters Verify accepts. Expect
// seconds per operation; run it with -bench VerifyAtLimit -benchtime 1x.
func BenchmarkVerifyAtLimit(b *testing.B) {
	pw := []byte(strings.Repeat("p", 64)) // the longest password the sha-crypt budget admits at the rounds limit
	salt := []byte("0123456789abcdef")
	argon2At := func(threads uint8) func() (string, error) {
		return func() (string, error) {
			return argon2Params{id: true, memory: maxArgon2Memory, time: maxArgon2Time, threads: threads}.hash(pw, salt, 32), nil
		}
	}
	for _, c := range []struct {
		name string
		make func() (string, error)
	}{
		{"argon2id-m1GiB-t10-p1", argon2At(1)},
		{"argon2id-m1GiB-t10-p16", argon2At(maxArgon2Threads)},
		{"bcrypt-16", func() (string, error) {
			h, err := bcrypt.GenerateFromPassword(pw, maxBcryptCost)
			return string(h), err
		}},
		{"sha256-crypt-10000000", func() (string, error) { return shaCrypt("$5$rounds=10000000$0123456789abcdef", pw) }},
		{"sha512-crypt-10000000", func() (string, error) { return shaCrypt("$6$rounds=10000000$0123456789abcdef", pw) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			h, err := c.make()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if ok, err := Verify(h, string(pw)); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
