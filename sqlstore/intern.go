package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"sync"
)

// party is who and what a record is about: one row of usage_parties, one
// per agreement (SaaS) or per workload and product (AMI, container).
type party struct {
	product, seller, account, identifier, license, workload string
}

func compareParty(a, b party) int {
	return cmp.Or(strings.Compare(a.product, b.product), strings.Compare(a.account, b.account),
		strings.Compare(a.license, b.license), strings.Compare(a.workload, b.workload),
		strings.Compare(a.identifier, b.identifier), strings.Compare(a.seller, b.seller))
}

// dictionaries caches the integer ids of usage_parties, usage_dimensions and
// usage_dedup_templates. Rows there are never changed nor deleted, so an id
// once committed is good forever and on every node; the cache holds only
// committed ids (a transaction publishes its new ones after COMMIT), and is
// emptied when it grows past maxDictEntries, to bound memory.
type dictionaries struct {
	mu        sync.Mutex
	parties   map[party]int64
	dims      map[string]int64
	templates map[string]int64
	anchors   map[string]int64
}

const maxDictEntries = 1 << 17

func newDictionaries() *dictionaries {
	return &dictionaries{parties: map[party]int64{}, dims: map[string]int64{}, templates: map[string]int64{}, anchors: map[string]int64{}}
}

// interned is an id a transaction found or created, published after COMMIT.
type interned struct {
	p                *party
	dim, tpl, anchor string
	isAnchor         bool
	id               int64
}

func (d *dictionaries) publish(entries []interned) {
	if len(entries) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range entries {
		switch {
		case e.isAnchor:
			if len(d.anchors) >= maxDictEntries {
				clear(d.anchors)
			}
			d.anchors[e.anchor] = e.id
		case e.p != nil:
			if len(d.parties) >= maxDictEntries {
				clear(d.parties)
			}
			d.parties[*e.p] = e.id
		case e.tpl != "":
			if len(d.templates) >= maxDictEntries {
				clear(d.templates)
			}
			d.templates[e.tpl] = e.id
		default:
			if len(d.dims) >= maxDictEntries {
				clear(d.dims)
			}
			d.dims[e.dim] = e.id
		}
	}
}

const (
	partySelect = `SELECT id FROM usage_parties WHERE product_code = ? AND seller_account_id = ? AND customer_account_id = ?
		AND customer_identifier = ? AND license_arn = ? AND workload_id = ?`
	partyInsert = `INSERT INTO usage_parties (product_code, seller_account_id, customer_account_id, customer_identifier, license_arn, workload_id)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`
	dimSelect    = `SELECT id FROM usage_dimensions WHERE name = ?`
	dimInsert    = `INSERT INTO usage_dimensions (name) VALUES (?) ON CONFLICT DO NOTHING RETURNING id`
	tplSelect    = `SELECT id FROM usage_dedup_templates WHERE template = ?`
	tplInsert    = `INSERT INTO usage_dedup_templates (template) VALUES (?) ON CONFLICT DO NOTHING RETURNING id`
	anchorSelect = `SELECT id FROM usage_dedup_anchors WHERE value = ?`
	anchorInsert = `INSERT INTO usage_dedup_anchors (value) VALUES (?) ON CONFLICT DO NOTHING RETURNING id`
)

// queryer is a transaction or a pool.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lookupOrCreate finds the id of a dictionary row, creating the row when
// create is set. Without create, a missing row is id 0. On PostgreSQL a
// concurrent creator makes the INSERT wait and then do nothing; the SELECT
// after it sees the committed row.
func (s *Store) lookupOrCreate(ctx context.Context, q queryer, sel, ins string, create bool, args ...any) (int64, error) {
	var id int64
	if create {
		// Writers miss the cache mostly for rows that are new (an
		// agreement's first record), so INSERT first.
		err := q.QueryRowContext(ctx, s.d.rebind(ins), args...).Scan(&id)
		if !errors.Is(err, sql.ErrNoRows) {
			return id, err
		}
	}
	err := q.QueryRowContext(ctx, s.d.rebind(sel), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) && !create {
		return 0, nil
	}
	return id, err
}

