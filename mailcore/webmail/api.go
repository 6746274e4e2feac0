package webmail

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/govhub/govhub/mailcore"
)

// APIPrefix is the path prefix of every API route. The handlers match
// full paths: mount API with the prefix kept, as
// mux.Handle("/api/v1/", svc.API(sessions, apps)).
const APIPrefix = "/api/v1"

// maxJSONBody bounds the JSON bodies that carry no message.
const maxJSONBody = 1 << 20

// API returns the JSON API (see openapi.yaml). Every route needs a
// session (401 without one); every request that is not GET or HEAD must
// carry the session's CSRF token in X-CSRF-Token (403 otherwise). Errors
// are {"error": "..."} with generic text; another account's folder or
// message is 404, as a missing one. apps may be nil (the app-password
// routes then answer 404).
func (s *Service) API(sess Sessions, apps AppPasswords) http.Handler {
	a := &api{s: s, sess: sess, apps: apps}
	mux := http.NewServeMux()
	route := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, u User) error) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+APIPrefix+path, a.handle(fn))
	}
	route("GET /folders", a.folders)
	route("POST /folders", a.createFolder)
	route("PATCH /folders/{id}", a.renameFolder)
	route("DELETE /folders/{id}", a.deleteFolder)
	route("GET /quota", a.quota)
	route("GET /messages", a.list)
	route("GET /search", a.search)
	route("POST /messages/actions", a.act)
	route("GET /messages/{folder}/{uid}", a.read)
	route("GET /messages/{folder}/{uid}/raw", a.raw)
	route("GET /messages/{folder}/{uid}/parts/{part}", a.part)
	route("POST /send", a.send)
	route("POST /drafts", a.saveDraft)
	route("GET /compose", a.compose)
	route("GET /settings", a.settings)
	route("PUT /settings", a.saveSettings)
	route("GET /suggest", a.suggest)
	route("GET /badge", a.badge)
	route("GET /app-passwords", a.appPasswords)
	route("POST /app-passwords", a.createAppPassword)
	route("DELETE /app-passwords/{id}", a.revokeAppPassword)
	mux.Handle(APIPrefix+"/", a.handle(func(w http.ResponseWriter, r *http.Request, u User) error {
		return mailcore.ErrNotFound
	}))
	return mux
}

type api struct {
	s    *Service
	sess Sessions
	apps AppPasswords
}

// handle authenticates, checks CSRF, runs fn and turns its error into a
// JSON error reply.
func (a *api) handle(fn func(w http.ResponseWriter, r *http.Request, u User) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		u, ok, err := a.sess.User(r)
		if err != nil {
			a.s.log.ErrorContext(r.Context(), "session lookup", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		if !ok || u.AccountID <= 0 {
			writeError(w, http.StatusUnauthorized, "not signed in")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !csrfOK(r.Header.Get("X-CSRF-Token"), u.CSRF) {
			writeError(w, http.StatusForbidden, "bad CSRF token")
			return
		}
		if err := fn(w, r, u); err != nil {
			a.fail(w, r, err)
		}
	})
}

// csrfOK compares the sent token with the session's in constant time; an
// empty session token never matches.
func csrfOK(sent, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
}

// fail maps an error to a status and a generic message; only unexpected
// errors are logged.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, mailcore.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.As(err, &mbe), errors.Is(err, mailcore.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "message too large")
	case errors.Is(err, mailcore.ErrInvalidMailboxName):
		writeError(w, http.StatusBadRequest, "invalid folder name")
	case errors.Is(err, mailcore.ErrInvalidAddress):
		writeError(w, http.StatusBadRequest, "invalid address")
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid request")
	case errors.Is(err, mailcore.ErrExists):
		writeError(w, http.StatusConflict, "already exists")
	case errors.Is(err, mailcore.ErrSpecialMailbox):
		writeError(w, http.StatusConflict, "not allowed on this folder")
	case errors.Is(err, mailcore.ErrHasChildren):
		writeError(w, http.StatusConflict, "folder has subfolders")
	case errors.Is(err, mailcore.ErrQuotaExceeded):
		writeError(w, http.StatusInsufficientStorage, "quota exceeded")
	case errors.Is(err, ErrAlertNotAllowed):
		writeError(w, http.StatusForbidden, "alerts not allowed")
	case errors.Is(err, ErrSubmit):
		a.s.log.WarnContext(r.Context(), "send failed", "err", err)
		writeError(w, http.StatusBadGateway, "message not sent")
	default:
		a.s.log.ErrorContext(r.Context(), "api error", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// readJSON decodes a bounded JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return invalid("body: %v", err)
	}
	return nil
}

