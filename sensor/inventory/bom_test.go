package inventory

import "testing"

// Spreadsheets ("CSV UTF-8" in Excel) start the file with a byte order
// mark; it is not part of the first column's name.
func TestCSVByteOrderMark(t *testing.T) {
	src := "\ufeffid,macs\nLT-1,dc:a6:32:01:02:03\n"
	tab, err := Parse("inv.csv", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if tab.ByID("LT-1") == nil {
		t.Errorf("device LT-1 not loaded: %v", ids(tab))
	}
}
