package passhash

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

const (
	vectorPassword = "correct horse battery staple"
	vectorSalt     = "0123456789abcdef"

	// Made with the reference implementation's argon2 command (Debian 12
	// package argon2, 0~20171227): echo -n "$vectorPassword" | argon2
	// "$vectorSalt" -id -t 2 -k 19456 -p 1 -l 32 -e — Hash's parameters.
	argon2idVector = "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0"
	// The same with -i -t 3 -k 4096 -p 2 -l 24.
	argon2iVector = "$argon2i$v=19$m=4096,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$ttYRNF/pXbv/+ti1uLVD6guvn5Dp1kEd"
	// The same with -id -t 1 -k 64 -v 10, password "pw": Argon2 version 1.0.
	argon2v10Vector = "$argon2id$v=16$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$PCBc8EjeGt6A614LEHIromZitYDqud6lTadLYc9NbsY"
	// The same with -d -t 1 -k 64, password "pw".
	argon2dVector = "$argon2d$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$OWI+jDbMD57/0IXy+PjPMMVQepJh3H4VjqtFnZl2Jnw"
)

// bcryptVectors were made with x/crypto/bcrypt GenerateFromPassword at cost
// 4 and checked with libxcrypt's crypt(3) as $2a$, $2b$ and $2y$. The last
// password is 72 bytes, the most bcrypt reads.
var bcryptVectors = []struct{ key, hash string }{
	{"", "$2a$04$Cus1bLeUAfsgF.EefPvBBeWtxJ23dpOnFjPW2N2i9B7BOMkjBsYwm"},
	{"password", "$2a$04$8kbaSIGs8qyuU6DamG69ouQa7bGFdGPGwuWgdZpQ35m34w3BOC5he"},
	{vectorPassword, "$2a$04$JwYda5bFiCPdluKuXI7u6uD8LlyODVmBRA7InFd0dGgl.rBFyB.06"},
	{"pässwörd ☺", "$2a$04$VQYfna53GnNcHQ5mQlgy8.lXcXXZLDEj/XoME/E/yb/3XAAOIeJ4i"},
	{"0123456789012345678901234567890123456789012345678901234567890123456789AB", "$2a$04$3RGXfH1hvW2aJeHKANN.VuTRPPHULiFNM05SqaEpjwxEw.QM0HJjK"},
}

