package ui

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/webmail"
)

type composeData struct {
	D          webmail.Draft
	To, Cc     string
	Bcc        string
	References string
	MaxUpload  int64
	MaxText    string
	Forwarding bool
	Mode       string
}

func joinAddrs(a []string) string { return strings.Join(a, ", ") }

// splitAddrs splits an address field on commas and semicolons, ASCII or
// full-width (and the ideographic 、), keeping quoted display names whole.
func splitAddrs(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	flush := func() {
		if t := strings.TrimSpace(b.String()); t != "" {
			out = append(out, t)
		}
		b.Reset()
	}
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
			b.WriteRune(c)
		case !quoted && (c == ',' || c == ';' || c == '，' || c == '；' || c == '、' || c == '\n' || c == '\r'):
			flush()
		default:
			b.WriteRune(c)
		}
	}
	flush()
	return out
}

func (h *handler) composeData(d webmail.Draft, mode string) composeData {
	return composeData{D: d, To: joinAddrs(d.To), Cc: joinAddrs(d.Cc), Bcc: joinAddrs(d.Bcc),
		References: strings.Join(d.References, " "), MaxUpload: h.opts.MaxUploadBytes,
		Forwarding: d.ForwardUID != 0, Mode: mode}
}

// compose shows the compose form: new (optionally to a directory person,
// the /compose?to=PERSON deep link), a reply, reply-all or forward of a
// message, or a saved draft to continue.
func (h *handler) compose(w http.ResponseWriter, r *http.Request, q *req) {
	qs := r.URL.Query()
	mode := qs.Get("mode")
	folder, _ := strconv.ParseInt(qs.Get("folder"), 10, 64)
	uid64, _ := strconv.ParseUint(qs.Get("uid"), 10, 32)
	uid := uint32(uid64)
	var d webmail.Draft
	var err error
	switch mode {
	case "", "new":
		mode = "new"
		if to := qs.Get("to"); to != "" {
			d, err = h.mail.Compose(r.Context(), q.u, "new", 0, 0, to)
		}
	case "reply", "all", "forward", "draft":
		if folder == 0 || uid == 0 {
			err = mailcore.ErrNotFound
			break
		}
		d, err = h.mail.Compose(r.Context(), q.u, mode, folder, uid, "")
	default:
		err = mailcore.ErrNotFound
	}
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	if mode != "draft" && q.settings.Signature != "" && !strings.Contains(d.Text, q.settings.Signature) {
		d.Text = "\n\n-- \n" + q.settings.Signature + "\n" + d.Text
	}
	h.render(w, r, q, http.StatusOK, "compose", &page{Title: q.L.T("compose_title"), Data: h.composeData(d, mode)})
}

// draftFromForm reads the compose form (already parsed, within
// MaxUploadBytes) including its attached files.
func draftFromForm(r *http.Request, withFiles bool) (webmail.Draft, error) {
	f := r.PostFormValue
	d := webmail.Draft{To: splitAddrs(f("to")), Cc: splitAddrs(f("cc")), Bcc: splitAddrs(f("bcc")),
		Subject: f("subject"), Text: strings.ReplaceAll(f("body"), "\r\n", "\n"), InReplyTo: f("in_reply_to"),
		References: strings.Fields(f("references")), Alert: f("alert") == "1"}
	d.KeepParts = r.PostForm["keep_part"] // the saved draft's attachments left ticked
	if n, err := strconv.ParseUint(f("draft_uid"), 10, 32); err == nil {
		d.DraftUID = uint32(n)
	}
	if n, err := strconv.ParseInt(f("forward_folder"), 10, 64); err == nil {
		d.ForwardFolderID = n
	}
	if n, err := strconv.ParseUint(f("forward_uid"), 10, 32); err == nil {
		d.ForwardUID = uint32(n)
	}
	if n, err := strconv.ParseInt(f("reply_folder"), 10, 64); err == nil {
		d.ReplyFolderID = n
	}
	if n, err := strconv.ParseUint(f("reply_uid"), 10, 32); err == nil {
		d.ReplyUID = uint32(n)
	}
	if !withFiles || r.MultipartForm == nil {
		return d, nil
	}
	for _, fh := range r.MultipartForm.File["attachment"] {
		if fh.Filename == "" && fh.Size == 0 {
			continue // the empty file input of a form sent without files
		}
		file, err := fh.Open()
		if err != nil {
			return d, err
		}
		data, err := io.ReadAll(file)
		file.Close()
		if err != nil {
			return d, err
		}
		ct := fh.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		d.Attachments = append(d.Attachments, webmail.Upload{Name: fh.Filename, ContentType: ct, Data: data})
	}
	return d, nil
}

