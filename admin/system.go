package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter/seed"
)

// --- the service clock ---

// Clock is the service clock's state.
type Clock struct {
	Now     time.Time `json:"now" doc:"Service time now."`
	Offset  string    `json:"offset" doc:"How far the service clock is from wall time (a Go duration; 0s: wall time)."`
	Virtual bool      `json:"virtual" doc:"Whether it is moved from wall time."`
}

type clockSetIn struct {
	Body struct {
		Now time.Time `json:"now" doc:"Make the service clock read this now (RFC 3339)."`
	}
}

type clockAdvanceIn struct {
	Body struct {
		By string `json:"by" doc:"A Go duration, negative to go back." example:"5h"`
	}
}

type clockOutput struct{ Body Clock }

func (a *API) clockState() (*clockOutput, error) {
	sc, ok := a.cfg.Clock.(SettableClock)
	if !ok {
		return &clockOutput{Clock{Now: a.now(), Offset: "0s"}}, nil
	}
	off := sc.Offset()
	return &clockOutput{Clock{Now: sc.Now().UTC(), Offset: off.String(), Virtual: off != 0}}, nil
}

func (a *API) settable() (SettableClock, error) {
	sc, ok := a.cfg.Clock.(SettableClock)
	if !ok {
		return nil, &Error{Status: http.StatusConflict, Code: CodeClockNotSettable, Message: "this server runs on a clock the admin API cannot move"}
	}
	return sc, nil
}

// --- signing keys ---

// SigningKey is one version of the key that signs RegisterUsage tokens.
type SigningKey struct {
	Version      int       `json:"version"`
	CreatedAt    time.Time `json:"created_at"`
	Current      bool      `json:"current" doc:"The version new tokens are signed with."`
	PublicKeyPEM string    `json:"public_key_pem"`
}

type seedOutput struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

func (a *API) registerSystem(api huma.API) {
	huma.Register(api, op("get-clock", http.MethodGet, "/clock", "Show the service clock", "clock"),
		func(ctx context.Context, _ *struct{}) (*clockOutput, error) { return a.clockState() })
	huma.Register(api, op("set-clock", http.MethodPut, "/clock", "Set the service clock (every node follows within a second)", "clock"),
		func(ctx context.Context, in *clockSetIn) (*clockOutput, error) {
			sc, err := a.settable()
			if err != nil {
				return nil, err
			}
			if err := sc.Set(ctx, in.Body.Now); err != nil {
				return nil, a.storeErr(ctx, "clock", err)
			}
			return a.clockState()
		})
	huma.Register(api, op("advance-clock", http.MethodPost, "/clock/advance", "Move the service clock by a duration", "clock"),
		func(ctx context.Context, in *clockAdvanceIn) (*clockOutput, error) {
			d, err := time.ParseDuration(in.Body.By)
			if err != nil {
				return nil, invalid("by %q is not a duration such as 5h or -30m", in.Body.By)
			}
			sc, err := a.settable()
			if err != nil {
				return nil, err
			}
			if err := sc.Advance(ctx, d); err != nil {
				return nil, a.storeErr(ctx, "clock", err)
			}
			return a.clockState()
		})
	huma.Register(api, op("reset-clock", http.MethodPost, "/clock/reset", "Put the service clock back on wall time", "clock"),
		func(ctx context.Context, _ *struct{}) (*clockOutput, error) {
			sc, err := a.settable()
			if err != nil {
				return nil, err
			}
			if err := sc.Reset(ctx); err != nil {
				return nil, a.storeErr(ctx, "clock", err)
			}
			return a.clockState()
		})

	huma.Register(api, op("list-signing-keys", http.MethodGet, "/signing-keys", "List signing key versions, oldest first", "signing keys"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body List[SigningKey] }, error) {
			ks, err := a.cfg.Store.SigningKeys(ctx)
			if err != nil {
				return nil, a.storeErr(ctx, "signing keys", err)
			}
			out := &struct{ Body List[SigningKey] }{List[SigningKey]{Items: []SigningKey{}}}
			for i, k := range ks {
				out.Body.Items = append(out.Body.Items, SigningKey{Version: k.Version, CreatedAt: k.CreatedAt.UTC(), Current: i == len(ks)-1, PublicKeyPEM: string(k.PublicKeyPEM)})
			}
			return out, nil
		})
	huma.Register(api, op("rotate-signing-key", http.MethodPost, "/signing-keys/rotate", "Add a signing key version; older versions keep verifying", "signing keys"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body SigningKey }, error) {
			if a.cfg.Keys == nil {
				return nil, conflict("this server has no signing keys to rotate")
			}
			v, err := a.cfg.Keys.Rotate(ctx)
			if err != nil {
				return nil, a.storeErr(ctx, "signing keys", err)
			}
			ks, err := a.cfg.Store.SigningKeys(ctx)
			if err != nil {
				return nil, a.storeErr(ctx, "signing keys", err)
			}
			for _, k := range ks {
				if k.Version == v {
					return &struct{ Body SigningKey }{SigningKey{Version: v, CreatedAt: k.CreatedAt.UTC(), Current: true, PublicKeyPEM: string(k.PublicKeyPEM)}}, nil
				}
			}
			return &struct{ Body SigningKey }{SigningKey{Version: v, Current: true}}, nil
		})

	o := op("export-seed", http.MethodGet, "/seed", "The marketplace as a seed file (YAML) that --seed applies back", "seed")
	o.Responses = map[string]*huma.Response{"200": {Description: "A seed file, secrets included.", Content: map[string]*huma.MediaType{"application/yaml": {}}}}
	huma.Register(api, o, func(ctx context.Context, _ *struct{}) (*seedOutput, error) {
		var src seed.Source = a.cfg.Store
		if a.cfg.NotificationStore == nil {
			// A server that sends no notifications applies no SNS
			// subscriptions or EventBridge targets from a seed, and its
			// store may keep none to list.
			src = struct{ seed.Source }{a.cfg.Store}
		}
		f, err := seed.Export(ctx, src)
		if err != nil {
			return nil, a.storeErr(ctx, "marketplace", err)
		}
		b, err := f.Marshal()
		if err != nil {
			return nil, a.storeErr(ctx, "seed", err)
		}
		return &seedOutput{ContentType: "application/yaml", Body: b}, nil
	})
}