func TestHashRoundTrip(t *testing.T) {
	for _, pw := range []string{"", "a", vectorPassword, "pässwörd ☺", strings.Repeat("x", MaxPasswordLen)} {
		h, err := Hash(pw)
		if err != nil {
			t.Fatalf("Hash(%d bytes): %v", len(pw), err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("Hash = %q, want current argon2id parameters", h)
		}
		f := strings.Split(h, "$")
		salt, err1 := base64.RawStdEncoding.Strict().DecodeString(f[4])
		key, err2 := base64.RawStdEncoding.Strict().DecodeString(f[5])
		if len(f) != 6 || err1 != nil || err2 != nil || len(salt) != 16 || len(key) != 32 {
			t.Fatalf("Hash = %q: want 16-byte salt and 32-byte key in unpadded base64", h)
		}
		if ok, err := Verify(h, pw); !ok || err != nil {
			t.Fatalf("Verify(Hash(pw), pw) = %v, %v", ok, err)
		}
		if ok, err := Verify(h, pw+"x"); ok || err != nil {
			t.Fatalf("Verify(Hash(pw), wrong) = %v, %v", ok, err)
		}
		if NeedsRehash(h) {
			t.Fatalf("NeedsRehash(Hash(pw)) = true")
		}
		if err := Check(h); err != nil {
			t.Fatalf("Check(Hash(pw)) = %v", err)
		}
		if name, ok := Scheme(h); name != "argon2id" || !ok || !IsHash(h) {
			t.Fatalf("Scheme(Hash(pw)) = %q, %v", name, ok)
		}
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	a, _ := Hash("pw")
	b, _ := Hash("pw")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestHashTooLong(t *testing.T) {
	_, err := Hash(strings.Repeat("x", MaxPasswordLen+1))
	if !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("Hash(4097 bytes) error = %v, want ErrPasswordTooLong", err)
	}
	// Verify says no without hashing, whatever the scheme.
	h, _ := Hash("pw")
	if ok, err := Verify(h, strings.Repeat("x", MaxPasswordLen+1)); ok || err != nil {
		t.Fatalf("Verify(4097 bytes) = %v, %v; want false, nil", ok, err)
	}
}

// The argon2id vector of the reference implementation equals what Hash
// computes for its salt, and x/crypto/argon2 called directly agrees.
func TestArgon2idVector(t *testing.T) {
	got := current.hash([]byte(vectorPassword), []byte(vectorSalt), keyLen)
	if got != argon2idVector {
		t.Fatalf("hash = %s\nwant %s (reference argon2)", got, argon2idVector)
	}
	want, _ := base64.RawStdEncoding.DecodeString(strings.Split(argon2idVector, "$")[5])
	direct := argon2.IDKey([]byte(vectorPassword), []byte(vectorSalt), 2, 19456, 1, 32)
	if !bytes.Equal(direct, want) {
		t.Fatalf("argon2.IDKey = %x, want %x", direct, want)
	}
	if ok, err := Verify(argon2idVector, vectorPassword); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if ok, err := Verify(argon2idVector, "Correct horse battery staple"); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	if NeedsRehash(argon2idVector) {
		t.Fatal("NeedsRehash(current parameters) = true")
	}
}

func TestArgon2iVector(t *testing.T) {
	want, _ := base64.RawStdEncoding.DecodeString(strings.Split(argon2iVector, "$")[5])
	direct := argon2.Key([]byte(vectorPassword), []byte(vectorSalt), 3, 4096, 2, 24)
	if !bytes.Equal(direct, want) {
		t.Fatalf("argon2.Key = %x, want %x", direct, want)
	}
	if ok, err := Verify(argon2iVector, vectorPassword); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if ok, err := Verify(argon2iVector, vectorPassword+" "); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	if !NeedsRehash(argon2iVector) {
		t.Fatal("NeedsRehash(argon2i) = false")
	}
}

func TestBcryptVectors(t *testing.T) {
	for _, v := range bcryptVectors {
		for _, minor := range "aby" {
			h := v.hash[:2] + string(minor) + v.hash[3:]
			if ok, err := Verify(h, v.key); !ok || err != nil {
				t.Errorf("Verify(%s, %q) = %v, %v", h, v.key, ok, err)
			}
			if ok, err := Verify(h, v.key+"x"); ok != (len(v.key) >= 72) || err != nil {
				t.Errorf("Verify(%s, wrong) = %v, %v", h, ok, err)
			}
			if !NeedsRehash(h) {
				t.Errorf("NeedsRehash(%s) = false", h)
			}
		}
	}
	// A hash made now, at the default cost, round-trips too.
	h, err := bcrypt.GenerateFromPassword([]byte(vectorPassword), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify(string(h), vectorPassword); !ok || err != nil {
		t.Fatalf("Verify(fresh bcrypt) = %v, %v", ok, err)
	}
}

func TestPrefixes(t *testing.T) {
	sha256 := specVectors[0].want
	sha512 := specVectors[7].want
	bcrypt2y := "$2y$" + bcryptVectors[2].hash[4:]
	for _, tc := range []struct {
		name, hash, key string
	}{
		{"ARGON2ID", "{ARGON2ID}" + argon2idVector, vectorPassword},
		{"argon2id lower case", "{argon2id}" + argon2idVector, vectorPassword},
		{"ARGON2I", "{ARGON2I}" + argon2iVector, vectorPassword},
		{"ARGON2 of OpenLDAP", "{ARGON2}" + argon2idVector, vectorPassword},
		{"BLF-CRYPT", "{BLF-CRYPT}" + bcrypt2y, vectorPassword},
		{"SHA256-CRYPT", "{SHA256-CRYPT}" + sha256, "Hello world!"},
		{"SHA512-CRYPT", "{SHA512-CRYPT}" + sha512, "Hello world!"},
		{"CRYPT argon2id", "{CRYPT}" + argon2idVector, vectorPassword},
		{"CRYPT bcrypt", "{CRYPT}" + bcrypt2y, vectorPassword},
		{"CRYPT sha256", "{CRYPT}" + sha256, "Hello world!"},
		{"CRYPT sha512", "{CRYPT}" + sha512, "Hello world!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok, err := Verify(tc.hash, tc.key); !ok || err != nil {
				t.Fatalf("Verify = %v, %v", ok, err)
			}
			if ok, err := Verify(tc.hash, tc.key+"x"); ok || err != nil {
				t.Fatalf("Verify(wrong) = %v, %v", ok, err)
			}
			if !IsHash(tc.hash) || Check(tc.hash) != nil {
				t.Fatalf("IsHash = %v, Check = %v", IsHash(tc.hash), Check(tc.hash))
			}
		})
	}
	if NeedsRehash("{ARGON2ID}" + argon2idVector) {
		t.Error("NeedsRehash({ARGON2ID} current) = true")
	}
	if !NeedsRehash("{SHA512-CRYPT}" + sha512) {
		t.Error("NeedsRehash({SHA512-CRYPT}) = false")
	}
}

// Errors: every case must fail with the named sentinel and never panic.
func TestVerifyErrors(t *testing.T) {
	sha512 := specVectors[7].want
	bc := bcryptVectors[1].hash
	a2 := func(params string) string {
		return "$argon2id$v=19$" + params + "$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0"
	}
	for _, tc := range []struct {
		name, hash string
		want       error
	}{
		{"empty", "", ErrMalformed},
		{"plain password", "hunter2", ErrMalformed},
		{"white space", " " + argon2idVector, ErrMalformed},
		{"trailing newline", sha512 + "\n", ErrMalformed},
		{"too long", "$6$" + strings.Repeat("a", 2000), ErrMalformed},

		{"plain", "{PLAIN}secret", ErrUnsupported},
		{"plain lower case", "{plain}secret", ErrUnsupported},
		{"cleartext", "{CLEARTEXT}secret", ErrUnsupported},
		{"md5", "{MD5}$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", ErrUnsupported},
		{"plain-md5", "{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99", ErrUnsupported},
		{"sha", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", ErrUnsupported},
		{"ssha", "{SSHA}DkMTwBl+a/3DQTxCYEApdUtNXGgdUac3", ErrUnsupported},
		{"sha256 hex", "{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", ErrUnsupported},
		{"md5-crypt", "$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", ErrUnsupported},
		{"md5-crypt in CRYPT", "{CRYPT}$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", ErrUnsupported},
		{"apr1", "$apr1$saltsalt$xxxxxxxxxxxxxxxxxxxxxx", ErrUnsupported},
		{"des", "abiQ6Ep3EYTHc", ErrUnsupported},
		{"des in CRYPT", "{CRYPT}abiQ6Ep3EYTHc", ErrUnsupported},
		{"bsdi", "_J9..abcdIPPmXD22F8s", ErrUnsupported},
		{"yescrypt", "$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.", ErrUnsupported},
		{"argon2d", argon2dVector, ErrUnsupported},
		{"argon2 version 1.0", argon2v10Vector, ErrUnsupported},
		{"argon2 without version", "$argon2id$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$PCBc8EjeGt6A614LEHIromZitYDqud6lTadLYc9NbsY", ErrUnsupported},
		{"argon2 keyid", a2("m=19456,t=2,p=1,keyid=AAAA"), ErrUnsupported},
		{"bcrypt 2x", "$2x$" + bc[4:], ErrUnsupported},
		{"locked", "!" + sha512, ErrUnsupported},
		{"unknown mcf", "$foo$rounds=12$abcdefghijklmnop", ErrUnsupported},

		{"prefix mismatch", "{SHA256-CRYPT}" + sha512, ErrMalformed},
		{"prefix mismatch argon2", "{ARGON2I}" + argon2idVector, ErrMalformed},
		{"BLF-CRYPT of garbage", "{BLF-CRYPT}garbage", ErrMalformed},
		{"CRYPT of garbage", "{CRYPT}garbage", ErrMalformed},
		{"unknown prefix", "{FOO}bar", ErrMalformed},

		{"argon2 m above 1 GiB", a2("m=1048577,t=2,p=1"), ErrLimit},
		{"argon2 m 2^32", a2("m=4294967296,t=2,p=1"), ErrLimit},
		{"argon2 m 2^64", a2("m=18446744073709551616,t=2,p=1"), ErrLimit},
		{"argon2 t 11", a2("m=19456,t=11,p=1"), ErrLimit},
		{"argon2 t huge", a2("m=19456,t=99999999999999999999,p=1"), ErrLimit},
		{"argon2 p 17", a2("m=19456,t=2,p=17"), ErrLimit},
		{"argon2 p 256", a2("m=19456,t=2,p=256"), ErrLimit},
		{"argon2 t 0", a2("m=19456,t=0,p=1"), ErrMalformed},
		{"argon2 p 0", a2("m=19456,t=2,p=0"), ErrMalformed},
		{"argon2 m below 8p", a2("m=15,t=2,p=2"), ErrMalformed},
		{"argon2 order", a2("t=2,m=19456,p=1"), ErrMalformed},
		{"argon2 negative", a2("m=-1,t=2,p=1"), ErrMalformed},
		{"argon2 sign", a2("m=+19456,t=2,p=1"), ErrMalformed},
		{"argon2 missing p", a2("m=19456,t=2"), ErrMalformed},
		{"argon2 bad param", a2("m=19456,t=2,p=1,x=1"), ErrMalformed},
		{"argon2 bad version", "$argon2id$v=x$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$PCBc8EjeGt6A614LEHIromZitYDqud6lTadLYc9NbsY", ErrMalformed},
		{"argon2 salt bad base64", strings.Replace(argon2idVector, "MDEy", "MD!y", 1), ErrMalformed},
		{"argon2 salt padded", strings.Replace(argon2idVector, "Y2RlZg$", "Y2RlZg==$", 1), ErrMalformed},
		{"argon2 salt newline", strings.Replace(argon2idVector, "MDEy", "MD\nEy", 1), ErrMalformed},
		{"argon2 salt short", strings.Replace(argon2idVector, "MDEyMzQ1Njc4OWFiY2RlZg", "MDEyMzQ1Ng", 1), ErrMalformed},
		{"argon2 key bad base64", argon2idVector[:len(argon2idVector)-1] + "*", ErrMalformed},
		{"argon2 key short", strings.Replace(argon2idVector, "gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", "gy5S", 1), ErrMalformed},
		{"argon2 extra field", argon2idVector + "$x", ErrMalformed},
		{"argon2 no key", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg", ErrMalformed},
		{"argon2 variant", "$argon2i$v=19$", ErrMalformed},

		{"bcrypt cost 17", "$2b$17$" + bc[7:], ErrLimit},
		{"bcrypt cost 31", "$2b$31$" + bc[7:], ErrLimit},
		{"bcrypt cost 03", "$2b$03$" + bc[7:], ErrMalformed},
		{"bcrypt cost 99", "$2b$99$" + bc[7:], ErrMalformed},
		{"bcrypt cost x", "$2b$1x$" + bc[7:], ErrMalformed},
		{"bcrypt short", bc[:59], ErrMalformed},
		{"bcrypt long", bc + "a", ErrMalformed},
		{"bcrypt bad alphabet", bc[:59] + "+", ErrMalformed},
		{"bcrypt separator", bc[:6] + "x" + bc[7:], ErrMalformed},

		{"sha rounds too high", "$6$rounds=10000001$salt$" + strings.Repeat("a", 86), ErrLimit},
		{"sha rounds not a number", "$6$rounds=ten$salt$" + strings.Repeat("a", 86), ErrMalformed},
		{"sha rounds empty", "$6$rounds=$salt$" + strings.Repeat("a", 86), ErrMalformed},
		{"sha rounds negative", "$6$rounds=-5$salt$" + strings.Repeat("a", 86), ErrMalformed},
		{"sha rounds unterminated", "$6$rounds=5000", ErrMalformed},
		{"sha setting only", "$6$saltstring", ErrMalformed},
		{"sha salt too long", "$6$saltstringsaltstring$" + strings.Repeat("a", 86), ErrMalformed},
		{"sha salt control", "$6$salt\x01$" + strings.Repeat("a", 86), ErrMalformed},
		{"sha digest short", sha512[:len(sha512)-1], ErrMalformed},
		{"sha digest long", sha512 + "a", ErrMalformed},
		{"sha digest alphabet", sha512[:len(sha512)-1] + "+", ErrMalformed},
		{"sha digest extra field", sha512 + "$", ErrMalformed},
		{"sha256 digest length", "$5$salt$" + strings.Repeat("a", 86), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := Verify(tc.hash, "pw")
			if ok || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, %v; want error %v", ok, err, tc.want)
			}
			if cerr := Check(tc.hash); cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("Check = %v, want the error of Verify: %v", cerr, err)
			}
			if !NeedsRehash(tc.hash) {
				t.Fatal("NeedsRehash = false")
			}
			if strings.Contains(err.Error(), "MDEyMzQ1Njc4OWFiY2RlZg") || strings.Contains(err.Error(), "abiQ6Ep3EYTHc") {
				t.Fatalf("error %q repeats the hash", err)
			}
		})
	}
}

