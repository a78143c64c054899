package seed

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// productFields are a product's keys in the file; a custom UnmarshalYAML
// decodes without the decoder's KnownFields, so it checks them itself.
var productFields = map[string]bool{"code": true, "seller": true, "type": true, "dimensions": true, "concurrent_agreements": true, "fulfillment_url": true}

var dimensionFields = map[string]bool{"name": true, "description": true, "unit": true, "price": true}

// productYAML is Product as the file spells it.
type productYAML struct {
	Code                 string          `yaml:"code"`
	Seller               string          `yaml:"seller"`
	Type                 string          `yaml:"type"`
	Dimensions           []dimensionYAML `yaml:"dimensions,flow"`
	ConcurrentAgreements bool            `yaml:"concurrent_agreements,omitempty"`
	FulfillmentURL       string          `yaml:"fulfillment_url,omitempty"`
}

// dimensionYAML is one dimension: its name alone, or a mapping.
type dimensionYAML struct {
	Name string
	DimensionDetails
}

// UnmarshalYAML reads a product, each dimension a name or a mapping
// {name, description, unit, price}; unknown keys are errors.
func (p *Product) UnmarshalYAML(n *yaml.Node) error {
	if err := knownKeys(n, productFields, "seed.Product"); err != nil {
		return err
	}
	var py productYAML
	if err := n.Decode(&py); err != nil {
		return err
	}
	*p = Product{Code: py.Code, Seller: py.Seller, Type: py.Type, ConcurrentAgreements: py.ConcurrentAgreements, FulfillmentURL: py.FulfillmentURL}
	for _, d := range py.Dimensions {
		p.Dimensions = append(p.Dimensions, d.Name)
		if d.DimensionDetails != (DimensionDetails{}) {
			if p.DimensionDetails == nil {
				p.DimensionDetails = map[string]DimensionDetails{}
			}
			p.DimensionDetails[d.Name] = d.DimensionDetails
		}
	}
	return nil
}

// MarshalYAML writes a product with each dimension as its name when it has
// no details (the short form), as a mapping otherwise.
func (p Product) MarshalYAML() (any, error) {
	py := productYAML{Code: p.Code, Seller: p.Seller, Type: p.Type, ConcurrentAgreements: p.ConcurrentAgreements, FulfillmentURL: p.FulfillmentURL}
	for _, name := range p.Dimensions {
		py.Dimensions = append(py.Dimensions, dimensionYAML{Name: name, DimensionDetails: p.DimensionDetails[name]})
	}
	return py, nil
}

// UnmarshalYAML reads a dimension: a scalar name or a mapping.
func (d *dimensionYAML) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&d.Name)
	}
	if err := knownKeys(n, dimensionFields, "a dimension"); err != nil {
		return err
	}
	var m struct {
		Name             string `yaml:"name"`
		DimensionDetails `yaml:",inline"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	if m.Name == "" {
		return fmt.Errorf("line %d: a dimension mapping needs a name", n.Line)
	}
	d.Name, d.DimensionDetails = m.Name, m.DimensionDetails
	return nil
}

// MarshalYAML writes the name alone when there are no details.
func (d dimensionYAML) MarshalYAML() (any, error) {
	if d.DimensionDetails == (DimensionDetails{}) {
		return d.Name, nil
	}
	return struct {
		Name             string `yaml:"name"`
		DimensionDetails `yaml:",inline"`
	}{d.Name, d.DimensionDetails}, nil
}

// knownKeys fails on a key of mapping n that is not in known, as the
// decoder's KnownFields would.
func knownKeys(n *yaml.Node, known map[string]bool, what string) error {
	if n.Kind != yaml.MappingNode {
		return nil // Decode reports the type error
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			return fmt.Errorf("line %d: field %s not found in type %s", k.Line, k.Value, what)
		}
	}
	return nil
}
