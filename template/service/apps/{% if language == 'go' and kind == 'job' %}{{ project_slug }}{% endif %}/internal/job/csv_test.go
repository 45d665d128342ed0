package job

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseCSVReturnsTheHeaderAndTheRows(t *testing.T) {
	columns, records, err := ParseCSV([]byte("id,comment\n1,\"a, quoted\nfield\"\n2,\n"))
	if err != nil {
		t.Fatal(err)
	}

	if fmt.Sprintf("%q", columns) != `["id" "comment"]` {
		t.Errorf("columns = %q", columns)
	}
	if fmt.Sprintf("%q", records) != `[["1" "a, quoted\nfield"] ["2" ""]]` {
		t.Errorf("records = %q", records)
	}
}

func TestAHeaderAloneIsValidWithNoRows(t *testing.T) {
	columns, records, err := ParseCSV([]byte("id,amount\n"))

	if err != nil || len(columns) != 2 || records == nil || len(records) != 0 {
		t.Errorf("columns %q, records %q, err %v", columns, records, err)
	}
}

func TestARowWithTooManyFieldsIsRefused(t *testing.T) {
	_, _, err := ParseCSV([]byte("id,amount\n1,10,extra\n"))

	if err == nil || !strings.HasPrefix(err.Error(), "line 2 has 3 fields, the header has 2") {
		t.Errorf("error = %v", err)
	}
}

func TestABadHeaderIsNotCSV(t *testing.T) {
	_, _, err := ParseCSV([]byte("\"id,amount\n"))

	if err == nil || !strings.HasPrefix(err.Error(), "not CSV") {
		t.Errorf("error = %v", err)
	}
}
