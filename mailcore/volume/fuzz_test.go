package volume

import (
	"bytes"
	"testing"

	"github.com/govhub/govhub/mailcore"
)

// seedVolume returns a volume file holding a blob record and a tombstone.
func seedVolume() []byte {
	b := encodeVolHeader(1, 0)
	data := []byte("Subject: hello\r\n\r\nbody\r\n")
	id := mailcore.BlobIDOf(data)
	b = appendRecord(b, recBlob, 1, id, data)
	return appendRecord(b, recTombstone, 2, id, nil)
}

// hugeLength returns a volume whose only record claims 4 GiB of data.
func hugeLength() []byte {
	b := encodeVolHeader(1, 0)
	rec := appendRecord(nil, recBlob, 1, mailcore.BlobID{}, []byte("x"))
	putRecHeader(rec, recBlob, 1, mailcore.BlobID{}, maxBlobSize)
	return append(b, rec...)
}

// FuzzRecordReader feeds arbitrary bytes to the volume scanner as a volume
// file. It must not panic, must report only records inside the file, in
// order, and must not allocate according to length fields (the reader's
// buffers are fixed; a length past the end is rejected before reading).
func FuzzRecordReader(f *testing.F) {
	v := seedVolume()
	f.Add(v)
	f.Add(v[:len(v)-30])
	f.Add(hugeLength())
	f.Fuzz(func(t *testing.T, data []byte) {
		ra := bytes.NewReader(data)
		size := int64(len(data))
		_, herr := readVolHeader(ra, size)
		rr := newRecordReader(ra, size)
		last := int64(volHeaderSize)
		res, err := rr.scan(volHeaderSize, herr != nil, func(r recInfo, _ bool) {
			if r.off < last || r.end() > size || r.n < 0 {
				t.Fatalf("record at %d..%d outside the file or out of order (prev end %d, size %d)", r.off, r.end(), last, size)
			}
			if r.typ != recBlob && r.typ != recTombstone {
				t.Fatalf("record of type %d passed", r.typ)
			}
			last = r.end()
		})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if res.goodEnd > max(size, volHeaderSize) {
			t.Fatalf("goodEnd %d beyond the file (%d bytes)", res.goodEnd, size)
		}
		for _, b := range res.bad {
			if b.off < volHeaderSize || b.off >= size || b.resume > size || (b.resume >= 0 && b.resume <= b.off) {
				t.Fatalf("bad region %+v in a %d-byte file", b, size)
			}
		}
		if len(rr.scratch) != 64<<10 || len(rr.search) != 64<<10 {
			t.Fatal("reader buffers grew")
		}
	})
}

// TestHugeLengthRejected: a length field far beyond the file is refused
// without reading or allocating for it.
func TestHugeLengthRejected(t *testing.T) {
	b := hugeLength()
	rr := newRecordReader(bytes.NewReader(b), int64(len(b)))
	allocs := testing.AllocsPerRun(10, func() {
		_, reason, err := rr.check(volHeaderSize, false)
		if err != nil || reason != "record runs past end of file" {
			t.Fatalf("check = %q, %v", reason, err)
		}
	})
	if allocs > 0 {
		t.Fatalf("check allocated %.0f times for a huge length", allocs)
	}
}

// TestScanSeedVolume: the valid seed scans as two records; the torn one as
// one record and a bad tail.
func TestScanSeedVolume(t *testing.T) {
	v := seedVolume()
	for _, tc := range []struct {
		name    string
		data    []byte
		records int
		bad     int
	}{
		{"whole", v, 2, 0},
		{"torn", v[:len(v)-30], 1, 1},
		{"huge length", hugeLength(), 0, 1},
	} {
		rr := newRecordReader(bytes.NewReader(tc.data), int64(len(tc.data)))
		res, err := rr.scan(volHeaderSize, false, func(recInfo, bool) {})
		if err != nil || res.records != tc.records || len(res.bad) != tc.bad {
			t.Errorf("%s: %+v, %v", tc.name, res, err)
		}
	}
}
