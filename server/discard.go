package server

import (
	"context"

	"github.com/mpmeter/mpmeter"
)

// discardUsage is a Store whose RecordUsage stores nothing and reports every
// record as created. It is the benchmark's ceiling: the same HTTP, SigV4,
// validation and marketplace path as a real server, with the usage write
// switched off. Never use it to serve clients: it loses everything.
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
