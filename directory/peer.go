package directory

import (
	"context"
	"errors"
)

// The peer contract: what an external directory (LDAP, the affairs link's
// address book) must offer the sync engine. Declared here, implemented by
// adapters/ldap and adapters/affairslink, wired by cmd/govhub.

// Status values of people and departments as peers report them.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusLeft     = "left"
)

// Department is one node of the organisation chart as a peer sees it.
type Department struct {
	// Anchor is the peer's immutable id for it (LDAP entryUUID or
	// objectGUID, the affairs link's department id). Never a DN or a name:
	// those change.
	Anchor string `json:"anchor"`
	// ParentAnchor is "" for a root department.
	ParentAnchor string `json:"parent_anchor,omitempty"`
	Name         string `json:"name"`
	Order        int    `json:"order"`
	Status       string `json:"status"`
}

// Membership places a person in a department with a display order.
type Membership struct {
	DeptAnchor string `json:"dept_anchor"`
	Order      int    `json:"order"`
}

// Person is one member of staff as a peer sees them. Empty fields are
// "not provided by this peer", not "cleared"; ownership (per field, which
// peer is authoritative) decides what a value means.
type Person struct {
	Anchor      string       `json:"anchor"`
	DisplayName string       `json:"display_name"`
	Title       string       `json:"title,omitempty"`
	Rank        string       `json:"rank,omitempty"`
	Memberships []Membership `json:"memberships,omitempty"`
	OfficePhone string       `json:"office_phone,omitempty"`
	Mobile      string       `json:"mobile,omitempty"`
	Mail        string       `json:"mail,omitempty"`
	EmployeeNo  string       `json:"employee_no,omitempty"`
	Status      string       `json:"status"`
}

// EntryKind says what an Entry carries.
type EntryKind int

const (
	KindDepartment EntryKind = 1
	KindPerson     EntryKind = 2
	KindGroup      EntryKind = 3
)

// Group is a named set of people (and, nested, of other groups) as a peer
// sees it: an LDAP groupOfNames, a mailing list. Members are named by
// their anchors in the same peer.
type Group struct {
	Anchor      string `json:"anchor"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Mail        string `json:"mail,omitempty"`
	Status      string `json:"status"`
	// Members are the anchors of the people in the group, Subgroups those
	// of nested groups. The engine reports an anchor it does not know
	// (yet) per object and keeps the rest.
	Members   []string `json:"members,omitempty"`
	Subgroups []string `json:"subgroups,omitempty"`
	// Unresolved are member references the peer could not turn into an
	// anchor, in its own terms (a DN naming no entry): reported per
	// object, never fatal.
	Unresolved []string `json:"unresolved,omitempty"`
}

// Entry is one object a peer reports: a department, a person or a group, present
// or deleted. A broken source entry (no anchor, bad characters, unparsable
// attribute) is reported with Err set and Anchor/DN filled as far as
// known, so the engine records it per object and goes on.
type Entry struct {
	Kind       EntryKind
	Department *Department
	Person     *Person
	Group      *Group
	// Deleted: the object with Anchor is gone from the peer.
	Deleted bool
	Anchor  string
	// Source names the entry in the peer's own terms for reports (a DN, an
	// API id).
	Source string
	// Err is a per-object problem; the run records it and continues.
	Err error
	// Version is the peer's change stamp of the object as it was read
	// (LDAP entryCSN or uSNChanged, with whatever else the peer's reading
	// of it depends on), "" when the peer has none. A different Version
	// must mean the object may have changed; an equal one that it has not.
	// The engine keeps it with the object's snapshot for SkippingPeer.
	Version string
	// Unchanged: a SkippingPeer did not read this person's attributes
	// because Version equals what the engine holds; only Kind, Anchor,
	// Source and Version are set. The engine plans it from the snapshot
	// of the peer's values it stored with that Version.
	Unchanged bool
}

// ErrCursorExpired: the peer cannot answer changes since this cursor (the
// sync cookie or change log was lost); the engine falls back to a full
// reconcile.
var ErrCursorExpired = errors.New("directory: change cursor expired")

// Peer is the read side every directory offers.
type Peer interface {
	// Name is the configured peer name ("ldap", "affairslink"), used in
	// schedules, anchors and reports.
	Name() string
	// Full streams every department, person and group (departments first,
	// parents before children where the peer can tell) to fn and returns a cursor
	// from which Changes continues. fn returning an error stops the walk.
	Full(ctx context.Context, fn func(Entry) error) (cursor string, err error)
	// Changes streams what changed since cursor, deletions included, and
	// returns the new cursor. ErrCursorExpired asks for a full run.
	Changes(ctx context.Context, cursor string, fn func(Entry) error) (newCursor string, err error)
}

// SkippingPeer is the optional capability of a full walk that reads only
// the anchor and change stamp of people the engine already holds at that
// stamp: a nightly reconcile of 200,000 people of whom few changed then
// costs a fraction of decoding them all.
type SkippingPeer interface {
	Peer
	// FullSkipping is Full, except that a person for whom known(anchor)
	// returns the Version the peer would report may be reported as
	// Entry{Unchanged: true} without attributes. known returns "" for
	// people it holds no usable version of.
	FullSkipping(ctx context.Context, known func(anchor string) string, fn func(Entry) error) (cursor string, err error)
}

// PeerWriter is the optional write side: peers configured writable accept
// the attributes govhub owns (write-back).
type PeerWriter interface {
	Peer
	// UpdatePerson sets the given fields (names as in FieldNames) of the
	// person with anchor; other attributes are left as they are.
	UpdatePerson(ctx context.Context, anchor string, fields map[string]string) error
	// CreatePerson adds a person and returns the peer's anchor for them.
	CreatePerson(ctx context.Context, p Person) (anchor string, err error)
}

// PeerCreator is the optional capability of adding people: a peer
// configured writable that implements it receives, in a full run, the
// people active in govhub's chart it has no entry for (push).
type PeerCreator interface {
	Peer
	// CreatePerson adds a person and returns the peer's anchor for them.
	CreatePerson(ctx context.Context, p Person) (anchor string, err error)
}

// FieldNames are the person fields ownership and write-back speak of.
var FieldNames = []string{"display_name", "title", "rank", "memberships", "office_phone", "mobile", "mail", "employee_no", "status"}

// GroupFieldNames are the group fields ownership speaks of (keys of
// Config.Ownership, beside FieldNames and FieldDepartment).
var GroupFieldNames = []string{"group_name", "group_description", "group_mail", "group_members", "group_status"}
