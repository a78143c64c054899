package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// dictTable is one dictionary: its table and the key columns that are
// unique together (each a TEXT).
type dictTable struct {
	table string
	cols  []string
	one   readStmt // selectOne, prepared on the read pool
}

var (
	partiesDict   = dictTable{"usage_parties", []string{"product_code", "seller_account_id", "customer_account_id", "customer_identifier", "license_arn", "workload_id"}, rPartyID}
	dimensionDict = dictTable{"usage_dimensions", []string{"name"}, rDimensionID}
	templateDict  = dictTable{"usage_dedup_templates", []string{"template"}, rTemplateID}
	anchorDict    = dictTable{"usage_dedup_anchors", []string{"value"}, rAnchorID}
)

// selectOne is the query of one key's id.
func (d dictTable) selectOne() string {
	return `SELECT id FROM ` + d.table + ` WHERE ` + strings.Join(d.cols, " = ? AND ") + ` = ?`
}

// dictChunk is how many keys one dictionary statement carries (at most 6
// parameters each).
const dictChunk = 64

// dictQuerier runs dictionary queries: a write transaction or the read pool.
type dictQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// intern returns the ids of keys (sorted and distinct, each as many values
// as d has columns), in keys' order. With create, the missing rows are
// created in q: per chunk of keys one multi-row INSERT … ON CONFLICT DO
// NOTHING RETURNING, then one SELECT for the keys that were there already.
// Without create, q is not used: the committed rows are read with the
// read pool's prepared lookups, and a missing row's id is 0.
//
// On PostgreSQL a concurrent creator of the same row makes the INSERT wait
// and then skip it; the SELECT after it, a new statement under READ
// COMMITTED, sees the committed row. Keys are inserted in sorted order, so
// two transactions creating overlapping rows lock them in the same order.
func (s *Store) intern(ctx context.Context, q dictQuerier, d dictTable, keys [][]string, create bool) ([]int64, error) {
	ids := make([]int64, len(keys))
	if !create {
		// Committed rows, on the read pool, one prepared lookup a key:
		// cheaper than parsing a query of many keys. On SQLite these run
		// for every call that meets a value the cache lacks (most often
		// one that does not exist yet); PostgreSQL only previews here
		// (PreviewUsage: one record), as its writes resolve the ids in
		// their transaction (prepareRecords).
		for n, k := range keys {
			args := make([]any, len(k))
			for i, v := range k {
				args[i] = v
			}
			err := s.rst[d.one].QueryRowContext(ctx, args...).Scan(&ids[n])
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
		}
		return ids, nil
	}
	row := "(?" + strings.Repeat(", ?", len(d.cols)-1) + ")" // one key's values
	for start := 0; start < len(keys); start += dictChunk {
		chunk := keys[start:min(start+dictChunk, len(keys))]
		got := make(map[string]int64, len(chunk))
		if create {
			query := `INSERT INTO ` + d.table + ` (` + strings.Join(d.cols, ", ") + `) VALUES ` + row +
				strings.Repeat(", "+row, len(chunk)-1) + ` ON CONFLICT DO NOTHING RETURNING id, ` + strings.Join(d.cols, ", ")
			if err := s.scanDict(ctx, q, query, chunk, got); err != nil {
				return nil, err
			}
		}
		var rest [][]string
		for _, k := range chunk {
			if _, ok := got[dictKey(k)]; !ok {
				rest = append(rest, k)
			}
		}
		if len(rest) > 0 {
			cols := "t." + strings.Join(d.cols, ", t.")
			var query string
			if len(d.cols) == 1 {
				query = `SELECT t.id, ` + cols + ` FROM ` + d.table + ` t WHERE t.` + d.cols[0] + ` IN (?` + strings.Repeat(", ?", len(rest)-1) + `)`
			} else {
				// A join with the keys as a VALUES list, one index probe a
				// key on both databases. (An OR of the keys' conditions
				// made PostgreSQL scan the whole table, and two nodes,
				// each missing the other's rows in its cache, collapsed
				// to a tenth of one node's records/s.)
				on := make([]string, len(d.cols))
				for i, c := range d.cols {
					on[i] = fmt.Sprintf("t.%s = v.column%d", c, i+1)
				}
				query = `SELECT t.id, ` + cols + ` FROM (VALUES ` + row + strings.Repeat(", "+row, len(rest)-1) + `) v JOIN ` +
					d.table + ` t ON ` + strings.Join(on, " AND ")
			}
			if err := s.scanDict(ctx, q, query, rest, got); err != nil {
				return nil, err
			}
		}
		for n, k := range chunk {
			id, ok := got[dictKey(k)]
			if !ok && create {
				return nil, fmt.Errorf("sqlstore: %s row %q neither inserted nor found", d.table, k)
			}
			ids[start+n] = id
		}
	}
	return ids, nil
}