// recordRefs are the dictionary ids of one record.
type recordRefs struct {
	party, dim, tpl, anchor int64
}

// resolveRefs finds (and with create, makes) the dictionary ids of recs[idx].
// Missing rows are created in a fixed order (parties, dimensions,
// templates, anchors, each sorted), so that PostgreSQL transactions creating
// overlapping rows lock them in the same order. Created ids are appended to
// *pending. Without create, a missing row leaves its id 0.
func (s *Store) resolveRefs(ctx context.Context, q queryer, recs []recordInput, create bool, pending *[]interned) error {
	var missP []party
	var missD, missT, missA []string
	s.dicts.mu.Lock()
	for i := range recs {
		r := &recs[i]
		if id, ok := s.dicts.parties[r.party]; ok {
			r.refs.party = id
		} else {
			missP = append(missP, r.party)
		}
		if id, ok := s.dicts.dims[r.rec.Dimension]; ok {
			r.refs.dim = id
		} else {
			missD = append(missD, r.rec.Dimension)
		}
		if r.dedup != nil {
			if id, ok := s.dicts.templates[r.dedup.template]; ok {
				r.refs.tpl = id
			} else {
				missT = append(missT, r.dedup.template)
			}
			if id, ok := s.dicts.anchors[r.dedup.anchor]; ok {
				r.refs.anchor = id
			} else {
				missA = append(missA, r.dedup.anchor)
			}
		}
	}
	s.dicts.mu.Unlock()
	if len(missP)+len(missD)+len(missT)+len(missA) == 0 {
		return nil
	}
	slices.SortFunc(missP, compareParty)
	missP = slices.Compact(missP)
	slices.Sort(missD)
	missD = slices.Compact(missD)
	slices.Sort(missT)
	missT = slices.Compact(missT)
	slices.Sort(missA)
	missA = slices.Compact(missA)
	pids := make(map[party]int64, len(missP))
	for _, p := range missP {
		id, err := s.lookupOrCreate(ctx, q, partySelect, partyInsert, create, p.product, p.seller, p.account, p.identifier, p.license, p.workload)
		if err != nil {
			return err
		}
		pids[p] = id
		if id != 0 && pending != nil {
			*pending = append(*pending, interned{p: &p, id: id})
		}
	}
	dids := make(map[string]int64, len(missD))
	for _, n := range missD {
		id, err := s.lookupOrCreate(ctx, q, dimSelect, dimInsert, create, n)
		if err != nil {
			return err
		}
		dids[n] = id
		if id != 0 && pending != nil {
			*pending = append(*pending, interned{dim: n, id: id})
		}
	}
	tids := make(map[string]int64, len(missT))
	for _, t := range missT {
		id, err := s.lookupOrCreate(ctx, q, tplSelect, tplInsert, create, t)
		if err != nil {
			return err
		}
		tids[t] = id
		if id != 0 && pending != nil {
			*pending = append(*pending, interned{tpl: t, id: id})
		}
	}
	aids := make(map[string]int64, len(missA))
	for _, a := range missA {
		id, err := s.lookupOrCreate(ctx, q, anchorSelect, anchorInsert, create, a)
		if err != nil {
			return err
		}
		aids[a] = id
		if id != 0 && pending != nil {
			*pending = append(*pending, interned{anchor: a, isAnchor: true, id: id})
		}
	}
	for i := range recs {
		r := &recs[i]
		if r.dedup != nil && r.refs.anchor == 0 {
			r.refs.anchor = aids[r.dedup.anchor]
		}
		if r.refs.party == 0 {
			r.refs.party = pids[r.party]
		}
		if r.refs.dim == 0 {
			r.refs.dim = dids[r.rec.Dimension]
		}
		if r.dedup != nil && r.refs.tpl == 0 {
			r.refs.tpl = tids[r.dedup.template]
		}
	}
	return nil
}
