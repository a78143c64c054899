// Command gen writes the Go types of a service model's request and response
// shapes and their validation, generated from the model so that no name,
// limit or pattern is retyped by hand: api_gen.go from the Metering model and
// entitlement_gen.go from the Entitlement Service model, both in package
// mpmeter. Run by `go generate` in the repository root.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type member struct {
	Shape string `json:"shape"`
}

// options say how one model's code is named, so that two models' code can
// live side by side in one package.
type options struct {
	// prefix names the model's constants: <prefix>TargetPrefix,
	// <prefix>SigningName, ... ("" for the Metering model).
	prefix string
	// rename maps model shape names to Go type names where a shape's name is
	// taken by a domain type (Entitlement).
	rename map[string]string
	// validationError is the error name model violations answer with:
	// ValidationException for Metering; services whose model has no
	// ValidationException answer their modeled InvalidParameterException.
	validationError string
	// operations, when set, keeps only these operations and the shapes they
	// reach (the Agreement Service's model has 25 operations; mpmeter serves
	// three).
	operations []string
	// validationMembers, when set, names a hand-written function that gives
	// the model's ValidationException its further members (reason, fields)
	// from the violations.
	validationMembers string
	// cbor emits <prefix>Namespace even when the model lists one protocol:
	// current SDKs speak RPC v2 CBOR to services whose JSON model predates
	// it.
	cbor bool
}

type shape struct {
	Type      string            `json:"type"`
	Required  []string          `json:"required"`
	Members   map[string]member `json:"members"`
	Member    *member           `json:"member"`
	Key       *member           `json:"key"`
	Value     *member           `json:"value"`
	Min       *int64            `json:"min"`
	Max       *int64            `json:"max"`
	Pattern   *string           `json:"pattern"`
	Enum      []string          `json:"enum"`
	Exception bool              `json:"exception"`
}

// bounds returns the shape's min and max, each with whether it is set.
func (s shape) bounds() (hasMin bool, min int64, hasMax bool, max int64) {
	if s.Min != nil {
		hasMin, min = true, *s.Min
	}
	if s.Max != nil {
		hasMax, max = true, *s.Max
	}
	return
}

type operation struct {
	Input  member   `json:"input"`
	Output member   `json:"output"`
	Errors []member `json:"errors"`
}

type model struct {
	Metadata   map[string]any       `json:"metadata"`
	Operations map[string]operation `json:"operations"`
	Shapes     map[string]shape     `json:"shapes"`
	// memberOrder keeps each structure's members in model order (Go maps
	// do not), so validation messages come out in a stable, sensible order.
	memberOrder map[string][]string
}

func main() {
	modelPath := flag.String("model", "", "service model JSON")
	out := flag.String("out", "api_gen.go", "output file")
	var opts options
	flag.StringVar(&opts.prefix, "prefix", "", "prefix of the generated constants' names")
	flag.StringVar(&opts.validationError, "validation-error", "ValidationException", "the error name of model violations")
	rename := flag.String("rename", "", "Shape=GoName pairs, comma-separated")
	operations := flag.String("operations", "", "operations to keep, comma-separated (default: all)")
	flag.StringVar(&opts.validationMembers, "validation-members", "", "function giving ValidationException's further members")
	flag.BoolVar(&opts.cbor, "cbor", false, "emit the Smithy namespace (the service also speaks RPC v2 CBOR)")
	flag.Parse()
	opts.operations = strings.FieldsFunc(*operations, func(c rune) bool { return c == ',' })
	opts.rename = map[string]string{}
	for _, pair := range strings.FieldsFunc(*rename, func(c rune) bool { return c == ',' }) {
		from, to, ok := strings.Cut(pair, "=")
		if !ok {
			log.Fatalf("-rename %q: want Shape=GoName", pair)
		}
		opts.rename[from] = to
	}
	raw, err := os.ReadFile(*modelPath)
	if err != nil {
		log.Fatal(err)
	}
	var m model
	if err := json.Unmarshal(raw, &m); err != nil {
		log.Fatal(err)
	}
	if len(opts.operations) > 0 {
		kept := map[string]operation{}
		for _, name := range opts.operations {
			op, ok := m.Operations[name]
			if !ok {
				log.Fatalf("-operations: the model has no operation %q", name)
			}
			kept[name] = op
		}
		m.Operations = kept
	}
	m.memberOrder, err = memberOrder(raw)
	if err != nil {
		log.Fatal(err)
	}
	src, err := generate(&m, opts)
	if err != nil {
		log.Fatal(err)
	}
	formatted, err := format.Source(src)
	if err != nil {
		os.Stderr.Write(src)
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, formatted, 0o644); err != nil {
		log.Fatal(err)
	}
}