// scanDict runs a dictionary query whose parameters are keys and whose rows
// are (id, key columns...), adding them to got.
func (s *Store) scanDict(ctx context.Context, q dictQuerier, query string, keys [][]string, got map[string]int64) error {
	args := make([]any, 0, len(keys)*len(keys[0]))
	for _, k := range keys {
		for _, v := range k {
			args = append(args, v)
		}
	}
	rows, err := q.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]string, len(keys[0]))
	dest := make([]any, 1+len(vals))
	var id int64
	dest[0] = &id
	for i := range vals {
		dest[1+i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		got[dictKey(vals)] = id
	}
	return rows.Err()
}

func dictKey(k []string) string { return strings.Join(k, "\x00") }

// recordRefs are the dictionary ids of one record.
type recordRefs struct {
	party, dim, tpl, anchor int64
}

// resolveRefs fills in the dictionary ids of recs that are still 0: from
// the cache, else from q, creating the rows when create is set (in a fixed
// order: parties, dimensions, templates, anchors, each sorted; see intern).
// The ids found or created in q are appended to *pending. Without create,
// a missing row leaves its id 0.
func (s *Store) resolveRefs(ctx context.Context, q dictQuerier, recs []recordInput, create bool, pending *[]interned) error {
	var missP []party
	var missD, missT, missA []string
	s.dicts.mu.Lock()
	for i := range recs {
		r := &recs[i]
		if r.refs.party == 0 {
			if id, ok := s.dicts.parties[r.party]; ok {
				r.refs.party = id
			} else {
				missP = append(missP, r.party)
			}
		}
		if r.refs.dim == 0 {
			if id, ok := s.dicts.dims[r.rec.Dimension]; ok {
				r.refs.dim = id
			} else {
				missD = append(missD, r.rec.Dimension)
			}
		}
		if r.dedup != nil {
			if r.refs.tpl == 0 {
				if id, ok := s.dicts.templates[r.dedup.template]; ok {
					r.refs.tpl = id
				} else {
					missT = append(missT, r.dedup.template)
				}
			}
			if r.refs.anchor == 0 {
				if id, ok := s.dicts.anchors[r.dedup.anchor]; ok {
					r.refs.anchor = id
				} else {
					missA = append(missA, r.dedup.anchor)
				}
			}
		}
	}
	s.dicts.mu.Unlock()
	if len(missP)+len(missD)+len(missT)+len(missA) == 0 {
		return nil
	}
	slices.SortFunc(missP, compareParty)
	missP = slices.Compact(missP)
	pkeys := make([][]string, len(missP))
	for n, p := range missP {
		pkeys[n] = []string{p.product, p.seller, p.account, p.identifier, p.license, p.workload}
	}
	pids, err := s.intern(ctx, q, partiesDict, pkeys, create)
	if err != nil {
		return err
	}
	byParty := make(map[party]int64, len(missP))
	for n, p := range missP {
		byParty[p] = pids[n]
		if pids[n] != 0 && pending != nil {
			*pending = append(*pending, interned{p: &missP[n], id: pids[n]})
		}
	}
	internNames := func(d dictTable, names []string, mk func(string, int64) interned) (map[string]int64, error) {
		slices.Sort(names)
		names = slices.Compact(names)
		keys := make([][]string, len(names))
		for n, v := range names {
			keys[n] = []string{v}
		}
		ids, err := s.intern(ctx, q, d, keys, create)
		if err != nil {
			return nil, err
		}
		m := make(map[string]int64, len(names))
		for n, v := range names {
			m[v] = ids[n]
			if ids[n] != 0 && pending != nil {
				*pending = append(*pending, mk(v, ids[n]))
			}
		}
		return m, nil
	}
	dids, err := internNames(dimensionDict, missD, func(v string, id int64) interned { return interned{dim: v, id: id} })
	if err != nil {
		return err
	}
	tids, err := internNames(templateDict, missT, func(v string, id int64) interned { return interned{tpl: v, id: id} })
	if err != nil {
		return err
	}
	aids, err := internNames(anchorDict, missA, func(v string, id int64) interned { return interned{anchor: v, isAnchor: true, id: id} })
	if err != nil {
		return err
	}
	for i := range recs {
		r := &recs[i]
		if r.refs.party == 0 {
			r.refs.party = byParty[r.party]
		}
		if r.refs.dim == 0 {
			r.refs.dim = dids[r.rec.Dimension]
		}
		if r.dedup != nil && r.refs.tpl == 0 {
			r.refs.tpl = tids[r.dedup.template]
		}
		if r.dedup != nil && r.refs.anchor == 0 {
			r.refs.anchor = aids[r.dedup.anchor]
		}
	}
	return nil
}
