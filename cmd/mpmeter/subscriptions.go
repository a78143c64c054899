package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addSubscriptionsCommands: subscriptions (agreements) create/get/list and
// cancel/expire/reactivate on a server.
func addSubscriptionsCommands(root *cobra.Command, a *app) {
	cmd := group("subscriptions", "Buyers' subscriptions to products: agreements (admin API)")
	a.apiFlags(cmd)

	var ns adminclient.NewSubscription
	var noFulfillment bool
	create := &cobra.Command{
		Use: "create --account ID --product CODE [flags]", Short: "Subscribe a buyer to a product (an agreement)", Args: args(cobra.NoArgs),
		Example: `  mpmeter subscriptions create --account 210987654321 --product newprod1
  mpmeter subscriptions create --account 210987654321 --product newprod1 --offer-id offer-abc123 --free-trial
  mpmeter subscriptions create --account 210987654321 --product newprod1 --simulate payment-failure`,
		RunE: func(_ *cobra.Command, _ []string) error {
			if ns.AccountID == "" || ns.ProductCode == "" {
				return usagef("--account and --product are required")
			}
			if noFulfillment {
				no := false
				ns.Fulfillment = &no
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.CreateSubscription(a.ctx, ns)
			if err != nil {
				return err
			}
			if f := s.Fulfillment; f != nil {
				a.note("registration token %s POSTed to %s (mpmeter notifications deliveries get %s)", f.TokenID, f.URL, f.DeliveryID)
			}
			return a.show(s, func() table { return subscriptionsTable(s) })
		},
	}
	f := create.Flags()
	f.StringVar(&ns.AccountID, "account", "", "the buyer's account id (required)")
	f.StringVar(&ns.ProductCode, "product", "", "the product code (required)")
	f.StringVar(&ns.OfferID, "offer-id", "", "the offer the agreement came from")
	f.BoolVar(&ns.FreeTrial, "free-trial", false, "a free trial")
	f.StringVar(&ns.LicenseArn, "license-arn", "", "the license ARN (default: derived from account and product)")
	f.StringVar(&ns.CustomerIdentifier, "customer-identifier", "", "the CustomerIdentifier (default: derived; none for concurrent agreements)")
	f.BoolVar(&noFulfillment, "no-fulfillment", false, "do not POST a registration token to the product's fulfillment URL (default: POST when it has one)")
	f.StringVar(&ns.Simulate, "simulate", "", "payment-failure: the payment fails, subscribe-fail is sent and the subscription is stored expired")

	get := &cobra.Command{
		Use: "get AGREEMENT_ID", Short: "Show a subscription", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter subscriptions get agmt-77o19sv71nspf94am2qa141lc",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.Subscription(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(s, func() table { return subscriptionsTable(s) })
		},
	}
	var filter adminclient.SubscriptionFilter
	var limit int
	list := &cobra.Command{
		Use: "list [--account ID] [--product CODE] [--status S]", Short: "List subscriptions, by agreement id", Args: args(cobra.NoArgs),
		Example: "  mpmeter subscriptions list --product exampleprod1 --status active",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ss, err := c.Subscriptions(a.ctx, filter, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(ss, func() table { return subscriptionsTable(ss...) })
		},
	}
	list.Flags().StringVar(&filter.AccountID, "account", "", "only this buyer's")
	list.Flags().StringVar(&filter.ProductCode, "product", "", "only this product's")
	list.Flags().StringVar(&filter.Status, "status", "", "only active, cancelled or expired ones")
	limitFlag(list, &limit)

	link := &cobra.Command{
		Use:   "fulfillment-link AGREEMENT_ID",
		Short: "Print a browser link that opens the product's landing page with a new registration token",
		Long: `Issue a new registration token for the subscription and print a link: opened
in a browser (no admin token needed), its page POSTs the token to the product's
fulfillment URL at once, as AWS's page does after a purchase. The link is the
token: anyone who has it can use it until it expires. Exit 4 when the product
has no fulfillment URL.`,
		Args:    args(cobra.ExactArgs(1)),
		Example: `  xdg-open "$(mpmeter subscriptions fulfillment-link agmt-77o19sv71nspf94am2qa141lc)"`,
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.CreateFulfillmentLink(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.showWith(l, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, l.URL)
				a.note("registration token %s, expires %s", l.TokenID, rfc3339(l.ExpiresAt))
				return err
			})
		},
	}

	cmd.AddCommand(create, get, list, link)
	for _, ch := range []struct{ name, short string }{
		{adminclient.Cancel, "Cancel a subscription (from active): it meters nothing more"},
		{adminclient.Expire, "Expire a subscription (from active or cancelled)"},
		{adminclient.Reactivate, "Reactivate a subscription (from cancelled or expired)"},
	} {
		var sel agreementSelector
		var version int64
		sub := &cobra.Command{
			Use: ch.name + " [AGREEMENT_ID | --account ID --product CODE]", Short: ch.short, Args: args(cobra.MaximumNArgs(1)),
			Example: fmt.Sprintf("  mpmeter subscriptions %[1]s agmt-77o19sv71nspf94am2qa141lc\n  mpmeter subscriptions %[1]s --account 444455556666 --product exampleprod1", ch.name),
			RunE: func(_ *cobra.Command, args []string) error {
				if len(args) == 1 {
					if sel.agreement != "" {
						return usagef("give the agreement id once")
					}
					sel.agreement = args[0]
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				id, err := sel.resolve(a.ctx, c)
				if err != nil {
					return err
				}
				s, err := c.ChangeSubscription(a.ctx, id, ch.name, version)
				if err != nil {
					return err
				}
				return a.show(s, func() table { return subscriptionsTable(s) })
			},
		}
		sel.flags(sub, false)
		sub.Flags().Int64Var(&version, "version", 0, "change only if the subscription is still at this version (exit 4 if not)")
		cmd.AddCommand(sub)
	}
	root.AddCommand(cmd)
}

