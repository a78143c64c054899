package notify

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// SNSPath is where SNS's public URLs live on mpmeter: the SubscribeURL and
// UnsubscribeURL (GET ?Action=...) and the signing certificate.
const SNSPath = "/sns/"

// FulfillmentPath is the public page that submits the fulfillment form in
// a browser: FulfillmentPath + a registration token.
const FulfillmentPath = "/marketplace/fulfillment/"

// Routes registers the public routes (no admin token: SNS's URLs are
// public on AWS too; the fulfillment page's URL carries an unguessable
// registration token).
func (n *Notifier) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+SNSPath, n.serveSNS)
	mux.HandleFunc("GET "+SNSPath+"{file}", n.serveCertificate)
	mux.HandleFunc("GET "+FulfillmentPath+"{token}", n.serveFormPage)
}

const snsXMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"

type snsResponseMetadata struct {
	RequestID string `xml:"RequestId"`
}

func (n *Notifier) serveSNS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	meta := snsResponseMetadata{uuid.NewString()}
	switch q.Get("Action") {
	case "ConfirmSubscription":
		s, err := n.ConfirmSubscription(r.Context(), q.Get("TopicArn"), q.Get("Token"))
		if err != nil {
			snsError(w, err, "Invalid token")
			return
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"ConfirmSubscriptionResponse"`
			XMLNS   string   `xml:"xmlns,attr"`
			Result  struct {
				SubscriptionArn string
			} `xml:"ConfirmSubscriptionResult"`
			Meta snsResponseMetadata `xml:"ResponseMetadata"`
		}{XMLNS: snsXMLNS, Result: struct{ SubscriptionArn string }{s.ARN}, Meta: meta})
	case "Unsubscribe":
		if err := n.Unsubscribe(r.Context(), q.Get("SubscriptionArn")); err != nil {
			snsError(w, err, "Subscription does not exist")
			return
		}
		writeXML(w, struct {
			XMLName xml.Name            `xml:"UnsubscribeResponse"`
			XMLNS   string              `xml:"xmlns,attr"`
			Meta    snsResponseMetadata `xml:"ResponseMetadata"`
		}{XMLNS: snsXMLNS, Meta: meta})
	default:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		writeXMLBody(w, snsErrorResponse("InvalidAction", "Action must be ConfirmSubscription or Unsubscribe"))
	}
}

func snsErrorResponse(code, msg string) any {
	type errBody struct {
		Type    string
		Code    string
		Message string
	}
	return struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		Error     errBody
		RequestID string `xml:"RequestId"`
	}{XMLNS: snsXMLNS, Error: errBody{"Sender", code, msg}, RequestID: uuid.NewString()}
}

func snsError(w http.ResponseWriter, err error, notFound string) {
	w.Header().Set("Content-Type", "text/xml")
	if errors.Is(err, mpmeter.ErrNotFound) {
		w.WriteHeader(http.StatusNotFound)
		writeXMLBody(w, snsErrorResponse("NotFound", notFound))
		return
	}
	w.WriteHeader(http.StatusInternalServerError)
	writeXMLBody(w, snsErrorResponse("InternalError", "internal error; retry"))
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml")
	writeXMLBody(w, v)
}

func writeXMLBody(w http.ResponseWriter, v any) {
	w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

func (n *Notifier) serveCertificate(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("file") != "SimpleNotificationService-"+n.signer.certID+".pem" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Write(n.signer.certPEM)
}

// serveFormPage answers the page that submits the fulfillment form for
// the registration token in its URL.
func (n *Notifier) serveFormPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	tok, err := n.cfg.Store.RegistrationToken(r.Context(), token)
	if err != nil || !tok.ExpiresAt.After(n.now()) {
		http.Error(w, "This link has expired or does not exist.", http.StatusNotFound)
		return
	}
	p, err := n.cfg.Store.Product(r.Context(), tok.ProductCode)
	if err != nil || p.FulfillmentURL == "" {
		http.Error(w, "The product has no fulfillment URL.", http.StatusNotFound)
		return
	}
	freeTrial := false
	if tok.LicenseArn != "" {
		if sub, err := n.cfg.Store.Subscription(r.Context(), tok.LicenseArn); err == nil {
			freeTrial = sub.FreeTrial
		}
	}
	page, err := FormPage(p.FulfillmentURL, p.Code, token, freeTrial)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Write(page)
}

// FormPageURL is the browser link of a registration token's form page.
func (n *Notifier) FormPageURL(token string) string {
	return n.cfg.BaseURL() + FulfillmentPath + strings.TrimSpace(token)
}
