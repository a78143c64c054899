package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addProductsCommands: products create/get/list/update on a server.
func addProductsCommands(root *cobra.Command, a *app) {
	cmd := group("products", "Products and their dimensions (admin API)")
	a.apiFlags(cmd)

	var np adminclient.NewProduct
	var dims []string
	create := &cobra.Command{
		Use:   "create --code CODE --seller ACCOUNT --type saas|ami|container --dimension NAME[:UNIT[:PRICE[:DESCRIPTION]]]...",
		Short: "Create a product",
		Long: `Create a product. --dimension is repeated, once per dimension:
NAME, or NAME:UNIT:PRICE:DESCRIPTION with any tail left out (PRICE is USD per
unit as a decimal string; the description may hold colons).`,
		Args: args(cobra.NoArgs),
		Example: `  mpmeter products create --code newprod1 --seller 111122223333 --type saas --dimension users --dimension gigabytes
  mpmeter products create --code newprod2 --seller 111122223333 --type saas --dimension "seats:Users:0.05:Seats in use"`,
		RunE: func(_ *cobra.Command, _ []string) error {
			if np.Code == "" || np.SellerAccountID == "" || np.Type == "" || len(dims) == 0 {
				return usagef("--code, --seller, --type and at least one --dimension are required")
			}
			np.Dimensions = parseDimensions(dims)
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.CreateProduct(a.ctx, np)
			if err != nil {
				return err
			}
			return a.show(p, func() table { return productsTable(p) })
		},
	}
	f := create.Flags()
	f.StringVar(&np.Code, "code", "", "the ProductCode (required)")
	f.StringVar(&np.SellerAccountID, "seller", "", "the seller's account id (required)")
	f.StringVar(&np.Type, "type", "", "saas, ami or container (required)")
	f.StringArrayVar(&dims, "dimension", nil, "a dimension, NAME[:UNIT[:PRICE[:DESCRIPTION]]] (repeat for each)")
	f.BoolVar(&np.ConcurrentAgreements, "concurrent-agreements", false, "SaaS: a buyer may hold several agreements at once (docs/concurrent-agreements.md)")
	f.StringVar(&np.FulfillmentURL, "fulfillment-url", "", "SaaS: the seller's registration page, where a new subscription's registration token is POSTed (docs/notifications.md)")

	get := &cobra.Command{
		Use: "get CODE", Short: "Show a product", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter products get exampleprod1 -o json",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.Product(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(p, func() table { return productsTable(p) })
		},
	}
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "List products, by code", Args: args(cobra.NoArgs),
		Example: "  mpmeter products list",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ps, err := c.Products(a.ctx, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(ps, func() table { return productsTable(ps...) })
		},
	}
	limitFlag(list, &limit)

	var newDims []string
	var version int64
	var fulfillmentURL string
	update := &cobra.Command{
		Use:   "update CODE [--dimension NAME[:UNIT[:PRICE[:DESCRIPTION]]]...] [--fulfillment-url URL]",
		Short: "Replace a product's dimensions or its fulfillment URL",
		Long: `Replace a product's dimensions (--dimension, all of them) or its fulfillment
URL (--fulfillment-url; "" removes it), or both. What is not given stays.`,
		Args: args(cobra.ExactArgs(1)),
		Example: `  mpmeter products update newprod1 --dimension users:Users:0.04 --dimension gigabytes:GB
  mpmeter products update newprod1 --fulfillment-url https://seller.example.com/register`,
		RunE: func(cmd *cobra.Command, args []string) error {
			setURL := cmd.Flags().Changed("fulfillment-url")
			if len(newDims) == 0 && !setURL {
				return usagef("give --dimension (at least one) or --fulfillment-url")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			u := adminclient.ProductUpdate{Version: version}
			if len(newDims) > 0 {
				u.Dimensions = parseDimensions(newDims)
			}
			if setURL {
				u.FulfillmentURL = &fulfillmentURL
			}
			if u.Version == 0 || u.Dimensions == nil {
				cur, err := c.Product(a.ctx, args[0])
				if err != nil {
					return err
				}
				if u.Version == 0 {
					u.Version = cur.Version
				}
				if u.Dimensions == nil {
					// The route replaces the dimensions: send the current ones back.
					u.Dimensions = cur.Dimensions
				}
			}
			p, err := c.UpdateProduct(a.ctx, args[0], u)
			if err != nil {
				return err
			}
			return a.show(p, func() table { return productsTable(p) })
		},
	}
	update.Flags().StringArrayVar(&newDims, "dimension", nil, "a dimension, NAME[:UNIT[:PRICE[:DESCRIPTION]]] (repeat for each; they replace the old)")
	update.Flags().StringVar(&fulfillmentURL, "fulfillment-url", "", `the new fulfillment URL ("" removes it)`)
	versionFlag(update, &version)
	cmd.AddCommand(create, get, list, update)
	root.AddCommand(cmd)
}

// parseDimensions reads --dimension NAME[:UNIT[:PRICE[:DESCRIPTION]]];
// the server checks the values (names, decimal prices).
func parseDimensions(specs []string) []admin.Dimension {
	out := make([]admin.Dimension, 0, len(specs))
	for _, s := range specs {
		parts := strings.SplitN(s, ":", 4)
		d := admin.Dimension{Name: parts[0]}
		if len(parts) > 1 {
			d.Unit = parts[1]
		}
		if len(parts) > 2 {
			d.PricePerUnit = parts[2]
		}
		if len(parts) > 3 {
			d.Description = parts[3]
		}
		out = append(out, d)
	}
	return out
}

func productsTable(ps ...admin.Product) table {
	t := table{header: []string{"CODE", "SELLER", "TYPE", "DIMENSIONS", "CONCURRENT AGREEMENTS", "FULFILLMENT URL", "VERSION"}}
	for _, p := range ps {
		var dims []string
		for _, d := range p.Dimensions {
			s := d.Name
			if d.Unit != "" || d.PricePerUnit != "" {
				s += " (" + strings.TrimSpace(d.Unit+" "+priceCell(d.PricePerUnit)) + ")"
			}
			dims = append(dims, s)
		}
		t.add(p.Code, p.SellerAccountID, p.Type, strings.Join(dims, ", "), yesNo(p.ConcurrentAgreements), p.FulfillmentURL, strconv.FormatInt(p.Version, 10))
	}
	return t
}

func priceCell(p string) string {
	if p == "" {
		return ""
	}
	return "$" + p
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