// memberOrder decodes the model again with a token reader to learn the
// order of each structure's members.
func memberOrder(raw []byte) (map[string][]string, error) {
	var top struct {
		Shapes map[string]json.RawMessage `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	order := map[string][]string{}
	for name, body := range top.Shapes {
		var s struct {
			Members json.RawMessage `json:"members"`
		}
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, err
		}
		if len(s.Members) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(s.Members))
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			order[name] = append(order[name], tok.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
		}
	}
	return order, nil
}

// goTypeName maps the model's request/result shape names to the aws-sdk-go
// style Input/Output names.
func (o options) goTypeName(name string) string {
	if to, ok := o.rename[name]; ok {
		return to
	}
	switch {
	case strings.HasSuffix(name, "Request"):
		return strings.TrimSuffix(name, "Request") + "Input"
	case strings.HasSuffix(name, "Result") && name != "UsageRecordResult":
		return strings.TrimSuffix(name, "Result") + "Output"
	}
	return name
}

// goField is a member's Go field name: exported (the Agreement Service's
// model names members in camelCase).
func goField(name string) string {
	return strings.ToUpper(name[:1]) + name[1:]
}

// wirePath is the validation message's name for a member: camelCase.
func wirePath(name string) string {
	return strings.ToLower(name[:1]) + name[1:]
}

// re2Pattern rewrites what RE2 cannot compile: a bounded repeat above 1000
// ({0,1023}) becomes two repeats of the same class.
func re2Pattern(p string) string {
	big := regexp.MustCompile(`(\[[^\]]*\])\{(\d+),(\d+)\}`)
	return big.ReplaceAllStringFunc(p, func(s string) string {
		sub := big.FindStringSubmatch(s)
		lo, _ := strconv.Atoi(sub[2])
		hi, _ := strconv.Atoi(sub[3])
		if hi <= 1000 {
			return s
		}
		return fmt.Sprintf("%s{%d,1000}%s{0,%d}", sub[1], lo, sub[1], hi-1000)
	})
}

// smithyNamespace is the Smithy namespace of an AWS service's shapes, which
// the JSON model does not carry: AWS's models name it com.amazonaws. and the
// service id in lower case without spaces (com.amazonaws.marketplaceentitlementservice).
func smithyNamespace(serviceID string) string {
	return "com.amazonaws." + strings.ToLower(strings.ReplaceAll(serviceID, " ", ""))
}

func generate(m *model, o options) ([]byte, error) {
	goTypeName := o.goTypeName
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by internal/gen from the service model (%s, API version %v). DO NOT EDIT.\n\n", m.Metadata["uid"], m.Metadata["apiVersion"])
	b.WriteString("package mpmeter\n\nimport \"regexp\"\n\n")
	fmt.Fprintf(&b, "// %sTargetPrefix is the X-Amz-Target prefix of every operation (awsJson).\nconst %sTargetPrefix = %q\n\n", o.prefix, o.prefix, m.Metadata["targetPrefix"])
	fmt.Fprintf(&b, "// %sSigningName is the SigV4 service name in the credential scope.\nconst %sSigningName = %q\n\n", o.prefix, o.prefix, m.Metadata["signingName"])
	if protocols, ok := m.Metadata["protocols"].([]any); (ok && len(protocols) > 1) || o.cbor {
		fmt.Fprintf(&b, "// %sNamespace is the Smithy namespace of the model's shapes: Smithy RPC v2\n// CBOR names errors by absolute shape id (namespace#Name).\nconst %sNamespace = %q\n\n", o.prefix, o.prefix, smithyNamespace(fmt.Sprint(m.Metadata["serviceId"])))
	}
	if o.prefix != "" {
		// A second model's validation answers its own error name (the
		// Metering model's is ValidationException, validationErrors.err).
		fmt.Fprintf(&b, "// %sValidationError is the error name the model's constraints answer with.\nconst %sValidationError ErrorCode = %q\n\n", o.prefix, o.prefix, o.validationError)
	}

	opNames := make([]string, 0, len(m.Operations))
	for n := range m.Operations {
		opNames = append(opNames, n)
	}
	sort.Strings(opNames)
	b.WriteString("// Operation names, as they follow TargetPrefix in X-Amz-Target.\nconst (\n")
	for _, n := range opNames {
		fmt.Fprintf(&b, "\tOp%s = %q\n", n, n)
	}
	b.WriteString(")\n\n")

	// Collect the structures reachable from operations.
	reach := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		if reach[n] {
			return
		}
		s := m.Shapes[n]
		switch s.Type {
		case "structure":
			reach[n] = true
			for _, mem := range s.Members {
				walk(mem.Shape)
			}
		case "list":
			walk(s.Member.Shape)
		case "map":
			walk(s.Value.Shape)
		}
	}
	inputs, outputs := map[string]bool{}, map[string]bool{}
	for _, op := range m.Operations {
		walk(op.Input.Shape)
		walk(op.Output.Shape)
		inputs[op.Input.Shape] = true
		outputs[op.Output.Shape] = true
	}
	// Structures that need validation: reachable from inputs.
	validated := map[string]bool{}
	var walkIn func(string)
	walkIn = func(n string) {
		s := m.Shapes[n]
		switch s.Type {
		case "structure":
			if validated[n] {
				return
			}
			validated[n] = true
			for _, mem := range s.Members {
				walkIn(mem.Shape)
			}
		case "list":
			walkIn(s.Member.Shape)
		case "map":
			walkIn(s.Value.Shape)
		}
	}
	for n := range inputs {
		walkIn(n)
	}

	names := make([]string, 0, len(reach))
	for n := range reach {
		names = append(names, n)
	}
	sort.Strings(names)

	var patterns []string
	patternVar := map[string]string{}
	patternPrefix := "pattern"
	if o.prefix != "" {
		patternPrefix = strings.ToLower(o.prefix[:1]) + o.prefix[1:] + "Pattern"
	}
	patternFor := func(p string) string {
		if v, ok := patternVar[p]; ok {
			return v
		}
		v := fmt.Sprintf("%s%d", patternPrefix, len(patterns))
		patternVar[p] = v
		patterns = append(patterns, p)
		return v
	}

	goType := func(shapeName string) string {
		s := m.Shapes[shapeName]
		switch s.Type {
		case "string":
			return "*string"
		case "integer", "long":
			return "*int64"
		case "boolean":
			return "*bool"
		case "double", "float":
			return "*float64"
		case "timestamp":
			return "*Timestamp"
		case "structure":
			return "*" + goTypeName(shapeName)
		case "list":
			el := m.Shapes[s.Member.Shape]
			if el.Type == "structure" {
				return "[]" + goTypeName(s.Member.Shape)
			}
			switch el.Type {
			case "string":
				return "[]string"
			}
		case "map":
			// Only maps of string keys to string lists (Filter).
			if k, v := m.Shapes[s.Key.Shape], m.Shapes[s.Value.Shape]; k.Type == "string" && v.Type == "list" && m.Shapes[v.Member.Shape].Type == "string" {
				return "map[string][]string"
			}
		}
		panic("unsupported shape " + shapeName + " of type " + s.Type)
	}

	// Enums.
	var enumNames []string
	keepEnum := func(string) bool { return true }
	if len(o.operations) > 0 {
		// Only the enums the kept operations and their errors reach.
		used := map[string]bool{}
		var mark func(string)
		mark = func(n string) {
			if used[n] {
				return
			}
			used[n] = true
			s := m.Shapes[n]
			for _, mem := range s.Members {
				mark(mem.Shape)
			}
			for _, mem := range []*member{s.Member, s.Key, s.Value} {
				if mem != nil {
					mark(mem.Shape)
				}
			}
		}
		for _, op := range m.Operations {
			mark(op.Input.Shape)
			mark(op.Output.Shape)
			for _, e := range op.Errors {
				mark(e.Shape)
			}
		}
		keepEnum = func(n string) bool { return used[n] }
	}
	for n, s := range m.Shapes {
		if s.Type == "string" && len(s.Enum) > 0 && keepEnum(n) {
			enumNames = append(enumNames, n)
		}
	}
	sort.Strings(enumNames)
	for _, n := range enumNames {
		fmt.Fprintf(&b, "// Values of %s.\nconst (\n", n)
		for _, v := range m.Shapes[n].Enum {
			fmt.Fprintf(&b, "\t%s%s = %q\n", n, v, v)
		}
		b.WriteString(")\n\n")
	}

	for _, n := range names {
		s := m.Shapes[n]
		fmt.Fprintf(&b, "// %s is the model's %s shape.\ntype %s struct {\n", goTypeName(n), n, goTypeName(n))
		for _, mn := range m.memberOrder[n] {
			tag := mn + ",omitempty"
			if outputs[n] && m.Shapes[s.Members[mn].Shape].Type == "list" {
				// AWS answers empty result lists as [], not by leaving them out.
				tag = mn
			}
			fmt.Fprintf(&b, "\t%s %s `json:\"%s\"`\n", goField(mn), goType(s.Members[mn].Shape), tag)
		}
		b.WriteString("}\n\n")
	}

	// Validation.
	var vnames []string
	for n := range validated {
		vnames = append(vnames, n)
	}
	sort.Strings(vnames)
	for _, n := range vnames {
		s := m.Shapes[n]
		tn := goTypeName(n)
		if inputs[n] {
			errExpr, errName := "e.err()", "ValidationException"
			if o.prefix != "" {
				errExpr, errName = "e.errAs("+o.prefix+"ValidationError)", o.validationError
			}
			if o.validationMembers != "" {
				errExpr = "e.errWithMembers(" + o.prefix + "ValidationError, " + o.validationMembers + ")"
			}
			fmt.Fprintf(&b, "// Validate checks v against the model's constraints and then, when they\n// hold, its cross-field rules (crossFieldRules), and returns an error\n// (%s) naming every violation, or nil.\nfunc (v *%s) Validate() error {\n\tvar e validationErrors\n\tv.validate(nil, &e)\n\te.checkCrossField(v)\n\treturn %s\n}\n\n", errName, tn, errExpr)
		}
		fmt.Fprintf(&b, "func (v *%s) validate(parent *fieldPath, e *validationErrors) {\n", tn)
		required := map[string]bool{}
		for _, r := range s.Required {
			required[r] = true
		}
		for _, mn := range m.memberOrder[n] {
			ms := m.Shapes[s.Members[mn].Shape]
			pathExpr := fmt.Sprintf("&fieldPath{parent: parent, name: %q}", wirePath(mn))
			fmt.Fprintf(&b, "\t{\n\t\tp := %s\n\t\t_ = p\n", pathExpr)
			fn := goField(mn)
			isNil := "v." + fn + " == nil"
			if required[mn] {
				fmt.Fprintf(&b, "\t\tif %s {\n\t\t\te.missing(p)\n\t\t}\n", isNil)
			}
			switch ms.Type {
			case "string":
				hasMin, minV, hasMax, maxV := ms.bounds()
				pat := "nil"
				patText := ""
				if ms.Pattern != nil {
					pat = patternFor(*ms.Pattern)
					patText = *ms.Pattern
				}
				enum := "nil"
				if len(ms.Enum) > 0 {
					enum = fmt.Sprintf("%#v", ms.Enum)
				}
				fmt.Fprintf(&b, "\t\tif v.%s != nil {\n\t\t\te.checkString(p, *v.%s, %v, %d, %v, %d, %s, %q, %s)\n\t\t}\n", fn, fn, hasMin, minV, hasMax, maxV, pat, patText, enum)
			case "integer", "long":
				hasMin, minV, hasMax, maxV := ms.bounds()
				if hasMin || hasMax {
					fmt.Fprintf(&b, "\t\tif v.%s != nil {\n\t\t\te.checkInt(p, *v.%s, %v, %d, %v, %d)\n\t\t}\n", fn, fn, hasMin, minV, hasMax, maxV)
				}
			case "structure":
				fmt.Fprintf(&b, "\t\tif v.%s != nil {\n\t\t\tv.%s.validate(p, e)\n\t\t}\n", fn, fn)
			case "list":
				hasMin, minV, hasMax, maxV := ms.bounds()
				// The length first: the members of a list of the wrong
				// length are not looked at (an over-long list must not
				// cost a violation per member), and the walk stops once
				// the message is full.
				cond := fmt.Sprintf("v.%s != nil", fn)
				if hasMin || hasMax {
					cond += fmt.Sprintf(" && checkListLen(e, p, v.%s, %v, %d, %v, %d)", fn, hasMin, minV, hasMax, maxV)
				}
				fmt.Fprintf(&b, "\t\tif %s {\n", cond)
				el := m.Shapes[ms.Member.Shape]
				switch el.Type {
				case "structure":
					fmt.Fprintf(&b, "\t\t\tfor i := 0; i < len(v.%s) && !e.full(); i++ {\n\t\t\t\tv.%s[i].validate(&fieldPath{parent: p, index: i + 1}, e)\n\t\t\t}\n", fn, fn)
				case "string":
					// Each element against its shape's constraints.
					hasMin, minV, hasMax, maxV := el.bounds()
					if hasMin || hasMax || el.Pattern != nil || len(el.Enum) > 0 {
						pat, patText := "nil", ""
						if el.Pattern != nil {
							pat, patText = patternFor(*el.Pattern), *el.Pattern
						}
						enum := "nil"
						if len(el.Enum) > 0 {
							enum = fmt.Sprintf("%#v", el.Enum)
						}
						fmt.Fprintf(&b, "\t\t\tfor i := 0; i < len(v.%s) && !e.full(); i++ {\n\t\t\t\te.checkString(&fieldPath{parent: p, index: i + 1}, v.%s[i], %v, %d, %v, %d, %s, %q, %s)\n\t\t\t}\n", fn, fn, hasMin, minV, hasMax, maxV, pat, patText, enum)
					}
				}
				b.WriteString("\t\t}\n")
			case "map":
				ks, vs := m.Shapes[ms.Key.Shape], m.Shapes[ms.Value.Shape]
				keyEnum := "nil"
				if len(ks.Enum) > 0 {
					keyEnum = fmt.Sprintf("%#v", ks.Enum)
				}
				hasMin, minV, hasMax, maxV := vs.bounds()
				fmt.Fprintf(&b, "\t\tif v.%s != nil {\n\t\t\tcheckStringListMap(e, p, v.%s, %s, %v, %d, %v, %d)\n\t\t}\n", fn, fn, keyEnum, hasMin, minV, hasMax, maxV)
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n\n")
	}

	if len(patterns) > 0 {
		b.WriteString("// The model's patterns (rewritten only where RE2 needs it).\nvar (\n")
		for i, p := range patterns {
			fmt.Fprintf(&b, "\t%s%d = regexp.MustCompile(%q)\n", patternPrefix, i, re2Pattern(p))
		}
		b.WriteString(")\n")
	}
	return b.Bytes(), nil
}
