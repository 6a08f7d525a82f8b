package boltstore

import (
	"fmt"

	"github.com/klauspost/compress/s2"
)

// Values of the requests and audit buckets are packed (schema version 2):
// most of a record is the same key names and common values over and over,
// and S2 with a built-in dictionary of them stores a request or an audit
// record in about a third of its JSON (docs/performance.md), at about a
// microsecond and a half to pack and a quarter of one to unpack. What a
// reader gets back is exactly the bytes that were packed: an audit record
// is still hashed and exported as the canonical line it was given.
//
// The first byte of a stored value says how to read it:
//
//	0x01  the rest is an S2 block made with dictionary v1 (packDictV1)
//	0x00  the rest is the value as given (given bytes that start with 0x00
//	      or 0x01 and do not pack smaller)
//	other the value as given: every JSON record starts with '{', and files
//	      from schema version 1 hold only such values
//
// A dictionary, once used, can never change: a new one would take a new
// first byte, and readers keep the old one.
const (
	packedRaw  byte = 0x00
	packedS2v1 byte = 0x01
)

// packMinLen is the shortest value worth packing.
const packMinLen = 64

// dictV1 is packDictV1 ready for S2 (nil would mean the dictionary is too
// short or too long for S2: a test holds it to its bounds).
var dictV1 = s2.MakeDict([]byte(packDictV1), nil)

// pack returns v as it is to be stored: a new slice, never v itself (bolt
// keeps the value until the commit, and callers may reuse their buffers).
func pack(v []byte) []byte {
	if len(v) >= packMinLen {
		// Encode writes from the start of the slice it is given (it does
		// not append), so the marker byte goes in front of that slice.
		buf := make([]byte, 1+s2.MaxEncodedLen(len(v)))
		buf[0] = packedS2v1
		if enc := dictV1.Encode(buf[1:], v); 1+len(enc) < len(v) && &enc[0] == &buf[1] {
			return buf[:1+len(enc)]
		}
	}
	if len(v) > 0 && (v[0] == packedRaw || v[0] == packedS2v1) {
		return append([]byte{packedRaw}, v...)
	}
	return clone(v)
}

// unpack returns the value pack was given. The result is a new slice when
// v was packed, and v itself otherwise (copy it if it must outlive the
// transaction).
func unpack(v []byte) ([]byte, bool, error) {
	if len(v) == 0 {
		return v, false, nil
	}
	switch v[0] {
	case packedS2v1:
		out, err := dictV1.Decode(nil, v[1:])
		if err != nil {
			return nil, false, fmt.Errorf("unpack a stored value: %w (the store is damaged; restore it from a backup)", err)
		}
		return out, true, nil
	case packedRaw:
		return v[1:], false, nil
	default:
		return v, false, nil
	}
}

// unpackCopy is unpack for a value that must outlive the transaction.
func unpackCopy(v []byte) ([]byte, error) {
	out, fresh, err := unpack(v)
	if err != nil || fresh {
		return out, err
	}
	return clone(out), nil
}
