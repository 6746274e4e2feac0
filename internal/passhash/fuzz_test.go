package passhash

import (
	"errors"
	"strings"
	"testing"
)

// cheap reports whether verifying v costs little enough for a fuzz
// iteration; hashes at the limits take seconds and are only parsed.
func cheap(v verifier) bool {
	switch v := v.(type) {
	case argon2Params:
		return uint64(v.memory)*uint64(v.time) <= 8*1024
	case bcryptHash:
		return v.cost <= 6
	case shaParams:
		return v.rounds <= 5000
	}
	return false
}

// FuzzVerify feeds arbitrary hashes and passwords to every entry point. None
// may panic; every error must wrap ErrMalformed or ErrUnsupported; Check
// must agree with Verify; and a string Check accepts must be one IsHash
// recognises.
func FuzzVerify(f *testing.F) {
	for _, v := range specVectors {
		f.Add(v.want, v.key)
		f.Add("{SHA512-CRYPT}"+v.want, v.key)
	}
	for _, v := range libxcryptVectors {
		f.Add(v.hash, v.key)
	}
	for _, v := range bcryptVectors {
		f.Add(v.hash, v.key)
		f.Add("{BLF-CRYPT}$2y$"+v.hash[4:], v.key)
	}
	for _, h := range []string{argon2idVector, argon2iVector, argon2dVector, argon2v10Vector, "{ARGON2ID}" + argon2idVector} {
		f.Add(h, vectorPassword)
	}
	for _, h := range []string{
		"", "hunter2", "{PLAIN}secret", "{CRYPT}abiQ6Ep3EYTHc", "$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.",
		"_J9..abcdIPPmXD22F8s", "!!", "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc$AAAAAA",
		"$argon2id$v=19$m=18446744073709551616,t=1,p=1$MDEyMzQ1Njc$AAAAAA",
		"$6$rounds=99999999999999999999$salt$" + strings.Repeat("a", 86),
		"$5$rounds=1000$$" + strings.Repeat("a", 43), "$2b$04$" + strings.Repeat(".", 53),
	} {
		f.Add(h, "pw")
	}
	f.Fuzz(func(t *testing.T, encoded, password string) {
		name, supported := Scheme(encoded)
		if IsHash(encoded) != (name != "") {
			t.Fatalf("IsHash and Scheme disagree on %q", encoded)
		}
		NeedsRehash(encoded)
		v, err := parse(encoded)
		if cerr := Check(encoded); (cerr == nil) != (err == nil) {
			t.Fatalf("Check = %v, parse = %v", cerr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if name == "" || !supported {
			t.Fatalf("Check accepts %q but Scheme = %q, %v", encoded, name, supported)
		}
		if !cheap(v) {
			return
		}
		ok, err := Verify(encoded, password)
		if err != nil {
			if ok || !errors.Is(err, ErrLimit) {
				t.Fatalf("Verify of a checked hash = %v, %v", ok, err)
			}
		}
	})
}
