package ui

import (
	"encoding/base64"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/webmail"
)

// root sends the reader to their inbox.
func (h *handler) root(w http.ResponseWriter, r *http.Request, q *req) {
	fs, err := h.mail.Folders(r.Context(), q.u)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	if f, ok := folderBySpecial(fs, "INBOX"); ok {
		http.Redirect(w, r, "/mail/"+strconv.FormatInt(f.ID, 10), http.StatusSeeOther)
		return
	}
	h.fail(w, r, q, mailcore.ErrNotFound)
}

// folderParam resolves {folder}: a folder id, or (for hand-typed links
// such as /mail/INBOX) a folder name.
func (h *handler) folderParam(r *http.Request, q *req) (webmail.Folder, []webmail.Folder, error) {
	fs, err := h.mail.Folders(r.Context(), q.u)
	if err != nil {
		return webmail.Folder{}, nil, err
	}
	v := r.PathValue("folder")
	id, idErr := strconv.ParseInt(v, 10, 64)
	for _, f := range fs {
		if (idErr == nil && f.ID == id) || (idErr != nil && (f.Name == v || (strings.EqualFold(v, "INBOX") && strings.EqualFold(f.Name, "INBOX")))) {
			return f, fs, nil
		}
	}
	return webmail.Folder{}, fs, mailcore.ErrNotFound
}

func uidParam(r *http.Request) (uint32, bool) {
	n, err := strconv.ParseUint(r.PathValue("uid"), 10, 32)
	return uint32(n), err == nil && n > 0
}

// listOpts is the view state of a message list, kept in its query string.
type listOpts struct {
	Page    int
	Sort    webmail.Sort
	Threads bool
	Unread  bool
}

func parseListOpts(v url.Values) listOpts {
	o := listOpts{Sort: webmail.SortDateDesc}
	o.Page, _ = strconv.Atoi(v.Get("page"))
	if o.Page < 1 {
		o.Page = 1
	}
	switch s := webmail.Sort(v.Get("sort")); s {
	case webmail.SortDateAsc, webmail.SortFrom, webmail.SortSubject, webmail.SortSize:
		o.Sort = s
	}
	o.Threads = v.Get("threads") == "1"
	o.Unread = v.Get("unread") == "1"
	return o
}

