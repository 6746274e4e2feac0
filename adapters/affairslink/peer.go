package affairslink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/govhub/govhub/directory"
)

var (
	_ directory.Peer        = (*Client)(nil)
	_ directory.PeerWriter  = (*Client)(nil)
	_ directory.PeerCreator = (*Client)(nil)
)

var errCursorExpired = directory.ErrCursorExpired

// Wire objects of the contract (docs/affairslink.md, "Objects").

type apiDept struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	Order    int    `json:"order"`
	Status   string `json:"status"`
}

type apiMembership struct {
	ID    string `json:"id"`
	Order int    `json:"order"`
}

type apiUser struct {
	ID          string          `json:"id,omitempty"`
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Rank        string          `json:"rank,omitempty"`
	Departments []apiMembership `json:"departments,omitempty"`
	OfficePhone string          `json:"office_phone,omitempty"`
	Mobile      string          `json:"mobile,omitempty"`
	Email       string          `json:"email,omitempty"`
	JobNumber   string          `json:"job_number,omitempty"`
	Status      string          `json:"status,omitempty"`
}

type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor"`
	HasMore    bool              `json:"has_more"`
}

type apiChange struct {
	Type       string          `json:"type"`   // "user" or "department"
	Action     string          `json:"action"` // "upsert" or "delete"
	ID         string          `json:"id"`
	User       json.RawMessage `json:"user,omitempty"`
	Department json.RawMessage `json:"department,omitempty"`
}

type changesPage struct {
	Changes    []json.RawMessage `json:"changes"`
	NextCursor string            `json:"next_cursor"`
	HasMore    bool              `json:"has_more"`
}

func validStatus(s string) bool {
	return s == directory.StatusActive || s == directory.StatusDisabled || s == directory.StatusLeft
}

// deptEntry maps one raw department; a problem is an Entry with Err.
func deptEntry(raw json.RawMessage) directory.Entry {
	var d apiDept
	if err := json.Unmarshal(raw, &d); err != nil {
		return directory.Entry{Kind: directory.KindDepartment, Source: "department", Err: fmt.Errorf("affairslink: undecodable department: %w", err)}
	}
	e := directory.Entry{Kind: directory.KindDepartment, Anchor: d.ID, Source: "department " + d.ID}
	switch {
	case d.ID == "":
		e.Source = "department " + strconv.Quote(d.Name)
		e.Err = errors.New("affairslink: department without id")
	case d.ParentID == d.ID:
		e.Err = errors.New("affairslink: department is its own parent")
	case d.Status == "":
		d.Status = directory.StatusActive
		fallthrough
	default:
		if !validStatus(d.Status) {
			e.Err = fmt.Errorf("affairslink: department status %q unknown", d.Status)
			break
		}
		e.Department = &directory.Department{Anchor: d.ID, ParentAnchor: d.ParentID, Name: d.Name, Order: d.Order, Status: d.Status}
	}
	return e
}

// personEntry maps one raw user; a problem is an Entry with Err.
func personEntry(raw json.RawMessage) directory.Entry {
	var u apiUser
	if err := json.Unmarshal(raw, &u); err != nil {
		return directory.Entry{Kind: directory.KindPerson, Source: "user", Err: fmt.Errorf("affairslink: undecodable user: %w", err)}
	}
	e := directory.Entry{Kind: directory.KindPerson, Anchor: u.ID, Source: "user " + u.ID}
	if u.ID == "" {
		e.Source = "user " + strconv.Quote(u.Name)
		e.Err = errors.New("affairslink: user without id")
		return e
	}
	if u.Status == "" {
		u.Status = directory.StatusActive
	}
	if !validStatus(u.Status) {
		e.Err = fmt.Errorf("affairslink: user status %q unknown", u.Status)
		return e
	}
	p := &directory.Person{
		Anchor: u.ID, DisplayName: u.Name, Title: u.Title, Rank: u.Rank,
		OfficePhone: u.OfficePhone, Mobile: u.Mobile, Mail: u.Email, EmployeeNo: u.JobNumber, Status: u.Status,
	}
	for _, m := range u.Departments {
		if m.ID == "" {
			e.Err = errors.New("affairslink: user membership without department id")
			return e
		}
		p.Memberships = append(p.Memberships, directory.Membership{DeptAnchor: m.ID, Order: m.Order})
	}
	e.Person = p
	return e
}

