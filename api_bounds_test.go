package mpmeter_test

import (
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter"
)

// An over-long list is one violation, whatever its members hold: the
// members are not validated, and the quoted value is a bounded prefix of
// the list, never the whole of it.
func TestOverLongListIsOneBoundedViolation(t *testing.T) {
	p := "p"
	in := &mpmeter.BatchMeterUsageInput{ProductCode: &p, UsageRecords: make([]mpmeter.UsageRecord, 340_000)}
	e, ok := in.Validate().(*mpmeter.Error)
	if !ok || e.Code != mpmeter.CodeValidation {
		t.Fatalf("got %v", in.Validate())
	}
	if !strings.HasPrefix(e.Message, "1 validation error detected: Value '[{},{},") ||
		!strings.HasSuffix(e.Message, "...' at 'usageRecords' failed to satisfy constraint: Member must have length less than or equal to 25") {
		t.Errorf("message %q", e.Message)
	}
	if len(e.Message) > 1024 {
		t.Errorf("message of %d bytes", len(e.Message))
	}
}

// At most MaxViolations are reported, and a long value is quoted cut.
func TestViolationsAreCapped(t *testing.T) {
	long := strings.Repeat("é", 10_000)
	in := &mpmeter.BatchMeterUsageInput{ProductCode: &long, UsageRecords: make([]mpmeter.UsageRecord, 25)}
	e, ok := in.Validate().(*mpmeter.Error)
	if !ok {
		t.Fatalf("got %v", in.Validate())
	}
	prefix := "10 validation errors detected: "
	if mpmeter.MaxViolations != 10 || !strings.HasPrefix(e.Message, prefix) {
		t.Fatalf("message %.200q", e.Message)
	}
	if n := strings.Count(e.Message, "failed to satisfy constraint"); n != mpmeter.MaxViolations {
		t.Errorf("%d violations listed", n)
	}
	if len(e.Message) > mpmeter.MaxViolations*600 {
		t.Errorf("message of %d bytes", len(e.Message))
	}
	in = &mpmeter.BatchMeterUsageInput{ProductCode: &long, UsageRecords: []mpmeter.UsageRecord{}}
	e, _ = in.Validate().(*mpmeter.Error)
	if e == nil || !strings.Contains(e.Message, "Value '"+strings.Repeat("é", 128)+"...' at 'productCode'") {
		t.Errorf("long value quoted as %.400q", e)
	}
}