// Every truncation of a valid hash fails, with an error or as a mismatch,
// and never panics.
func TestVerifyTruncated(t *testing.T) {
	hashes := []string{argon2idVector, argon2iVector, bcryptVectors[1].hash, "{SHA512-CRYPT}" + specVectors[7].want}
	for _, v := range specVectors {
		hashes = append(hashes, v.want)
	}
	for _, h := range hashes {
		for n := range len(h) {
			// A short password keeps this fast: the work is in the valid prefixes.
			ok, err := Verify(h[:n], "x")
			if ok {
				t.Fatalf("Verify(%q) = true", h[:n])
			}
			if err == nil && !strings.Contains(h, "argon2") {
				// Only an argon2 key can be cut to a shorter valid key.
				t.Fatalf("Verify(%q) = false, nil; want an error", h[:n])
			}
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	key := "$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0"
	for _, tc := range []struct {
		name, hash string
		want       bool
	}{
		{"current", argon2idVector, false},
		{"memory", "$argon2id$v=19$m=65536,t=2,p=1" + key, true},
		{"time", "$argon2id$v=19$m=19456,t=3,p=1" + key, true},
		{"threads", "$argon2id$v=19$m=19456,t=2,p=2" + key, true},
		{"key length", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$gy5SuVm5Z7Vw7keB9se9p87QGcom", true},
		{"salt length", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc$gy5SuVm5Z7Vw7keB9se9p87QGcomaseB/S2U1OhTsM0", true},
		{"argon2i", strings.Replace(argon2idVector, "argon2id", "argon2i", 1), true},
		{"bcrypt", bcryptVectors[0].hash, true},
		{"sha512-crypt", specVectors[7].want, true},
		{"refused", "{PLAIN}pw", true},
		{"garbage", "garbage", true},
	} {
		if got := NeedsRehash(tc.hash); got != tc.want {
			t.Errorf("%s: NeedsRehash = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestScheme(t *testing.T) {
	sha512 := specVectors[7].want
	bc := bcryptVectors[1].hash
	for _, tc := range []struct {
		in        string
		name      string
		supported bool
	}{
		{argon2idVector, "argon2id", true},
		{argon2iVector, "argon2i", true},
		{argon2dVector, "argon2d", false},
		{bc, "bcrypt", true},
		{"$2b$" + bc[4:], "bcrypt", true},
		{"$2y$" + bc[4:], "bcrypt", true},
		{"$2x$" + bc[4:], "bcrypt-2x", false},
		{specVectors[0].want, "sha256-crypt", true},
		{sha512, "sha512-crypt", true},
		{"$6$garbage", "sha512-crypt", true}, // recognised; Check refuses it
		{"$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", "md5-crypt", false},
		{"$apr1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", "apr1-md5", false},
		{"$md5,rounds=5000$GUBv0xjJ$$mSwgIswdjlTY0YxV7HBVm0", "sun-md5-crypt", false},
		{"$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.", "yescrypt", false},
		{"$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDevf9YDtcDdKvEqHJLV8D", "scrypt", false},
		{"$pbkdf2-sha256$29000$N2bMOReC8H6PsRYihFCqdQ$XXXX", "pbkdf2-sha256", false},
		{"$foo$rounds=12$abcdefghijklmnop", "$foo$", false},
		{"abiQ6Ep3EYTHc", "des-crypt", false},
		{"zzM3H1GzLNjgA", "des-crypt", false},
		{"_J9..abcdIPPmXD22F8s", "bsdi-crypt", false},
		{"!" + sha512, "locked", false},
		{"!!", "locked", false},
		{"*", "locked", false},

		{"{ARGON2ID}" + argon2idVector, "argon2id", true},
		{"{ARGON2I}" + argon2iVector, "argon2i", true},
		{"{BLF-CRYPT}" + bc, "bcrypt", true},
		{"{SHA256-CRYPT}" + specVectors[0].want, "sha256-crypt", true},
		{"{SHA512-CRYPT}" + sha512, "sha512-crypt", true},
		{"{sha512-crypt}" + sha512, "sha512-crypt", true},
		{"{SHA512-CRYPT}garbage", "sha512-crypt", true},   // recognised; Check refuses it
		{"{SHA256-CRYPT}" + sha512, "sha512-crypt", true}, // the hash decides; Check refuses the mismatch
		{"{CRYPT}" + sha512, "sha512-crypt", true},
		{"{CRYPT}$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", "md5-crypt", false},
		{"{CRYPT}abiQ6Ep3EYTHc", "des-crypt", false},
		{"{CRYPT}garbage", "crypt", false},
		{"{MD5-CRYPT}$1$saltsalt$hS9y7bqOfzAb2IfyIdkYW.", "md5-crypt", false},
		{"{PLAIN}secret", "plain", false},
		{"{PLAIN}", "plain", false},
		{"{CLEARTEXT}secret", "cleartext", false},
		{"{MD5}X03MO1qnZdYdgyfeuILPmQ==", "md5", false},
		{"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "sha", false},
		{"{SSHA}DkMTwBl+a/3DQTxCYEApdUtNXGgdUac3", "ssha", false},
		{"{SSHA512}abc", "ssha512", false},
		{"{SHA256.HEX}5e88", "sha256.hex", false},
		{"{PLAIN.b64}c2VjcmV0", "plain.b64", false},
		{"{SCRAM-SHA-256}4096,abc", "scram-sha-256", false},
		{" " + sha512 + "\n", "sha512-crypt", true}, // white space ignored here, refused by Check

		// Plain passwords.
		{"", "", false},
		{"hunter2", "", false},
		{"correct horse battery staple", "", false},
		{"{FOO}bar", "", false},
		{"{}x", "", false},
		{"{PLAIN.XYZ}x", "", false},
		{"{unterminated", "", false},
		{"$money$", "", false},
		{"$1 dollar", "", false},
		{"abiQ6Ep3EYTHd", "", false}, // 13 characters, but d cannot end a DES hash
		{"abiQ6Ep3EYTH", "", false},
		{"abiQ6Ep3EY!Hc", "", false},
		{"!hunter2", "", false},
		{"_hunter2", "", false},
	} {
		name, supported := Scheme(tc.in)
		if name != tc.name || supported != tc.supported {
			t.Errorf("Scheme(%q) = %q, %v; want %q, %v", tc.in, name, supported, tc.name, tc.supported)
		}
		if IsHash(tc.in) != (tc.name != "") {
			t.Errorf("IsHash(%q) = %v", tc.in, IsHash(tc.in))
		}
	}
}

func TestErrLimitIsUnsupported(t *testing.T) {
	if !errors.Is(ErrLimit, ErrUnsupported) {
		t.Fatal("ErrLimit does not match ErrUnsupported")
	}
	if errors.Is(ErrUnsupported, ErrLimit) || errors.Is(ErrMalformed, ErrLimit) {
		t.Fatal("ErrUnsupported or ErrMalformed matches ErrLimit")
	}
}

// Scheme and Verify stay cheap on huge inputs from a hostile file.
func TestHugeInputs(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("!", 1<<20),
		strings.Repeat("!", 1<<20) + "$6$",
		"$" + strings.Repeat("a", 1<<20),
		"{PLAIN}" + strings.Repeat("a", 1<<20),
		strings.Repeat("{", 1<<20),
	} {
		name, _ := Scheme(s)
		if _, err := Verify(s, "pw"); err == nil {
			t.Errorf("Verify(%d bytes starting %q, scheme %q) = nil error", len(s), s[:8], name)
		}
	}
}
