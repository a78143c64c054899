package seed

import (
	"testing"
)

// FuzzParse: any bytes parse into a seed or are refused, without panic, and
// a parsed seed resolves or is refused without panic.
func FuzzParse(f *testing.F) {
	demo, err := Demo().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	f.Add([]byte("accounts:\n  - id: \"111122223333\"\n    access_keys: [{id: A, secret: s}]\n"))
	f.Add([]byte("registration_tokens:\n  - {token: t, account: \"1\", product: p, expires_at: 2026-13-01}\n"))
	f.Add([]byte("unknown: 1\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		file.Resolved()
	})
}
