package admin

import "testing"

func TestChargeIsExact(t *testing.T) {
	for _, c := range []struct {
		price    string
		quantity int64
		want     string
		ok       bool
	}{
		{"0.05", 3, "0.15", true},
		{"0.10", 7, "0.7", true},
		{"1.50", 2, "3", true},
		{"12", 0, "0", true},
		{"0.000000000001", 3, "0.000000000003", true},
		// float64 would give 0.30000000000000004 for 0.1 × 3.
		{"0.1", 3, "0.3", true},
		{"0.333333333333", 9223372036854775807, "3074457345615184144.987715074731", true},
		{"", 3, "", false},
		{"abc", 3, "", false},
	} {
		got, ok := charge(c.price, c.quantity)
		if got != c.want || ok != c.ok {
			t.Errorf("charge(%q, %d) = %q, %v; want %q, %v", c.price, c.quantity, got, ok, c.want, c.ok)
		}
	}
}
