package awsjson

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/middleware"
)

// errDropConnection tells ServeHTTP to close the connection unanswered
// (an injected drop_connection fault).
var errDropConnection = errors.New("awsjson: injected fault: drop the connection")

// injectFault asks the injector for call's fault, records it in req, and
// returns the error the call answers instead (nil for latency, after the
// wait, and for unprocessed records, which serve applies).
func (h *Handler) injectFault(ctx context.Context, req *middleware.Request, call mpmeter.FaultCall) error {
	if h.faults == nil {
		return nil
	}
	f := h.faults.Inject(ctx, call)
	if f == nil {
		return nil
	}
	req.Fault = f
	switch f.Kind {
	case mpmeter.FaultThrottling:
		return mpmeter.Errorf(mpmeter.CodeThrottling, "%s", ThrottlingMessage)
	case mpmeter.FaultInternalError:
		return mpmeter.Errorf(mpmeter.CodeInternalServiceError, "%s", internalMessage)
	case mpmeter.FaultServiceUnavailable:
		return errBusy
	case mpmeter.FaultDropConnection:
		req.ErrorMessage = "The connection was closed without an answer (injected fault)."
		return errDropConnection
	case mpmeter.FaultLatency:
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			// The request's deadline (or the client) ended the wait:
			// what a slow server would answer, if anyone listens.
			return errBusy
		}
	}
	return nil
}

// dropConnection closes the request's connection without writing
// anything: an HTTP/1 connection is hijacked and closed; where that is not
// possible (HTTP/2) the handler aborts, which resets the stream.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// callWithUnprocessed serves a BatchMeterUsage with the records at skip
// (indexes, in order) held back: the others are metered as usual, and the
// held-back ones come back in UnprocessedRecords, unstored, as AWS returns
// records it could not process.
func callWithUnprocessed(ctx context.Context, op operation, caller mpmeter.Caller, in input, skip []int) (any, error) {
	batch, ok := in.(*mpmeter.BatchMeterUsageInput)
	if !ok {
		return op.call(ctx, caller, in)
	}
	kept := &mpmeter.BatchMeterUsageInput{ProductCode: batch.ProductCode, UsageRecords: make([]mpmeter.UsageRecord, 0, len(batch.UsageRecords))}
	var held []mpmeter.UsageRecord
	next := 0
	for i, rec := range batch.UsageRecords {
		if next < len(skip) && skip[next] == i {
			held = append(held, rec)
			next++
			continue
		}
		kept.UsageRecords = append(kept.UsageRecords, rec)
	}
	out, err := op.call(ctx, caller, kept)
	if err != nil {
		return nil, err
	}
	res := out.(*mpmeter.BatchMeterUsageOutput)
	res.UnprocessedRecords = append(res.UnprocessedRecords, held...)
	return res, nil
}