// list walks one cursor-paged collection, handing each raw item to fn.
func (c *Client) list(ctx context.Context, path string, fn func(json.RawMessage) error) error {
	cursor := ""
	seen := map[string]bool{}
	for {
		q := url.Values{"limit": {strconv.Itoa(c.cfg.PageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p page
		if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q, auth: true}, &p); err != nil {
			return err
		}
		for _, raw := range p.Items {
			if err := fn(raw); err != nil {
				return err
			}
		}
		if !p.HasMore {
			return nil
		}
		// A server handing back a cursor already followed would loop for
		// ever; the contract says cursors advance.
		if p.NextCursor == "" || seen[p.NextCursor] {
			return fmt.Errorf("affairslink: GET %s: has_more without a new next_cursor", path)
		}
		seen[p.NextCursor] = true
		cursor = p.NextCursor
	}
}

// Full implements directory.Peer. It takes the change-log head first and
// lists afterwards, so what changes while the listing runs is seen again
// by the next Changes (upserts are idempotent) rather than lost.
// Departments are buffered (hundreds, not hundreds of thousands) and
// handed over parents first; people are streamed page by page.
func (c *Client) Full(ctx context.Context, fn func(directory.Entry) error) (string, error) {
	var head struct {
		Cursor string `json:"cursor"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/changes/latest", auth: true}, &head); err != nil {
		return "", err
	}
	if head.Cursor == "" {
		return "", errors.New("affairslink: GET /v1/changes/latest: empty cursor")
	}
	var depts []directory.Entry
	err := c.list(ctx, "/v1/departments", func(raw json.RawMessage) error {
		depts = append(depts, deptEntry(raw))
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, e := range parentsFirst(depts) {
		if err := fn(e); err != nil {
			return "", err
		}
	}
	err = c.list(ctx, "/v1/users", func(raw json.RawMessage) error { return fn(personEntry(raw)) })
	if err != nil {
		return "", err
	}
	return head.Cursor, nil
}

// parentsFirst orders departments so that each comes after its parent
// when the parent is in the list; broken entries and departments whose
// parent is missing or in a cycle come last, in their original order, for
// the engine to report.
func parentsFirst(in []directory.Entry) []directory.Entry {
	byID := map[string]*directory.Department{}
	for _, e := range in {
		if e.Department != nil {
			byID[e.Department.Anchor] = e.Department
		}
	}
	depth := map[string]int{}
	var depthOf func(id string, seen int) int
	depthOf = func(id string, seen int) int {
		if d, ok := depth[id]; ok {
			return d
		}
		dep := byID[id]
		switch {
		case dep.ParentAnchor == "":
			depth[id] = 0
		case byID[dep.ParentAnchor] == nil || seen > len(byID):
			depth[id] = -1 // missing parent or cycle
		default:
			p := depthOf(dep.ParentAnchor, seen+1)
			if p < 0 {
				depth[id] = -1
			} else {
				depth[id] = p + 1
			}
		}
		return depth[id]
	}
	out := make([]directory.Entry, len(in))
	copy(out, in)
	key := func(e directory.Entry) int {
		if e.Department == nil {
			return 1 << 30
		}
		d := depthOf(e.Department.Anchor, 0)
		if d < 0 {
			return 1 << 29
		}
		return d
	}
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

// Changes implements directory.Peer: every change since cursor, in the
// order the affairs link logged them. An empty cursor, or one the affairs
// link no longer keeps (410 cursor_expired), is directory.ErrCursorExpired.
// The cursor returned is the last next_cursor, so a run that fails midway
// is resumed from its start: upserts and deletes are idempotent.
func (c *Client) Changes(ctx context.Context, cursor string, fn func(directory.Entry) error) (string, error) {
	if cursor == "" {
		return "", fmt.Errorf("affairslink: no change cursor: %w", directory.ErrCursorExpired)
	}
	for {
		q := url.Values{"cursor": {cursor}, "limit": {strconv.Itoa(c.cfg.PageSize)}}
		var p changesPage
		if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/changes", query: q, auth: true}, &p); err != nil {
			return "", err
		}
		for _, raw := range p.Changes {
			if err := fn(changeEntry(raw)); err != nil {
				return "", err
			}
		}
		if p.NextCursor == "" {
			return "", errors.New("affairslink: GET /v1/changes: answer without next_cursor")
		}
		if !p.HasMore {
			return p.NextCursor, nil
		}
		if p.NextCursor == cursor {
			return "", errors.New("affairslink: GET /v1/changes: has_more without a new next_cursor")
		}
		cursor = p.NextCursor
	}
}

func changeEntry(raw json.RawMessage) directory.Entry {
	var ch apiChange
	if err := json.Unmarshal(raw, &ch); err != nil {
		return directory.Entry{Source: "change", Err: fmt.Errorf("affairslink: undecodable change: %w", err)}
	}
	var kind directory.EntryKind
	switch ch.Type {
	case "user":
		kind = directory.KindPerson
	case "department":
		kind = directory.KindDepartment
	default:
		return directory.Entry{Anchor: ch.ID, Source: "change " + ch.ID, Err: fmt.Errorf("affairslink: change of unknown type %q", ch.Type)}
	}
	switch ch.Action {
	case "delete":
		e := directory.Entry{Kind: kind, Deleted: true, Anchor: ch.ID, Source: ch.Type + " " + ch.ID}
		if ch.ID == "" {
			e.Err = fmt.Errorf("affairslink: %s deletion without id", ch.Type)
		}
		return e
	case "upsert":
		var e directory.Entry
		if kind == directory.KindPerson {
			e = personEntry(ch.User)
		} else {
			e = deptEntry(ch.Department)
		}
		if e.Err == nil && ch.ID != "" && e.Anchor != ch.ID {
			e.Err = fmt.Errorf("affairslink: change for %s carries object %s", ch.ID, e.Anchor)
		}
		return e
	}
	return directory.Entry{Kind: kind, Anchor: ch.ID, Source: ch.Type + " " + ch.ID, Err: fmt.Errorf("affairslink: change action %q unknown", ch.Action)}
}

// FetchPerson reads one user, for a targeted sync after a callback. A
// user the affairs link no longer has is an Entry with Deleted set.
func (c *Client) FetchPerson(ctx context.Context, id string) (directory.Entry, error) {
	var raw json.RawMessage
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/users/" + url.PathEscape(id), auth: true}, &raw)
	if errors.Is(err, ErrNotFound) {
		return directory.Entry{Kind: directory.KindPerson, Deleted: true, Anchor: id, Source: "user " + id}, nil
	}
	if err != nil {
		return directory.Entry{}, err
	}
	return personEntry(raw), nil
}

// FetchDepartment reads one department, for a targeted sync after a
// callback. A department the affairs link no longer has is an Entry with
// Deleted set.
func (c *Client) FetchDepartment(ctx context.Context, id string) (directory.Entry, error) {
	var raw json.RawMessage
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/departments/" + url.PathEscape(id), auth: true}, &raw)
	if errors.Is(err, ErrNotFound) {
		return directory.Entry{Kind: directory.KindDepartment, Deleted: true, Anchor: id, Source: "department " + id}, nil
	}
	if err != nil {
		return directory.Entry{}, err
	}
	return deptEntry(raw), nil
}

// wireField maps directory.FieldNames to the contract's user fields.
var wireField = map[string]string{
	"display_name": "name",
	"title":        "title",
	"rank":         "rank",
	"memberships":  "departments",
	"office_phone": "office_phone",
	"mobile":       "mobile",
	"mail":         "email",
	"employee_no":  "job_number",
	"status":       "status",
}

// ParseMemberships reads the "memberships" value of UpdatePerson: either a
// JSON array of directory.Membership or "dept[:order],dept[:order]".
func ParseMemberships(v string) ([]directory.Membership, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if strings.HasPrefix(v, "[") {
		var ms []directory.Membership
		if err := json.Unmarshal([]byte(v), &ms); err != nil {
			return nil, fmt.Errorf("affairslink: memberships: %w", err)
		}
		return ms, nil
	}
	var ms []directory.Membership
	for _, part := range strings.Split(v, ",") {
		id, ord, _ := strings.Cut(strings.TrimSpace(part), ":")
		m := directory.Membership{DeptAnchor: id}
		if ord != "" {
			n, err := strconv.Atoi(ord)
			if err != nil {
				return nil, fmt.Errorf("affairslink: memberships: order %q", ord)
			}
			m.Order = n
		}
		if m.DeptAnchor == "" {
			return nil, errors.New("affairslink: memberships: empty department id")
		}
		if strings.HasPrefix(m.DeptAnchor, "#") {
			// The engine's marker for a department with no anchor in this
			// peer: the affairs link cannot place anyone in it yet.
			return nil, fmt.Errorf("affairslink: memberships: department %s has no affairs-link id", m.DeptAnchor)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func wireMemberships(ms []directory.Membership) []apiMembership {
	out := make([]apiMembership, 0, len(ms))
	for _, m := range ms {
		out = append(out, apiMembership{ID: m.DeptAnchor, Order: m.Order})
	}
	return out
}

// UpdatePerson implements directory.PeerWriter with PATCH /v1/users/{id}:
// only the named fields are sent, so the affairs link keeps the rest. An
// empty value clears the field. PATCH of the same fields is idempotent, so
// it is retried like a read.
func (c *Client) UpdatePerson(ctx context.Context, anchor string, fields map[string]string) error {
	if anchor == "" {
		return errors.New("affairslink: update without anchor")
	}
	patch := map[string]any{}
	for name, v := range fields {
		wf, ok := wireField[name]
		if !ok {
			return fmt.Errorf("affairslink: field %q cannot be written", name)
		}
		if name == "memberships" {
			ms, err := ParseMemberships(v)
			if err != nil {
				return err
			}
			patch[wf] = wireMemberships(ms)
			continue
		}
		if name == "status" && !validStatus(v) {
			return fmt.Errorf("affairslink: status %q unknown", v)
		}
		patch[wf] = v
	}
	if len(patch) == 0 {
		return nil
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: http.MethodPatch, path: "/v1/users/" + url.PathEscape(anchor), body: body, auth: true}, nil)
}

// CreatePerson implements directory.PeerWriter with POST /v1/users. The
// request carries an Idempotency-Key kept across retries, so a create
// whose answer was lost is not made twice.
func (c *Client) CreatePerson(ctx context.Context, p directory.Person) (string, error) {
	if p.DisplayName == "" {
		return "", errors.New("affairslink: create without display name")
	}
	if p.Status == "" {
		p.Status = directory.StatusActive
	}
	u := apiUser{
		Name: p.DisplayName, Title: p.Title, Rank: p.Rank, Departments: wireMemberships(p.Memberships),
		OfficePhone: p.OfficePhone, Mobile: p.Mobile, Email: p.Mail, JobNumber: p.EmployeeNo, Status: p.Status,
	}
	body, err := json.Marshal(u)
	if err != nil {
		return "", err
	}
	var out apiUser
	h := http.Header{"Idempotency-Key": {idempotencyKey()}}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/users", body: body, header: h, auth: true}, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("affairslink: POST /v1/users: answer without id")
	}
	return out.ID, nil
}