// composePost sends (do=send) or saves (do=save) the form. A refused
// send shows the form again with what was typed and the reason.
func (h *handler) composePost(w http.ResponseWriter, r *http.Request, q *req) {
	d, err := draftFromForm(r, true)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	switch r.PostFormValue("do") {
	case "save":
		ref, err := h.mail.SaveDraft(r.Context(), q.u, d)
		if err != nil {
			h.composeError(w, r, q, d, err)
			return
		}
		d.DraftUID = ref.UID
		d.Attachments = nil
		h.render(w, r, q, http.StatusOK, "compose", &page{Title: q.L.T("compose_title"), Notice: "notice_draft_saved", Data: h.composeData(d, "draft")})
	default:
		if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
			h.composeError(w, r, q, d, errNoRecipients)
			return
		}
		ref, err := h.mail.Send(r.Context(), q.u, d)
		if err != nil {
			h.composeError(w, r, q, d, err)
			return
		}
		http.Redirect(w, r, withNotice("/mail/"+strconv.FormatInt(ref.FolderID, 10), "sent"), http.StatusSeeOther)
	}
}

var errNoRecipients = errors.New("no recipients")

func (h *handler) composeError(w http.ResponseWriter, r *http.Request, q *req, d webmail.Draft, err error) {
	status, key := errorStatus(err)
	if errors.Is(err, errNoRecipients) {
		status, key = http.StatusUnprocessableEntity, "error_no_recipients"
	} else if status == http.StatusInternalServerError {
		h.log.Error("compose", "account", q.u.AccountID, "err", err)
		key = "error_send"
	}
	d.Attachments = nil // a file input cannot be refilled; the page says so
	cd := h.composeData(d, "new")
	h.render(w, r, q, status, "compose", &page{Title: q.L.T("compose_title"), Error: key, Data: cd})
}

// autosave stores the form as a draft for the page script (fetch with
// X-CSRF-Token, files left out) and answers JSON {"draft_uid": n}.
func (h *handler) autosave(w http.ResponseWriter, r *http.Request, q *req) {
	d, err := draftFromForm(r, false)
	w.Header().Set("Content-Type", "application/json")
	if err == nil {
		var ref webmail.MessageRef
		ref, err = h.mail.SaveDraft(r.Context(), q.u, d)
		if err == nil {
			_ = json.NewEncoder(w).Encode(map[string]any{"draft_uid": ref.UID, "saved_at": h.opts.Now().In(h.opts.Location).Format("15:04")})
			return
		}
	}
	status, key := errorStatus(err)
	if status == http.StatusInternalServerError {
		h.log.Error("autosave", "account", q.u.AccountID, "err", err)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": q.L.T(key)})
}

// suggest is address autocomplete for the compose script (Mail.Suggest
// matches names, pinyin, addresses and departments).
func (h *handler) suggest(w http.ResponseWriter, r *http.Request, q *req) {
	w.Header().Set("Content-Type", "application/json")
	s := strings.TrimSpace(r.URL.Query().Get("q"))
	out := []webmail.Contact{}
	if s != "" {
		cs, err := h.mail.Suggest(r.Context(), q.u, s, 10)
		if err != nil {
			h.log.Warn("suggest", "account", q.u.AccountID, "err", err)
			w.WriteHeader(http.StatusInternalServerError)
		} else if cs != nil {
			out = cs
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}