// agreementSelector names one agreement: by id, or by buyer and product
// when that is unambiguous.
type agreementSelector struct{ agreement, account, product string }

func (s *agreementSelector) flags(cmd *cobra.Command, withAgreementFlag bool) {
	if withAgreementFlag {
		cmd.Flags().StringVar(&s.agreement, "agreement", "", "the agreement id (agmt-...)")
	}
	cmd.Flags().StringVar(&s.account, "account", "", "the buyer's account id (with --product, instead of the agreement id)")
	cmd.Flags().StringVar(&s.product, "product", "", "the product code (with --account)")
}

// notFoundError is a lookup of the CLI's own that found nothing: exit 3.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string { return e.msg }

func (s *agreementSelector) resolve(ctx context.Context, c *adminclient.Client) (string, error) {
	switch {
	case s.agreement != "" && (s.account != "" || s.product != ""):
		return "", usagef("give the agreement id or --account and --product, not both")
	case s.agreement != "":
		return s.agreement, nil
	case s.account == "" || s.product == "":
		return "", usagef("name the agreement: its id, or --account and --product")
	}
	subs, err := c.Subscriptions(ctx, adminclient.SubscriptionFilter{AccountID: s.account, ProductCode: s.product}, adminclient.ListOptions{Limit: 101})
	if err != nil {
		return "", err
	}
	switch len(subs) {
	case 0:
		return "", notFoundError{fmt.Sprintf("account %s has no subscription to %s", s.account, s.product)}
	case 1:
		return subs[0].AgreementID, nil
	}
	var ids []string
	for _, x := range subs {
		ids = append(ids, x.AgreementID+" ("+x.Status+")")
	}
	return "", usagef("account %s holds %d agreements for %s; name one by its id: %s", s.account, len(subs), s.product, strings.Join(ids, ", "))
}

func subscriptionsTable(ss ...admin.Subscription) table {
	t := table{header: []string{"AGREEMENT", "ACCOUNT", "PRODUCT", "CUSTOMER", "STATUS", "OFFER", "FREE TRIAL", "START", "END", "VERSION"}}
	for _, s := range ss {
		end := ""
		if s.EndTime != nil {
			end = rfc3339(*s.EndTime)
		}
		t.add(s.AgreementID, s.AccountID, s.ProductCode, s.CustomerIdentifier, s.Status, s.OfferID, yesNo(s.FreeTrial), rfc3339(s.StartTime), end, strconv.FormatInt(s.Version, 10))
	}
	return t
}
