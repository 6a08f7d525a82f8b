package orderkey

import (
	"bytes"
	"testing"
	"time"
)

func TestTimeOrderAndRoundTrip(t *testing.T) {
	// In time order, across 1970, the UnixNano range and nanosecond steps.
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 999_999_999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 12, 7, 3, 4, 5, 6, time.FixedZone("x", 3600)),
		time.Date(2026, 12, 7, 3, 4, 5, 7, time.FixedZone("x", 3600)),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		k := Time(tm)
		if len(k) != TimeLen {
			t.Fatalf("Time(%v) is %d bytes, want %d", tm, len(k), TimeLen)
		}
		back, err := ParseTime(k)
		if err != nil || !back.Equal(tm) || back.Location() != time.UTC {
			t.Errorf("ParseTime(Time(%v)) = %v, %v; want the same instant in UTC", tm, back, err)
		}
		if i > 0 && bytes.Compare(Time(times[i-1]), k) >= 0 {
			t.Errorf("Time(%v) does not sort after Time(%v)", tm, times[i-1])
		}
	}
}

func TestParseTimeRefusesMalformed(t *testing.T) {
	bad := Time(time.Unix(5, 0))
	bad[8], bad[9], bad[10], bad[11] = 0xff, 0xff, 0xff, 0xff
	for _, k := range [][]byte{nil, make([]byte, TimeLen-1), make([]byte, TimeLen+1), bad} {
		if _, err := ParseTime(k); err == nil {
			t.Errorf("ParseTime(%x) = nil error, want malformed", k)
		}
	}
}
