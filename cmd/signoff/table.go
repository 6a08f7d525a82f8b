package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// writeTable prints rows as an aligned table under header (columns
// separated by tabs, as writeRow writes them), or the line empty when there
// are no rows. what names the rows in a write error.
func writeTable[T any](w io.Writer, rows []T, empty, header, what string, writeRow func(io.Writer, T)) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, empty)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		writeRow(tw, r)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}