// query is o as a query string ("" for the defaults), with page p.
func (o listOpts) query(p int) string {
	v := url.Values{}
	if p > 1 {
		v.Set("page", strconv.Itoa(p))
	}
	if o.Sort != webmail.SortDateDesc {
		v.Set("sort", string(o.Sort))
	}
	if o.Threads {
		v.Set("threads", "1")
	}
	if o.Unread {
		v.Set("unread", "1")
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

type row struct {
	webmail.Summary
	Href       string
	ReplyHref  string
	DateText   string
	SizeText   string
	FromText   string
	FromTitle  string
	Folder     string // folder label, in search results
	SubjectTxt string
}

// displayAddrs shows a list of addresses by their display names (the
// full text stays in the row's title).
func displayAddrs(s string) string {
	list, err := mail.ParseAddressList(s)
	if err != nil || len(list) == 0 {
		return s
	}
	names := make([]string, 0, len(list))
	for _, a := range list {
		if a.Name != "" {
			names = append(names, a.Name)
		} else {
			names = append(names, a.Address)
		}
	}
	return strings.Join(names, ", ")
}

func (h *handler) rows(L locale, items []webmail.Summary, labels map[int64]string, ctxQuery string, showTo bool) []row {
	out := make([]row, 0, len(items))
	for _, s := range items {
		base := "/mail/" + strconv.FormatInt(s.FolderID, 10) + "/" + strconv.FormatUint(uint64(s.UID), 10)
		rw := row{Summary: s, Href: base + ctxQuery,
			ReplyHref: "/compose?" + url.Values{"mode": {"reply"}, "folder": {strconv.FormatInt(s.FolderID, 10)}, "uid": {strconv.FormatUint(uint64(s.UID), 10)}}.Encode(),
			DateText:  h.formatDate(L, s.Date), SizeText: formatSize(L, s.Size), FromTitle: s.From, SubjectTxt: s.Subject}
		if showTo {
			rw.FromTitle = s.To
		}
		rw.FromText = displayAddrs(rw.FromTitle)
		if rw.FromText == "" {
			rw.FromText = L.T("no_sender")
			if showTo {
				rw.FromText = L.T("no_recipient")
			}
		}
		if rw.SubjectTxt == "" {
			rw.SubjectTxt = L.T("no_subject")
		}
		if labels != nil {
			rw.Folder = labels[s.FolderID]
		}
		out = append(out, rw)
	}
	return out
}

type listData struct {
	Folder    folderView
	Opts      listOpts
	Rows      []row
	Page      int
	Pages     int
	Total     int
	PrevHref  string
	NextHref  string
	Self      string // this page's path and query, the actions' return
	Targets   []folderView
	Sorts     []sortOption
	IsJunk    bool
	ShowTo    bool // Sent and Drafts show recipients, not the sender
	ActionURL string
}

type sortOption struct {
	Value    webmail.Sort
	Key      string
	Selected bool
}

func sortOptions(cur webmail.Sort) []sortOption {
	out := []sortOption{
		{Value: webmail.SortDateDesc, Key: "sort_date_desc"},
		{Value: webmail.SortDateAsc, Key: "sort_date_asc"},
		{Value: webmail.SortFrom, Key: "sort_from"},
		{Value: webmail.SortSubject, Key: "sort_subject"},
		{Value: webmail.SortSize, Key: "sort_size"},
	}
	for i := range out {
		out[i].Selected = out[i].Value == cur
	}
	return out
}

func (h *handler) perPage(q *req) int {
	n := q.settings.PerPage
	if n <= 0 {
		return 50
	}
	if n > 200 {
		return 200
	}
	return n
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, q *req) {
	f, fs, err := h.folderParam(r, q)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	o := parseListOpts(r.URL.Query())
	lp, err := h.mail.List(r.Context(), q.u, webmail.ListQuery{FolderID: f.ID, Page: o.Page, PerPage: h.perPage(q), Sort: o.Sort, Threads: o.Threads, Unread: o.Unread})
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	views := folderViews(q.L, fs)
	var cur folderView
	var targets []folderView
	for _, v := range views {
		if v.ID == f.ID {
			cur = v
		} else {
			targets = append(targets, v)
		}
	}
	base := "/mail/" + strconv.FormatInt(f.ID, 10)
	d := listData{Folder: cur, Opts: o, Page: lp.Page, Total: lp.Total, Targets: targets, Sorts: sortOptions(o.Sort),
		IsJunk: f.SpecialUse == "\\Junk", Self: base + o.query(o.Page), ActionURL: base + "/act"}
	if d.Page < 1 {
		d.Page = o.Page
	}
	per := lp.PerPage
	if per <= 0 {
		per = h.perPage(q)
	}
	d.Pages = (lp.Total + per - 1) / per
	if d.Pages < 1 {
		d.Pages = 1
	}
	if d.Page > 1 {
		d.PrevHref = base + o.query(d.Page-1)
	}
	if d.Page < d.Pages {
		d.NextHref = base + o.query(d.Page+1)
	}
	ctxQ := o.query(d.Page)
	d.ShowTo = f.SpecialUse == "\\Sent" || f.SpecialUse == "\\Drafts"
	d.Rows = h.rows(q.L, lp.Items, nil, ctxQ, d.ShowTo)
	if f.SpecialUse == "\\Drafts" {
		// A draft opens where it can be finished.
		for i := range d.Rows {
			d.Rows[i].Href = "/compose?" + url.Values{"mode": {"draft"}, "folder": {strconv.FormatInt(f.ID, 10)}, "uid": {strconv.FormatUint(uint64(d.Rows[i].UID), 10)}}.Encode()
		}
	}
	title := cur.Label
	if f.Unread > 0 {
		title = q.L.T("title_unread", cur.Label, f.Unread)
	}
	h.render(w, r, q, http.StatusOK, "list", &page{Title: title, Folders: views, Current: f.ID, Notice: noticeParam(r), Data: d})
}

// notices are the flash messages a redirect may ask for.
var notices = map[string]bool{"sent": true, "moved": true, "deleted": true, "done": true, "saved": true, "folder_created": true, "folder_renamed": true, "folder_deleted": true, "revoked": true}

func noticeParam(r *http.Request) string {
	n := r.URL.Query().Get("notice")
	if notices[n] {
		return "notice_" + n
	}
	return ""
}

func withNotice(target, n string) string {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + "notice=" + n
}

// act applies one of the list's (or the reading view's) actions to the
// checked messages and returns to where the form came from.
func (h *handler) act(w http.ResponseWriter, r *http.Request, q *req) {
	f, fs, err := h.folderParam(r, q)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	var uids []uint32
	for _, s := range r.PostForm["uid"] {
		n, err := strconv.ParseUint(s, 10, 32)
		if err == nil && n > 0 {
			uids = append(uids, uint32(n))
		}
	}
	next := safeNext(r.PostFormValue("next"), "/mail/"+strconv.FormatInt(f.ID, 10))
	if len(uids) == 0 {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	a := webmail.Action(r.PostFormValue("action"))
	var target int64
	switch a {
	case webmail.ActRead, webmail.ActUnread, webmail.ActFlag, webmail.ActUnflag, webmail.ActDelete, webmail.ActArchive, webmail.ActJunk, webmail.ActNotJunk:
	case webmail.ActMove:
		target, err = strconv.ParseInt(r.PostFormValue("target"), 10, 64)
		found := false
		for _, t := range fs {
			found = found || (err == nil && t.ID == target)
		}
		if !found {
			h.render(w, r, q, http.StatusBadRequest, "error", &page{Title: q.L.T("error_title"), Error: "error_pick_folder"})
			return
		}
	default:
		h.render(w, r, q, http.StatusBadRequest, "error", &page{Title: q.L.T("error_title"), Error: "error_bad_request"})
		return
	}
	if err := h.mail.Act(r.Context(), q.u, f.ID, uids, a, target); err != nil {
		h.fail(w, r, q, err)
		return
	}
	n := "done"
	switch a {
	case webmail.ActMove, webmail.ActArchive, webmail.ActJunk, webmail.ActNotJunk:
		n = "moved"
	case webmail.ActDelete:
		n = "deleted"
	}
	// A message that left the folder cannot be shown again: go to the list.
	if n != "done" && r.PostFormValue("from_view") == "1" {
		next = safeNext(r.PostFormValue("list"), "/mail/"+strconv.FormatInt(f.ID, 10))
	}
	http.Redirect(w, r, withNotice(next, n), http.StatusSeeOther)
}

type viewData struct {
	V          webmail.View
	Folder     folderView
	Base       string
	From       string
	DateText   string
	BodyURL    string
	Images     bool
	ImagesHref string
	TextOnly   bool
	TextHref   string
	HTMLHref   string
	Attach     []attachView
	Headers    []header
	Reply      string
	ReplyAll   string
	Forward    string
	Prev, Next string
	ListHref   string
	Self       string
	Targets    []folderView
	IsJunk     bool
	Subject    string
}

type attachView struct {
	webmail.Part
	Href     string
	SizeText string
}

type header struct{ Name, Value string }

func (h *handler) view(w http.ResponseWriter, r *http.Request, q *req) {
	f, fs, err := h.folderParam(r, q)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	uid, ok := uidParam(r)
	if !ok {
		h.fail(w, r, q, mailcore.ErrNotFound)
		return
	}
	qs := r.URL.Query()
	images := qs.Get("images") == "1"
	v, err := h.mail.Read(r.Context(), q.u, f.ID, uid, webmail.ReadOptions{RemoteImages: images})
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	// Reading marked the message \Seen: the sidebar's unread counts are
	// read again so they include it.
	if fresh, err := h.mail.Folders(r.Context(), q.u); err == nil {
		fs = fresh
	}
	views := folderViews(q.L, fs)
	fid := strconv.FormatInt(f.ID, 10)
	us := strconv.FormatUint(uint64(uid), 10)
	base := "/mail/" + fid + "/" + us
	o := parseListOpts(qs)
	listQ := o.query(o.Page)
	d := viewData{V: v, Base: base, From: v.From, DateText: h.formatFullDate(v.Date), Images: images,
		TextOnly: qs.Get("text") == "1" || v.HTML == "", ListHref: "/mail/" + fid + listQ, IsJunk: f.SpecialUse == "\\Junk",
		Subject: v.Subject}
	if d.Subject == "" {
		d.Subject = q.L.T("no_subject")
	}
	keep := func(extra url.Values) string {
		u := url.Values{}
		for k, vs := range qs {
			if k == "page" || k == "sort" || k == "threads" || k == "unread" {
				u[k] = vs
			}
		}
		for k, vs := range extra {
			u[k] = vs
		}
		if len(u) == 0 {
			return base
		}
		return base + "?" + u.Encode()
	}
	d.Self = keep(nil)
	d.ImagesHref = keep(url.Values{"images": {"1"}})
	d.TextHref = keep(url.Values{"text": {"1"}})
	d.HTMLHref = keep(nil)
	d.BodyURL = base + "/body"
	if images {
		d.BodyURL += "?images=1"
	}
	for _, fv := range views {
		if fv.ID == f.ID {
			d.Folder = fv
		} else {
			d.Targets = append(d.Targets, fv)
		}
	}
	for _, p := range v.Parts {
		if p.Inline && p.ContentID != "" && !d.TextOnly {
			continue // shown in the body
		}
		name := p.Name
		if name == "" {
			name = q.L.T("attachment_unnamed")
		}
		p.Name = name
		d.Attach = append(d.Attach, attachView{Part: p, Href: base + "/parts/" + url.PathEscape(p.ID), SizeText: formatSize(q.L, p.Size)})
	}
	names := make([]string, 0, len(v.Headers))
	for k := range v.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		d.Headers = append(d.Headers, header{k, v.Headers[k]})
	}
	cq := func(mode string) string {
		return "/compose?" + url.Values{"mode": {mode}, "folder": {fid}, "uid": {us}}.Encode()
	}
	d.Reply, d.ReplyAll, d.Forward = cq("reply"), cq("all"), cq("forward")
	d.Prev, d.Next = h.neighbours(r, q, f.ID, uid, o)
	h.render(w, r, q, http.StatusOK, "view", &page{Title: d.Subject, Folders: views, Current: f.ID, Notice: noticeParam(r), Data: d})
}

// neighbours finds the messages before and after uid in the list the
// reader came from (its page, or the next one at an edge), for j/k and
// the previous/next links.
func (h *handler) neighbours(r *http.Request, q *req, folder int64, uid uint32, o listOpts) (prev, next string) {
	per := h.perPage(q)
	get := func(p int) []webmail.Summary {
		if p < 1 {
			return nil
		}
		lp, err := h.mail.List(r.Context(), q.u, webmail.ListQuery{FolderID: folder, Page: p, PerPage: per, Sort: o.Sort, Threads: o.Threads, Unread: o.Unread})
		if err != nil {
			return nil
		}
		return lp.Items
	}
	href := func(s webmail.Summary, p int) string {
		return "/mail/" + strconv.FormatInt(folder, 10) + "/" + strconv.FormatUint(uint64(s.UID), 10) + o.query(p)
	}
	items := get(o.Page)
	for i, s := range items {
		if s.UID != uid {
			continue
		}
		if i > 0 {
			prev = href(items[i-1], o.Page)
		} else if p := get(o.Page - 1); len(p) > 0 {
			prev = href(p[len(p)-1], o.Page-1)
		}
		if i+1 < len(items) {
			next = href(items[i+1], o.Page)
		} else if len(items) == per {
			if n := get(o.Page + 1); len(n) > 0 {
				next = href(n[0], o.Page+1)
			}
		}
		return prev, next
	}
	return "", ""
}

// body serves the sanitised HTML of a message for the sandboxed frame of
// the reading view. It is framed only by our own pages and runs no
// script even if sanitising missed something: the frame's sandbox="" and
// this CSP both forbid it.
func (h *handler) body(w http.ResponseWriter, r *http.Request, q *req) {
	f, _, err := h.folderParam(r, q)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	uid, ok := uidParam(r)
	if !ok {
		h.fail(w, r, q, mailcore.ErrNotFound)
		return
	}
	images := r.URL.Query().Get("images") == "1"
	v, err := h.mail.Read(r.Context(), q.u, f.ID, uid, webmail.ReadOptions{RemoteImages: images})
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	html := h.inlineImages(r, q, f.ID, uid, v)
	hd := w.Header()
	hd.Del("X-Frame-Options")
	if images {
		hd.Set("Content-Security-Policy", bodyCSPRemote)
	} else {
		hd.Set("Content-Security-Policy", bodyCSP)
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\n" + html))
}

// Inline images are embedded as data: URLs. The frame's document has an
// opaque origin, so its requests to our origin are cross-site and carry no
// SameSite session cookie: a cid: image pointed at the part URL would not
// load. Limits keep one body answer bounded.
const (
	maxInlineImage  = 2 << 20
	maxInlineTotal  = 10 << 20
	maxInlineImages = 50
)

func (h *handler) inlineImages(r *http.Request, q *req, folder int64, uid uint32, v webmail.View) string {
	out := v.HTML
	type img struct{ id, mt, url string }
	var imgs []img
	for _, p := range v.Parts {
		mt, _, err := mime.ParseMediaType(p.ContentType)
		if err != nil || !strings.HasPrefix(mt, "image/") || mt == "image/svg+xml" || p.Size > maxInlineImage {
			continue
		}
		u := `"` + webmail.PartURL(folder, uid, p.ID) + `"`
		if !strings.Contains(out, u) {
			continue
		}
		// Bounded before anything is decoded: a message may name
		// hundreds of tiny images to make every opening expensive.
		if len(imgs) == maxInlineImages {
			break
		}
		imgs = append(imgs, img{p.ID, mt, u})
	}
	if len(imgs) == 0 {
		return out
	}
	ids := make([]string, len(imgs))
	for i, im := range imgs {
		ids[i] = im.id
	}
	data, err := h.mail.PartsData(r.Context(), q.u, folder, uid, ids, maxInlineTotal)
	if err != nil {
		return out
	}
	for _, im := range imgs {
		d, ok := data[im.id]
		if !ok || len(d) > maxInlineImage {
			continue
		}
		out = strings.ReplaceAll(out, im.url, `"data:`+im.mt+`;base64,`+base64.StdEncoding.EncodeToString(d)+`"`)
	}
	return out
}

// part downloads one attachment. It is always a download (never shown
// inline under our origin), never sniffed, and inert if a browser shows it.
func (h *handler) part(w http.ResponseWriter, r *http.Request, q *req) {
	f, _, err := h.folderParam(r, q)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	uid, ok := uidParam(r)
	if !ok {
		h.fail(w, r, q, mailcore.ErrNotFound)
		return
	}
	p, data, err := h.mail.Part(r.Context(), q.u, f.ID, uid, r.PathValue("part"))
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	ct := "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(p.ContentType); err == nil && !strings.HasPrefix(mt, "text/html") && !strings.Contains(mt, "xml") && !strings.Contains(mt, "javascript") {
		ct = mt
	}
	name := p.Name
	if name == "" {
		name = "attachment"
	}
	writeDownload(w, ct, name, data)
}

func writeDownload(w http.ResponseWriter, ct, name string, data []byte) {
	hd := w.Header()
	hd.Set("Content-Type", ct)
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if disp == "" {
		disp = "attachment"
	}
	hd.Set("Content-Disposition", disp)
	hd.Set("Content-Security-Policy", downloadCSP)
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// raw downloads the message as stored ("view source").
func (h *handler) raw(w http.ResponseWriter, r *http.Request, q *req) {
	f, _, err := h.folderParam(r, q)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	uid, ok := uidParam(r)
	if !ok {
		h.fail(w, r, q, mailcore.ErrNotFound)
		return
	}
	b, err := h.mail.Raw(r.Context(), q.u, f.ID, uid)
	if err != nil {
		h.fail(w, r, q, err)
		return
	}
	writeDownload(w, "message/rfc822", "message-"+strconv.FormatUint(uint64(uid), 10)+".eml", b)
}
