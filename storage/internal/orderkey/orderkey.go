// Package orderkey encodes times as short byte strings whose byte order is
// time order, for every time.Time: the storage backends index by them (bbolt
// keys, PostgreSQL bytea columns), so that both order and round-trip times
// exactly, to the nanosecond, where a database's own timestamp type would
// round.
package orderkey

import (
	"encoding/binary"
	"errors"
	"time"
)

// TimeLen is the length of a time key: 8 bytes of seconds, 4 of nanoseconds.
const TimeLen = 12

// Time encodes t so that byte order is time order for every time.Time
// (unlike UnixNano, which is undefined outside 1678–2262): the Unix seconds
// with the sign bit flipped (so that times before 1970 sort first), then the
// nanoseconds, both big-endian. The location is not kept.
func Time(t time.Time) []byte {
	k := make([]byte, TimeLen)
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return k
}

// ParseTime decodes a time key made by Time, in UTC.
func ParseTime(k []byte) (time.Time, error) {
	if len(k) != TimeLen {
		return time.Time{}, errors.New("malformed time key (the store is damaged; restore it from a backup)")
	}
	secs := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	nanos := int64(binary.BigEndian.Uint32(k[8:]))
	if nanos >= int64(time.Second) {
		return time.Time{}, errors.New("malformed time key: nanoseconds out of range (the store is damaged; restore it from a backup)")
	}
	return time.Unix(secs, nanos).UTC(), nil
}
