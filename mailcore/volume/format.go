package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/govhub/govhub/mailcore"
)

// On-disk layout. All integers are little-endian.
//
// Volume file header (volHeaderSize bytes):
//
//	0  8  magic "GHVOLUME"
//	8  2  format version (1)
//	10 2  flags (bit 0: written by compaction, born sealed)
//	12 4  volume number (matches the NNNNNN of vol-NNNNNN.dat)
//	16 12 reserved, zero
//	28 4  CRC-32C of bytes 0..28
//
// Record (recHeaderSize + n + recTrailerSize bytes):
//
//	0  4  record magic C7 1B 5E A9
//	4  1  type: 1 blob, 2 tombstone
//	5  3  reserved, zero
//	8  8  sequence number (global, monotonically increasing, kept by compaction)
//	16 32 blob id (SHA-256 of the data)
//	48 8  data length n (0 for a tombstone)
//	56 n  data
//	.  4  CRC-32C (Castagnoli) of the header and the data
//
// A record carries nothing specific to the file it sits in, so compaction
// copies records byte for byte.
const (
	volHeaderSize  = 32
	recHeaderSize  = 56
	recTrailerSize = 4
	recOverhead    = recHeaderSize + recTrailerSize

	formatVersion = 1

	recBlob      byte = 1
	recTombstone byte = 2

	volFlagCompacted uint16 = 1

	// maxBlobSize bounds one blob; the in-memory index keeps lengths as
	// uint32 to stay small.
	maxBlobSize = 1<<32 - 1
)

