package job

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// ParseCSV reads CSV with a header row. Every row must have as many fields as the header: a row
// cut short is what a truncated upload leaves. The error says which line is wrong.
func ParseCSV(body []byte) (columns []string, records [][]string, err error) {
	reader := csv.NewReader(bytes.NewReader(body))
	columns, err = reader.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("it is empty: no header row")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("not CSV: %w", err)
	}
	// The header sets the number of fields of every row (csv.Reader checks it).
	records = [][]string{}
	for {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return columns, records, nil
		}
		var parseError *csv.ParseError
		if errors.As(err, &parseError) && errors.Is(parseError.Err, csv.ErrFieldCount) {
			return nil, nil, fmt.Errorf("line %d has %d fields, the header has %d: the row is cut short or malformed",
				parseError.Line, len(record), len(columns))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("not CSV: %w", err)
		}
		records = append(records, record)
	}
}
