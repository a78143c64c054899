package mpmeter

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fieldPath names a member in a validation message the way AWS JSON services
// do: camelCase members, 1-based list indexes followed by ".member"
// (usageRecords.1.member.dimension). It is built only when a message is.
type fieldPath struct {
	parent *fieldPath
	name   string
	index  int // list element (1-based) when name is empty
}

func (p *fieldPath) String() string {
	var parts []string
	for q := p; q != nil; q = q.parent {
		if q.name != "" {
			parts = append(parts, q.name)
		} else {
			parts = append(parts, "member", strconv.Itoa(q.index))
		}
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// MaxViolations is how many constraint violations a ValidationException
// names at most; validation stops at the first MaxViolations. What AWS's
// own limit is, is not documented: this bound keeps a request's answer (and
// the work to build it) small whatever the request holds.
const MaxViolations = 10

// maxQuotedValue bounds the bytes of a value quoted in a violation; a
// longer value is cut (on a rune boundary) and ends in "...".
const maxQuotedValue = 256

// validationErrors collects constraint violations in AWS's message format,
// at most MaxViolations.
type validationErrors struct {
	msgs []string
	// fields are the violations one by one: the wire path and the
	// violation (the Agreement Service's ValidationException lists them).
	fields []ValidationField
}

// ValidationField is one violation: the member's wire path
// (filters.1.member.values) and what is wrong with it.
type ValidationField struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (e *validationErrors) add(p *fieldPath, value, constraint string) {
	if e.full() {
		return
	}
	msg := "Value " + value + " at '" + p.String() + "' failed to satisfy constraint: " + constraint
	e.msgs = append(e.msgs, msg)
	e.fields = append(e.fields, ValidationField{Name: p.String(), Message: msg})
}

// full reports whether no further violation would be reported, so the walk
// can stop.
func (e *validationErrors) full() bool { return len(e.msgs) >= MaxViolations }

func (e *validationErrors) missing(p *fieldPath) {
	e.add(p, "null", "Member must not be null")
}

func quoteValue(s string) string { return "'" + cutValue(s) + "'" }

// cutValue bounds a quoted value to maxQuotedValue bytes.
func cutValue(s string) string {
	if len(s) <= maxQuotedValue {
		return s
	}
	n := maxQuotedValue
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func (e *validationErrors) checkString(p *fieldPath, s string, hasMin bool, min int64, hasMax bool, max int64, re *regexp.Regexp, pattern string, enum []string) {
	// One violation per member, the first in AWS's order (length, then
	// pattern, then enum): an empty string is reported as too short, not
	// also as not matching [\s\S]+.
	n := int64(utf8.RuneCountInString(s))
	if hasMin && n < min {
		e.add(p, quoteValue(s), "Member must have length greater than or equal to "+strconv.FormatInt(min, 10))
		return
	}
	if hasMax && n > max {
		e.add(p, quoteValue(s), "Member must have length less than or equal to "+strconv.FormatInt(max, 10))
		return
	}
	if re != nil && !re.MatchString(s) {
		e.add(p, quoteValue(s), "Member must satisfy regular expression pattern: "+pattern)
		return
	}
	if enum != nil {
		for _, v := range enum {
			if v == s {
				return
			}
		}
		e.add(p, quoteValue(s), "Member must satisfy enum value set: ["+strings.Join(enum, ", ")+"]")
	}
}

func (e *validationErrors) checkInt(p *fieldPath, v int64, hasMin bool, min int64, hasMax bool, max int64) {
	if hasMin && v < min {
		e.add(p, quoteValue(strconv.FormatInt(v, 10)), "Member must have value greater than or equal to "+strconv.FormatInt(min, 10))
	}
	if hasMax && v > max {
		e.add(p, quoteValue(strconv.FormatInt(v, 10)), "Member must have value less than or equal to "+strconv.FormatInt(max, 10))
	}
}

// checkListLen checks a list's length and reports whether it is within the
// bounds. The message quotes the list as JSON, as far as maxQuotedValue
// allows: the elements are written one by one until the bound, never the
// whole list.
func checkListLen[T any](e *validationErrors, p *fieldPath, list []T, hasMin bool, min int64, hasMax bool, max int64) bool {
	n := int64(len(list))
	if (!hasMin || n >= min) && (!hasMax || n <= max) {
		return true
	}
	value := quoteValue(listPrefix(list))
	if hasMin && n < min {
		e.add(p, value, "Member must have length greater than or equal to "+strconv.FormatInt(min, 10))
	} else {
		e.add(p, value, "Member must have length less than or equal to "+strconv.FormatInt(max, 10))
	}
	return false
}

// listPrefix writes list as JSON, stopping (with "...") once it passes
// maxQuotedValue bytes.
func listPrefix[T any](list []T) string {
	b := []byte{'['}
	for i := range list {
		if len(b) > maxQuotedValue {
			return string(b) + "..."
		}
		if i > 0 {
			b = append(b, ',')
		}
		el, err := json.Marshal(list[i])
		if err != nil {
			el = []byte("?")
		}
		b = append(b, el...)
	}
	return string(append(b, ']'))
}

// crossFieldRules is an input with constraints the model cannot express
// (exactly one of two members; one member required when another is absent).
// Its hand-written checkCrossField (api_rules.go) runs from the generated
// Validate only when the model's constraints hold, so it sees well-formed
// members, and it reports in the same format, with the same wire paths.
type crossFieldRules interface {
	checkCrossField(e *validationErrors)
}

// checkCrossField runs v's cross-field rules, if it has any and nothing
// else is wrong.
func (e *validationErrors) checkCrossField(v any) {
	if r, ok := v.(crossFieldRules); ok && len(e.msgs) == 0 {
		r.checkCrossField(e)
	}
}

func (e *validationErrors) err() error {
	if len(e.msgs) == 0 {
		return nil
	}
	return ValidationError(e.msgs...)
}

// ValidationError returns a ValidationException in the AWS message format:
// "N validation error(s) detected: " and the violations joined by "; ".
func ValidationError(violations ...string) *Error {
	noun := "errors"
	if len(violations) == 1 {
		noun = "error"
	}
	return &Error{Code: CodeValidation, Message: strconv.Itoa(len(violations)) + " validation " + noun + " detected: " + strings.Join(violations, "; ")}
}

// errAs is err with another error name: a model whose service answers
// constraint violations with its own modeled error (the Entitlement
// Service's InvalidParameterException) keeps AWS's message format.
func (e *validationErrors) errAs(code ErrorCode) error {
	err := e.err()
	if err == nil {
		return nil
	}
	v := err.(*Error)
	v.Code = code
	return v
}

// errWithMembers is errAs(code) with the further members members gives
// for the violations (the Agreement Service's reason and fields).
func (e *validationErrors) errWithMembers(code ErrorCode, members func([]ValidationField) map[string]any) error {
	err := e.errAs(code)
	if err == nil {
		return nil
	}
	v := err.(*Error)
	v.Members = members(e.fields)
	return v
}

// checkStringListMap checks a map of string keys to string lists (the
// Entitlement Service's Filter): each key in keyEnum (when set) and each
// list's length, keys in sorted order so messages are stable. A list's path
// is the map's path and the key (filter.DIMENSION).
func checkStringListMap(e *validationErrors, p *fieldPath, m map[string][]string, keyEnum []string, hasMin bool, min int64, hasMax bool, max int64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if keyEnum != nil && !slices.Contains(keyEnum, k) {
			e.add(p, quoteValue(k), "Map keys must satisfy constraint: [Member must satisfy enum value set: ["+strings.Join(keyEnum, ", ")+"]]")
			continue
		}
		checkListLen(e, &fieldPath{parent: p, name: k}, m[k], hasMin, min, hasMax, max)
	}
}