var (
	volMagic   = [8]byte{'G', 'H', 'V', 'O', 'L', 'U', 'M', 'E'}
	recMagic   = [4]byte{0xC7, 0x1B, 0x5E, 0xA9}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

type volHeader struct {
	version uint16
	flags   uint16
	num     uint32
}

func encodeVolHeader(num uint32, flags uint16) []byte {
	b := make([]byte, volHeaderSize)
	copy(b, volMagic[:])
	binary.LittleEndian.PutUint16(b[8:], formatVersion)
	binary.LittleEndian.PutUint16(b[10:], flags)
	binary.LittleEndian.PutUint32(b[12:], num)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

func decodeVolHeader(b []byte) (volHeader, error) {
	var h volHeader
	if len(b) < volHeaderSize {
		return h, errors.New("short file header")
	}
	if !bytes.Equal(b[:8], volMagic[:]) {
		return h, errors.New("bad file magic")
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return h, errors.New("file header checksum mismatch")
	}
	h.version = binary.LittleEndian.Uint16(b[8:])
	h.flags = binary.LittleEndian.Uint16(b[10:])
	h.num = binary.LittleEndian.Uint32(b[12:])
	if h.version != formatVersion {
		return h, fmt.Errorf("unsupported format version %d", h.version)
	}
	return h, nil
}

// readVolHeader reads and checks the header at the start of a volume file.
func readVolHeader(ra io.ReaderAt, size int64) (volHeader, error) {
	if size < volHeaderSize {
		return volHeader{}, errors.New("short file header")
	}
	var b [volHeaderSize]byte
	if _, err := ra.ReadAt(b[:], 0); err != nil {
		return volHeader{}, err
	}
	return decodeVolHeader(b[:])
}

// recInfo describes one record found in a volume.
type recInfo struct {
	off int64 // offset of the record's first byte
	typ byte
	seq uint64
	id  mailcore.BlobID
	n   int64 // data length

	hdrOK bool // the header's fixed fields passed (id and seq are plausible)
}

func (r recInfo) size() int64 { return recOverhead + r.n }
func (r recInfo) end() int64  { return r.off + r.size() }

func putRecHeader(dst []byte, typ byte, seq uint64, id mailcore.BlobID, n int64) {
	copy(dst[0:4], recMagic[:])
	dst[4] = typ
	dst[5], dst[6], dst[7] = 0, 0, 0
	binary.LittleEndian.PutUint64(dst[8:], seq)
	copy(dst[16:48], id[:])
	binary.LittleEndian.PutUint64(dst[48:], uint64(n))
}

// appendRecord appends one whole framed record to dst.
func appendRecord(dst []byte, typ byte, seq uint64, id mailcore.BlobID, data []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recHeaderSize)...)
	putRecHeader(dst[start:], typ, seq, id, int64(len(data)))
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseRecHeader checks the fixed fields of a record header. It returns a
// reason when the bytes cannot be a record header.
func parseRecHeader(b []byte) (r recInfo, reason string) {
	if !bytes.Equal(b[0:4], recMagic[:]) {
		return r, "bad record magic"
	}
	r.typ = b[4]
	if r.typ != recBlob && r.typ != recTombstone {
		return r, fmt.Sprintf("bad record type %d", r.typ)
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return r, "nonzero reserved bytes"
	}
	r.seq = binary.LittleEndian.Uint64(b[8:])
	copy(r.id[:], b[16:48])
	n := binary.LittleEndian.Uint64(b[48:])
	if n > maxBlobSize {
		return r, fmt.Sprintf("data length %d too large", n)
	}
	r.n = int64(n)
	if r.typ == recTombstone && r.n != 0 {
		return r, "tombstone with data"
	}
	if r.seq == 0 {
		return r, "zero sequence number"
	}
	return r, ""
}

// errShort reports that the file ended before the bytes being read.
var errShort = errors.New("short read")

// recordReader validates records of one volume file through a fixed-size
// scratch buffer: however large a length field claims a record is, reading
// it allocates nothing beyond the scratch, and a length that runs past the
// end of the file is rejected before any data is read.
type recordReader struct {
	ra      io.ReaderAt
	end     int64  // bytes of the file to consider
	scratch []byte // data chunks; len >= recHeaderSize
	search  []byte // resync windows
	read    int64  // bytes read so far, charged against the resync budget

	// shaFor, if set, picks records (by header) whose data must also hash
	// to their id.
	shaFor func(recInfo) bool
}

func newRecordReader(ra io.ReaderAt, end int64) *recordReader {
	return &recordReader{ra: ra, end: end, scratch: make([]byte, 64<<10), search: make([]byte, 64<<10)}
}

func (rr *recordReader) readFull(b []byte, off int64) error {
	n, err := rr.ra.ReadAt(b, off)
	rr.read += int64(n)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return errShort
	}
	return err
}

