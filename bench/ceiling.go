package bench

import (
	"context"

	"github.com/mpmeter/mpmeter"
)

// discardUsage is the ceiling target's store: a Store whose RecordUsage
// stores nothing and reports every record as created. The server in front
// of it runs the same HTTP, SigV4, validation and marketplace path as a real
// one, with the usage write switched off, which is what the storing targets
// are compared with. It lives here, not in the server, because it loses
// everything: nothing but the benchmark may serve with it.
type discardUsage struct {
	mpmeter.Store
}

func (discardUsage) RecordUsage(ctx context.Context, recs []mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) ([]mpmeter.MeteringOutcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]mpmeter.MeteringOutcome, len(recs))
	for i, r := range recs {
		out[i] = mpmeter.MeteringOutcome{Created: true, Record: r}
	}
	return out, nil
}
