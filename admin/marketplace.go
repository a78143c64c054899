package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// Register adds this package's operations to api: the marketplace
// (accounts, access keys, products, subscriptions, registration tokens),
// the service clock, signing keys, the seed export and usage reports.
func Register(api huma.API, a *API) {
	a.registerAccounts(api)
	a.registerAccessKeys(api)
	a.registerProducts(api)
	a.registerSubscriptions(api)
	a.registerTokens(api)
	a.registerSystem(api)
	a.registerEntitlements(api)
	a.registerAudit(api)
	a.registerUsage(api)
	a.registerNotifications(api)
}

// op is an operation's description; path is below Prefix.
func op(id, method, path, summary string, tags ...string) huma.Operation {
	o := huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Tags: tags}
	switch method {
	case http.MethodPost:
		o.DefaultStatus = http.StatusOK
	}
	o.Errors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusConflict}
	return o
}

func created(o huma.Operation) huma.Operation {
	o.DefaultStatus = http.StatusCreated
	return o
}

// --- accounts ---

// Account is an AWS account: a seller's, a buyer's or both.
type Account struct {
	ID      string `json:"id" doc:"12-digit AWS account id." example:"111122223333"`
	Name    string `json:"name"`
	Version int64  `json:"version" doc:"The stored version; name it in an update to make the update conditional on it."`
}

func accountOut(a mpmeter.Account) Account {
	return Account{ID: a.ID, Name: a.Name, Version: a.Version}
}

type accountIn struct {
	Body struct {
		ID   string `json:"id" doc:"12-digit AWS account id."`
		Name string `json:"name,omitempty"`
	}
}

type accountPath struct {
	ID string `path:"id" doc:"Account id."`
}

type accountUpdate struct {
	ID   string `path:"id" doc:"Account id."`
	Body struct {
		Name    string `json:"name"`
		Version int64  `json:"version" minimum:"1" doc:"The version read: a stale one is 409 conflict."`
	}
}

type accountOutput struct{ Body Account }

func (a *API) registerAccounts(api huma.API) {
	huma.Register(api, created(op("create-account", http.MethodPost, "/accounts", "Create an account", "accounts")),
		func(ctx context.Context, in *accountIn) (*accountOutput, error) {
			if err := invalidAll("account", append(seed.CheckAccountID(in.Body.ID), seed.CheckAccount(seed.Account{ID: in.Body.ID, Name: in.Body.Name})...)); err != nil {
				return nil, err
			}
			what := "account " + in.Body.ID
			if err := a.storeErr(ctx, what, a.cfg.Store.PutAccount(ctx, mpmeter.Account{ID: in.Body.ID, Name: in.Body.Name, Version: mpmeter.CreateOnly})); err != nil {
				return nil, err
			}
			acc, err := a.cfg.Store.Account(ctx, in.Body.ID)
			return &accountOutput{accountOut(acc)}, a.storeErr(ctx, what, err)
		})
	huma.Register(api, op("get-account", http.MethodGet, "/accounts/{id}", "Get an account", "accounts"),
		func(ctx context.Context, in *accountPath) (*accountOutput, error) {
			acc, err := a.cfg.Store.Account(ctx, in.ID)
			return &accountOutput{accountOut(acc)}, a.storeErr(ctx, "account "+in.ID, err)
		})
	huma.Register(api, op("list-accounts", http.MethodGet, "/accounts", "List accounts, by id", "accounts"),
		func(ctx context.Context, in *PageParams) (*struct{ Body List[Account] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			accs, err := a.cfg.Store.Accounts(ctx, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "accounts", err)
			}
			accs, next := cut(accs, pg, func(x mpmeter.Account) string { return x.ID })
			out := &struct{ Body List[Account] }{List[Account]{Items: []Account{}, NextCursor: next}}
			for _, x := range accs {
				out.Body.Items = append(out.Body.Items, accountOut(x))
			}
			return out, nil
		})
	huma.Register(api, op("update-account", http.MethodPatch, "/accounts/{id}", "Rename an account", "accounts"),
		func(ctx context.Context, in *accountUpdate) (*accountOutput, error) {
			if err := invalidAll("account", seed.CheckAccount(seed.Account{ID: in.ID, Name: in.Body.Name})); err != nil {
				return nil, err
			}
			what := "account " + in.ID
			if err := a.storeErr(ctx, what, a.cfg.Store.PutAccount(ctx, mpmeter.Account{ID: in.ID, Name: in.Body.Name, Version: in.Body.Version})); err != nil {
				return nil, err
			}
			acc, err := a.cfg.Store.Account(ctx, in.ID)
			return &accountOutput{accountOut(acc)}, a.storeErr(ctx, what, err)
		})
}