// check reads and validates the record at off. A non-empty reason means the
// bytes at off are not a valid record; err is an I/O error. With wantSHA the
// data of a blob record must also hash to its id.
func (rr *recordReader) check(off int64, wantSHA bool) (recInfo, string, error) {
	if rr.end-off < recHeaderSize {
		return recInfo{off: off}, "truncated record header", nil
	}
	hdr := rr.scratch[:recHeaderSize]
	if err := rr.readFull(hdr, off); err != nil {
		if err == errShort {
			return recInfo{off: off}, "truncated record header", nil
		}
		return recInfo{off: off}, "", err
	}
	r, reason := parseRecHeader(hdr)
	r.off = off
	if reason != "" {
		return r, reason, nil
	}
	r.hdrOK = true
	if r.n > rr.end-off-recOverhead {
		return r, "record runs past end of file", nil
	}
	crc := crc32.Update(0, castagnoli, hdr)
	var h hash.Hash
	if r.typ == recBlob && (wantSHA || rr.shaFor != nil && rr.shaFor(r)) {
		h = sha256.New()
	}
	pos := off + recHeaderSize
	for left := r.n; left > 0; {
		chunk := rr.scratch[:min(left, int64(len(rr.scratch)))]
		if err := rr.readFull(chunk, pos); err != nil {
			if err == errShort {
				return r, "record runs past end of file", nil
			}
			return r, "", err
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		if h != nil {
			h.Write(chunk)
		}
		pos += int64(len(chunk))
		left -= int64(len(chunk))
	}
	var tail [recTrailerSize]byte
	if err := rr.readFull(tail[:], pos); err != nil {
		if err == errShort {
			return r, "record runs past end of file", nil
		}
		return r, "", err
	}
	if binary.LittleEndian.Uint32(tail[:]) != crc {
		return r, "checksum mismatch", nil
	}
	if h != nil && !bytes.Equal(h.Sum(nil), r.id[:]) {
		return r, "content does not match id", nil
	}
	return r, "", nil
}

// badRegion is a stretch of a volume that holds no valid record.
type badRegion struct {
	off    int64  // first bad byte (the end of the previous good record)
	reason string // why the record at off was rejected
	resume int64  // offset of the next valid record, or -1 if none to the end

	hdrOK bool            // the rejected record's header was well formed
	id    mailcore.BlobID // its id, when hdrOK
}

type scanResult struct {
	records int
	goodEnd int64 // end of the last valid record (start if none)
	bad     []badRegion
}

// scan visits, in file order, every valid record from start to rr.end.
//
// After a bad record it resyncs: it searches forward for the record magic
// and resumes at the first candidate that is a whole valid record whose
// data also hashes to its id. Records found after a resync are passed with
// resynced=true and always hash-checked, so bytes inside a damaged region
// (which may be a stored message that itself looks like a volume) can never
// make the store serve data under a wrong id; callers must not honour
// tombstones found after a resync (see doc.go). With startResynced the scan
// treats start itself as a resync point (used after a damaged file header).
// The bytes checked while
// resyncing are bounded by a budget proportional to the file size, so
// hostile content cannot make a scan quadratic.
func (rr *recordReader) scan(start int64, startResynced bool, fn func(r recInfo, resynced bool)) (scanResult, error) {
	res := scanResult{goodEnd: start}
	budget := 4*(rr.end-start) + 1<<20
	resynced := startResynced
	off := start
	for off < rr.end {
		r, reason, err := rr.check(off, resynced)
		if err != nil {
			return res, err
		}
		if reason == "" {
			res.records++
			fn(r, resynced)
			off = r.end()
			res.goodEnd = off
			continue
		}
		next, exhausted, err := rr.resync(off+1, &budget)
		if err != nil {
			return res, err
		}
		if exhausted {
			reason += " (resync gave up)"
		}
		res.bad = append(res.bad, badRegion{off: off, reason: reason, resume: next, hdrOK: r.hdrOK, id: r.id})
		if next < 0 {
			break
		}
		resynced = true
		off = next
	}
	return res, nil
}

// resync returns the offset of the first valid record at or after from, or
// -1 if there is none (or the budget ran out first).
func (rr *recordReader) resync(from int64, budget *int64) (next int64, exhausted bool, err error) {
	pos := from
	for rr.end-pos >= recOverhead {
		w := rr.search[:min(int64(len(rr.search)), rr.end-pos)]
		before := rr.read
		if err := rr.readFull(w, pos); err != nil {
			if err == errShort {
				return -1, false, nil
			}
			return -1, false, err
		}
		*budget -= rr.read - before
		i := bytes.Index(w, recMagic[:])
		if i < 0 {
			if pos+int64(len(w)) >= rr.end {
				return -1, false, nil
			}
			// A magic may straddle the window's end: look at its last
			// three bytes again.
			pos += int64(len(w)) - int64(len(recMagic)) + 1
			if *budget < 0 {
				return -1, true, nil
			}
			continue
		}
		c := pos + int64(i)
		before = rr.read
		_, reason, err := rr.check(c, true)
		if err != nil {
			return -1, false, err
		}
		*budget -= rr.read - before
		if reason == "" {
			return c, false, nil
		}
		if *budget < 0 {
			return -1, true, nil
		}
		pos = c + 1
	}
	return -1, false, nil
}
