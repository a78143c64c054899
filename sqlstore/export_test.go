package sqlstore

import "fmt"

// MigrationsForTest returns the dialect's migrations as "NNNN_name".
func MigrationsForTest(dialectName string) ([]string, error) {
	ms, err := migrations(dialectName)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range ms {
		names = append(names, fmt.Sprintf("%04d_%s", m.version, m.name))
	}
	return names, nil
}