// --- access keys ---

// Workload is a buyer's running software: its keys' MeterUsage and
// RegisterUsage calls are metered per workload. It is not a resource of its
// own: it is a property of the keys it signs with, given when a key is
// created (list a workload's keys with ?workload_id=).
type Workload struct {
	ID       string `json:"id" doc:"Instance id, task ARN, pod name, ..."`
	Platform string `json:"platform" enum:"ec2,ecs,eks,fargate,agentcore"`
	Region   string `json:"region" doc:"Where it runs; the endpoint's region must match." example:"us-east-1"`
}

// AccessKey is a credential an account signs requests with. Its secret is
// never shown after creation.
type AccessKey struct {
	ID        string     `json:"id"`
	AccountID string     `json:"account_id"`
	Workload  *Workload  `json:"workload,omitempty"`
	Temporary bool       `json:"temporary" doc:"Temporary credentials (requests carry a session token)."`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"When temporary credentials expire (service clock)."`
	// CredentialsEndpoint says the key's workload may fetch temporary
	// credentials from the container credentials endpoint.
	CredentialsEndpoint bool       `json:"credentials_endpoint"`
	RevokedAt           *time.Time `json:"revoked_at,omitempty" doc:"When the key was revoked; absent while it works."`
	Version             int64      `json:"version"`
}

// NewAccessKey is a created key with its secrets, shown this once.
type NewAccessKey struct {
	AccessKey
	SecretAccessKey string `json:"secret_access_key" doc:"Shown only in this answer."`
	// CredentialsToken is the Authorization value with which the workload
	// fetches temporary credentials (AWS_CONTAINER_AUTHORIZATION_TOKEN).
	CredentialsToken string `json:"credentials_token,omitempty" doc:"Shown only in this answer."`
}

func keyOut(k mpmeter.AccessKey) AccessKey {
	out := AccessKey{ID: k.ID, AccountID: k.AccountID, Temporary: k.Temporary(), CredentialsEndpoint: k.CredentialsToken != "", Version: k.Version}
	if w := k.Workload; w != nil {
		out.Workload = &Workload{ID: w.ID, Platform: w.Platform, Region: w.Region}
	}
	if !k.ExpiresAt.IsZero() {
		e := k.ExpiresAt.UTC()
		out.ExpiresAt = &e
	}
	if k.Revoked() {
		r := k.RevokedAt.UTC()
		out.RevokedAt = &r
	}
	return out
}

type accessKeyIn struct {
	Body struct {
		AccountID string    `json:"account_id"`
		ID        string    `json:"id,omitempty" doc:"The key id; generated (AKIA...) when absent."`
		Workload  *Workload `json:"workload,omitempty" doc:"Set for a buyer workload's key (MeterUsage, RegisterUsage)."`
		// CredentialsEndpoint generates a credentials token for the
		// workload's container credentials endpoint.
		CredentialsEndpoint bool `json:"credentials_endpoint,omitempty" doc:"Let the workload fetch temporary credentials: a credentials token is generated and shown once."`
	}
}

type keyPath struct {
	ID string `path:"id"`
}

type keyList struct {
	PageParams
	AccountID  string `query:"account_id" doc:"Only this account's keys."`
	WorkloadID string `query:"workload_id" doc:"Only this workload's keys."`
}

type versionIn struct {
	Version int64 `json:"version,omitempty" doc:"Make the change conditional on this version (409 when stale); absent: whatever the current one."`
}

type revokeIn struct {
	ID   string     `path:"id"`
	Body *versionIn `required:"false"`
}

type keyOutput struct{ Body AccessKey }

func (a *API) registerAccessKeys(api huma.API) {
	huma.Register(api, created(op("create-access-key", http.MethodPost, "/access-keys", "Create an access key (its secret is shown once)", "access keys")),
		func(ctx context.Context, in *accessKeyIn) (*struct{ Body NewAccessKey }, error) {
			b := in.Body
			id := b.ID
			if id == "" {
				id = newAccessKeyID()
			}
			sk := seed.AccessKey{ID: id, Secret: newSecretAccessKey()}
			if b.Workload != nil {
				sk.Workload = &seed.Workload{ID: b.Workload.ID, Platform: b.Workload.Platform, Region: b.Workload.Region}
			}
			if b.CredentialsEndpoint {
				sk.CredentialsToken = newToken()
			}
			if err := invalidAll("access key", append(seed.CheckAccessKeyID(id), seed.CheckAccessKey(sk)...)); err != nil {
				return nil, err
			}
			if err := a.mustExist(ctx, "account", b.AccountID, func() error { _, err := a.cfg.Store.Account(ctx, b.AccountID); return err }); err != nil {
				return nil, err
			}
			k := mpmeter.AccessKey{ID: id, Secret: sk.Secret, AccountID: b.AccountID, CredentialsToken: sk.CredentialsToken, Version: mpmeter.CreateOnly}
			if w := b.Workload; w != nil {
				k.Workload = &mpmeter.Workload{ID: w.ID, Platform: w.Platform, Region: w.Region}
			}
			what := "access key " + id
			if err := a.storeErr(ctx, what, a.cfg.Store.PutAccessKey(ctx, k)); err != nil {
				return nil, err
			}
			k.Version = 1
			return &struct{ Body NewAccessKey }{NewAccessKey{AccessKey: keyOut(k), SecretAccessKey: k.Secret, CredentialsToken: k.CredentialsToken}}, nil
		})
	huma.Register(api, op("get-access-key", http.MethodGet, "/access-keys/{id}", "Get an access key (without its secret)", "access keys"),
		func(ctx context.Context, in *keyPath) (*keyOutput, error) {
			k, err := a.cfg.Store.AccessKey(ctx, in.ID)
			return &keyOutput{keyOut(k)}, a.storeErr(ctx, "access key "+in.ID, err)
		})
	huma.Register(api, op("list-access-keys", http.MethodGet, "/access-keys", "List access keys, by id", "access keys"),
		func(ctx context.Context, in *keyList) (*struct{ Body List[AccessKey] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			keys, err := a.cfg.Store.AccessKeys(ctx, mpmeter.AccessKeyFilter{AccountID: in.AccountID, WorkloadID: in.WorkloadID}, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "access keys", err)
			}
			keys, next := cut(keys, pg, func(k mpmeter.AccessKey) string { return k.ID })
			out := &struct{ Body List[AccessKey] }{List[AccessKey]{Items: []AccessKey{}, NextCursor: next}}
			for _, k := range keys {
				out.Body.Items = append(out.Body.Items, keyOut(k))
			}
			return out, nil
		})
	huma.Register(api, op("revoke-access-key", http.MethodPost, "/access-keys/{id}/revoke",
		"Revoke an access key: final, and refused by every node when this answers", "access keys"),
		func(ctx context.Context, in *revokeIn) (*keyOutput, error) {
			what := "access key " + in.ID
			var want int64
			if in.Body != nil {
				want = in.Body.Version
			}
			k, err := update(ctx, a, what, want,
				func() (mpmeter.AccessKey, error) { return a.cfg.Store.AccessKey(ctx, in.ID) },
				func(k mpmeter.AccessKey) int64 { return k.Version },
				func(k mpmeter.AccessKey) error {
					if k.Revoked() {
						return nil // revoked already: nothing to do
					}
					k.RevokedAt = a.now()
					return a.cfg.Store.PutAccessKey(ctx, k)
				})
			if err != nil {
				return nil, err
			}
			// Every node's cache has forgotten the key once its TTL has
			// passed since the commit (storecache): answer then, so that
			// "revoked" means refused everywhere.
			if d := a.cfg.RevocationDelay; d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			return &keyOutput{keyOut(k)}, nil
		})
}

// update is a state change's read-modify-write: read, change (a versioned
// put of what was read; false when there is nothing to change), read the
// result. With want > 0 the change is conditional on that version (409
// when stale); without, a write that lost a race with another change is
// retried on a fresh read, a few times: concurrent changes never lose each
// other.
func update[T any](ctx context.Context, a *API, what string, want int64, read func() (T, error), version func(T) int64, change func(T) error) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		cur, err := read()
		if err != nil {
			return zero, a.storeErr(ctx, what, err)
		}
		if want > 0 && version(cur) != want {
			return zero, a.storeErr(ctx, what, mpmeter.ErrConflict)
		}
		err = change(cur)
		if errors.Is(err, mpmeter.ErrConflict) && want == 0 && attempt < 3 {
			continue
		}
		if err != nil {
			if _, ok := err.(*Error); ok {
				return zero, err
			}
			return zero, a.storeErr(ctx, what, err)
		}
		cur, err = read()
		return cur, a.storeErr(ctx, what, err)
	}
}

// mustExist answers 400 when a resource the request refers to is missing.
func (a *API) mustExist(ctx context.Context, kind, id string, read func() error) error {
	switch err := read(); {
	case errors.Is(err, mpmeter.ErrNotFound):
		return invalid("%s %q does not exist", kind, id)
	case err != nil:
		return a.storeErr(ctx, kind+" "+id, err)
	}
	return nil
}

func (a *API) now() time.Time {
	if a.cfg.Clock == nil {
		return time.Now().UTC()
	}
	return a.cfg.Clock.Now().UTC()
}
