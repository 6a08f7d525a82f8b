package audit

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gowebpki/jcs"
)

// Exports. The JSON-lines export is the authoritative one: it is the records
// byte for byte as signoff stored them, one per line, and an unfiltered
// JSON-lines export verifies with VerifyJSONL. A filtered export (see
// Filter) leaves records out, so its chain has gaps by design and does not
// verify on its own; verify the unfiltered log, then filter. The CSV export
// is a view for spreadsheets and is not verifiable.

// ExportJSONL writes one record line followed by "\n" to w. It refuses a
// line that holds a newline (a canonical record never does). Wrap w in a
// bufio.Writer when writing many lines.
func ExportJSONL(w io.Writer, line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("export audit record: the line contains a newline")
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("export audit record: %w", err)
	}
	if _, err := w.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("export audit record: %w", err)
	}
	return nil
}

// CSVColumns are the CSV export's columns, in order. data is the record's
// data as canonical (RFC 8785) JSON; absent members are empty cells.
var CSVColumns = []string{
	"seq", "time", "type", "request_id", "action",
	"actor_issuer", "actor_subject", "actor_name", "actor_email",
	"actor_platform", "actor_workspace", "actor_platform_user",
	"source", "data", "prev", "hash",
}

// CSVWriter writes records as CSV (RFC 4180, via encoding/csv): a header of
// CSVColumns, then one row per record.
type CSVWriter struct {
	w      *csv.Writer
	header bool
	// FormulaGuard, on by default, protects people who open the export in
	// a spreadsheet: a cell that starts with '=', '+', '-', '@', a tab or a
	// carriage return (which spreadsheets may run as a formula) gets a
	// leading single quote. Values such as display names come from chat
	// platforms and identity providers, so they are not trusted. Turn it
	// off for a byte-faithful CSV; the JSON-lines export is always
	// faithful.
	FormulaGuard bool
}

// NewCSVWriter returns a CSVWriter writing to w, with FormulaGuard on.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), FormulaGuard: true}
}

func (c *CSVWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	if err := c.w.Write(CSVColumns); err != nil {
		return fmt.Errorf("write CSV header: %w", err)
	}
	return nil
}

// Write writes the record line as one CSV row (after the header, the first
// time). It refuses a line that is not a well-formed record.
func (c *CSVWriter) Write(line []byte) error {
	row, err := csvRow(line)
	if err != nil {
		return fmt.Errorf("export audit record as CSV: %w", err)
	}
	if c.FormulaGuard {
		for i, cell := range row {
			if cell != "" && (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' ||
				cell[0] == '@' || cell[0] == '\t' || cell[0] == '\r') {
				row[i] = "'" + cell
			}
		}
	}
	if err := c.writeHeader(); err != nil {
		return err
	}
	if err := c.w.Write(row); err != nil {
		return fmt.Errorf("write CSV row: %w", err)
	}
	return nil
}

// Flush writes the header if no record was written, then flushes any
// buffered data to the underlying writer.
func (c *CSVWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("flush CSV export: %w", err)
	}
	return nil
}

// csvStringColumns maps CSV columns to the top-level string members.
var csvStringColumns = [...]struct {
	col   int
	field field
}{{1, fTime}, {2, fType}, {3, fRequestID}, {4, fAction}, {12, fSource}, {14, fPrev}, {15, fHash}}

// csvActorColumns maps the actor's members to CSV columns.
var csvActorColumns = map[string]int{
	"issuer": 5, "subject": 6, "name": 7, "email": 8,
	"platform": 9, "workspace": 10, "platform_user": 11,
}

// csvRow renders the record line as a CSV row.
func csvRow(line []byte) ([]string, error) {
	var f topFields
	if err := scanTop(line, &f); err != nil {
		return nil, err
	}
	row := make([]string, len(CSVColumns))
	seq, ok := parseSeq(line, f.val[fSeq])
	if !ok {
		return nil, errors.New("seq is missing or not a positive integer")
	}
	row[0] = strconv.FormatUint(seq, 10)
	for _, c := range csvStringColumns {
		col, k := c.col, c.field
		if !f.val[k].ok() {
			continue
		}
		s, ok := stringValue(line, f.val[k])
		if !ok {
			return nil, fmt.Errorf("record seq %d: %s is not a string", seq, fieldNames[k])
		}
		row[col] = s
	}
	if sp := f.val[fActor]; sp.ok() && string(line[sp.s:sp.e]) != "null" {
		err := forEachMember(line, sp, func(name string, val span) error {
			col := csvActorColumns[name]
			if col == 0 {
				return nil // a member this version does not know
			}
			s, ok := stringValue(line, val)
			if !ok {
				return fmt.Errorf("actor.%s is not a string", name)
			}
			row[col] = s
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("record seq %d: actor: %w", seq, err)
		}
	}
	if sp := f.val[fData]; sp.ok() {
		data := line[sp.s:sp.e]
		if !f.canonical {
			c, err := jcs.Transform(data)
			if err != nil {
				return nil, fmt.Errorf("record seq %d: data: %w", seq, err)
			}
			data = c
		}
		row[13] = string(data)
	}
	return row, nil
}

// Filter selects records for an export. Its zero value selects everything.
// A filtered export is for reading, not for verifying: records left out
// leave gaps in the chain (checkpoints, which have no request_id, are left
// out by a RequestID filter).
type Filter struct {
	// Since, if not zero, keeps records whose time is at or after Since
	// (inclusive).
	Since time.Time
	// Until, if not zero, keeps records whose time is before Until
	// (exclusive), so [Since, Until) ranges tile without overlap.
	Until time.Time
	// RequestID, if not empty, keeps the records of that request only.
	RequestID string
}

// Match reports whether the record line passes the filter. It returns an
// error for a line that is not a well-formed record or, when Since or Until
// is set, whose time is not RFC 3339.
func (flt Filter) Match(line []byte) (bool, error) {
	var f topFields
	if err := scanTop(line, &f); err != nil {
		return false, fmt.Errorf("filter audit record: %w", err)
	}
	if flt.RequestID != "" {
		id, _ := stringValue(line, f.val[fRequestID])
		if id != flt.RequestID {
			return false, nil
		}
	}
	if flt.Since.IsZero() && flt.Until.IsZero() {
		return true, nil
	}
	s, ok := stringValue(line, f.val[fTime])
	if !ok {
		return false, errors.New("filter audit record: time is missing or not a string")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return false, fmt.Errorf("filter audit record: time: %w", err)
	}
	if !flt.Since.IsZero() && t.Before(flt.Since) {
		return false, nil
	}
	if !flt.Until.IsZero() && !t.Before(flt.Until) {
		return false, nil
	}
	return true, nil
}