func pathID(r *http.Request, name string) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, notFound(name, r.PathValue(name))
	}
	return n, nil
}

func pathUID(r *http.Request) (uint32, error) {
	n, err := strconv.ParseUint(r.PathValue("uid"), 10, 32)
	if err != nil || n == 0 {
		return 0, notFound("uid", r.PathValue("uid"))
	}
	return uint32(n), nil
}

// queryInt reads an optional integer query parameter.
func queryInt(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, invalid("%s", name)
	}
	return n, nil
}

func queryBool(q url.Values, name string) bool {
	switch strings.ToLower(q.Get(name)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// queryTime reads a date (2006-01-02, midnight China time) or an RFC 3339
// time.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", v, chinaTime); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, invalid("%s", name)
	}
	return t, nil
}

func (a *api) folders(w http.ResponseWriter, r *http.Request, u User) error {
	fs, err := a.s.Folders(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, fs)
	return nil
}

type nameBody struct {
	Name string `json:"name"`
}

func (a *api) createFolder(w http.ResponseWriter, r *http.Request, u User) error {
	var b nameBody
	if err := readJSON(w, r, maxJSONBody, &b); err != nil {
		return err
	}
	f, err := a.s.CreateFolder(r.Context(), u, b.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, f)
	return nil
}

func (a *api) renameFolder(w http.ResponseWriter, r *http.Request, u User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var b nameBody
	if err := readJSON(w, r, maxJSONBody, &b); err != nil {
		return err
	}
	if err := a.s.RenameFolder(r.Context(), u, id, b.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) deleteFolder(w http.ResponseWriter, r *http.Request, u User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.s.DeleteFolder(r.Context(), u, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) quota(w http.ResponseWriter, r *http.Request, u User) error {
	q, err := a.s.Quota(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (a *api) list(w http.ResponseWriter, r *http.Request, u User) error {
	q := r.URL.Query()
	folder, err := queryInt(q, "folder")
	if err != nil {
		return err
	}
	if folder == 0 {
		return invalid("folder")
	}
	page, err := queryInt(q, "page")
	if err != nil {
		return err
	}
	per, err := queryInt(q, "per_page")
	if err != nil {
		return err
	}
	if per == 0 {
		st, err := a.s.Settings(r.Context(), u)
		if err != nil {
			return err
		}
		per = int64(st.PerPage)
	}
	lp, err := a.s.List(r.Context(), u, ListQuery{
		FolderID: folder, Page: int(min(page, maxPage)), PerPage: int(min(per, MaxPerPage)),
		Sort: Sort(q.Get("sort")), Threads: queryBool(q, "threads"), Unread: queryBool(q, "unread"),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, lp)
	return nil
}

func (a *api) search(w http.ResponseWriter, r *http.Request, u User) error {
	q := r.URL.Query()
	var sq SearchQuery
	var err error
	if sq.FolderID, err = queryInt(q, "folder"); err != nil {
		return err
	}
	if sq.Since, err = queryTime(q, "since"); err != nil {
		return err
	}
	if sq.Before, err = queryTime(q, "before"); err != nil {
		return err
	}
	page, err := queryInt(q, "page")
	if err != nil {
		return err
	}
	per, err := queryInt(q, "per_page")
	if err != nil {
		return err
	}
	sq.Page, sq.PerPage = int(min(page, maxPage)), int(min(per, MaxPerPage))
	sq.From, sq.To, sq.Subject, sq.Text = q.Get("from"), q.Get("to"), q.Get("subject"), q.Get("text")
	sq.HasAttachment = queryBool(q, "has_attachment")
	lp, err := a.s.Search(r.Context(), u, sq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, lp)
	return nil
}

// actionBody is POST /messages/actions.
type actionBody struct {
	Folder int64    `json:"folder"`
	UIDs   []uint32 `json:"uids"`
	Action Action   `json:"action"`
	Target int64    `json:"target,omitempty"`
}

func (a *api) act(w http.ResponseWriter, r *http.Request, u User) error {
	var b actionBody
	if err := readJSON(w, r, maxJSONBody, &b); err != nil {
		return err
	}
	if err := a.s.Act(r.Context(), u, b.Folder, b.UIDs, b.Action, b.Target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) read(w http.ResponseWriter, r *http.Request, u User) error {
	folder, err := pathID(r, "folder")
	if err != nil {
		return err
	}
	uid, err := pathUID(r)
	if err != nil {
		return err
	}
	v, err := a.s.Read(r.Context(), u, folder, uid, ReadOptions{RemoteImages: queryBool(r.URL.Query(), "remote_images")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// attachmentDisposition is Content-Disposition: attachment with the name
// both as an ASCII fallback and as RFC 6266 / RFC 5987 filename*.
func attachmentDisposition(name string) string {
	if name == "" {
		name = "attachment"
	}
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' || r == ';' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, encodeRFC5987(name))
}

// encodeRFC5987 percent-encodes everything but attr-char (RFC 5987 3.2.1).
func encodeRFC5987(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// safeTypes are served with their own type (images shown by the sanitised
// HTML, text, PDF); everything else, HTML and SVG included, as
// application/octet-stream so no browser renders it on our origin.
var safeTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "image/bmp": true,
	"text/plain": true, "application/pdf": true,
}

// download writes bytes as an attachment that is never rendered in place.
func download(w http.ResponseWriter, ct, name string, data []byte) {
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err != nil || !safeTypes[mt]:
		ct = "application/octet-stream"
	case mt == "text/plain":
		ct = "text/plain; charset=utf-8"
	default:
		ct = mt
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", attachmentDisposition(name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

func (a *api) raw(w http.ResponseWriter, r *http.Request, u User) error {
	folder, err := pathID(r, "folder")
	if err != nil {
		return err
	}
	uid, err := pathUID(r)
	if err != nil {
		return err
	}
	raw, err := a.s.Raw(r.Context(), u, folder, uid)
	if err != nil {
		return err
	}
	// message/rfc822 is not in safeTypes: served as octet-stream, named .eml.
	download(w, "message/rfc822", fmt.Sprintf("message-%d.eml", uid), raw)
	return nil
}

func (a *api) part(w http.ResponseWriter, r *http.Request, u User) error {
	folder, err := pathID(r, "folder")
	if err != nil {
		return err
	}
	uid, err := pathUID(r)
	if err != nil {
		return err
	}
	p, data, err := a.s.Part(r.Context(), u, folder, uid, r.PathValue("part"))
	if err != nil {
		return err
	}
	name := p.Name
	if name == "" {
		name = "part-" + p.ID
	}
	download(w, p.ContentType, name, data)
	return nil
}

// draftBody is a Draft in JSON (attachment data base64).
type draftBody struct {
	To              []string     `json:"to"`
	Cc              []string     `json:"cc"`
	Bcc             []string     `json:"bcc"`
	Subject         string       `json:"subject"`
	Text            string       `json:"text"`
	InReplyTo       string       `json:"in_reply_to"`
	References      []string     `json:"references"`
	Attachments     []uploadBody `json:"attachments"`
	ForwardFolderID int64        `json:"forward_folder_id"`
	ForwardUID      uint32       `json:"forward_uid"`
	DraftUID        uint32       `json:"draft_uid"`
	ReplyFolderID   int64        `json:"reply_folder_id"`
	ReplyUID        uint32       `json:"reply_uid"`
	Alert           bool         `json:"alert"`
	KeepParts       []string     `json:"keep_parts"`
	DraftParts      []Part       `json:"draft_parts"`
}

type uploadBody struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"`
}

func (b draftBody) draft() Draft {
	d := Draft{
		To: b.To, Cc: b.Cc, Bcc: b.Bcc, Subject: b.Subject, Text: b.Text, InReplyTo: b.InReplyTo, References: b.References,
		ForwardFolderID: b.ForwardFolderID, ForwardUID: b.ForwardUID, DraftUID: b.DraftUID,
		ReplyFolderID: b.ReplyFolderID, ReplyUID: b.ReplyUID, Alert: b.Alert, KeepParts: b.KeepParts,
	}
	for _, u := range b.Attachments {
		d.Attachments = append(d.Attachments, Upload{Name: u.Name, ContentType: u.ContentType, Data: u.Data})
	}
	return d
}

func bodyOfDraft(d Draft) draftBody {
	b := draftBody{
		To: nonNil(d.To), Cc: nonNil(d.Cc), Bcc: nonNil(d.Bcc), Subject: d.Subject, Text: d.Text, InReplyTo: d.InReplyTo,
		References: nonNil(d.References), Attachments: []uploadBody{}, ForwardFolderID: d.ForwardFolderID, ForwardUID: d.ForwardUID,
		DraftUID: d.DraftUID, ReplyFolderID: d.ReplyFolderID, ReplyUID: d.ReplyUID, Alert: d.Alert,
		KeepParts: nonNil(d.KeepParts), DraftParts: d.DraftParts,
	}
	if b.DraftParts == nil {
		b.DraftParts = []Part{}
	}
	for _, u := range d.Attachments {
		b.Attachments = append(b.Attachments, uploadBody{Name: u.Name, ContentType: u.ContentType, Data: u.Data})
	}
	return b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readDraft reads a draft as JSON or as multipart/form-data (files in any
// file field), bounded by the message size limit plus the encoding
// overhead (base64 in JSON).
func (a *api) readDraft(w http.ResponseWriter, r *http.Request) (Draft, error) {
	max := a.s.cfg.MaxMessageSize
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		var b draftBody
		if err := readJSON(w, r, max/3*4+maxJSONBody, &b); err != nil {
			return Draft{}, err
		}
		return b.draft(), nil
	}
	limit := max + maxJSONBody
	if r.ContentLength > limit {
		return Draft{}, &http.MaxBytesError{Limit: limit}
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Draft{}, err
		}
		return Draft{}, invalid("form: %v", err)
	}
	defer r.MultipartForm.RemoveAll()
	f := r.MultipartForm.Value
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	num := func(k string) (uint64, error) {
		if get(k) == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(get(k), 10, 63)
		if err != nil {
			return 0, invalid("%s", k)
		}
		return n, nil
	}
	d := Draft{To: f["to"], Cc: f["cc"], Bcc: f["bcc"], Subject: get("subject"), Text: get("text"),
		InReplyTo: get("in_reply_to"), References: strings.Fields(get("references")),
		Alert: queryBool(url.Values{"a": {get("alert")}}, "a"), KeepParts: f["keep_part"]}
	var n [5]uint64
	for i, k := range []string{"forward_folder_id", "forward_uid", "draft_uid", "reply_folder_id", "reply_uid"} {
		v, err := num(k)
		if err != nil {
			return Draft{}, err
		}
		n[i] = v
	}
	d.ForwardFolderID, d.ForwardUID, d.DraftUID, d.ReplyFolderID, d.ReplyUID = int64(n[0]), uint32(n[1]), uint32(n[2]), int64(n[3]), uint32(n[4])
	for _, fhs := range r.MultipartForm.File {
		for _, fh := range fhs {
			up, err := readUpload(fh)
			if err != nil {
				return Draft{}, err
			}
			d.Attachments = append(d.Attachments, up)
		}
	}
	return d, nil
}

func readUpload(fh *multipart.FileHeader) (Upload, error) {
	f, err := fh.Open()
	if err != nil {
		return Upload{}, fmt.Errorf("webmail: open upload: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return Upload{}, fmt.Errorf("webmail: read upload: %w", err)
	}
	return Upload{Name: fh.Filename, ContentType: fh.Header.Get("Content-Type"), Data: data}, nil
}

func (a *api) send(w http.ResponseWriter, r *http.Request, u User) error {
	d, err := a.readDraft(w, r)
	if err != nil {
		return err
	}
	ref, err := a.s.Send(r.Context(), u, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ref)
	return nil
}

func (a *api) saveDraft(w http.ResponseWriter, r *http.Request, u User) error {
	d, err := a.readDraft(w, r)
	if err != nil {
		return err
	}
	ref, err := a.s.SaveDraft(r.Context(), u, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ref)
	return nil
}

func (a *api) compose(w http.ResponseWriter, r *http.Request, u User) error {
	q := r.URL.Query()
	folder, err := queryInt(q, "folder")
	if err != nil {
		return err
	}
	uid, err := queryInt(q, "uid")
	if err != nil || uid > 1<<32-1 {
		return invalid("uid")
	}
	d, err := a.s.Compose(r.Context(), u, q.Get("mode"), folder, uint32(uid), q.Get("to"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, bodyOfDraft(d))
	return nil
}

func (a *api) settings(w http.ResponseWriter, r *http.Request, u User) error {
	st, err := a.s.Settings(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (a *api) saveSettings(w http.ResponseWriter, r *http.Request, u User) error {
	var st Settings
	if err := readJSON(w, r, maxJSONBody, &st); err != nil {
		return err
	}
	if err := a.s.SaveSettings(r.Context(), u, st); err != nil {
		return err
	}
	st, err := a.s.Settings(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (a *api) suggest(w http.ResponseWriter, r *http.Request, u User) error {
	q := r.URL.Query()
	limit, err := queryInt(q, "limit")
	if err != nil {
		return err
	}
	cs, err := a.s.Suggest(r.Context(), u, q.Get("q"), int(min(limit, 50)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cs)
	return nil
}

func (a *api) badge(w http.ResponseWriter, r *http.Request, u User) error {
	n, err := queryInt(r.URL.Query(), "n")
	if err != nil {
		return err
	}
	if r.URL.Query().Get("n") == "" {
		n = 5
	}
	b, err := a.s.Badge(r.Context(), u, int(min(n, 20)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (a *api) appPasswords(w http.ResponseWriter, r *http.Request, u User) error {
	if a.apps == nil {
		return mailcore.ErrNotFound
	}
	aps, err := a.apps.AppPasswords(r.Context(), u)
	if err != nil {
		return err
	}
	if aps == nil {
		aps = []AppPassword{}
	}
	writeJSON(w, http.StatusOK, aps)
	return nil
}

// createdAppPassword is the one reply that shows the secret.
type createdAppPassword struct {
	Secret      string      `json:"secret"`
	AppPassword AppPassword `json:"app_password"`
}

func (a *api) createAppPassword(w http.ResponseWriter, r *http.Request, u User) error {
	if a.apps == nil {
		return mailcore.ErrNotFound
	}
	var b nameBody
	if err := readJSON(w, r, maxJSONBody, &b); err != nil {
		return err
	}
	b.Name = strings.TrimSpace(b.Name)
	if b.Name == "" || len(b.Name) > 100 || hasControl(b.Name, false) {
		return invalid("name")
	}
	secret, ap, err := a.apps.CreateAppPassword(r.Context(), u, b.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, createdAppPassword{Secret: secret, AppPassword: ap})
	return nil
}

func (a *api) revokeAppPassword(w http.ResponseWriter, r *http.Request, u User) error {
	if a.apps == nil {
		return mailcore.ErrNotFound
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.apps.RevokeAppPassword(r.Context(), u, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
