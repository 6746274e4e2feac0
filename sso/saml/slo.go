package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/crewjam/saml"

	"github.com/govhub/govhub/sso"
)

// logoutWait is how long we wait for the IdP's answer to our LogoutRequest.
const logoutWait = 10 * time.Minute

// LogoutURL implements sso.Logouter: after govhub has ended its own
// session, the browser carries a signed LogoutRequest (HTTP-Redirect)
// naming the session's NameID and SessionIndex to the IdP. "" when the
// IdP has no HTTP-Redirect SingleLogoutService.
//
// The request id is remembered in the used-once cache (any node may get
// the answer), so /slo accepts only a LogoutResponse to a request we
// sent, once.
func (sp *SP) LogoutURL(ctx context.Context, s sso.Session) (string, error) {
	now := sp.m.Now()
	csp, st := sp.provider(now)
	if st.sloURL == "" || s.Subject == "" {
		return "", nil
	}
	req, err := csp.MakeLogoutRequest(st.sloURL, s.Subject, saml.WithSessionIndex(s.SessionIndex))
	if err != nil {
		return "", fmt.Errorf("saml %s: logout request: %w", sp.cfg.Name, err)
	}
	if err := sp.m.UseOnce(ctx, "saml-logout-sent", sp.cfg.Name+":"+req.ID, now.Add(logoutWait)); err != nil {
		return "", fmt.Errorf("saml %s: logout request: %w", sp.cfg.Name, err)
	}
	u, err := csp.RedirectLogoutRequestURL(req, "")
	if err != nil {
		return "", fmt.Errorf("saml %s: logout request: %w", sp.cfg.Name, err)
	}
	return u.String(), nil
}

// serveSLO handles both directions of single logout.
func (sp *SP) serveSLO(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxPost)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad logout message", http.StatusBadRequest)
			return
		}
	}
	q := r.URL.Query()
	switch {
	case q.Get("SAMLResponse") != "" || r.PostForm.Get("SAMLResponse") != "":
		sp.logoutResponse(w, r)
	case q.Get("SAMLRequest") != "" || r.PostForm.Get("SAMLRequest") != "":
		sp.logoutRequest(w, r)
	default:
		http.Error(w, "no SAML logout message", http.StatusBadRequest)
	}
}

// logoutResponse is the IdP's answer to our SP-initiated logout. Our
// session is already gone; this only confirms the IdP's and shows the
// signed-out page.
func (sp *SP) logoutResponse(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	irt, err := logoutInResponseTo(r)
	if err != nil || irt == "" {
		sp.log.Warn("refused logout response", "reason", "unreadable", "err", err)
		http.Error(w, "bad logout response", http.StatusBadRequest)
		return
	}
	key := sp.cfg.Name + ":" + irt
	// Only a response to a request we sent (recorded by LogoutURL) is
	// read; the probe writes nothing, so unsolicited responses cannot
	// fill the table.
	if sent, err := sp.m.Used(ctx, "saml-logout-sent", key); err != nil || !sent {
		sp.log.Warn("refused logout response", "reason", "answers no logout request we sent", "err", err)
		http.Error(w, "unexpected logout response", http.StatusBadRequest)
		return
	}
	csp, _ := sp.provider(sp.m.Now())
	resp, err := csp.ParseLogoutResponse(r, []string{irt})
	if err != nil {
		sp.log.Warn("refused logout response", "reason", libraryReason(err))
		http.Error(w, "bad logout response", http.StatusBadRequest)
		return
	}
	if err := sp.m.UseOnce(ctx, "saml-logout-answered", key, sp.m.Now().Add(logoutWait)); err != nil {
		sp.log.Warn("refused logout response", "reason", err)
		http.Error(w, "logout response already used", http.StatusBadRequest)
		return
	}
	if resp.Status.StatusCode.Value != saml.StatusSuccess {
		sp.log.Warn("IdP logout incomplete", "status", resp.Status.StatusCode.Value)
	}
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// logoutRequest is IdP-initiated single logout: end the sessions the
// request names and answer with a signed LogoutResponse.
func (sp *SP) logoutRequest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	csp, _ := sp.provider(sp.m.Now())
	csp.ReplayCache = replayCache{ctx: ctx, m: sp.m, kind: "saml-logout-request", prefix: sp.cfg.Name + ":"}
	req, err := csp.ValidateLogoutRequest(r)
	if err != nil {
		sp.log.Warn("refused logout request", "reason", libraryReason(err))
		http.Error(w, "bad logout request", http.StatusBadRequest)
		return
	}
	relay := r.URL.Query().Get("RelayState")
	if relay == "" {
		relay = r.PostForm.Get("RelayState")
	}
	status := saml.StatusSuccess
	if req.NameID == nil || req.NameID.Value == "" {
		status = saml.StatusRequester
	} else {
		idx := req.AllSessionIndexes()
		if len(idx) == 0 {
			idx = []saml.SessionIndex{{}}
		}
		var n int64
		for _, si := range idx {
			k, err := sp.m.EndSessions(ctx, r, sp.cfg.Name, req.NameID.Value, si.Value)
			if err != nil {
				sp.log.Error("IdP-initiated logout: ending sessions failed", "err", err)
				status = saml.StatusResponder
				break
			}
			n += k
		}
		sp.log.Info("IdP-initiated logout", "sessions_ended", n)
	}
	u, err := csp.MakeRedirectLogoutResponseWithStatus(req.ID, relay, saml.Status{StatusCode: saml.StatusCode{Value: status}})
	if err != nil {
		sp.log.Error("logout response", "err", err)
		http.Error(w, "logout response unavailable", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// logoutInResponseTo reads InResponseTo of a LogoutResponse (either
// binding) without trusting it: it only selects which request to check
// the signed message against.
func logoutInResponseTo(r *http.Request) (string, error) {
	var raw []byte
	if v := r.URL.Query().Get("SAMLResponse"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return "", err
		}
		raw, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), maxPost))
		if err != nil {
			return "", err
		}
	} else {
		b, err := base64.StdEncoding.DecodeString(r.PostForm.Get("SAMLResponse"))
		if err != nil {
			return "", err
		}
		raw = b
	}
	var lr struct {
		InResponseTo string `xml:"InResponseTo,attr"`
	}
	if err := xml.Unmarshal(raw, &lr); err != nil {
		return "", err
	}
	return lr.InResponseTo, nil
}

func libraryReason(err error) string {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr.Error()
	}
	return err.Error()
}

// replayCache spends LogoutRequest ids in the Manager's used-once cache,
// shared by every node.
type replayCache struct {
	ctx    context.Context
	m      *sso.Manager
	kind   string
	prefix string
}

func (c replayCache) Consume(id string, until time.Time) error {
	err := c.m.UseOnce(c.ctx, c.kind, c.prefix+id, until)
	if errors.Is(err, sso.ErrReplay) {
		return saml.ErrAssertionReplayed
	}
	return err
}
