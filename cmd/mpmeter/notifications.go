package main

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addNotificationsCommands: SNS subscriptions, EventBridge targets and the
// delivery log of a server's notifications (docs/notifications.md).
func addNotificationsCommands(root *cobra.Command, a *app) {
	cmd := group("notifications", "SNS subscriptions, EventBridge targets and the delivery log (admin API)")
	a.apiFlags(cmd)
	cmd.AddCommand(snsSubscriptionsCommands(a), eventBridgeTargetsCommands(a), deliveriesCommands(a))
	root.AddCommand(cmd)
}

func snsSubscriptionsCommands(a *app) *cobra.Command {
	cmd := group("sns-subscriptions", "HTTP(S) endpoints subscribed to a product's SNS topics")

	var ns adminclient.NewSNSSubscription
	add := &cobra.Command{
		Use:   "add --product CODE --topic subscription|entitlement --endpoint URL [--protocol http|https]",
		Short: "Subscribe an endpoint to a product's topic (it is sent a SubscriptionConfirmation)",
		Long: `Subscribe an HTTP or HTTPS endpoint to a product's subscription or entitlement
topic. The endpoint is sent a SubscriptionConfirmation and nothing else until its
SubscribeURL is visited. --protocol defaults to the endpoint's scheme.
Subscribing the same endpoint again answers the same subscription.`,
		Args:    args(cobra.NoArgs),
		Example: "  mpmeter notifications sns-subscriptions add --product myprod1 --topic subscription --endpoint http://127.0.0.1:9000/sns",
		RunE: func(_ *cobra.Command, _ []string) error {
			if ns.ProductCode == "" || ns.Topic == "" || ns.Endpoint == "" {
				return usagef("--product, --topic and --endpoint are required")
			}
			s := ns
			if s.Protocol == "" {
				u, err := url.Parse(s.Endpoint)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
					return usagef("--endpoint must be an http:// or https:// URL, got %q", s.Endpoint)
				}
				s.Protocol = u.Scheme
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			sub, err := c.CreateSNSSubscription(a.ctx, s)
			if err != nil {
				return err
			}
			return a.show(sub, func() table { return snsTable(sub) })
		},
	}
	f := add.Flags()
	f.StringVar(&ns.ProductCode, "product", "", "the product code (required)")
	f.StringVar(&ns.Topic, "topic", "", "subscription or entitlement (required)")
	f.StringVar(&ns.Endpoint, "endpoint", "", "the endpoint's URL (required)")
	f.StringVar(&ns.Protocol, "protocol", "", "http or https (default: the endpoint's scheme)")

	var product, topic string
	var limit int
	list := &cobra.Command{
		Use: "list [--product CODE] [--topic T]", Short: "List SNS subscriptions, by ARN", Args: args(cobra.NoArgs),
		Example: "  mpmeter notifications sns-subscriptions list --product myprod1",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			subs, err := c.SNSSubscriptions(a.ctx, product, topic, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(subs, func() table { return snsTable(subs...) })
		},
	}
	list.Flags().StringVar(&product, "product", "", "only this product's")
	list.Flags().StringVar(&topic, "topic", "", "only subscription or entitlement")
	limitFlag(list, &limit)

	remove := &cobra.Command{
		Use: "remove SUBSCRIPTION_ARN", Short: "Unsubscribe an endpoint", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter notifications sns-subscriptions remove arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-myprod1:4bda0c4e-...",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSNSSubscription(a.ctx, args[0]); err != nil {
				return err
			}
			a.note("removed %s", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func snsTable(subs ...admin.SNSSubscription) table {
	t := table{header: []string{"SUBSCRIPTION ARN", "PRODUCT", "TOPIC", "ENDPOINT", "CONFIRMED"}}
	for _, s := range subs {
		confirmed := "pending"
		if s.ConfirmedAt != nil {
			confirmed = rfc3339(*s.ConfirmedAt)
		}
		t.add(s.ARN, s.ProductCode, s.Topic, s.Endpoint, confirmed)
	}
	return t
}

func eventBridgeTargetsCommands(a *app) *cobra.Command {
	cmd := group("eventbridge-targets", "HTTP(S) endpoints receiving a seller's EventBridge events")

	var account, endpoint string
	add := &cobra.Command{
		Use: "add --account SELLER_ID --endpoint URL", Short: "Send a seller's aws.agreement-marketplace events to an endpoint", Args: args(cobra.NoArgs),
		Example: "  mpmeter notifications eventbridge-targets add --account 111122223333 --endpoint http://127.0.0.1:9000/events",
		RunE: func(_ *cobra.Command, _ []string) error {
			if account == "" || endpoint == "" {
				return usagef("--account and --endpoint are required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.CreateEventBridgeTarget(a.ctx, account, endpoint)
			if err != nil {
				return err
			}
			return a.show(t, func() table { return targetsTable(t) })
		},
	}
	add.Flags().StringVar(&account, "account", "", "the seller account whose events the target receives (required)")
	add.Flags().StringVar(&endpoint, "endpoint", "", "the endpoint's URL (required)")

	var listAccount string
	var limit int
	list := &cobra.Command{
		Use: "list [--account SELLER_ID]", Short: "List EventBridge targets, by id", Args: args(cobra.NoArgs),
		Example: "  mpmeter notifications eventbridge-targets list",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.EventBridgeTargets(a.ctx, listAccount, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(ts, func() table { return targetsTable(ts...) })
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "only this seller's")
	limitFlag(list, &limit)

	remove := &cobra.Command{
		Use: "remove TARGET_ID", Short: "Remove an EventBridge target", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter notifications eventbridge-targets remove ebt-...",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteEventBridgeTarget(a.ctx, args[0]); err != nil {
				return err
			}
			a.note("removed %s", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func targetsTable(ts ...admin.EventBridgeTarget) table {
	t := table{header: []string{"ID", "ACCOUNT", "ENDPOINT", "CREATED"}}
	for _, x := range ts {
		t.add(x.ID, x.AccountID, x.Endpoint, rfc3339(x.CreatedAt))
	}
	return t
}

func deliveriesCommands(a *app) *cobra.Command {
	cmd := group("deliveries", "The delivery log: every notification POST and its outcome")

	var filter adminclient.DeliveryFilter
	var limit int
	list := &cobra.Command{
		Use: "list [--agreement ID] [--channel C] [--status S]", Short: "List deliveries, newest first", Args: args(cobra.NoArgs),
		Example: `  mpmeter notifications deliveries list --status failed
  mpmeter notifications deliveries list --agreement agmt-77o19sv71nspf94am2qa141lc --channel fulfillment`,
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ds, err := c.Deliveries(a.ctx, filter, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(ds, func() table { return deliveriesTable(ds...) })
		},
	}
	list.Flags().StringVar(&filter.AgreementID, "agreement", "", "only this agreement's")
	list.Flags().StringVar(&filter.Channel, "channel", "", "only sns, eventbridge or fulfillment")
	list.Flags().StringVar(&filter.Status, "status", "", "only pending, delivered or failed")
	limitFlag(list, &limit)

	get := &cobra.Command{
		Use: "get DELIVERY_ID", Short: "Show a delivery with its request and every attempt", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter notifications deliveries get dlv-... -o json",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			d, err := c.Delivery(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.showWith(d, func(w io.Writer) error { return writeDelivery(w, d) })
		},
	}
	replay := &cobra.Command{
		Use: "replay DELIVERY_ID", Short: "Send a delivery again (the same request, as a new delivery)", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter notifications deliveries replay dlv-...",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			d, err := c.ReplayDelivery(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(d, func() table { return deliveriesTable(d) })
		},
	}
	cmd.AddCommand(list, get, replay)
	return cmd
}

func deliveriesTable(ds ...admin.Delivery) table {
	t := table{header: []string{"ID", "CHANNEL", "EVENT", "AGREEMENT", "STATUS", "ATTEMPTS", "LAST STATUS", "ENDPOINT", "CREATED"}}
	for _, d := range ds {
		last := ""
		if d.LastStatusCode != 0 {
			last = strconv.Itoa(d.LastStatusCode)
		} else if d.LastError != "" {
			last = "error"
		}
		t.add(d.ID, d.Channel, d.EventType, d.AgreementID, d.Status, fmt.Sprintf("%d/%d", d.Attempts, d.MaxAttempts), last, d.Endpoint, rfc3339(d.CreatedAt))
	}
	return t
}

// writeDelivery is get's human form: the summary, the request, the attempts.
func writeDelivery(w io.Writer, d admin.Delivery) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s %s  %s (%d/%d attempts)\n", d.ID, d.Channel, d.EventType, d.Status, d.Attempts, d.MaxAttempts)
	if d.AgreementID != "" {
		fmt.Fprintf(&b, "agreement: %s\n", d.AgreementID)
	}
	if d.ReplayOf != "" {
		fmt.Fprintf(&b, "replay of: %s\n", d.ReplayOf)
	}
	if d.LastLocation != "" {
		fmt.Fprintf(&b, "location:  %s\n", d.LastLocation)
	}
	fmt.Fprintf(&b, "\nPOST %s\n", d.Endpoint)
	names := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %s\n", k, d.Headers[k])
	}
	fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(d.Body, "\n"))
	if len(d.AttemptLog) > 0 {
		b.WriteString("\nattempts:\n")
		for _, at := range d.AttemptLog {
			outcome := strconv.Itoa(at.StatusCode)
			if at.Error != "" {
				outcome = at.Error
			}
			fmt.Fprintf(&b, "  %d  %s  %s  %.1fms  %s", at.Attempt, rfc3339(at.At), outcome, at.LatencyMS, at.Node)
			if at.Location != "" {
				fmt.Fprintf(&b, "  -> %s", at.Location)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
